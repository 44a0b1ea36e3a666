#!/usr/bin/env bash
# Short CI version of tests/campaigns/proxy.sh (the long one: 1000 faulted transfers).
export WALFERRY_SOURCE_DIR=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec bash "$WALFERRY_SOURCE_DIR/tests/campaigns/proxy.sh" "${WF_PROXY_COUNT:-16}"
