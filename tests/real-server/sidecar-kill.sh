#!/usr/bin/env bash
# The sidecar beside the real server, through a SIGKILL under load:
#   1. the clean fixture, made ready by `recover`; `iggy-warden watch` starts, then
#      iggy-server 0.6.0 (64 KB segments, so it rotates while the sidecar watches);
#   2. a client appends batches of 500 to one partition without pause; after
#      LOAD_SECONDS (5) the server is SIGKILLed mid-load;
#   3. `recover`, with the sidecar still running (it hands the journal over), must
#      exit 0 having used the journal (segments trusted or resumed, not all scanned);
#      with LOAD_SECONDS of 35 or more, some sealed segments must have been trusted
#      by the stamps the sidecar journals 30 s after a sealed segment was last
#      written (read nothing of them);
#      `check` must say ready; the partition keeps N messages;
#   4. the server restarts: it serves N-5..N-1, takes 1,000 more at N..N+999; SIGTERM,
#      `recover` (which takes some offsets folders from the listings the one before
#      journaled), restart, they are still there; SIGTERM;
#   5. the sidecar stops on SIGTERM with exit 0; `journal verify` finds the journal
#      sound; `recover` and a final `check` say ready. No panic anywhere.
# Prints PASS or FAIL with the reason; exit 1 on FAIL.
#
# Not part of CI; the same variables as judge.sh (IGGY_SERVER, IGGY_CLI,
# IGGY_SERVER_CONFIG; optional PORT, KEEP=1).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

d=$WORK/sidecar
s=0 t=0 p=1
LOAD_SECONDS=${LOAD_SECONDS:-5}

fail() {
    echo "FAIL sidecar-kill: $*"
    [ -f "$d/server.pid" ] && kill -KILL "$(cat "$d/server.pid")" 2>/dev/null
    [ -n "${watch_pid:-}" ] && kill -KILL "$watch_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "work folder: $WORK"
    exit 1
}

mkdir -p "$d" && cp -r "$FIXTURES/clean" "$d/data" && chmod -R u+w "$d/data"
"$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-0.out" 2>&1 || fail "recover of the fixture"
IGGY_WARDEN_LOG=info "$W" watch --data-dir "$d/data" --state-dir "$d/state" >"$d/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 50); do grep -q 'ready' "$d/watch.log" && break; sleep 0.1; done
grep -q 'ready' "$d/watch.log" || fail "the sidecar did not report ready: $(tail -1 "$d/watch.log")"

start_server "$d" 1 || fail "server did not start"
# Until the server dies: more than it can take in LOAD_SECONDS.
(for b in $(seq 0 999999); do send "$s" "$t" "$p" load- $((b * 500)) 500 || break; done) &
load=$!
sleep "$LOAD_SECONDS"
kill -KILL "$(cat "$d/server.pid")"
wait "$(cat "$d/server.pid")" "$load" 2>/dev/null

"$W" recover --json --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-1.json" 2>"$d/recover-1.err" ||
    fail "recover after the SIGKILL exit $?: $(tail -1 "$d/recover-1.err")"
used=$(jq '.guided.trusted + .guided.resumed' "$d/recover-1.json")
[ "$used" -gt 0 ] || fail "recover did not use the sidecar's journal: $(jq -c .guided "$d/recover-1.json")"
if [ "$LOAD_SECONDS" -ge 35 ]; then
    stamped=$(jq '.guided.trusted_by_stamp' "$d/recover-1.json")
    [ "$stamped" -gt 0 ] ||
        fail "after ${LOAD_SECONDS} s of load no segment was trusted by its stamps: $(jq -c .guided "$d/recover-1.json")"
fi
"$W" check --json --data-dir "$d/data" >"$d/check-1.json" 2>&1 || fail "check after recover: not ready"
n=$(kept "$d/check-1.json" streams/$s/topics/$t/partitions/$p)
[ "$n" -gt 1200 ] || fail "the load appended nothing before the SIGKILL ($n messages)"

start_server "$d" 2 || fail "server did not start after recover"
poll_expect "$d" tail "$s" "$t" "$p" $((n - 5)) 5 || fail "the last kept messages"
send "$s" "$t" "$p" new- 0 1000 || fail "send after recover"
poll_expect "$d" new "$s" "$t" "$p" "$n" 1000 new- "$n" || fail "the new messages"
stop_server "$d" || fail "server needed SIGKILL"
"$W" recover --json --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-2.json" 2>"$d/recover-2.err" ||
    fail "second recover exit $?: $(tail -1 "$d/recover-2.err")"
listed=$(jq '.guided.offsets_listings_used' "$d/recover-2.json")
[ "$listed" -gt 0 ] ||
    fail "the second recover read every offsets folder again: $(jq -c .guided "$d/recover-2.json")"
start_server "$d" 3 || fail "server did not restart"
poll_expect "$d" again "$s" "$t" "$p" "$n" 1000 new- "$n" || fail "the new messages after a restart"
stop_server "$d" || fail "server needed SIGKILL after the restart"
grep -qi panic "$d"/server-*.log && fail "the server panicked"

kill -TERM "$watch_pid"
wait "$watch_pid" || fail "the sidecar exited $? on SIGTERM"
watch_pid=
"$W" journal verify --state-dir "$d/state" >"$d/verify.out" 2>&1 || fail "journal verify: $(tail -1 "$d/verify.out")"
"$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-3.out" 2>&1 || fail "third recover exit $?"
"$W" check --data-dir "$d/data" >"$d/check-final.txt" 2>&1 || fail "final check: $(tail -1 "$d/check-final.txt")"
echo "PASS sidecar-kill: kept $n after the SIGKILL ($(jq -c .guided "$d/recover-1.json")), +1000 appended; offsets folders of $listed partitions as listed before"
[ -n "${KEEP:-}" ] && echo "work folder: $WORK"
exit 0
