#!/usr/bin/env bash
# A real Prometheus (Debian's package, installed when missing) scraping a real
# sidecar, with the shipped alert rules loaded:
#  1. `recover --mode absolute` on a copy of the committed fixture refuses (exit 3:
#     empty pairs and missing offsets folders need repairs absolute forbids) and
#     records it; the sidecar exports the record;
#  2. Prometheus scrapes the sidecar (job "iggy-warden"): through its HTTP API
#     (`promtool query instant`) iggy_warden_last_recover_exit_code reads 3, and the
#     alert IggyWardenRecoverFailed is firing;
#  3. `recover` (tolerate-tail) then repairs, borrowing the journal from the running
#     sidecar: the exit code reads 0 and the alert is gone; the quarantine's bytes
#     and the events journaled read back too.
# Every wait is bounded; both processes are stopped at the end, on failure too.
#
# Usage: .ci/prometheus-e2e.sh [path/to/iggy-warden]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
script_name=prometheus-e2e
. .ci/prometheus-lib.sh

need_prometheus
bin=$(find_bin "${1:-}")

tmp=$(mktemp -d)
sidecar_pid=
prom_pid=
cleanup() {
	for pid in "$sidecar_pid" "$prom_pid"; do
		if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

cp -r fixtures/iggy-0.6.0/clean "$tmp/data"
chmod -R u+w "$tmp/data"
mkdir -p "$tmp/state"
cat >"$tmp/config.toml" <<CONF
metrics_listen = "127.0.0.1:0"
metrics_interval_ms = 200
CONF

# --- 1. a refused recover, then the sidecar ---------------------------------------------
recover() { # mode: runs recover, prints its exit code
	local status=0
	env -u STATE_DIRECTORY IGGY_WARDEN_LOG=warn "$bin" recover --mode "$1" \
		--data-dir "$tmp/data" --state-dir "$tmp/state" >"$tmp/recover.out" 2>&1 || status=$?
	echo "$status"
}
status=$(recover absolute)
[ "$status" = 3 ] || { cat "$tmp/recover.out" >&2; fail "recover --mode absolute exited $status, expected 3"; }
start_sidecar "$bin" "$tmp/data" "$tmp/state" "$tmp/config.toml" "$tmp/sidecar.log"
say "sidecar serving metrics on $metrics_addr"

# --- 2. Prometheus ----------------------------------------------------------------------
port=$(free_port 19090)
cp packaging/prometheus/iggy-warden-rules.yml "$tmp/rules.yml"
cat >"$tmp/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $tmp/rules.yml
scrape_configs:
  - job_name: iggy-warden
    static_configs:
      - targets: ["$metrics_addr"]
CONF
promtool check config "$tmp/prometheus.yml" >/dev/null
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$port" --log.level=warn </dev/null >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
url=http://127.0.0.1:$port
say "prometheus on $url"

# wait_query WHAT EXPR PATTERN: polls `promtool query instant` (the HTTP API) until its
# output matches PATTERN (grep -E), for at most 90 s; prints the last output.
wait_query() {
	local what=$1 expr=$2 pattern=$3 out=
	for _ in $(seq 1 180); do
		kill -0 "$prom_pid" 2>/dev/null || { cat "$tmp/prometheus.log" >&2; fail "prometheus exited"; }
		kill -0 "$sidecar_pid" 2>/dev/null || { cat "$tmp/sidecar.log" >&2; fail "the sidecar exited"; }
		out=$(promtool query instant "$url" "$expr" 2>&1 || true)
		if printf '%s\n' "$out" | grep -Eq "$pattern"; then
			printf '%s\n' "$out"
			return 0
		fi
		sleep 0.5
	done
	printf 'last answer to %s: %s\n' "$expr" "$out" >&2
	tail -n 20 "$tmp/prometheus.log" >&2
	fail "timed out waiting for $what"
}
out=$(wait_query "the scrape" 'up{job="iggy-warden"}' '=> 1 @')
say "scraped: $out"
out=$(wait_query "the refused recover's exit code" 'iggy_warden_last_recover_exit_code' \
	'mode="absolute".* => 3 @')
say "read back: $out"
out=$(wait_query "the alert" 'ALERTS{alertname="IggyWardenRecoverFailed",alertstate="firing"}' \
	'mode="absolute".*=> 1 @')
say "alert firing: $out"

# --- 3. a repairing recover, borrowing the journal ------------------------------------------
status=$(recover tolerate-tail)
[ "$status" = 0 ] || { cat "$tmp/recover.out" >&2; fail "recover exited $status, expected 0"; }
out=$(wait_query "the repair's exit code" 'iggy_warden_last_recover_exit_code' \
	'mode="tolerate-tail".* => 0 @')
say "read back: $out"
out=$(wait_query "the repairs" 'iggy_warden_last_recover_repairs' '=> [1-9][0-9]* @')
say "read back: $out"
out=$(wait_query "the alert to clear" \
	'count(ALERTS{alertname="IggyWardenRecoverFailed",alertstate="firing"}) or vector(0)' '=> 0 @')
say "alert cleared"
out=$(wait_query "events journaled" 'iggy_warden_events_journaled_total' '=> [1-9][0-9]* @')
say "read back: $out"

stop_sidecar
kill -TERM "$prom_pid"
wait "$prom_pid" || true
prom_pid=
say "a real Prometheus scraped a real sidecar and read its metrics and alerts back: ok"
