#!/usr/bin/env bash
# Short CI version of tests/campaigns/kill9.sh (the long one: 200 rounds, a 2 GiB pipe).
export WALFERRY_SOURCE_DIR=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
WF_KILL9_PIPE_MB=${WF_KILL9_PIPE_MB:-64} exec bash "$WALFERRY_SOURCE_DIR/tests/campaigns/kill9.sh" "${WF_KILL9_ROUNDS:-5}"
