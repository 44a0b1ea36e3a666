#!/usr/bin/env bash
# Checks the module dependency graph of the product code (docs/development.md,
# "Module map"): every `#include "MODULE/..."` in MODULE2/ must be an edge the
# graph allows, and no file includes another module's *_internal.h. Prints
# each violation as FILE:LINE: reason and exits 1 if there is any.
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

status=0
for mod in "${!ALLOW[@]}"; do
  [ -d "$mod" ] || continue
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
    fi
  done < <(git ls-files -- "$mod" | grep -E '\.(cc|h)$' | xargs -r grep -Hn '^#include "' || true)
done

# Target libraries must declare the same edges (CMake DEPS) as the sources use.
for mod in "${!ALLOW[@]}"; do
  [ -f "$mod/CMakeLists.txt" ] || continue
  for dep in $(grep -oE 'walferry_[a-z0-9_]+' "$mod/CMakeLists.txt" | sed 's/^walferry_//' | sort -u); do
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
