#!/usr/bin/env bash
# Builds the Debian package walferry_<version>_<arch>.deb with dpkg-buildpackage
# from debian/ (in a copy of the tree under build/pkg/, so nothing lands beside
# the checkout; WF_PACKAGE_OUT=DIR to choose another), and prints its path on
# the last line.
#   bash scripts/package.sh                  # compiles walferry (Release flags from dpkg-buildflags)
#   bash scripts/package.sh --binary PATH    # packages an already built binary (fast; the package test)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PREBUILT=""
if [ "${1:-}" = "--binary" ]; then
  PREBUILT=$(readlink -f "${2:?--binary needs a path}")
  [ -x "$PREBUILT" ] || { echo "package: $PREBUILT is not an executable" >&2; exit 1; }
fi
bash "$WF_ROOT/scripts/install-deps.sh" >/dev/null
VERSION=$(dpkg-parsechangelog -l "$WF_ROOT/debian/changelog" -S Version)
OUT=${WF_PACKAGE_OUT:-$WF_ROOT/build/pkg}
SRC="$OUT/walferry-${VERSION%-*}"
rm -rf "$OUT"
mkdir -p "$SRC"
# The tree as git sees it, uncommitted changes included (or, outside git, all
# but build/).
if git -C "$WF_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$WF_ROOT" ls-files -z --cached --others --exclude-standard |
    (cd "$WF_ROOT" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$WF_ROOT" --null -T - -cf - | tar -C "$SRC" -xf -
else
  tar -C "$WF_ROOT" --exclude=./build -cf - . | tar -C "$SRC" -xf -
fi
(
  cd "$SRC"
  export WALFERRY_PREBUILT=$PREBUILT DEB_BUILD_OPTIONS="parallel=$WF_JOBS ${DEB_BUILD_OPTIONS:-}"
  dpkg-buildpackage -b -us -uc >"$OUT/build.log" 2>&1
) || { tail -n 40 "$OUT/build.log" >&2; echo "package: dpkg-buildpackage failed (see $OUT/build.log)" >&2; exit 1; }
DEB=$(ls "$OUT"/walferry_"$VERSION"_*.deb)
echo "$DEB"
