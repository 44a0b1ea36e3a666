#!/usr/bin/env bash
# Writes walferry.1 and one walferry-COMMAND.1 per command (walferry-tls-init.1,
# walferry-setup-primary.1, ...) into OUTDIR, made by help2man from the binary's
# own --help text, so the manual cannot drift from the program.
#   packaging/gen-manpages.sh BUILD/cli/walferry OUTDIR
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$2
command -v help2man >/dev/null || { echo "gen-manpages: help2man is not installed" >&2; exit 1; }
mkdir -p "$OUT"
VERSION=$("$BIN" --version | awk '{ print $NF }')
WRAP=$(mktemp -d)
trap 'rm -rf "$WRAP"' EXIT

# Names listed under "Subcommands:" in `walferry [CMD...] --help`.
subcommands() {
  "$BIN" "$@" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on && !/^ / { on = 0 }'
}

# page NAME SUMMARY CMD...: man page NAME.1 for `walferry CMD...`.
page() {
  local name=$1 summary=$2; shift 2
  printf '#!/bin/sh\nexec %q %s "$@"\n' "$BIN" "$*" >"$WRAP/$name"
  chmod +x "$WRAP/$name"
  help2man --no-info --no-discard-stderr --section 1 --source "walferry $VERSION" \
    --version-string "$VERSION" --name "$summary" --output "$OUT/$name.1" "$WRAP/$name"
}

summary_of() {  # summary_of CMD... : the one-line summary the parent's --help gives
  local last=${*: -1}
  "$BIN" "${@:1:$#-1}" --help | awk -v c="$last" '$1 == c { $1 = ""; sub(/^ +/, ""); print; exit }'
}

page walferry "ships PostgreSQL WAL and base backups to a standby, fast and safely"
for cmd in $(subcommands); do
  page "walferry-$cmd" "$(summary_of "$cmd")" "$cmd"
  for sub in $(subcommands "$cmd"); do
    page "walferry-$cmd-$sub" "$(summary_of "$cmd" "$sub")" "$cmd" "$sub"
  done
done
ls "$OUT"
