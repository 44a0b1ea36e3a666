# A loopback sshd for the benches that compare walferry with rsync/scp/ssh
# pipes (sourced after tests/e2e/lib/common.sh, which gives free_port,
# wait_port and WF_PIDS).
#
# start_loopback_sshd DIR: host and client keys in DIR, root may log in with
# the client key on 127.0.0.1 only (sftp subsystem for scp); the daemon's pid
# goes to WF_PIDS (stopped by common.sh's cleanup). Sets SPORT, and SSH: the
# ssh command with its options, one string (for rsync -e, archive_command).
start_loopback_sshd() {
  local dir=$1
  mkdir -p "$dir" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  SPORT=$(free_port)
  cat >"$dir/sshd_config" <<CONF
Port $SPORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile $dir/sshd.pid
Subsystem sftp internal-sftp
CONF
  /usr/sbin/sshd -f "$dir/sshd_config" -D -e 2>"$dir/sshd.log" &
  WF_PIDS+=("$!")
  wait_port "$SPORT"
  SSH="ssh -p $SPORT -i $dir/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
}
