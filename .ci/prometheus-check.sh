#!/usr/bin/env bash
# promtool on what iggy-warden ships and exports (Debian's prometheus package, which
# this script installs when promtool is missing):
#  1. `promtool check metrics` on a real sidecar's exposition: scraped from its
#     endpoint (the 0.0.4 text format, as a client without an OpenMetrics Accept gets
#     it) and its node_exporter textfile, after a real `recover` so that every family
#     is present (the recover record, the quarantine);
#  2. `promtool check rules` on the shipped rules, and `promtool test rules` on the
#     unit-test file with series for each alert.
#
# Usage: .ci/prometheus-check.sh [path/to/iggy-warden]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
script_name=prometheus-check
. .ci/prometheus-lib.sh

need_prometheus
bin=$(find_bin "${1:-}")

tmp=$(mktemp -d)
sidecar_pid=
trap 'if [ -n "${sidecar_pid:-}" ]; then kill -KILL "$sidecar_pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT

# --- 1. the exposition ----------------------------------------------------------------
cp -r fixtures/iggy-0.6.0/clean "$tmp/data"
chmod -R u+w "$tmp/data"
mkdir -p "$tmp/state" "$tmp/node"
cat >"$tmp/config.toml" <<CONF
metrics_listen = "127.0.0.1:0"
metrics_textfile = "$tmp/node/iggy-warden.prom"
metrics_interval_ms = 200
CONF
# recover repairs the committed fixture (empty pairs, missing offsets folders), so
# the record and the quarantine exist.
status=0
env -u STATE_DIRECTORY IGGY_WARDEN_LOG=warn "$bin" recover --data-dir "$tmp/data" \
	--state-dir "$tmp/state" >"$tmp/recover.out" 2>&1 || status=$?
[ "$status" = 0 ] || { cat "$tmp/recover.out" >&2; fail "recover exited $status"; }
start_sidecar "$bin" "$tmp/data" "$tmp/state" "$tmp/config.toml" "$tmp/sidecar.log"
say "sidecar serving metrics on $metrics_addr"

scrape() { # the body of GET /metrics, without an Accept header
	curl -fsS --max-time 10 "http://$metrics_addr/metrics"
}
for _ in $(seq 1 300); do
	scrape >"$tmp/scraped.prom"
	if grep -q '^iggy_warden_ready 1$' "$tmp/scraped.prom" &&
		grep -q '^iggy_warden_coverage_ratio ' "$tmp/scraped.prom" &&
		grep -q '^iggy_warden_quarantine_bytes ' "$tmp/scraped.prom" &&
		grep -q '^iggy_warden_last_recover_exit_code{mode="tolerate-tail"} 0$' "$tmp/scraped.prom" &&
		grep -q '^iggy_warden_last_recover_exit_code' "$tmp/node/iggy-warden.prom" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
grep -q '^iggy_warden_last_recover_exit_code' "$tmp/scraped.prom" ||
	{ cat "$tmp/scraped.prom" >&2; fail "the exposition lacks the recover record"; }
for f in "$tmp/scraped.prom" "$tmp/node/iggy-warden.prom"; do
	status=0
	out=$(promtool check metrics <"$f" 2>&1) || status=$?
	if [ "$status" != 0 ] || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		fail "promtool check metrics on $(basename "$f"): status $status"
	fi
done
# Not vacuous: promtool does flag a counter named without _total.
if printf '# HELP iggy_warden_x x\n# TYPE iggy_warden_x counter\niggy_warden_x 1\n' |
	promtool check metrics >/dev/null 2>&1; then
	fail "promtool check metrics passed a counter without _total"
fi
# OpenMetrics, as Prometheus asks for it: served, and ends with # EOF.
curl -fsS --max-time 10 -H 'Accept: application/openmetrics-text;version=1.0.0' \
	"http://$metrics_addr/metrics" >"$tmp/openmetrics.txt"
[ "$(tail -n1 "$tmp/openmetrics.txt")" = "# EOF" ] || fail "the OpenMetrics answer does not end with # EOF"
families=$(grep -c '^# TYPE ' "$tmp/scraped.prom")
series=$(grep -vc '^#' "$tmp/scraped.prom")
stop_sidecar
say "promtool check metrics: ok on the endpoint and the textfile ($families families, $series series)"

# --- 2. the rules ---------------------------------------------------------------------
promtool check rules packaging/prometheus/iggy-warden-rules.yml
(cd packaging/prometheus && promtool test rules iggy-warden-rules.test.yml)
say "promtool check rules and test rules: ok"
