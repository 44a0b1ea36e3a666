#!/usr/bin/env bash
# The walferry binary starts without libcurl (s3/curl_api_internal.h opens it
# on the first S3 client): no DT_NEEDED entry for it, and a run that needs no
# S3 does not map it. S3 itself is tested against a real radosgw elsewhere.
# usage: lazy_libcurl.sh WALFERRY_BIN
set -euo pipefail
bin=$1
needed=$(readelf -d "$bin")
if grep -q 'libcurl' <<<"$needed"; then
  echo "FAIL: $bin links libcurl at start-up:"; grep NEEDED <<<"$needed"; exit 1
fi
maps=$(LD_DEBUG=files "$bin" --version 2>&1 >/dev/null)
if grep -q 'libcurl' <<<"$maps"; then echo "FAIL: 'walferry --version' loaded libcurl"; exit 1; fi
echo "ok: no libcurl at start-up"
