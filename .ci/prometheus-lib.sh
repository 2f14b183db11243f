# Sourced by .ci/prometheus-check.sh and .ci/prometheus-e2e.sh: Debian's prometheus
# package (promtool and the server), and a real sidecar with metrics on.

say() { printf '%s: %s\n' "$script_name" "$*"; }
fail() {
	printf '%s: FAIL: %s\n' "$script_name" "$*" >&2
	exit 1
}

# Installs Debian's prometheus package (server and promtool) when promtool is missing.
need_prometheus() {
	if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
		say "installing prometheus with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq </dev/null
		apt-get install -y -qq --no-install-recommends prometheus </dev/null >/dev/null
	fi
	say "$(promtool --version 2>&1 | head -n1)"
}

# The binary: $1, else $IGGY_WARDEN_BIN, else a debug build.
find_bin() {
	local bin=${1:-${IGGY_WARDEN_BIN:-}}
	if [ -z "$bin" ]; then
		cargo build -q -p iggy-warden
		bin=${CARGO_TARGET_DIR:-$repo/target}/debug/iggy-warden
	fi
	[ -x "$bin" ] || fail "no executable at $bin"
	readlink -f "$bin"
}

# start_sidecar BIN DATA STATE CONFIG LOG: starts `iggy-warden watch`, sets
# sidecar_pid, waits until it serves metrics and sets metrics_addr (host:port, from
# its log: the config asks for port 0).
start_sidecar() {
	local bin=$1 data=$2 state=$3 config=$4 log=$5
	env -u STATE_DIRECTORY -u NOTIFY_SOCKET -u WATCHDOG_USEC IGGY_WARDEN_LOG=info \
		"$bin" watch --data-dir "$data" --state-dir "$state" --config "$config" \
		</dev/null >/dev/null 2>"$log" &
	sidecar_pid=$!
	metrics_addr=
	for _ in $(seq 1 300); do
		kill -0 "$sidecar_pid" 2>/dev/null || { cat "$log" >&2; fail "the sidecar exited"; }
		metrics_addr=$(sed -n 's#.*serving metrics on http://\([^/]*\)/metrics.*#\1#p' "$log" | head -n1)
		[ -n "$metrics_addr" ] && break
		sleep 0.1
	done
	[ -n "$metrics_addr" ] || { cat "$log" >&2; fail "the sidecar does not serve metrics"; }
}

stop_sidecar() {
	if [ -n "${sidecar_pid:-}" ] && kill -0 "$sidecar_pid" 2>/dev/null; then
		kill -TERM "$sidecar_pid"
		local status=0
		wait "$sidecar_pid" || status=$?
		sidecar_pid=
		[ "$status" = 0 ] || fail "the sidecar exited $status on SIGTERM"
	fi
}

# A free TCP port on 127.0.0.1, from $1 up.
free_port() {
	local port=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}
