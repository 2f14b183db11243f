#!/usr/bin/env bash
# The real server as the judge: every fault of the damage table, on copies of both real
# fixtures, repaired by `iggy-warden recover` and then served by iggy-server 0.6.0.
#
# For each fixture and each fault (and "none", the undamaged fixture):
#   1. copy the fixture, damage one partition with `inject-fault`;
#   2. `recover` (tolerate-tail); damage before a partition's end must exit 3 and change
#      no byte, and is then cut with `--mode point-in-time` (the rotation race's
#      signatures: salvaged with `--mode salvage`, which must keep every message the
#      injector says stays valid);
#   3. `check` must say ready; the partition keeps N messages, at least as many as the
#      fault left intact;
#   4. start the server: no panic; it serves every kept message, each run of offsets
#      the harness's own scanner finds as such;
#   5. append 3,000 messages and read them back at offsets N..N+2999;
#   6. SIGTERM, `recover` again (exit 0), restart: the 3,000 are still served, one more
#      append lands at N+3000; SIGTERM, `recover`, and the final `check` says ready.
# Prints one line per case and exits 1 when any case fails.
#
# Not part of CI: it needs iggy-server and the iggy CLI of apache/iggy tag server-0.6.0.
#   IGGY_SERVER=.../iggy-server IGGY_CLI=.../iggy \
#   IGGY_SERVER_CONFIG=.../core/configs/server.toml tests/real-server/judge.sh
# Optional: FIXTURES (default fixtures/iggy-0.6.0 of this clone), CASES (fault names,
# default all but the state-log faults, which state-log.sh judges, and "none"), PORT
# (8390), SEGMENT_SIZE (64KB, so appends rotate), KEEP=1 keeps the work folder.
# CONTROL=1 is the control experiment: each fault is applied to a fixture already made
# ready and is not repaired before the first start (the later `recover`s still run),
# which shows the checks catch what the damage does to the server.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
APPENDS=3000
CASES=${CASES:-"none $($INJECT --list | grep -v '^state-log-' | tr '\n' ' ')"}

# Every file of a folder with its SHA-256: what "changed no byte" compares.
digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# Damage a crash cannot leave at a partition's end: tolerate-tail must refuse it.
# The rotation race's signatures (race faults) are salvaged, the others cut.
race_fault() { [ -s "$1/inject.json" ] && [ "$(jq -r '.survivors != null' "$1/inject.json")" = true ]; }
needs_operator() {
    case $2 in
    offset-gap | mid-file-corruption-sealed | misplaced-batch | zero-hole-sealed | duplicate-offset-conflict) return 0 ;;
    esac
    return 1
}

# inject dir fault: damages one partition; sets $part and $intact (messages before the
# first one the fault touched).
inject() {
    part=streams/0/topics/0/partitions/0 intact=0
    [ "$2" = none ] && return 0
    "$INJECT" "$1/data" "$2" >"$1/inject.json" 2>"$1/inject.err" || { echo "inject: $(cat "$1/inject.err")"; return 1; }
    part=$(jq -r .partition "$1/inject.json")
    intact=$(jq -r .intact_messages_before "$1/inject.json")
}

# repair dir fault: the first `recover` and `check`; sets $n, the messages kept.
repair() {
    local d=$1 fault=$2 rc before
    before=$(digest "$d/data")
    "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-1.out" 2>&1
    rc=$?
    if needs_operator "$d" "$fault"; then
        [ $rc = 3 ] || { echo "recover (tolerate-tail) exit $rc, not 3"; return 1; }
        [ "$(digest "$d/data")" = "$before" ] || { echo "recover exit 3 changed files"; return 1; }
        local mode=point-in-time
        race_fault "$d" && mode=salvage
        "$W" recover --mode $mode --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-1pit.out" 2>&1
        rc=$?
    fi
    [ $rc = 0 ] || { echo "recover exit $rc: $(tail -1 "$d/recover-1.out")"; return 1; }
    "$W" check --json --data-dir "$d/data" >"$d/check-1.json" 2>&1 || { echo "check after recover: not ready"; return 1; }
    n=$(kept "$d/check-1.json" "$part")
    [ "$n" -ge "$intact" ] || { echo "kept $n messages, $intact were intact"; return 1; }
    if race_fault "$d"; then
        local want
        want=$(jq -r '.survivors.messages' "$d/inject.json")
        [ "$n" = "$want" ] || { echo "salvage kept $n messages, $want stay valid"; return 1; }
    fi
    runs "$d" "$part"
}

# runs dir partition: sets $runs ("first last" per line, the partition's runs of
# consecutive offsets, found by the harness's own scanner) and $next (the offset an
# append must get).
runs() {
    local s t p
    read -r s t p <<<"$(ids "$2")"
    runs=$("$VALID" "$1/data" | jq -r --arg id "$s/$t/$p" \
        '.partitions[] | select(.partition == $id) | .runs[] | "\(.[0]) \(.[1])"')
    next=$(($(tail -1 <<<"$runs" | cut -d' ' -f2) + 1))
}

# poll_runs dir tag S T P: every run of offsets is served as such, in polls of 1,000.
poll_runs() {
    local first last from
    while read -r first last; do
        for ((from = first; from <= last; from += 1000)); do
            poll_expect "$1" "$2-$from" "$3" "$4" "$5" "$from" $((last + 1 - from < 1000 ? last + 1 - from : 1000)) || return 1
        done
    done <<<"$runs"
}

run_case() { # fixture fault → prints the reason of a failure, returns 1
    local fixture=$1 fault=$2 d=$WORK/$1-$2 part intact n s t p runs next
    mkdir -p "$d" && cp -r "$FIXTURES/$fixture" "$d/data" && chmod -R u+w "$d/data"
    if [ -n "${CONTROL:-}" ]; then
        # The control: a fixture made ready first, then damaged and left unrepaired.
        "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-0.out" 2>&1 || { echo "recover of the fixture failed"; return 1; }
        "$W" check --json --data-dir "$d/data" >"$d/check-0.json" 2>&1
        inject "$d" "$fault" || return 1
        n=$intact
        [ "$fault" = none ] && n=$(kept "$d/check-0.json" "$part")
        runs="0 $((n - 1))" next=$n
    else
        inject "$d" "$fault" || return 1
        repair "$d" "$fault" || return 1
    fi
    read -r s t p <<<"$(ids "$part")"

    start_server "$d" 1 || { echo "server did not start: $(grep -i -m1 panic "$d/server-1.log")"; return 1; }
    local ok=1
    poll_runs "$d" kept "$s" "$t" "$p" || ok=0
    send "$s" "$t" "$p" judge- 0 $APPENDS || { echo "send failed"; ok=0; }
    [ $ok = 1 ] && { poll_expect "$d" new "$s" "$t" "$p" "$next" $APPENDS judge- "$next" || ok=0; }
    stop_server "$d" || { echo "server needed SIGKILL"; ok=0; }
    grep -qi panic "$d/server-1.log" && { echo "server panicked (run 1)"; ok=0; }
    [ $ok = 1 ] || return 1

    "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-2.out" 2>&1 ||
        { echo "second recover exit $?: $(tail -1 "$d/recover-2.out")"; return 1; }
    start_server "$d" 2 || { echo "server did not restart: $(grep -i -m1 panic "$d/server-2.log")"; return 1; }
    poll_expect "$d" again "$s" "$t" "$p" "$next" $APPENDS judge- "$next" || ok=0
    send "$s" "$t" "$p" judge- $APPENDS 1 || { echo "send after restart failed"; ok=0; }
    [ $ok = 1 ] && { poll_expect "$d" last "$s" "$t" "$p" $((next + APPENDS)) 1 judge- "$next" || ok=0; }
    stop_server "$d" || { echo "server needed SIGKILL after restart"; ok=0; }
    grep -qi panic "$d/server-2.log" && { echo "server panicked (run 2)"; ok=0; }
    [ $ok = 1 ] || return 1
    # As before every start: the server's own rotations leave an empty newest pair.
    "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-3.out" 2>&1 ||
        { echo "third recover exit $?: $(tail -1 "$d/recover-3.out")"; return 1; }
    "$W" check --data-dir "$d/data" >"$d/check-final.txt" 2>&1 || { echo "final check: $(tail -1 "$d/check-final.txt")"; return 1; }
    echo "kept $n (intact $intact) in $part, +$((APPENDS + 1)) appended"
}

failed=0
for fixture in clean killed-under-load; do
    for fault in $CASES; do
        msg=$(run_case "$fixture" "$fault")
        rc=$?
        # A server left behind by a failed case would hold the port for the next one.
        pid_file=$WORK/$fixture-$fault/server.pid
        [ -f "$pid_file" ] && kill -KILL "$(cat "$pid_file")" 2>/dev/null
        if [ $rc = 0 ]; then verdict=PASS; else verdict=FAIL failed=1; fi
        printf '%s %-18s %-28s %s\n' $verdict "$fixture" "$fault" "${msg//$'\n'/; }"
    done
done
[ -n "${KEEP:-}" ] && echo "work folder: $WORK"
exit $failed
