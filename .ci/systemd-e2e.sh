#!/usr/bin/env bash
# End-to-end test of the package under a real systemd: boots a minimal Debian
# (debootstrap, cached) in systemd-nspawn with a throw-away overlay, installs the .deb
# with dpkg (its postinst runs against the live systemd), adds a stand-in
# iggy-server.service (User=iggy, holds a data-directory file open like the real server,
# Restart=on-failure) over a copy of fixtures/iggy-0.6.0/clean, and checks:
#  - unconfigured (no data_dir): iggy-server does not start, recover exited 2 and the
#    journal says why;
#  - configured + `systemctl enable iggy-warden`: starting iggy-server starts the
#    sidecar first (Type=notify, READY, STATUS=, running hardened as iggy), then
#    recovery in the packaged config's mode salvage (repairs the fixture's empty
#    pairs), then the server;
#  - after the server is killed, systemd restarts it and recovery runs again, taking the
#    journal over from the sidecar;
#  - mode absolute + a torn tail: the start fails with exit 3, nothing changed, reason
#    in the journal; back to the packaged salvage: repaired, the cut bytes are
#    quarantined (`restore --list`), the server starts;
#  - a corrupt message inside a sealed segment (damage no crash leaves at a tail):
#    mode tolerate-tail refuses the start with exit 3 and changes nothing; salvage
#    repairs it, quarantines the replaced file, and the server starts;
#  - `systemctl disable --now iggy-warden`, then `dpkg -r`: sidecar stopped, drop-in
#    gone, iggy-server starts without recovery.
#
# Usage: .ci/systemd-e2e.sh [path/to/iggy-warden.deb [path/to/fixtures/iggy-0.6.0]]
#   (default: the newest ${CARGO_TARGET_DIR:-target}/debian/iggy-warden_*.deb, fixtures/iggy-0.6.0)
# Needs root, network access to the Debian archive the first time (debootstrap),
# systemd-nspawn (installed with apt-get when missing). Cache: $IGGY_E2E_ROOTFS
# (default /var/tmp/iggy-warden-e2e-rootfs). Takes about 15 s with the cache, 2 to 3
# minutes on a new machine (apt-get, debootstrap).
set -euo pipefail

cd "$(dirname "$0")/.."
deb=${1:-$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/iggy-warden_*.deb 2>/dev/null | head -n1)}
deb=$(readlink -f "${deb:?no package: build one with packaging/build-deb.sh}")
fixtures=$(readlink -f "${2:-fixtures/iggy-0.6.0}")
rootfs=${IGGY_E2E_ROOTFS:-/var/tmp/iggy-warden-e2e-rootfs}
[ -f "$deb" ] || { echo "no package $deb" >&2; exit 1; }
[ -d "$fixtures/clean" ] || { echo "no fixtures at $fixtures" >&2; exit 1; }

say() { printf 'systemd-e2e: %s\n' "$*"; }
fail() {
	printf 'systemd-e2e: FAIL: %s\n' "$*" >&2
	exit 1
}

missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
if [ ! -x "$rootfs/lib/systemd/systemd" ]; then
	say "debootstrap into $rootfs (once)"
	rm -rf "$rootfs.tmp"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,init-system-helpers,passwd \
		bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
	mv "$rootfs.tmp" "$rootfs"
fi

tmp=$(mktemp -d)
log=$tmp/nspawn.log
cleanup() {
	if [ -n "${nspawn_pid:-}" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill "$nspawn_pid" 2>/dev/null || true
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
cp "$deb" "$tmp/iggy-warden.deb"

# Boot. --volatile=overlay: every change goes to a tmpfs and vanishes at the end.
systemd-nspawn --quiet --register=no --keep-unit --volatile=overlay --private-network \
	--directory="$rootfs" --machine=iggy-e2e \
	--bind-ro="$tmp/iggy-warden.deb:/tmp/iggy-warden.deb" --bind-ro="$fixtures:/fixtures" \
	--boot >"$log" 2>&1 </dev/null &
nspawn_pid=$!
leader=
for _ in $(seq 1 100); do
	leader=$(pgrep -P "$nspawn_pid" | head -n1 || true)
	[ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] && break
	leader=
	sleep 0.2
done
[ -n "$leader" ] || { cat "$log" >&2; fail "the container did not boot"; }
c() { nsenter --target "$leader" --all -- "$@"; }
state=
for _ in $(seq 1 100); do # until systemd answers on its private socket
	state=$(c systemctl is-system-running 2>/dev/null || true)
	[ -n "$state" ] && break
	sleep 0.2
done
state=$(c timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
say "container booted: $state"

c useradd --system --user-group --home-dir /var/lib/iggy --shell /usr/sbin/nologin iggy
c mkdir -p /var/lib/iggy
c cp -r /fixtures/clean /var/lib/iggy/local_data
c chown -R iggy:iggy /var/lib/iggy
c chmod -R u+w /var/lib/iggy
c sh -c 'cat >/etc/systemd/system/iggy-server.service' <<'EOF'
[Unit]
Description=Stand-in for iggy-server (holds a data file open, like the server)

[Service]
User=iggy
Group=iggy
ExecStart=/bin/sh -c 'exec 3</var/lib/iggy/local_data/state/info; exec sleep infinity'
Restart=on-failure
RestartSec=1s

[Install]
WantedBy=multi-user.target
EOF
c systemctl daemon-reload

# --- install -----------------------------------------------------------------------
c dpkg -i /tmp/iggy-warden.deb >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out" >&2; fail "dpkg -i"; }
grep -q 'set data_dir' "$tmp/dpkg.out" || fail "no data_dir notice at install"
c systemctl cat iggy-server | grep -q 'ExecStartPre=/usr/bin/iggy-warden recover' ||
	fail "drop-in not active after install"
[ "$(c systemctl is-enabled iggy-warden || true)" = disabled ] || fail "the package enabled the sidecar"
[ "$(c systemctl is-active iggy-warden || true)" = inactive ] || fail "the package started the sidecar"
say "installed: drop-in active, sidecar neither enabled nor started"

active() { [ "$(c systemctl is-active "$1" || true)" = active ]; }

# --- unconfigured: fails closed with exit 2 ------------------------------------------------
if c systemctl start iggy-server 2>/dev/null; then fail "iggy-server started without data_dir"; fi
c systemctl show -p ExecMainStatus -p Result iggy-server >"$tmp/show"
c journalctl -q -u iggy-server -o cat >"$tmp/j"
grep -q 'no data directory' "$tmp/j" || { cat "$tmp/j" >&2; fail "journal lacks the reason"; }
grep -q 'status=2' "$tmp/j" || c systemctl status iggy-server --no-pager 2>&1 | grep -q 'status=2' ||
	{ cat "$tmp/j" >&2; fail "recover did not exit 2"; }
c systemctl reset-failed iggy-server
say "unconfigured: iggy-server refused to start (recover exit 2, reason in the journal)"

# --- configure, enable, start --------------------------------------------------------------
c sed -i 's|^#data_dir = .*|data_dir = "/var/lib/iggy/local_data"|' /etc/iggy-warden/config.toml
c systemctl enable iggy-warden 2>/dev/null
# A short watchdog, so that a sidecar that does not ping is killed within the test.
c mkdir -p /etc/systemd/system/iggy-warden.service.d
printf '[Service]\nWatchdogSec=3s\n' | c sh -c 'cat >/etc/systemd/system/iggy-warden.service.d/50-e2e.conf'
c systemctl daemon-reload
c systemctl start iggy-server || { c journalctl -q -u iggy-server -u iggy-warden --no-pager >&2; fail "start"; }
active iggy-warden || { c journalctl -q -u iggy-warden --no-pager >&2; fail "sidecar not active"; }
active iggy-server || fail "server not active"
c systemctl show -p StatusText -p User -p NRestarts iggy-warden >"$tmp/show"
say "sidecar: $(tr '\n' ' ' <"$tmp/show")"
grep -q '^StatusText=.' "$tmp/show" || fail "sidecar reports no STATUS="
[ "$(c stat -c %U /var/lib/iggy-warden)" = iggy ] || fail "state directory not owned by iggy"
c test -S /var/lib/iggy-warden/sidecar.sock || fail "no sidecar.sock"
# Ordering: the sidecar was ready (active) before iggy-server left "inactive", i.e.
# before its ExecStartPre (recovery) began.
ready=$(c systemctl show -p ActiveEnterTimestampMonotonic --value iggy-warden)
pre=$(c systemctl show -p InactiveExitTimestampMonotonic --value iggy-server)
[ "$ready" -gt 0 ] && [ "$ready" -le "$pre" ] || fail "sidecar ready at $ready, server starting at $pre"
pid=$(c systemctl show -p MainPID --value iggy-warden)
[ "$(c stat -c %U "/proc/$pid")" = iggy ] || fail "sidecar does not run as iggy"
c grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "sidecar without NoNewPrivileges"
c grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || fail "sidecar without a seccomp filter"
c grep -q '^CapBnd:[[:space:]]*0000000000000000' "/proc/$pid/status" || fail "sidecar has capabilities"
c journalctl -q -u iggy-server -o cat | grep -q 'ready to start' || fail "no recovery report in the journal"
# The mode of the last recovery, from its report's first line ("mode M; journal ...").
last_mode() { c journalctl -q -u iggy-server -o cat | sed -n 's/^mode \([a-z-]*\);.*/\1/p' | tail -n1; }
[ "$(last_mode)" = salvage ] || fail "recovery ran in mode '$(last_mode)', not the packaged salvage"
say "started: sidecar ready (as iggy, seccomp, no capabilities) before recovery began; server active"

sleep 5 # > WatchdogSec: a sidecar that did not send WATCHDOG=1 would be killed by now
[ "$(c systemctl show -p NRestarts --value iggy-warden)" = 0 ] && active iggy-warden ||
	{ c journalctl -q -u iggy-warden --no-pager | tail >&2; fail "sidecar did not keep its watchdog"; }
say "watchdog: sidecar alive after 5 s with WatchdogSec=3s"

# Log fields are journal fields under their own names (no F_ prefix), so that
# `journalctl -u iggy-warden SEGMENT=...` finds alerts: the start line by its DATA_DIR.
c journalctl -q -u iggy-warden -o cat DATA_DIR=/var/lib/iggy/local_data | grep -q '^watching /var/lib/iggy/local_data ' || {
	c journalctl -q -u iggy-warden -o verbose --no-pager | tail -40 >&2
	fail "the sidecar's log fields are not journal fields (no DATA_DIR=)"
}
say "journald: the sidecar's fields are journal fields (journalctl DATA_DIR=... finds its start)"

# --- crash: systemd restarts the server, recovery runs again ------------------------------
runs() { c journalctl -q -u iggy-server -o cat | grep -c 'ready to start' || true; }
before=$(runs)
c systemctl kill -s KILL --kill-whom=main iggy-server
for _ in $(seq 1 50); do
	n=$(c systemctl show -p NRestarts --value iggy-server)
	[ "$n" -ge 1 ] && active iggy-server && break
	sleep 0.2
done
[ "$(c systemctl show -p NRestarts --value iggy-server)" -ge 1 ] || fail "server not restarted"
[ "$(runs)" -gt "$before" ] || fail "recovery did not run again after the crash"
active iggy-warden || fail "sidecar died with the server"
say "crash: server restarted by systemd (recovery ran again), sidecar kept running"

# --- mode absolute + torn tail: exit 3, nothing changed ------------------------------------
c systemctl stop iggy-server
seg=$(c sh -c 'ls /var/lib/iggy/local_data/streams/1/topics/0/partitions/0/*.log | tail -n1')
c truncate -s -7 "$seg" # a torn last message, as a crash mid-write leaves it
sum_before=$(c sha256sum "$seg")
# The packaged config sets mode = "salvage": switch that line (a second `mode` key
# would make the file invalid, and recovery exit 2).
set_mode() {
	c sed -i "s/^mode = .*/mode = \"$1\"/" /etc/iggy-warden/config.toml
	c grep -qx "mode = \"$1\"" /etc/iggy-warden/config.toml || fail "could not set mode $1"
}
c grep -qx 'mode = "salvage"' /etc/iggy-warden/config.toml || fail "the packaged config does not set mode = \"salvage\""
set_mode absolute
if c systemctl start iggy-server 2>/dev/null; then fail "server started on damaged data in mode absolute"; fi
c systemctl status iggy-server --no-pager >"$tmp/status" 2>&1 || true
grep -q 'status=3' "$tmp/status" || { cat "$tmp/status" >&2; fail "recover did not exit 3"; }
c journalctl -q -u iggy-server -o cat | grep -q 'an operator must decide' ||
	fail "the journal does not say why the start was refused"
[ "$(c sha256sum "$seg")" = "$sum_before" ] || fail "mode absolute changed the segment"
c systemctl reset-failed iggy-server
say "absolute + torn tail: start refused (exit 3), segment untouched"

set_mode salvage
c systemctl start iggy-server || { c journalctl -q -u iggy-server --no-pager | tail -30 >&2; fail "salvage start"; }
[ "$(last_mode)" = salvage ] || fail "the repair ran in mode '$(last_mode)', not salvage"
c runuser -u iggy -- iggy-warden restore --config /etc/iggy-warden/config.toml --list >"$tmp/q"
[ -s "$tmp/q" ] || fail "quarantine empty after cutting a tail"
say "salvage: tail cut and quarantined ($(wc -l <"$tmp/q") entries), server started"

# --- a corrupt message in a sealed segment: tolerate-tail refuses, salvage repairs --------
c systemctl stop iggy-server
# A journal-guided recovery trusts a segment the sidecar saw sealed (bit rot inside one
# is for `check` to find; see the README's limits): start this case from no journal, so
# the sidecar verifies the segment again and leaves it to recovery.
c systemctl stop iggy-warden
c rm -rf /var/lib/iggy-warden/journal
part=/var/lib/iggy/local_data/streams/0/topics/0/partitions/0
sealed=$part/00000000000000000000 # sealed: 1332 messages, a later segment follows
# Message 600 starts where index entry 599 says message 599 ends (u32 at byte 4 of the
# 16-byte entry). One byte of its origin timestamp (header byte 40) flipped: its XXH3
# fails but its framing holds, so what follows is still readable.
start=$(c od -An -tu4 -j $((599 * 16 + 4)) -N4 "$sealed.index" | tr -d ' ')
[ -n "$start" ] && [ "$start" -gt 0 ] || fail "no index entry 599 in $sealed.index"
at=$((start + 40))
byte=$(c od -An -tu1 -j "$at" -N1 "$sealed.log" | tr -d ' ')
c sh -c 'printf "\\$1" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none' sh \
	"$(printf '%03o' $((byte ^ 255)))" "$sealed.log" "$at"
[ "$(c od -An -tu1 -j "$at" -N1 "$sealed.log" | tr -d ' ')" = $((byte ^ 255)) ] || fail "byte $at not flipped"
sums_before=$(c sh -c "sha256sum $part/*.log $part/*.index")
refusals() { c journalctl -q -u iggy-server -o cat | grep -c 'an operator must decide' || true; }
refused=$(refusals)
set_mode tolerate-tail
if c systemctl start iggy-server 2>/dev/null; then fail "tolerate-tail started the server on a corrupt sealed segment"; fi
c systemctl status iggy-server --no-pager >"$tmp/status" 2>&1 || true
grep -q 'status=3' "$tmp/status" || { cat "$tmp/status" >&2; fail "tolerate-tail: recover did not exit 3"; }
[ "$(refusals)" -gt "$refused" ] || fail "tolerate-tail: the journal does not say why the start was refused"
[ "$(c sh -c "sha256sum $part/*.log $part/*.index")" = "$sums_before" ] || fail "tolerate-tail changed the partition"
c systemctl reset-failed iggy-server
say "corrupt sealed segment, tolerate-tail: start refused (exit 3), partition untouched"
set_mode salvage
c systemctl start iggy-server || { c journalctl -q -u iggy-server --no-pager | tail -30 >&2; fail "salvage start"; }
active iggy-server || fail "server not active after salvage"
[ "$(last_mode)" = salvage ] || fail "the repair ran in mode '$(last_mode)', not salvage"
c runuser -u iggy -- iggy-warden restore --config /etc/iggy-warden/config.toml --list >"$tmp/q2"
grep -q 'streams/0/topics/0/partitions/0/00000000000000000000.log' "$tmp/q2" ||
	{ cat "$tmp/q2" >&2; fail "salvage did not quarantine the corrupt segment's log"; }
say "corrupt sealed segment, salvage: repaired ($(($(wc -l <"$tmp/q2") - $(wc -l <"$tmp/q"))) more quarantine entries), server started"

# --- by hand, with the server stopped and the sidecar running ---------------------------------
c systemctl stop iggy-server
c runuser -u iggy -- iggy-warden replay --config /etc/iggy-warden/config.toml >"$tmp/replay" 2>&1 ||
	{ cat "$tmp/replay" >&2; fail "replay by hand while the sidecar runs"; }
say "replay by hand (sidecar running): ok"

# --- disable, remove ----------------------------------------------------------------------
c systemctl disable --now iggy-warden 2>/dev/null
active iggy-warden && fail "sidecar still active after disable --now"
c dpkg -r iggy-warden >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out" >&2; fail "dpkg -r"; }
if c systemctl cat iggy-server | grep -q iggy-warden; then fail "drop-in still active after removal"; fi
c systemctl start iggy-server || fail "server does not start after removal"
c test -d /var/lib/iggy-warden || fail "removal deleted the state directory"
say "disable + remove: sidecar stopped, drop-in gone, server starts, state kept"
say "all end-to-end checks passed"
