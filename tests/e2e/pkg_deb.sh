#!/usr/bin/env bash
# The Debian package as a user meets it: scripts/package.sh builds the .deb
# (around this build's binary), dpkg -i installs it on this machine, and the
# test checks /usr/bin/walferry, the walferry system user, the conffile, the
# hardened systemd units, the man pages (same options as --help) and bash
# completion; runs `walferry --version` and a real push with the installed
# binary (receiver run as the walferry user); then dpkg --purge removes it all.
# Needs root (CI is a throw-away root machine). On a shared machine the
# install/purge section holds a lock, and the purge runs even on failure.
. "$(dirname "$0")/lib/common.sh"
[ "$(id -u)" -eq 0 ] || skip "installing a .deb needs root"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-dev not installed (scripts/install-deps.sh)"
command -v help2man >/dev/null || skip "help2man not installed (scripts/install-deps.sh)"
SRC=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' walferry 2>/dev/null)"; then
  skip "a walferry package is already installed here; not touching it"
fi

DEB=$(WF_PACKAGE_OUT="$T/pkg" bash "$SRC/scripts/package.sh" --binary "$WF" | tail -n 1) \
  || fail "scripts/package.sh failed"
[[ $(basename "$DEB") =~ ^walferry_[0-9][0-9.]*-[0-9]+_amd64\.deb$ ]] || fail "unexpected package name $DEB"
grep -q "Depends:.*libzstd1" <<<"$(dpkg-deb -I "$DEB")" || fail "no shared-library Depends in the package"

HAD_USER=0
getent passwd walferry >/dev/null && HAD_USER=1
exec 9>/tmp/walferry-pkg-test.lock
flock -w 600 9 || fail "another package test holds /tmp/walferry-pkg-test.lock"
dpkg_retry() {  # dpkg refuses at once while apt/dpkg run elsewhere: wait for its lock
  local i
  for i in $(seq 1 60); do
    if "$@" >"$T/dpkg.log" 2>&1; then return 0; fi
    grep -q 'lock' "$T/dpkg.log" || { cat "$T/dpkg.log" >&2; return 1; }
    sleep 2
  done
  cat "$T/dpkg.log" >&2; return 1
}
purge() {
  wf_kill 9 "${WF_PIDS[@]:-}"
  wait 2>/dev/null || true
  dpkg_retry dpkg --purge walferry || true
  [ "$HAD_USER" = 1 ] || { getent passwd walferry >/dev/null && userdel walferry; } || true
  [ "$HAD_USER" = 1 ] || ! getent group walferry >/dev/null || groupdel walferry || true
}
trap 'purge; wf_cleanup' EXIT
dpkg_retry dpkg -i "$DEB" || fail "dpkg -i $DEB"

# The files.
[ -x /usr/bin/walferry ] || fail "/usr/bin/walferry missing"
grep -qE '^walferry [0-9]' <<<"$(/usr/bin/walferry --version)" || fail "walferry --version: $(/usr/bin/walferry --version)"
grep -q '/etc/walferry/walferry.conf' <<<"$(dpkg-query -W -f='${Conffiles}\n' walferry)" || fail "walferry.conf is not a conffile"
grep -q '^# ' /etc/walferry/walferry.conf || fail "walferry.conf is not a commented example"
getent passwd walferry >/dev/null || fail "no walferry user"
uid=$(id -u walferry)
[ "$uid" -lt 1000 ] || fail "walferry is not a system user (uid $uid)"
[ "$(getent passwd walferry | cut -d: -f7)" = /usr/sbin/nologin ] || fail "walferry user has a login shell"
[ "$(stat -c %U /srv/walferry)" = walferry ] || fail "/srv/walferry not owned by walferry"
for unit in walferry-serve walferry-agent; do
  f=/lib/systemd/system/$unit.service
  [ -f "$f" ] || fail "$f missing"
  for k in ProtectSystem=strict NoNewPrivileges=yes ReadWritePaths= User= ExecStart=/usr/bin/walferry; do
    grep -q "^$k" "$f" || fail "$unit: no $k"
  done
done
grep -q '^ReadWritePaths=/srv/walferry$' /lib/systemd/system/walferry-serve.service || fail "serve may write beyond the archive root"
if command -v systemd-analyze >/dev/null; then
  for unit in walferry-serve walferry-agent; do
    systemd-analyze verify /lib/systemd/system/$unit.service 2>"$T/verify.log" \
      || { cat "$T/verify.log" >&2; fail "systemd-analyze verify $unit.service"; }
  done
fi
# Man pages: one per command, with the same options as --help.
for page in walferry walferry-push walferry-serve walferry-basebackup walferry-tls-init walferry-setup-primary \
            walferry-check walferry-status walferry-agent; do
  [ -f /usr/share/man/man1/$page.1.gz ] || fail "man page $page missing"
done
MANTXT=$(zcat /usr/share/man/man1/walferry-push.1.gz | sed 's/\\-/-/g; s/\\f[BIRP]//g')
for opt in $(/usr/bin/walferry push --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
  grep -qF -- "$opt" <<<"$MANTXT" || fail "man walferry-push lacks $opt that --help lists"
done
if command -v man >/dev/null; then
  grep -q 'Archive one WAL file' <<<"$(MANPAGER=cat man -P cat walferry-push 2>/dev/null)" || fail "man walferry-push does not show"
fi
# Bash completion, from the installed file.
got=$(bash -c '. /usr/share/bash-completion/completions/walferry; COMP_WORDS=(walferry pu); COMP_CWORD=1; _walferry; echo "${COMPREPLY[*]}"')
[ "$got" = push ] || fail "completion of 'walferry pu' gave '$got'"
got=$(bash -c '. /usr/share/bash-completion/completions/walferry; COMP_WORDS=(walferry push --tls-d); COMP_CWORD=2; _walferry; echo "${COMPREPLY[*]}"')
[ "$got" = --tls-dir ] || fail "completion of 'walferry push --tls-d' gave '$got'"

# A push with the installed binary, to a receiver run as the walferry user.
ensure_pg_user
P=$(pg_init prim)
SEG=$(ls "$P/pg_wal" | grep -E '^[0-9A-F]{24}$' | head -n 1)
mkdir -p "$T/archive"; chown walferry:walferry "$T/archive"
RPORT=$(free_port)
runuser -u walferry -- /usr/bin/walferry serve --root "$T/archive" --listen "127.0.0.1:$RPORT" \
  --insecure-loopback >"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$RPORT"
WF_PIDS+=($(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2))
/usr/bin/walferry push "$P/pg_wal/$SEG" --to "127.0.0.1:$RPORT" --insecure-loopback --cluster main \
  || fail "push with the installed binary"
ls "$T/archive/main/wal/$SEG"* >/dev/null || fail "pushed segment not in the archive"
[ "$(stat -c %U "$(ls "$T/archive/main/wal/$SEG"* | head -n 1)")" = walferry ] || fail "segment not written by the walferry user"

# Purge: nothing of the package stays.
dpkg_retry dpkg --purge walferry || fail "dpkg --purge walferry"
for f in /usr/bin/walferry /etc/walferry /lib/systemd/system/walferry-serve.service /usr/share/man/man1/walferry.1.gz; do
  [ -e "$f" ] && fail "$f left after purge"
done
purge
trap wf_cleanup EXIT
getent passwd walferry >/dev/null && [ "$HAD_USER" = 0 ] && fail "the walferry user was not removed after the test"
note "pkg_deb: ok ($(basename "$DEB"))"
