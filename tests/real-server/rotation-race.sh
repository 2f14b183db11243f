#!/usr/bin/env bash
# The 0.6.0 rotation race, reproduced with the real server, then repaired by
# `iggy-warden recover --mode salvage` and judged by the same server:
#   1. a fresh data directory; iggy-server 0.6.0 with 64 KB segments and
#      messages_required_to_save = 64; stream s1, topic t1, one partition. CLIENTS (10)
#      loops each send batches of 300 messages with 96-byte payloads, concurrently,
#      until the server log shows a panic or RACE_SECONDS (120) pass. Each loop is
#      bounded in batches (MAX_BATCHES) and each send in time (20 s). The panic's source
#      line and the seconds of load before it are recorded;
#   2. SIGTERM to the server (SIGKILL after 20 s). The harness's independent scanner
#      (`valid-messages`, which resynchronises past bad bytes) lists the valid messages
#      and their runs of consecutive offsets. No panic and no damage: the race did not
#      happen, "not reproduced", exit 3 (never a pass);
#   3. `recover --mode salvage` must exit 0, `check` must say ready, and the scanner
#      must find the same offsets as before the repair;
#   4. the server starts without panicking and serves every message found before the
#      repair at its offset, its payload the one sent at that offset (each batch fills
#      the 300 offsets of one block, payload c<client>-b<batch>-m<offset mod 300>-x…);
#      a poll at the first offset of each gap returns the next existing message; 300
#      appended messages land after the highest offset;
#   5. SIGTERM, `recover` (default mode), restart: all of that again, and one more
#      append lands next; SIGTERM, `recover`, `check` says ready, and the scanner finds
#      every offset of step 2 plus the 301 appended.
# SIDECAR=1 runs `iggy-warden watch` from before the load to the end, so the salvage
# is journal-guided (the sidecar hands its journal over); it must give the directory a
# salvage without journal gives (run on a copy), the sidecar must exit 0 on SIGTERM
# and its journal verify as sound. The sidecar must also have raised a race alert
# (misplaced-batch, zero-hole, ghost-index-entries or incomplete-sealed-segment, as
# `iggy-warden status --json` lists them) before the server panicked, when the race
# left one of its signatures on disk (a panic that left none is reported, not
# judged): the script prints how many seconds before, against the time of the last
# server log line before the panic (the panic happened after it); an alert after
# that line but before the first line after the panic fails as "not proven before".
# An inotify trace of the data directory (race-probe/inotify-log.py) times when the
# alerted bytes reached the file: damage that reached it less than two verify
# intervals before the panic is reported (SKIP), not judged, since no reader of the
# disk could be promised to see it first.
# After the salvage no alert may be in force.
# Prints PASS or FAIL per check, then where and when the server panicked. Exit 0 when
# every check passed, 1 on a FAIL, 2 when the setup failed, 3 when not reproduced.
#
# Not part of CI; the same variables as judge.sh (IGGY_SERVER, IGGY_CLI,
# IGGY_SERVER_CONFIG; optional PORT (8393 here), KEEP=1), and CLIENTS, RACE_SECONDS,
# MAX_BATCHES.
# The damaged directory, before any repair, is kept as race/data-damaged in the work
# folder (KEEP=1 keeps the folder). DAMAGED=DIR skips the race and judges steps 2-5 on
# a copy of a data directory the race already damaged (such a data-damaged, or
# fixtures/iggy-0.6.0/race-rotation); not with SIDECAR=1.
set -uo pipefail
PORT=${PORT:-8393} # not judge.sh's default, so both can run at once
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
# The sidecar's verify interval (its default unless the environment sets one).
verify_ms=${IGGY_WARDEN_VERIFY_INTERVAL_MS:-100}
VALID=$PWD/target/release/valid-messages
CLIENTS=${CLIENTS:-10}
RACE_SECONDS=${RACE_SECONDS:-120}
MAX_BATCHES=${MAX_BATCHES:-400}
BATCH=300 PAYLOAD=96 SEND_TIMEOUT=20
[ -x "$VALID" ] || { echo "no $VALID: the harness's valid-messages scanner is not built"; exit 2; }

d=$WORK/race
s=0 t=0 p=0 part=0/0/0
failed=0 watch_pid= trace_pid= panic_line=
variant=plain
[ -n "${SIDECAR:-}" ] && variant=sidecar

cleanup() { # kills what this script started and is still running, by pid
    local pid
    pid=$(cat "$d/server.pid" 2>/dev/null)
    # Only while that pid is still this script's server (it runs in $d), not a reused pid.
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$d" ] && kill -KILL "$pid"
    [ -n "$watch_pid" ] && kill -KILL "$watch_pid" 2>/dev/null
    [ -n "$trace_pid" ] && kill -KILL "$trace_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "work folder: $WORK"
}
pass() { echo "PASS $variant $1: ${2:-}"; }
fail() { echo "FAIL $variant $1: ${2:-}"; failed=1; }
# A failure after which the later checks mean nothing.
abort() { fail "$@"; summary; cleanup; exit 1; }
summary() {
    local what="panic at ${panic_where:-}, ${panic_after:-} s into the load"
    [ -n "$panic_line" ] || what="no panic in ${RACE_SECONDS} s"
    [ -n "${DAMAGED:-}" ] && what="no race run here (DAMAGED=$DAMAGED)"
    echo "race ($variant): $what ($CLIENTS clients, $(cat "$d"/acked-* 2>/dev/null | wc -l) batches" \
        "acknowledged); scanner: ${found:-?} valid messages in ${nruns:-?} runs up to offset ${top:-?}"
}

# start tag: start_server (which refuses a port something already listens on).
start() { start_server "$d" "$1"; }

# The partition's entry of a scanner output: messages, runs.
messages_of() { jq -r --arg p "$part" '.partitions[] | select(.partition == $p) | .messages' "$1"; }
runs_of() { jq -r --arg p "$part" '.partitions[] | select(.partition == $p) | .runs[] | "\(.[0]) \(.[1])"' "$1"; }

# The load: client c sends batch b as 300 lines c<c>-b<b>-m<m>-xxx… of 96 bytes.
client() { # c
    local c=$1 b
    for ((b = 0; b < MAX_BATCHES; b++)); do
        [ -e "$d/stop" ] && break
        [ "$(date +%s)" -lt "$deadline" ] || break
        if awk -v c="$c" -v b="$b" -v n=$BATCH -v len=$PAYLOAD 'BEGIN {
                for (m = 0; m < n; m++) {
                    s = sprintf("c%02d-b%05d-m%03d-", c, b, m)
                    while (length(s) < len) s = s "x"
                    print s
                } }' |
            timeout $SEND_TIMEOUT "$IGGY_CLI" --tcp-server-address 127.0.0.1:$PORT --username iggy \
                --password iggy message send -p $p $s $t >/dev/null 2>>"$d/client-$c.err"; then
            echo "$b" >>"$d/acked-$c"
        else
            echo "$b" >>"$d/failed-$c"
        fi
    done
}

# poll_runs tag runs-file out: polls every run (in polls of 1,000) and writes the rows
# served, "offset payload" a line, to out. Fails unless each poll serves exactly its
# offsets.
poll_runs() {
    local tag=$1 first last from n
    : >"$3"
    while read -r first last; do
        for ((from = first; from <= last; from += 1000)); do
            n=$((last - from + 1 < 1000 ? last - from + 1 : 1000))
            cli message poll --offset "$from" --message-count "$n" $s $t $p >"$d/poll-$tag.txt" 2>&1
            rows "$d/poll-$tag.txt" >"$d/poll-$tag.rows"
            if [ "$(cut -d' ' -f1 "$d/poll-$tag.rows")" != "$(seq "$from" $((from + n - 1)))" ]; then
                echo "offsets $from..$((from + n - 1)) not served as such ($(wc -l <"$d/poll-$tag.rows") rows)"
                return 1
            fi
            cat "$d/poll-$tag.rows" >>"$3"
        done
    done <"$2"
}

# payloads_match rows: each payload is the one sent at its offset. A batch of 300 takes
# the 300 offsets of one block, so m is the offset mod 300, every offset of a block has
# the same client and batch, and no batch is in two blocks.
payloads_match() {
    awk -v n=$BATCH -v len=$PAYLOAD '
        function bad(why) { print "offset " $1 ": " why " (" $2 ")"; err = 1; exit 1 }
        {
            if (length($2) != len || split($2, f, "-") != 4) bad("not a payload sent")
            if (substr(f[3], 2) + 0 != $1 % n) bad("payload of message " substr(f[3], 2) " of a batch")
            block = int($1 / n); tag = f[1] "-" f[2]
            if (block in tag_of && tag_of[block] != tag) bad("block " block " mixes " tag_of[block] " and " tag)
            if (tag in block_of && block_of[tag] != block) bad(tag " in blocks " block_of[tag] " and " block)
            tag_of[block] = tag; block_of[tag] = block
        }
        END { exit err }' "$1"
}

# gaps_serve_next tag runs-file: a poll at the first offset of each gap (and at 0 when
# the first run starts later) returns the first message after it; prints the number of
# gaps.
gaps_serve_next() {
    local tag=$1 first last next=0 got gaps=0
    while read -r first last; do
        if [ "$first" -gt "$next" ]; then
            cli message poll --offset "$next" --message-count 1 $s $t $p >"$d/poll-$tag.txt" 2>&1
            got=$(rows "$d/poll-$tag.txt" | cut -d' ' -f1)
            [ "$got" = "$first" ] || { echo "a poll at $next (gap up to $((first - 1))) returned '${got}', not $first"; return 1; }
            gaps=$((gaps + 1))
        fi
        next=$((last + 1))
    done <"$2"
    echo $gaps
}

mkdir -p "$d"
if [ -n "${DAMAGED:-}" ]; then
    [ -z "${SIDECAR:-}" ] || { echo "DAMAGED and SIDECAR together: the sidecar did not watch that race"; exit 2; }
    cp -r "$DAMAGED" "$d/data" && chmod -R u+w "$d/data" || exit 2
    variant=damaged
    CLIENTS=0
elif [ -n "${SIDECAR:-}" ]; then
    mkdir -p "$d/data"
    IGGY_WARDEN_LOG=info "$W" watch --data-dir "$d/data" --state-dir "$d/state" >"$d/watch.log" 2>&1 &
    watch_pid=$!
    # When each write reached the files, for judging the alert against it.
    python3 "$here/race-probe/inotify-log.py" "$d/data" "$d/inotify.log" &
    trace_pid=$!
    for _ in $(seq 1 50); do grep -q 'ready' "$d/watch.log" && break; sleep 0.1; done
    grep -q 'ready' "$d/watch.log" || { echo "the sidecar did not report ready: $(tail -1 "$d/watch.log")"; cleanup; exit 2; }
fi

# 1. The race.
race() {
    # A fresh directory: the root user is created with the credentials cli() uses.
    IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy IGGY_SYSTEM_PARTITION_MESSAGES_REQUIRED_TO_SAVE=64 \
        start race ||
        { echo "the server did not start: $(tail -1 "$d/server-race.log")"; cleanup; exit 2; }
    { cli stream create s1 && cli topic create s1 t1 1 none; } >"$d/create.out" 2>&1 ||
        { echo "cannot create s1/t1: $(tail -1 "$d/create.out")"; cleanup; exit 2; }
    deadline=$(($(date +%s) + RACE_SECONDS))
    t0=$EPOCHREALTIME
    clients=()
    for ((c = 0; c < CLIENTS; c++)); do
        client $c &
        clients+=($!)
    done
    panic_line=
    while [ "$(date +%s)" -lt "$deadline" ]; do
        panic_line=$(grep -m1 'panicked at' "$d/server-race.log")
        panic_seen=$EPOCHREALTIME
        [ -n "$panic_line" ] && break
        kill -0 "${clients[@]}" 2>/dev/null || break # every client is done
        sleep 0.2
    done
    [ -n "$panic_line" ] && panic_after=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    touch "$d/stop"
    stop_server "$d" || echo "note: the server needed SIGKILL"
    wait "${clients[@]}" 2>/dev/null
    if [ -n "$panic_line" ]; then
        # "thread 'shard-1' (12401) panicked at core/server/src/slab/streams.rs:1293:26:"
        # → slab/streams.rs:1293; every place in the order of the first panic there.
        panic_where=$(grep -o 'panicked at [^ ]*' "$d/server-race.log" |
            sed -E 's/panicked at ([^ ]*src\/)?([^: ]+):([0-9]+).*/\2:\3/' | awk '!seen[$0]++' | paste -sd' ' -)
        # What the first panic said (the next line), and the nearest "Closed segment" line:
        # the log's lines interleave, so it may be printed just after the panic.
        n=$(grep -n -m1 'panicked at' "$d/server-race.log" | cut -d: -f1)
        panic_what=$(sed -n "$((n + 1))p" "$d/server-race.log")
        closed=$(awk -v n="$n" '/Closed segment/ { d = NR - n; if (d < 0) d = -d; if (best == "" || d < best) { best = d; at = NR - n } }
            END { if (best == "") print "no Closed segment line"; else if (at < 0) { b = -at; print "Closed segment " b " lines before" } else print "Closed segment " at " lines after" }' "$d/server-race.log")
        echo "race: panic at $panic_where after $panic_after s of load: $panic_what ($closed)"
    fi
}
[ -n "${DAMAGED:-}" ] || race

# 2. What the race left, by the independent scanner.
cp -a "$d/data" "$d/data-damaged"
"$VALID" "$d/data" >"$d/valid-0.json" 2>"$d/valid-0.err" || abort scanner "valid-messages exit $?: $(tail -1 "$d/valid-0.err")"
found=$(messages_of "$d/valid-0.json")
runs_of "$d/valid-0.json" >"$d/runs-0.txt"
nruns=$(wc -l <"$d/runs-0.txt")
top=$(tail -1 "$d/runs-0.txt" | cut -d' ' -f2)
[ -n "$found" ] && [ "$nruns" -gt 0 ] || abort scanner "no partition $part in $(head -c 200 "$d/valid-0.json")"
"$W" check --data-dir "$d/data" >"$d/check-0.txt" 2>&1
echo "race: scanner $found valid messages in $nruns runs, offsets up to $top; iggy-warden check exit $?"
if [ -z "$panic_line" ] && [ "$nruns" = 1 ] && [ "$(head -1 "$d/runs-0.txt" | cut -d' ' -f1)" = 0 ]; then
    echo "not reproduced ($variant): no panic and no damage ($found messages, offsets 0..$top)"
    summary
    cleanup
    exit 3
fi

# The sidecar's alerts: a race signature raised before the panic.
# Seconds since the epoch of the last timestamped server log line before the first
# panic (the panic came after it; else when the load started) and of the first one
# after it (the panic came before it; else when this script saw the panic).
panic_bounds() {
    local n lo hi stamps='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z'
    n=$(grep -n -m1 'panicked at' "$d/server-race.log" | cut -d: -f1)
    lo=$(head -n "$((n - 1))" "$d/server-race.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -oE "$stamps" | tail -1)
    hi=$(tail -n "+$((n + 1))" "$d/server-race.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -oE "$stamps" | head -1)
    echo "$([ -n "$lo" ] && date -d "$lo" +%s.%N || echo "$t0") $([ -n "$hi" ] && date -d "$hi" +%s.%N || echo "$panic_seen")"
}
if [ -n "${SIDECAR:-}" ]; then
    "$W" status --json --state-dir "$d/state" >"$d/status-race.json" 2>"$d/status-race.err"
    echo "race: sidecar alerts in force: $(jq -c '.alerts_active' "$d/status-race.json" 2>/dev/null || tail -1 "$d/status-race.err")"
    first=$(jq -r '[.alerts[] | select(.race_signature)] | min_by(.raised_unix_micros) // empty |
        "\(.raised_unix_micros) \(.kind) \(.segment) \(.file) \(.byte)"' "$d/status-race.json" 2>/dev/null)
    if [ -z "$panic_line" ]; then
        [ -n "$first" ] && echo "race: a race alert with no panic: $first"
    elif [ -z "$first" ] && ! grep -qE 'misplaced-batch|zero-hole|ghost-index-entries|duplicate-offset' "$d/check-0.txt"; then
        echo "SKIP $variant alert-before-panic: the panic left no race signature on disk for the sidecar to see ($(grep -c ': ' "$d/check-0.txt") check lines)"
    elif [ -z "$first" ]; then
        fail alert-before-panic "no race alert in force after the panic: $(head -c 300 "$d/status-race.json")"
    else
        read -r at kind seg file byte <<<"$first"
        read -r lo hi <<<"$(panic_bounds)"
        before=$(awk -v p="$lo" -v a="$at" 'BEGIN { printf "%.3f", p - a / 1e6 }')
        after=$(awk -v p="$hi" -v a="$at" 'BEGIN { printf "%.3f", a / 1e6 - p }')
        # When the alerted bytes reached the file: the first write event after which
        # the file held byte $byte (an overwrite in place makes this earlier, never
        # later), and how long before the panic that was.
        landed=$(awk -v f="$d/data/$file" -v b="$byte" '$2 == "MODIFY" && $3 == f && $4 > b { print $1; exit }' "$d/inotify.log")
        lead=$(awk -v p="$lo" -v l="$landed" 'BEGIN { if (l == "") print ""; else printf "%.3f", p - l }')
        echo "race: the alerted bytes ($file, byte $byte) reached the file ${lead:-?} s before the panic; the sidecar verifies every $((verify_ms)) ms"
        if awk -v b="$before" 'BEGIN { exit !(b > 0) }'; then
            pass alert-before-panic "$kind in segment $seg ($file, byte $byte) raised $before s before the panic"
        elif [ -n "$lead" ] && awk -v l="$lead" -v v="$verify_ms" 'BEGIN { exit !(l < 2 * v / 1000) }'; then
            # Damage that reached the disk less than two verify intervals before the
            # panic cannot be promised an alert before it.
            echo "SKIP $variant alert-before-panic: the damage reached the disk $lead s before the panic, less than two verify intervals; the alert ($kind in $seg) came $after s after the panic"
        elif awk -v x="$after" 'BEGIN { exit !(x > 0) }'; then
            fail alert-before-panic "the first race alert ($kind in $seg) came $after s after the panic"
        else
            # Between the server's log lines around the panic: cannot tell which came first.
            fail alert-before-panic "the first race alert ($kind in $seg) came within the panic's log gap \
($(awk -v b="$before" 'BEGIN { print -b }') s after the line before it, $(awk -v x="$after" 'BEGIN { print -x }') s before the line after it): not proven before"
        fi
    fi
fi

# 3. The salvage.
"$W" recover --mode salvage --json --data-dir "$d/data" --state-dir "$d/state" >"$d/salvage.json" 2>"$d/salvage.err"
rc=$?
echo "race: recover --mode salvage exit $rc: $(jq -c '{guided, actions: (.actions | length), bytes_quarantined, partitions}' "$d/salvage.json" 2>/dev/null || tail -1 "$d/salvage.err")"
[ $rc = 0 ] && pass salvage "exit 0" || abort salvage "exit $rc: $(tail -1 "$d/salvage.err")"
if "$W" check --data-dir "$d/data" >"$d/check-1.txt" 2>&1; then pass check "ready after the salvage"
else abort check "not ready after the salvage: $(tail -1 "$d/check-1.txt")"; fi
"$VALID" "$d/data" >"$d/valid-1.json" 2>"$d/valid-1.err"
runs_of "$d/valid-1.json" >"$d/runs-1.txt"
if cmp -s "$d/runs-0.txt" "$d/runs-1.txt"; then pass kept "the scanner finds the same $found messages in $nruns runs"
else fail kept "the scanner found $found messages before, $(messages_of "$d/valid-1.json") after ($(wc -l <"$d/runs-1.txt") runs)"; fi
if [ -n "${SIDECAR:-}" ]; then
    # The salvage repaired the partition: once the sidecar has its journal back, its
    # alerts are over.
    for _ in $(seq 1 50); do
        "$W" status --state-dir "$d/state" >"$d/status-salvaged.txt" 2>&1 && break
        sleep 0.2
    done
    if "$W" status --state-dir "$d/state" >"$d/status-salvaged.txt" 2>&1; then pass alerts-cleared "no alert in force after the salvage"
    else fail alerts-cleared "$(cat "$d/status-salvaged.txt")"; fi
    used=$(jq '.guided.trusted + .guided.resumed' "$d/salvage.json")
    echo "race: the journal-guided salvage: $(jq -c .guided "$d/salvage.json")"
    # The same salvage without any journal, on the damaged copy.
    cp -a "$d/data-damaged" "$d/data-nojournal"
    "$W" recover --mode salvage --data-dir "$d/data-nojournal" --state-dir "$d/state-nojournal" >"$d/salvage-nojournal.out" 2>&1
    rc=$?
    if [ $rc = 0 ] && (cd "$d/data" && find streams -type f -print0 | sort -z | xargs -0 sha256sum) >"$d/sums-journal" &&
        (cd "$d/data-nojournal" && find streams -type f -print0 | sort -z | xargs -0 sha256sum) >"$d/sums-nojournal" &&
        cmp -s "$d/sums-journal" "$d/sums-nojournal"; then
        pass same-as-scan "the guided salvage (journal gave $used segments to skip) wrote the files a salvage without journal writes"
    else
        fail same-as-scan "a salvage without journal (exit $rc) gives other files: diff $d/sums-journal $d/sums-nojournal"
    fi
fi

# 4. Served by the server.
check_served() { # run: polls the runs and the gaps
    local run=$1 why
    if why=$(poll_runs "kept-$run" "$d/runs-0.txt" "$d/served-$run.txt"); then
        pass "served-$run" "$found messages at their offsets"
        if [ -n "${DAMAGED:-}" ] && ! head -1 "$d/served-$run.txt" | grep -q ' c[0-9][0-9]-b'; then
            echo "SKIP $variant payloads-$run: not the payloads this script sends"
        elif why=$(payloads_match "$d/served-$run.txt"); then pass "payloads-$run" "each the one sent at its offset"
        else fail "payloads-$run" "$why"; fi
    else
        fail "served-$run" "$why"
        echo "SKIP $variant payloads-$run: not all served"
    fi
    if why=$(gaps_serve_next "gap-$run" "$d/runs-0.txt"); then pass "gaps-$run" "$why gaps, a poll in each returns the next message"
    else fail "gaps-$run" "$why"; fi
}
next=$((top + 1))
start 1 || abort start-1 "the server did not start after the salvage: $(grep -m1 -A1 'panicked at' "$d/server-1.log" || tail -1 "$d/server-1.log")"
check_served 1
send $s $t $p after- 0 $BATCH || fail append-1 "send failed"
if why=$(poll_expect "$d" append-1 $s $t $p $next $BATCH after- $next); then pass append-1 "$BATCH at $next..$((next + BATCH - 1))"
else fail append-1 "$why"; fi
stop_server "$d" || fail stop-1 "the server needed SIGKILL"
grep -q 'panicked at' "$d/server-1.log" && fail panic-1 "$(grep -m1 'panicked at' "$d/server-1.log")"

# 5. Once more after SIGTERM, recover and a restart.
"$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-2.out" 2>&1 || abort recover-2 "exit $?: $(tail -1 "$d/recover-2.out")"
start 2 || abort start-2 "the server did not restart: $(grep -m1 -A1 'panicked at' "$d/server-2.log" || tail -1 "$d/server-2.log")"
check_served 2
cmp -s "$d/served-1.txt" "$d/served-2.txt" || fail served-same "the second start serves other rows than the first"
if why=$(poll_expect "$d" again $s $t $p $next $BATCH after- $next); then pass append-kept "the $BATCH appended still served"
else fail append-kept "$why"; fi
send $s $t $p after- $BATCH 1 || fail append-2 "send failed"
if why=$(poll_expect "$d" append-2 $s $t $p $((next + BATCH)) 1 after- $next); then pass append-2 "1 more at $((next + BATCH))"
else fail append-2 "$why"; fi
stop_server "$d" || fail stop-2 "the server needed SIGKILL"
grep -q 'panicked at' "$d/server-2.log" && fail panic-2 "$(grep -m1 'panicked at' "$d/server-2.log")"
"$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-3.out" 2>&1 || fail recover-3 "exit $?: $(tail -1 "$d/recover-3.out")"
if "$W" check --data-dir "$d/data" >"$d/check-final.txt" 2>&1; then pass check-final "ready"
else fail check-final "$(tail -1 "$d/check-final.txt")"; fi
"$VALID" "$d/data" >"$d/valid-final.json" 2>"$d/valid-final.err"
runs_of "$d/valid-final.json" >"$d/runs-final.txt"
# The runs of step 2, the last one (it ends at the top) extended by the 301 appended.
awk -v n=$((BATCH + 1)) '{ r[NR] = $0 } END {
        for (i = 1; i < NR; i++) print r[i]
        split(r[NR], l, " "); print l[1], l[2] + n }' "$d/runs-0.txt" >"$d/runs-want.txt"
if cmp -s "$d/runs-want.txt" "$d/runs-final.txt"; then pass scanner-final "$found + $((BATCH + 1)) messages, every offset of before the salvage"
else fail scanner-final "$(messages_of "$d/valid-final.json") messages in $(wc -l <"$d/runs-final.txt") runs, not the $found + $((BATCH + 1)) expected"; fi

if [ -n "${SIDECAR:-}" ]; then
    kill -TERM "$watch_pid"
    wait "$watch_pid"
    rc=$?
    watch_pid=
    [ $rc = 0 ] && pass sidecar-exit "0 on SIGTERM" || fail sidecar-exit "exit $rc on SIGTERM"
    if "$W" journal verify --state-dir "$d/state" >"$d/verify.out" 2>&1; then pass journal "sound"
    else fail journal "$(tail -1 "$d/verify.out")"; fi
fi

summary
[ $failed = 0 ] && echo "PASS rotation-race ($variant)" || echo "FAIL rotation-race ($variant)"
cleanup
exit $failed
