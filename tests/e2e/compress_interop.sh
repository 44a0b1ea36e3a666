#!/usr/bin/env bash
# walferry compress/decompress through the real binary: interop with stock
# gzip, pigz and zstd in both directions, pigz-like file handling, and bad
# input (non-zero exit, one line on stderr, nothing under the final name).
. "$(dirname "$0")/lib/common.sh"

for tool in gzip pigz zstd cmp; do command -v $tool >/dev/null || skip "$tool not installed"; done

# ~12 MiB of mixed data: a binary, text, random and zeros, so chunks differ.
data=$T/data.bin
{ head -c 4M "$PGBIN/postgres" 2>/dev/null || head -c 4M "$WF"
  seq 1 400000
  head -c 3M /dev/urandom
  head -c 2M /dev/zero; } > "$data"
size=$(stat -c %s "$data")
note "input $size bytes"

# ---- our output through stock tools ----
for level in 1 6 9 12; do
  "$WF" compress --gzip -$level -p 2 --chunk 512K < "$data" > "$T/o.gz" || fail "compress --gzip -$level"
  gzip -dc "$T/o.gz" | cmp - "$data" || fail "gzip -dc of our --gzip -$level output differs"
  pigz -dc "$T/o.gz" | cmp - "$data" || fail "pigz -dc of our --gzip -$level output differs"
  zcat "$T/o.gz" | cmp - "$data" || fail "zcat of our gzip output differs"
  gzip -t "$T/o.gz" || fail "gzip -t rejects our output"
done
for level in 1 3 19; do
  "$WF" compress --zstd -l $level < "$data" > "$T/o.zst" || fail "compress --zstd -l $level"
  zstd -q -dc "$T/o.zst" | cmp - "$data" || fail "zstd -dc of our --zstd -$level output differs"
  zstd -q -t "$T/o.zst" || fail "zstd -t rejects our output"
done
# Empty input still gives a valid file.
"$WF" compress --gzip < /dev/null > "$T/e.gz" && gzip -dc "$T/e.gz" | cmp - /dev/null || fail "empty gzip"
"$WF" compress < /dev/null > "$T/e.zst" && zstd -q -dc "$T/e.zst" | cmp - /dev/null || fail "empty zstd"

# ---- stock output through walferry decompress ----
check_in() {  # check_in NAME: decompresses $T/in.x with walferry, from a pipe and from a file
  "$WF" decompress < "$T/in.x" | cmp - "$data" || fail "walferry decompress of $1 (pipe) differs"
  "$WF" decompress -c -p 1 "$T/in.x" | cmp - "$data" || fail "walferry decompress of $1 (file) differs"
}
gzip -6 -c "$data" > "$T/in.x"; check_in "gzip -6"
gzip -1 -n -c "$data" > "$T/in.x"; check_in "gzip -1 -n"
pigz -p 2 -6 -c "$data" > "$T/in.x"; check_in "pigz -6"
pigz -p 2 -11 -c "$data" > "$T/in.x"; check_in "pigz -11 (zopfli)"
pigz -i -p 2 -c "$data" > "$T/in.x"; check_in "pigz -i"
zstd -q -3 -c "$data" > "$T/in.x"; check_in "zstd -3"
zstd -q -T2 -19 -c "$data" > "$T/in.x"; check_in "zstd -T2 -19"
zstd -q --no-check -c "$data" > "$T/in.x"; check_in "zstd --no-check"
cat "$data" | zstd -q -c > "$T/in.x"; check_in "zstd from a pipe"
cat "$data" | zstd -q -c --no-check > "$T/in.x"; check_in "zstd --no-check from a pipe"
cat "$data" | pigz -c > "$T/in.x"; check_in "pigz from a pipe"
# Concatenations: ours + stock, in both formats.
{ head -c 5M "$data" | "$WF" compress --gzip; tail -c +$((5*1024*1024+1)) "$data" | gzip -c; } > "$T/in.x"
check_in "walferry+gzip members"
{ head -c 5M "$data" | zstd -q -c; tail -c +$((5*1024*1024+1)) "$data" | "$WF" compress; } > "$T/in.x"
check_in "zstd+walferry frames"

# ---- pigz-like file handling ----
cp "$data" "$T/f.tar"
"$WF" compress "$T/f.tar" || fail "compress FILE"
[ -f "$T/f.tar.zst" ] || fail "FILE.zst not created"
[ ! -e "$T/f.tar" ] || fail "input not removed without -k"
"$WF" decompress "$T/f.tar.zst" || fail "decompress FILE.zst"
cmp "$T/f.tar" "$data" || fail "FILE.zst -> FILE differs"
[ ! -e "$T/f.tar.zst" ] || fail "FILE.zst not removed without -k"
"$WF" compress --gzip -k "$T/f.tar" && [ -f "$T/f.tar" ] && [ -f "$T/f.tar.gz" ] || fail "-k"
set +e
"$WF" compress --gzip -k "$T/f.tar" 2>"$T/err"; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "compress overwrote an existing FILE.gz without -f"
[ "$(wc -l < "$T/err")" -eq 1 ] && grep -q '^walferry: .*already exists' "$T/err" || fail "bad message: $(cat "$T/err")"
"$WF" compress --gzip -k -f -9 "$T/f.tar" || fail "-f did not overwrite"
"$WF" decompress -k -o "$T/out" "$T/f.tar.gz" && cmp "$T/out" "$data" || fail "-o"
[ -f "$T/f.tar.gz" ] || fail "decompress -k removed the input"
chmod 0640 "$T/f.tar"; rm -f "$T/f.tar.zst"
"$WF" compress -k "$T/f.tar"
[ "$(stat -c %a "$T/f.tar.zst")" = 640 ] || fail "mode not carried over"

# ---- bad input: non-zero, one line "walferry: ...", nothing under the final name ----
bad_case() {  # bad_case NAME FILE(.zst/.gz)
  local name=$1 file=$2 out=${2%.*}
  rm -f "$out"
  set +e
  "$WF" decompress -k "$file" 2>"$T/err"; local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$name: decompress exited 0"
  [ "$rc" -le 125 ] || fail "$name: exit code $rc"
  [ "$(wc -l < "$T/err")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$T/err")"
  grep -q '^walferry: ' "$T/err" || fail "$name: message lacks the prefix: $(cat "$T/err")"
  [ ! -e "$out" ] || fail "$name: left $out behind"
  ! grep -q wftmp <<<"$(ls -a "$(dirname "$file")")" || fail "$name: left a temp file"
  # And through a pipe: non-zero too.
  set +e
  "$WF" decompress < "$file" >/dev/null 2>&1; rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$name (pipe): exit 0"
  note "$name: $(cat "$T/err")"
}
mkdir -p "$T/bad"
flip_bit() {  # flip_bit FILE OFFSET: inverts one bit of the byte at OFFSET
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 0x10)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
for fmt in gzip zstd; do
  ext=$([ $fmt = gzip ] && echo gz || echo zst)
  "$WF" compress --$fmt --chunk 256K < "$data" > "$T/good.$ext"
  n=$(stat -c %s "$T/good.$ext")
  head -c $((n / 2)) "$T/good.$ext" > "$T/bad/trunc-half.$ext"; bad_case "$fmt truncated half" "$T/bad/trunc-half.$ext"
  head -c $((n - 1)) "$T/good.$ext" > "$T/bad/trunc-1.$ext"; bad_case "$fmt truncated by 1" "$T/bad/trunc-1.$ext"
  cp "$T/good.$ext" "$T/bad/flip.$ext"
  flip_bit "$T/bad/flip.$ext" $((n / 3))
  cmp -s "$T/bad/flip.$ext" "$T/good.$ext" && fail "flip_bit changed nothing"
  bad_case "$fmt bit flip" "$T/bad/flip.$ext"
  { cat "$T/good.$ext"; echo garbage; } > "$T/bad/trail.$ext"; bad_case "$fmt trailing garbage" "$T/bad/trail.$ext"
done
gzip -c "$data" > "$T/g.gz"; n=$(stat -c %s "$T/g.gz")
head -c $((n - 4)) "$T/g.gz" > "$T/bad/gzip-trunc.gz"; bad_case "stock gzip truncated" "$T/bad/gzip-trunc.gz"
cp "$T/g.gz" "$T/bad/gzip-crc.gz"; flip_bit "$T/bad/gzip-crc.gz" $((n - 8))
bad_case "stock gzip CRC" "$T/bad/gzip-crc.gz"
head -c 100000 "$data" > "$T/bad/plain.zst"; bad_case "not compressed" "$T/bad/plain.zst"
: > "$T/bad/empty.gz"; bad_case "empty" "$T/bad/empty.gz"

# Usage errors: one line, non-zero.
for args in "compress --gzip -13" "compress --zstd -20" "compress --chunk 1X" "compress --gzip --zstd" \
            "decompress $T/data.bin" "compress $T/missing"; do
  set +e
  "$WF" $args </dev/null >/dev/null 2>"$T/err"; rc=$?
  set -e
  [ "$rc" -ne 0 ] && [ "$(wc -l < "$T/err")" -eq 1 ] || fail "'$args': rc=$rc stderr=$(cat "$T/err")"
done
echo "compress interop: ok"
