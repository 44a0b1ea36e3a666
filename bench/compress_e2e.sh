#!/usr/bin/env bash
# End-to-end compression benchmark on real PostgreSQL data, walferry against
# bzip2 -9, pbzip2, gzip -6, pigz -p2 -6 and zstd -T2 -3, in one run on the
# same inputs:
#   base.tar  a pg_basebackup -Ft tar of a pgbench scale-20 database
#   wal.bin   ~1 GiB of real WAL: archived segments written by pgbench, concatenated
# Prints wall seconds, MB/s, output size and walferry's ratios to each peer,
# then decompression (walferry vs pigz -d vs zstd -d).
#
# usage: WALFERRY_BIN=build/cli/walferry bench/compress_e2e.sh
#   WF_BENCH_DATA=/var/tmp/walferry-bench  where the data sets are cached
#   WF_BENCH_RUNS=1                        runs per measurement (median kept)
#   WF_BENCH_SCALE=20  WF_BENCH_WAL_MB=1024 WF_BENCH_SKIP_SLOW=1 (skip bzip2/gzip)
#   WALFERRY_BIN_BEFORE=other/walferry     also measures that binary (e.g. main
#     before a change) on every walferry row, each run interleaved with the
#     current binary's, and prints after/before ratios
# CPU heavy (several minutes on 2 cores): other load on the machine skews it.
here=$(cd "$(dirname "$0")" && pwd)
export WALFERRY_BIN=${WALFERRY_BIN:-$here/../build/cli/walferry}
. "$here/../tests/e2e/lib/common.sh"

BEFORE=${WALFERRY_BIN_BEFORE:-}
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || fail "WALFERRY_BIN_BEFORE=$BEFORE is not an executable"
DATA=${WF_BENCH_DATA:-/var/tmp/walferry-bench}
RUNS=${WF_BENCH_RUNS:-1}
SCALE=${WF_BENCH_SCALE:-20}
WAL_MB=${WF_BENCH_WAL_MB:-1024}
mkdir -p "$DATA"
for tool in bzip2 pbzip2 gzip pigz zstd; do command -v $tool >/dev/null || skip "$tool not installed"; done

# ---- data sets (built once, cached) ----
make_data() {
  local port dir
  port=$(free_port)
  dir=$(pg_init bench)
  mkdir -p "$T/archive"
  share_scratch
  pg_start "$dir" "$port" "-c archive_mode=on -c archive_command='cp %p $T/archive/%f'" \
    "-c max_wal_size=4GB -c checkpoint_timeout=30min -c synchronous_commit=off"
  note "pgbench -i -s $SCALE"
  as_pg "$PGBIN/pgbench" -i -s "$SCALE" -q -h 127.0.0.1 -p "$port" -U postgres postgres \
    >"$T/pgbench-init.log" 2>&1 || fail "pgbench -i failed"
  psql_at "$port" "CHECKPOINT" >/dev/null
  note "pg_basebackup -Ft -D -"
  "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -Ft -X fetch -D - > "$DATA/base.tar.tmp" \
    || fail "pg_basebackup failed"
  mv "$DATA/base.tar.tmp" "$DATA/base.tar"
  # Real WAL: run pgbench until enough segments are archived.
  local want=$((WAL_MB / 16)) have=0
  while true; do
    have=$(find "$T/archive" -maxdepth 1 -name '0000000*' -size 16M | wc -l)
    [ "$have" -ge "$want" ] && break
    note "WAL: $have/$want segments archived; pgbench -T 20"
    # A checkpoint first: the full-page images after it are what real WAL is full of.
    psql_at "$port" "CHECKPOINT" >/dev/null
    as_pg "$PGBIN/pgbench" -c 4 -j 2 -T 20 -h 127.0.0.1 -p "$port" -U postgres postgres \
      >"$T/pgbench-run.log" 2>&1 || fail "pgbench run failed"
    psql_at "$port" "SELECT pg_switch_wal()" >/dev/null
    sleep 1
  done
  find "$T/archive" -maxdepth 1 -name '0000000*' -size 16M | sort | head -n "$want" | xargs cat > "$DATA/wal.bin.tmp"
  mv "$DATA/wal.bin.tmp" "$DATA/wal.bin"
  pg_stop "$dir"
}
if [ ! -s "$DATA/base.tar" ] || [ ! -s "$DATA/wal.bin" ]; then
  make_data
fi

# ---- measurement helpers ----
# secs CMD...: runs CMD (a shell string) RUNS times; prints the median wall seconds.
secs() {
  local t=() i s e
  for ((i = 0; i < RUNS; i++)); do
    s=$(date +%s.%N)
    bash -c "$1" || fail "command failed: $1"
    e=$(date +%s.%N)
    t+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%s\n' "${t[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}
# secs_pair CMD_A CMD_B: like secs for both, each run of A followed by one of
# B (interleaved, so load on the machine hits both alike); prints "A B".
secs_pair() {
  local ta=() tb=() i s e
  for ((i = 0; i < RUNS; i++)); do
    s=$(date +%s.%N); bash -c "$1" || fail "command failed: $1"; e=$(date +%s.%N)
    ta+=("$(echo "$e - $s" | bc -l)")
    s=$(date +%s.%N); bash -c "$2" || fail "command failed: $2"; e=$(date +%s.%N)
    tb+=("$(echo "$e - $s" | bc -l)")
  done
  local med='{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
  echo "$(printf '%s\n' "${ta[@]}" | sort -g | awk "$med") $(printf '%s\n' "${tb[@]}" | sort -g | awk "$med")"
}
declare -A SEC SIZE
BEFORE_ROWS=()  # "set|label|after seconds|before seconds|after bytes|before bytes"
report_row() {  # report_row LABEL INPUT_BYTES SECONDS OUTPUT_BYTES
  printf '  %-26s %8.2f s %9.1f MB/s %12d bytes  ratio %6.2f\n' "$1" "$3" \
    "$(echo "$2 / 1000000 / $3" | bc -l)" "$4" "$(echo "$2 / $4" | bc -l)"
}

cmp_set() {  # cmp_set NAME FILE
  local name=$1 in=$2 bytes
  bytes=$(stat -c %s "$in")
  cat "$in" > /dev/null  # warm the page cache
  echo
  echo "== $name: $in ($(echo "$bytes / 1048576" | bc) MiB) =="
  echo " compression (file -> file):"
  local -a labels=() cmds=()
  if [ -z "${WF_BENCH_SKIP_SLOW:-}" ]; then
    labels+=("bzip2 -9" "pbzip2 -p2 -9" "gzip -6")
    cmds+=("bzip2 -9 -c '$in' > '$T/out'" "pbzip2 -p2 -9 -c '$in' > '$T/out'" "gzip -6 -c '$in' > '$T/out'")
  fi
  labels+=("pigz -p2 -6" "zstd -T2 -3" "zstd -T2 -1"
           "walferry --gzip -6" "walferry --zstd -3" "walferry --zstd -1")
  cmds+=("pigz -p 2 -6 -c '$in' > '$T/out'" "zstd -q -T2 -3 -c '$in' > '$T/out'"
         "zstd -q -T2 -1 -c '$in' > '$T/out'"
         "'$WF' compress --gzip -6 -p 2 -c '$in' > '$T/out'"
         "'$WF' compress --zstd -3 -p 2 -c '$in' > '$T/out'"
         "'$WF' compress --zstd -1 -p 2 -c '$in' > '$T/out'")
  local i
  for i in "${!labels[@]}"; do
    local l=${labels[$i]}
    case "$l" in
      walferry*)
        if [ -n "$BEFORE" ]; then
          local pair bcmd=${cmds[$i]//"'$WF'"/"'$BEFORE'"}
          bcmd=${bcmd//"'$T/out'"/"'$T/out.before'"}
          pair=$(secs_pair "${cmds[$i]}" "$bcmd")
          SEC[$name/$l]=${pair% *}
          BEFORE_ROWS+=("$name|$l|${pair% *}|${pair#* }|$(stat -c %s "$T/out")|$(stat -c %s "$T/out.before")")
        else
          SEC[$name/$l]=$(secs "${cmds[$i]}")
        fi ;;
      *) SEC[$name/$l]=$(secs "${cmds[$i]}") ;;
    esac
    SIZE[$name/$l]=$(stat -c %s "$T/out")
    case $l in
      "pigz -p2 -6") cp "$T/out" "$T/$name.pigz.gz" ;;
      "zstd -T2 -3") cp "$T/out" "$T/$name.zstd.zst" ;;
      "walferry --gzip -6") cp "$T/out" "$T/$name.wf.gz" ;;
      "walferry --zstd -3") cp "$T/out" "$T/$name.wf.zst" ;;
    esac
    report_row "$l" "$bytes" "${SEC[$name/$l]}" "${SIZE[$name/$l]}"
  done
  echo " walferry against each peer (speed x = peer seconds / walferry seconds; size x = walferry bytes / peer bytes):"
  local w p
  for w in "walferry --gzip -6" "walferry --zstd -3" "walferry --zstd -1"; do
    for p in "${labels[@]}"; do
      case $p in walferry*) continue ;; esac
      printf '  %-20s vs %-14s speed %6.2fx  size %5.3fx\n' "$w" "$p" \
        "$(echo "${SEC[$name/$p]} / ${SEC[$name/$w]}" | bc -l)" \
        "$(echo "${SIZE[$name/$w]} / ${SIZE[$name/$p]}" | bc -l)"
    done
  done

  echo " decompression (file -> /dev/null):"
  local -a dl=("pigz -d (pigz's .gz)" "zstd -d (zstd's .zst)" "pigz -d (walferry's .gz)" "zstd -d (walferry's .zst)"
               "walferry (walferry's .gz)" "walferry (walferry's .zst)" "walferry (pigz's .gz)" "walferry (zstd's .zst)")
  local -a dc=("pigz -p 2 -dc '$T/$name.pigz.gz' > /dev/null" "zstd -q -dc '$T/$name.zstd.zst' > /dev/null"
               "pigz -p 2 -dc '$T/$name.wf.gz' > /dev/null" "zstd -q -dc '$T/$name.wf.zst' > /dev/null"
               "'$WF' decompress -p 2 -c '$T/$name.wf.gz' > /dev/null" "'$WF' decompress -p 2 -c '$T/$name.wf.zst' > /dev/null"
               "'$WF' decompress -p 2 -c '$T/$name.pigz.gz' > /dev/null" "'$WF' decompress -p 2 -c '$T/$name.zstd.zst' > /dev/null")
  local -a ds=()
  for i in "${!dl[@]}"; do
    if [ -n "$BEFORE" ] && [ "$i" -ge 4 ]; then  # the walferry rows
      local pair
      pair=$(secs_pair "${dc[$i]}" "${dc[$i]//"'$WF'"/"'$BEFORE'"}")
      ds[$i]=${pair% *}
      BEFORE_ROWS+=("$name|decompress ${dl[$i]#walferry }|${pair% *}|${pair#* }||")
    else
      ds[$i]=$(secs "${dc[$i]}")
    fi
    printf '  %-28s %8.2f s %9.1f MB/s (raw)\n' "${dl[$i]}" "${ds[$i]}" \
      "$(echo "$bytes / 1000000 / ${ds[$i]}" | bc -l)"
  done
  printf '  walferry decompress of its own output vs the peer on its own: gzip %.2fx pigz -d, zstd %.2fx zstd -d\n' \
    "$(echo "${ds[0]} / ${ds[4]}" | bc -l)" "$(echo "${ds[1]} / ${ds[5]}" | bc -l)"
}

echo "walferry compression benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), runs=$RUNS"
cmp_set base "$DATA/base.tar"
cmp_set wal "$DATA/wal.bin"
if [ -n "$BEFORE" ]; then
  echo
  echo "== walferry after ($WF) vs before ($BEFORE), interleaved runs =="
  echo "   (time x = after seconds / before seconds: below 1 is faster; size x = after bytes / before bytes)"
  for row in "${BEFORE_ROWS[@]}"; do
    IFS='|' read -r set label ta tb sa sb <<<"$row"
    if [ -n "$sa" ]; then
      printf '  %-5s %-30s after %7.2f s  before %7.2f s  time %5.3fx  size %5.3fx\n' "$set" "$label" "$ta" "$tb" \
        "$(echo "$ta / $tb" | bc -l)" "$(echo "$sa / $sb" | bc -l)"
    else
      printf '  %-5s %-30s after %7.2f s  before %7.2f s  time %5.3fx\n' "$set" "$label" "$ta" "$tb" \
        "$(echo "$ta / $tb" | bc -l)"
    fi
  done
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
