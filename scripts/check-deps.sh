#!/usr/bin/env bash
# Checks the module dependency graph of the product code (docs/development.md,
# "Module map"): every `#include "MODULE/..."` in MODULE2/ must be an edge the
# graph allows and that MODULE2/CMakeLists.txt declares, no file includes
# another module's *_internal.h, and a public header includes no module that
# its CMakeLists.txt lists as PRIVATE_DEPS (hidden from dependants). Prints
# each violation as FILE:LINE: reason and exits 1 if there is any.
#
# The build enforces the same rules from the other side (the include trees of
# cmake/walferry_includes.cmake; tests/build/include_privacy.sh proves it):
# this script names the graph, and catches what the build lets through, an
# include that resolves only because a linked module's public headers use it.
#
# usage: bash scripts/check-deps.sh   (from anywhere; reads the git checkout)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Allowed edges: module -> the modules its files may include (besides itself).
declare -A ALLOW=(
  [core]=""
  [walfmt]="core"
  [compress]="core"
  [store]="walfmt compress core"          # the storage interface the receiver writes through
  [archive]="store compress walfmt core"  # the disk store
  [s3]="core"
  [store_s3]="archive store s3 compress walfmt core"  # the object store
  [transport]="store compress core"       # never a backend: cli wires one in
  [pg]="transport archive store walfmt compress core"
  [agent]="transport core"
  [cli]="agent pg transport archive store store_s3 s3 walfmt compress core"
)

# cmake_deps MOD [PRIVATE]: the modules MOD/CMakeLists.txt links (all of them,
# or those after PRIVATE_DEPS), one a line.
cmake_deps() {
  local text
  text=$(tr '\n' ' ' <"$1/CMakeLists.txt")
  if [ "${2:-}" = PRIVATE ]; then
    text=$(grep -oE 'PRIVATE_DEPS[^)]*' <<<"$text" || true)
  fi
  grep -oE 'walferry_[a-z0-9_]+' <<<"$text" | sed 's/^walferry_//' | sort -u || true
}

status=0
for mod in "${!ALLOW[@]}"; do
  [ -d "$mod" ] || continue
  declared=" $(cmake_deps "$mod" | tr '\n' ' ') "
  private=" $(cmake_deps "$mod" PRIVATE | tr '\n' ' ') "
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$rest")
    dep=${inc%%/*}
    [ "$dep" = "$inc" ] && continue                 # same-directory include
    [ -n "${ALLOW[$dep]+x}" ] || continue             # not a module (e.g. a system path)
    if [ "$dep" != "$mod" ]; then
      case " ${ALLOW[$mod]} " in
        *" $dep "*) ;;
        *) echo "$file:$line: $mod may not depend on $dep (includes $inc)"; status=1 ;;
      esac
      case $inc in
        *_internal.h) echo "$file:$line: includes another module's internal header $inc"; status=1 ;;
      esac
      case $declared in
        *" $dep "*) ;;
        *) echo "$file:$line: includes $inc, but $mod/CMakeLists.txt does not link walferry_$dep"; status=1 ;;
      esac
      case $file in
        *_internal.h|*.cc) ;;
        *) case $private in
             *" $dep "*) echo "$file:$line: a public header includes $inc, but $mod/CMakeLists.txt links walferry_$dep as PRIVATE_DEPS (move it to DEPS)"; status=1 ;;
           esac ;;
      esac
    fi
  done < <(git ls-files -- "$mod" | grep -E '\.(cc|h)$' | xargs -r grep -Hn '^#include "' || true)
done

# Target libraries must declare the same edges (CMake DEPS) as the sources use.
for mod in "${!ALLOW[@]}"; do
  [ -f "$mod/CMakeLists.txt" ] || continue
  for dep in $(cmake_deps "$mod"); do
    [ "$dep" = "$mod" ] && continue
    [ -n "${ALLOW[$dep]+x}" ] || continue
    case " ${ALLOW[$mod]} " in
      *" $dep "*) ;;
      *) echo "$mod/CMakeLists.txt: target walferry_$mod links walferry_$dep, an edge the graph does not allow"; status=1 ;;
    esac
  done
done

if [ $status -eq 0 ]; then echo "check-deps: module graph OK"; fi
exit $status
