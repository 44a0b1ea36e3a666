#!/usr/bin/env bash
# 1 GiB round trip through pipes in both modes, compared by hash, with the
# compressor's peak RSS checked: memory is bounded by the chunks in flight,
# not by the stream length.
. "$(dirname "$0")/lib/common.sh"
command -v sha256sum >/dev/null || skip "sha256sum missing"

# A 16 MiB seed (binary, text, random, zeros) repeated 64 times = 1 GiB, each
# copy tagged so no two chunks of the stream are the same.
seed=$T/seed
{ head -c 6M "$PGBIN/postgres" 2>/dev/null || head -c 6M "$WF"
  seq 1 500000
  head -c 4M /dev/urandom
  head -c 2M /dev/zero
  head -c 8M /dev/urandom; } > "$seed.full"
truncate -s 16M "$seed.full" && mv "$seed.full" "$seed"
gen() {
  for i in $(seq 1 64); do printf 'copy %08d\n' "$i"; cat "$seed"; done
}
want=$(gen | sha256sum | cut -d' ' -f1)
bytes=$(gen | wc -c)
[ "$bytes" -ge $((1024 * 1024 * 1024)) ] || fail "generator made only $bytes bytes"

rss_ok() {  # rss_ok FILE: /usr/bin/time -f %M output in KiB
  local kb; kb=$(tail -n 1 "$1")
  note "peak RSS ${kb} KiB"
  [ "$kb" -lt $((256 * 1024)) ] || fail "peak RSS ${kb} KiB: memory not bounded"
}
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -f %M -o)

for mode in zstd gzip; do
  if [ ${#timer[@]} -gt 0 ]; then
    got=$(gen | "${timer[@]}" "$T/rss.$mode" "$WF" compress --$mode -p 2 \
          | "$WF" decompress -p 2 | sha256sum | cut -d' ' -f1)
    rss_ok "$T/rss.$mode"
  else
    got=$(gen | "$WF" compress --$mode -p 2 | "$WF" decompress -p 2 | sha256sum | cut -d' ' -f1)
  fi
  [ "$got" = "$want" ] || fail "$mode: 1 GiB round trip differs ($got vs $want)"
  note "$mode: 1 GiB round trip identical"
done
# Stock decoders read the same 1 GiB streams (zstd: frames in order, many of them).
got=$(gen | "$WF" compress --zstd -1 | zstd -q -dc | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "zstd -dc of 1 GiB differs"
echo "compress 1 GiB: ok"
