#!/usr/bin/env bash
# Long fuzzing campaign: builds every libFuzzer target (clang, ASan+UBSan,
# coverage from inside the libraries) and runs each for a wall time and/or a
# number of executions, one after the other, new inputs in a scratch corpus
# (the checked-in fuzz/corpus/NAME is only read). Prints, per target, the
# executions, the final coverage and crashes; exits non-zero if any crashed.
#
#   bash scripts/fuzz-long.sh                       # 600 s per target
#   bash scripts/fuzz-long.sh --seconds 3600        # an hour each
#   bash scripts/fuzz-long.sh --runs 10000000       # >= 10 million executions each
#   bash scripts/fuzz-long.sh --runs 10000000 --seconds 7200 --jobs 2 frame_fuzz tar_check_fuzz
#
# --runs N stops a target after N executions (libFuzzer -runs), --seconds S
# after S seconds (-max_total_time), whichever comes first; --jobs J runs J
# fuzzing processes per target (libFuzzer -fork=J; executions are summed).
# Crash inputs are kept in build/fuzz/crashes/NAME/; replay one with
# build/fuzz/fuzz/NAME FILE, fix, and add it to fuzz/corpus/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=600
RUNS=0
JOBS=1
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
B=build/fuzz
if [ ! -f "$B/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$B" -G Ninja -DWALFERRY_FUZZ=ON -DWALFERRY_BENCH=OFF -DWALFERRY_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS='-fsanitize=fuzzer-no-link,address,undefined' \
    -DCMAKE_C_FLAGS='-fsanitize=fuzzer-no-link,address,undefined' >/dev/null
fi
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cc; do TARGETS+=("$(basename "$f" .cc)"); done
fi
ninja -C "$B" "${TARGETS[@]}" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
printf '%-22s %12s %10s %8s %8s %s\n' target executions exec/s cov crashes seconds
for t in "${TARGETS[@]}"; do
  name=${t%_fuzz}
  work="$B/campaign/$name"
  crashes="$B/crashes/$name"
  mkdir -p "$work" "$crashes"
  args=(-max_total_time="$SECONDS_PER" -rss_limit_mb=4096 -timeout=60 -artifact_prefix="$crashes/" -print_final_stats=1)
  [ "$RUNS" -gt 0 ] && args+=(-runs="$RUNS")
  [ "$JOBS" -gt 1 ] && args+=(-fork="$JOBS" -ignore_crashes=1)
  start=$(date +%s)
  rc=0
  "$B/fuzz/$t" "${args[@]}" "$work" "fuzz/corpus/$name" >"$B/campaign/$name.log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  # grep finds nothing in some modes: under pipefail that must not end the script.
  execs=$({ grep -h "stat::number_of_executed_units" "$B/campaign/$name.log" || true; } | awk '{s+=$2} END {print s+0}')
  if [ "$execs" -eq 0 ]; then  # -fork mode prints no final stats: take the last status line
    execs=$({ grep -ho "#[0-9]*" "$B/campaign/$name.log" || true; } | tail -1 | tr -d '#')
  fi
  cov=$({ grep -ho "cov: [0-9]*" "$B/campaign/$name.log" || true; } | tail -1 | awk '{print $2}')
  n_crash=$(find "$crashes" -type f | wc -l)
  rate=$(( took > 0 ? ${execs:-0} / took : 0 ))
  printf '%-22s %12s %10s %8s %8s %s\n' "$t" "${execs:-0}" "$rate" "${cov:-?}" "$n_crash" "$took"
  if [ "$rc" -ne 0 ] || [ "$n_crash" -gt 0 ]; then
    failed=1
    echo "  $t: exit $rc, see $B/campaign/$name.log and $crashes/" >&2
  fi
done
exit "$failed"
