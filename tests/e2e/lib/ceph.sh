# A real single-node Ceph radosgw for the e2e tests (source after common.sh):
#   ceph_up N   skips (exit 77, with the reason) unless `serve --store-url` is
#               built and the Ceph packages are installed; starts Ceph with N
#               radosgw under $CEPH (tests/tools/ceph_rgw.sh), stops it by pid
#               when the test exits, and exports its S3_ENDPOINT*, AWS_* and
#               WALFERRY_S3_ENDPOINT (a PostgreSQL started afterwards passes
#               them on to its archive_command and restore_command).
# Sets TOOLS (tests/tools) and CEPH.
TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools" && pwd)"
CEPH="$T/ceph"

ceph_cleanup() {  # keeps the exit status for wf_cleanup
  local rc=$?
  bash "$TOOLS/ceph_rgw.sh" stop "$CEPH" || true
  return "$rc"
}

ceph_up() {
  grep -q -- --store-url <<<"$("$WF" serve --help 2>/dev/null)" || skip "serve --store-url not built"
  bash "$TOOLS/ceph_rgw.sh" available \
    || skip "Ceph packages (ceph-mon ceph-osd radosgw) not installed: run scripts/install-deps.sh"
  bash "$TOOLS/ceph_rgw.sh" start "$CEPH" "$1" >"$T/ceph-start.log" 2>&1 \
    || { cat "$T/ceph-start.log" >&2; fail "Ceph did not come up"; }
  trap 'ceph_cleanup || wf_cleanup; wf_cleanup' EXIT
  set -a; . "$CEPH/env"; set +a
  export WALFERRY_S3_ENDPOINT="$S3_ENDPOINT"
}
