# Shared by the scripts in this directory and .ci/run. Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Provides WF_ROOT (the repository), WF_JOBS, WF_TEST_JOBS, wf_build and wf_stage.

WF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WF_JOBS=${WF_JOBS:-2}
# ctest slots: one more than the cores, since most e2e tests wait rather than
# compute; the CPU-bound ones take two slots (PROCESSORS in tests/CMakeLists.txt).
WF_TEST_JOBS=${WF_TEST_JOBS:-$((WF_JOBS + 1))}

# wf_build NAME [cmake -D... args] [-- ninja targets...]
# Configures (once) and builds $WF_ROOT/build/NAME with Ninja. Every build
# directory lives under build/, which git ignores.
wf_build() {
  local name=$1; shift
  local dir="$WF_ROOT/build/$name" cmake_args=() targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; targets=("$@"); break; fi
    cmake_args+=("$1"); shift
  done
  mkdir -p "$WF_ROOT/build"
  cmake -S "$WF_ROOT" -B "$dir" -G Ninja -Wno-dev "${cmake_args[@]}" >"$WF_ROOT/build/$name.configure.log" 2>&1 \
    || { cat "$WF_ROOT/build/$name.configure.log" >&2; echo "configure of build/$name failed" >&2; return 1; }
  ninja -C "$dir" -j "$WF_JOBS" "${targets[@]}"
}

# wf_stage TITLE COMMAND...: runs COMMAND, prints its wall time, keeps a
# summary for wf_stage_summary; returns COMMAND's status.
WF_STAGES=()
wf_stage() {
  local title=$1; shift
  local start=$SECONDS rc=0
  echo
  echo "=== [$title] started $(date -u +%H:%M:%S)"
  "$@" || rc=$?
  local took=$((SECONDS - start))
  WF_STAGES+=("$(printf '%-40s %4ds  %s' "$title" "$took" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  echo "=== [$title] $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in ${took}s"
  return $rc
}

wf_stage_summary() {
  echo
  echo "=== stage timings"
  local s
  for s in "${WF_STAGES[@]}"; do echo "  $s"; done
}

# wf_failed_tests: for every build under build/ whose last ctest run failed,
# prints the failed tests and the end of each one's output, so the end of a
# long CI log names what failed.
wf_failed_tests() {
  local f dir
  for f in "$WF_ROOT"/build/*/Testing/Temporary/LastTestsFailed.log; do
    [ -s "$f" ] || continue
    dir=${f%/Testing/Temporary/LastTestsFailed.log}
    echo
    echo "=== failed tests in ${dir#"$WF_ROOT"/}:"
    sed 's/^/  /' "$f"
    awk -v want="$(cut -d: -f2 "$f" | tr '\n' ' ')" '
      BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) failed[w[i]] = 1 }
      /^[0-9]+\/[0-9]+ Testing: / { name = $3; keep = (name in failed); buf = ""; lines = 0 }
      keep { buf = buf "\n" $0; if (++lines > 400) { sub(/^\n[^\n]*/, "", buf) } }
      keep && /^Test (Passed|Failed)|^"[^"]+" end time/ { print "--- " name ":" buf; keep = 0 }
    ' "$dir/Testing/Temporary/LastTest.log" | tail -n 150
  done
}
