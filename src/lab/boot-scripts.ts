/**
 * The two small shell programs that turn a mounted disk into a running host. They are
 * constants: every path and name reaches them as a positional argument ("$1"), never spliced
 * into the script text.
 */

/**
 * Runs as PID 1 of the host's new pid namespace, still on the machine's filesystem, inside a
 * private copy of the machine's mount table. It mounts what a Linux system expects, then
 * pivot_root()s into the disk and drops the old root: afterwards the host's mount namespace
 * holds only its own mounts, so it pins no other host's disk, the lab store or a netns file
 * (a chroot would keep all of those alive for as long as the host runs).
 *
 * Bind targets exist already (made by the lab without following the host's symlinks).
 *
 * argv: ROOT HOSTNAME NBINDS [SOURCE TARGET ro|rw]... -- SERVICE_ARGV...
 */
export const BOOT_SCRIPT = `set -eu
root=$1 host=$2 nbinds=$3
shift 3
while [ "$nbinds" -gt 0 ]; do
  src=$1 dst=$root$2 mode=$3
  shift 3
  nbinds=$((nbinds - 1))
  mount --bind "$src" "$dst"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$dst"; fi
done
[ "$1" = -- ] && shift
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs -o mode=0755,size=64m tmpfs "$root/run"
mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
hostname "$host"
cd "$root"
mkdir -p .lifeline-oldroot
pivot_root . .lifeline-oldroot
cd /
umount -l /.lifeline-oldroot
rmdir /.lifeline-oldroot
exec /usr/local/sbin/lifeline-init "$@"
`;

/** Where BOOT_SCRIPT expects the init program inside the host's root. */
export const INIT_PATH = "/usr/local/sbin/lifeline-init";

/**
 * PID 1 of a host once it runs from its own disk: starts sshd and the optional service (the
 * Lifeline agent), restarts either if it exits (like systemd's Restart=always), reaps orphans,
 * and on SIGTERM stops everything and exits, which ends the host.
 *
 * argv: SERVICE_ARGV... (may be empty)
 */
export const INIT_SCRIPT = `#!/bin/sh
# lifeline-init: PID 1 of a Lifeline lab host. Written by the lab at every start.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
stopping=0
trap 'stopping=1; kill -TERM -1 2>/dev/null' TERM INT
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd
# Restarts with backoff (1 s doubling to 30 s; back to 1 s after a run of 10 s or more), so a
# process that cannot start does not flood the console log.
supervise() {
  delay=1
  while :; do
    started=$(date +%s)
    "$@"
    status=$?
    if [ $(($(date +%s) - started)) -ge 10 ]; then delay=1; fi
    echo "lifeline-init: $1 exited with status $status; restarting in \${delay}s" >&2
    sleep "$delay"
    if [ "$delay" -lt 30 ]; then delay=$((delay * 2)); fi
  done
}
supervise /usr/sbin/sshd -D -e &
# A host joined to the lab's domain (lifeline lab up --domain) logs domain users in through winbind.
if grep -qiE '^[[:space:]]*security[[:space:]]*=[[:space:]]*ads' /etc/samba/smb.conf 2>/dev/null; then
  supervise /usr/sbin/winbindd --foreground --no-process-group &
fi
if [ $# -gt 0 ]; then supervise "$@" & fi
echo "lifeline-init: host $(hostname) up"
# wait returns when a trapped signal arrives; it also reaps orphans re-parented to PID 1.
while [ $stopping = 0 ]; do wait; done
wait
exit 0
`;
