#!/usr/bin/env bash
# Checks the systemd units the package ships (systemd/):
#  1. the settings the issue requires are there (a static policy check);
#  2. `systemd-analyze verify --recursive-errors=yes` passes with NO output at all, on
#     copies whose ExecStart=/ExecStartPre= point at the built binary, with a stand-in
#     iggy-server.service for the drop-in to attach to and the sidecar enabled
#     (iggy-server.service.wants/), and with the committed man page on MANPATH (verify
#     checks Documentation=man:iggy-warden(1));
#  3. the check is not vacuous: an unknown key in either file makes it fail;
#  4. `systemd-analyze security --offline=true` scores the sidecar at most 2.0.
#
# Usage: .ci/systemd-verify.sh [path/to/iggy-warden]
#   Without an argument: $IGGY_WARDEN_BIN, else `cargo build -p iggy-warden` and
#   ${CARGO_TARGET_DIR:-target}/debug/iggy-warden.
# Installs systemd (and man-db) with apt-get when systemd-analyze (or man) is missing.
# Needs no running systemd: it works in a container.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
max_exposure=20 # systemd-analyze's scale: 20 = an exposure level of 2.0 out of 10

say() { printf 'systemd-verify: %s\n' "$*"; }
fail() {
	printf 'systemd-verify: FAIL: %s\n' "$*" >&2
	exit 1
}

# --- tools -------------------------------------------------------------------------
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v man >/dev/null 2>&1 || missing+=(man-db)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi
say "$(systemd-analyze --version | head -n1)"

# --- the binary --------------------------------------------------------------------
bin=${1:-${IGGY_WARDEN_BIN:-}}
if [ -z "$bin" ]; then
	cargo build -q -p iggy-warden
	bin=${CARGO_TARGET_DIR:-$repo/target}/debug/iggy-warden
fi
[ -x "$bin" ] || fail "no executable at $bin"
bin=$(readlink -f "$bin")
say "binary: $bin"

sidecar=systemd/iggy-warden.service
dropin=systemd/iggy-server.service.d/10-iggy-warden.conf
for f in "$sidecar" "$dropin"; do [ -f "$f" ] || fail "$f missing"; done

# --- 1. required settings -------------------------------------------------------------
require() { # file, exact line (as a fixed string matched against whole lines)
	grep -qxF -- "$2" "$1" || fail "$1 lacks the line '$2'"
}
for line in \
	'Type=notify' 'Restart=on-failure' 'Before=iggy-server.service' \
	'StateDirectory=iggy-warden' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
	'PrivateTmp=yes' 'ProtectHome=yes' 'CapabilityBoundingSet=' \
	'SystemCallFilter=@system-service' 'WantedBy=iggy-server.service' \
	'ExecStart=/usr/bin/iggy-warden watch --config /etc/iggy-warden/config.toml'; do
	require "$sidecar" "$line"
done
grep -qE '^WatchdogSec=[1-9]' "$sidecar" || fail "$sidecar lacks WatchdogSec="
# Nothing may make the data directory writable for the sidecar.
if grep -qE '^(ReadWritePaths|ProtectSystem=(no|yes|full)$)' "$sidecar"; then
	fail "$sidecar makes more than the state directory writable"
fi
require "$dropin" 'ExecStartPre=/usr/bin/iggy-warden recover --config /etc/iggy-warden/config.toml'
grep -qE '^TimeoutStartSec=[1-9]' "$dropin" || fail "$dropin lacks TimeoutStartSec="
# A '-' prefix would let iggy-server start after a failed recovery.
if grep -qE '^ExecStartPre=[-+!@:]' "$dropin"; then fail "$dropin: ExecStartPre has a prefix"; fi
# The config both units read must name the sidecar's state directory.
grep -qxF 'state_dir = "/var/lib/iggy-warden"' packaging/config.toml ||
	fail 'packaging/config.toml must set state_dir = "/var/lib/iggy-warden" (the sidecar'"'"'s StateDirectory)'
say "required settings: ok"

# --- 2. systemd-analyze verify ------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
units=$tmp/units
mkdir -p "$units/iggy-server.service.d" "$units/iggy-server.service.wants" "$tmp/man/man1"
sed "s#/usr/bin/iggy-warden#$bin#g" "$sidecar" >"$units/iggy-warden.service"
sed "s#/usr/bin/iggy-warden#$bin#g" "$dropin" >"$units/iggy-server.service.d/10-iggy-warden.conf"
if grep -rq /usr/bin/iggy-warden "$units"; then fail "path rewrite missed /usr/bin/iggy-warden"; fi
grep -q "^ExecStart=$bin watch" "$units/iggy-warden.service" || fail "ExecStart rewrite"
grep -q "^ExecStartPre=$bin recover" "$units/iggy-server.service.d/10-iggy-warden.conf" ||
	fail "ExecStartPre rewrite"
# A stand-in for the operator's iggy-server.service, which the package does not ship.
cat >"$units/iggy-server.service" <<'EOF'
[Unit]
Description=Stand-in for iggy-server (systemd-verify.sh)

[Service]
ExecStart=/bin/sleep infinity
User=iggy
Group=iggy
EOF
# As after `systemctl enable iggy-warden`.
ln -s ../iggy-warden.service "$units/iggy-server.service.wants/iggy-warden.service"
cp packaging/generated/man/*.1 "$tmp/man/man1/"

verify() { # prints everything systemd-analyze says; returns its status
	# Our folder first, then the default search path (for the standard targets).
	SYSTEMD_UNIT_PATH="$units:" MANPATH="$tmp/man" SYSTEMD_LOG_COLOR=0 \
		systemd-analyze verify --recursive-errors=yes \
		"$units/iggy-warden.service" "$units/iggy-server.service" 2>&1
}
start=$(date +%s.%N)
status=0
out=$(verify) || status=$?
end=$(date +%s.%N)
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
	fail "systemd-analyze verify: status $status, $(printf '%s' "$out" | grep -c '') lines of output (none allowed)"
fi
say "systemd-analyze verify: ok, no output ($(awk "BEGIN{printf \"%.2f\", $end-$start}") s)"

# --- 2b. the opt-in metrics drop-ins (shipped under /usr/share, enabled by a link) -----
optin=(systemd/opt-in/metrics-listen.conf systemd/opt-in/metrics-textfile.conf)
for f in "${optin[@]}"; do [ -f "$f" ] || fail "$f missing"; done
grep -qxF 'PrivateNetwork=no' systemd/opt-in/metrics-listen.conf ||
	fail "metrics-listen.conf must relax PrivateNetwork="
grep -qE '^ReadWritePaths=' systemd/opt-in/metrics-textfile.conf ||
	fail "metrics-textfile.conf must add ReadWritePaths="
mkdir -p "$units/iggy-warden.service.d"
cp "${optin[@]}" "$units/iggy-warden.service.d/"
status=0
out=$(verify) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out" >&2
	fail "systemd-analyze verify with the opt-in metrics drop-ins: status $status"
fi
# Not vacuous: the drop-in folder is read (an unknown key there is caught).
printf 'NoSuchKey=1\n' >>"$units/iggy-warden.service.d/metrics-listen.conf"
status=0
out=$(verify) || status=$?
if [ "$status" -eq 0 ] || ! printf '%s' "$out" | grep -q NoSuchKey; then
	printf '%s\n' "$out" >&2
	fail "an unknown key in the opt-in drop-in went unnoticed (status $status)"
fi
rm -r "$units/iggy-warden.service.d"
say "opt-in metrics drop-ins: verify ok, no output (and an unknown key in one is caught)"

# --- 3. the check catches mistakes ---------------------------------------------------
for f in iggy-warden.service iggy-server.service.d/10-iggy-warden.conf; do
	cp "$units/$f" "$tmp/saved"
	printf 'NoSuchKey=1\n' >>"$units/$f"
	status=0
	out=$(verify) || status=$?
	cp "$tmp/saved" "$units/$f"
	if [ "$status" -eq 0 ] || ! printf '%s' "$out" | grep -q NoSuchKey; then
		printf '%s\n' "$out" >&2
		fail "an unknown key in $f went unnoticed (status $status)"
	fi
done
say "negative control (unknown key in each file is caught): ok"

# --- 4. hardening score --------------------------------------------------------------
status=0
report=$(SYSTEMD_UNIT_PATH="$units:" MANPATH="$tmp/man" SYSTEMD_LOG_COLOR=0 \
	systemd-analyze security --offline=true --threshold=$max_exposure --no-pager \
	"$units/iggy-warden.service" 2>&1) || status=$?
score=$(printf '%s\n' "$report" | grep 'Overall exposure level' || true)
printf '%s\n' "$report" | grep -E '^✗' || true
say "${score:-no score printed}"
[ "$status" -eq 0 ] || {
	printf '%s\n' "$report" >&2
	fail "sidecar exposure above $((max_exposure / 10)).$((max_exposure % 10)) (status $status)"
}
say "all unit checks passed"
