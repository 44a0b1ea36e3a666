#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (apt), builds
# Release in build/release, runs every test with ctest. Works from any
# directory. Extra arguments go to ctest (e.g. -R compress, -E e2e).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$WF_ROOT/scripts/install-deps.sh"
mkdir -p "$WF_ROOT/build"
wf_build release -DCMAKE_BUILD_TYPE=Release
cd "$WF_ROOT/build/release"
ctest --output-on-failure -j "$WF_TEST_JOBS" "$@"
