#!/usr/bin/env bash
# Installs everything walferry's build, tests, demo and benchmarks need from
# Debian 12's apt. Idempotent: when every package is already installed it does
# nothing (no apt-get update), so re-runs are instant. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  libzstd-dev libdeflate-dev liburing-dev libssl-dev libxxhash-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  # fuzzing and sanitizers with clang (libFuzzer lives in libclang-rt)
  clang libclang-rt-14-dev
  # end-to-end tests and the demo: a throw-away PostgreSQL 15, peers to compare
  postgresql-15 postgresql-client-15 pigz pbzip2 bzip2 zstd gzip
  python3 openssl tar procps iproute2 util-linux passwd
  # a real small filesystem for the disk-full test (tests/e2e/faults_enospc_fs.sh): mkfs, losetup, mount
  e2fsprogs xfsprogs mount
  # transport/archive benchmarks: peers for push/send
  pgbackrest rsync openssh-server openssh-client
  # the Debian package (scripts/package.sh): dpkg-buildpackage, man pages from --help
  debhelper dpkg-dev help2man
  # the S3 object-store archive: libcurl, and a real Ceph radosgw for its tests (tests/tools/ceph_rgw.sh)
  libcurl4-openssl-dev curl ceph-mon ceph-osd radosgw ceph-common
  # the PostgreSQL archive module (pgmodule/walferry_archive.c) and benchmark charts
  postgresql-server-dev-15 gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=(sudo)
fi

# The tests run their own throw-away clusters; do not let the package create
# and start a default cluster on port 5432 that nobody uses.
"${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" |
  "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/walferry-no-main.conf >/dev/null

echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
