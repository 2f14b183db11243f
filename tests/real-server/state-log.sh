#!/usr/bin/env bash
# The real server as the judge of `state/log` repairs: every state-log injector of the
# harness (`inject-fault --list`, the `state-log-*` names), on copies of the committed
# clean fixture, repaired by `iggy-warden recover` and then served by iggy-server 0.6.0.
#
# Two bases, each made ready by `recover` and listed by the running server first
# (streams, topics and users, as `iggy ... list` prints them):
#   fixture  the clean fixture as committed: its last entry creates topic `cpu` of
#            stream `metrics` (300 messages), the one before it the stream. Cutting
#            either would leave those messages without metadata, so `recover` must exit
#            3 in every mode and change no byte. Then the two operator steps the README
#            gives are followed, each on its own copy:
#              backup  put back a copy of `state/log` taken before the damage;
#              move    move the folders `check` names `folder-without-metadata` out of
#                      the data directory, `recover` (tolerate-tail, salvage or, for
#                      damage before the last entry, point-in-time), start the server,
#                      re-create the stream and topic by name, publish the moved
#                      segment's payloads again; they must be served in their order at
#                      offsets 0..N-1, and the listing must equal the one before.
#   users    the fixture after the real server created users `alice` and `bob`: the
#            last two entries create no folder, so a cut orphans nothing. A fault in
#            the last entry is cut under tolerate-tail or salvage; damage before it
#            (a flipped byte in `alice`'s entry, an index gap) makes tolerate-tail and
#            salvage exit 3 unchanged and is cut by point-in-time.
# After each repair the server must start, list the same streams, topics and users as
# before the damage less the users of the cut entries (`check` names each cut entry as
# far as its bytes still decode, and must name no other user), serve every message the
# harness's scanner finds (every run of offsets, polled as such), take appends to every
# partition and a new topic with messages, and serve all of them again after SIGTERM,
# `recover` and a restart; a last append must land next, and `check` must say ready at
# the end. Users are compared by name and status: 0.6.0 numbers them anew, in no fixed
# order, at every start (measured on undamaged data too).
#
# Prints one PASS or FAIL line per case and exits 1 when any case fails.
# Not part of CI: needs iggy-server and the iggy CLI of apache/iggy tag server-0.6.0
# and python3 (to read payloads from a moved segment):
#   IGGY_SERVER=.../iggy-server IGGY_CLI=.../iggy \
#   IGGY_SERVER_CONFIG=.../core/configs/server.toml tests/real-server/state-log.sh
# Optional: CASES (a subset of the case names printed), PORT (8390), KEEP=1 keeps the
# work folder.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
APPENDS=${APPENDS:-500}

digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# What the running server lists: one line per stream, topic and user, without sizes,
# sorted (the server lists users in no fixed order).
listing() { listing_unsorted | sort; }
listing_unsorted() {
    local s
    cli stream list -l list 2>&1 | awk -F'|' 'NF > 3 { print "stream", $1, $3, "messages=" $5, "topics=" $6 }'
    for s in $(cli stream list -l list 2>/dev/null | awk -F'|' 'NF > 3 { print $1 }'); do
        cli topic list "$s" -l list 2>&1 | awk -F'|' -v s="$s" 'NF > 3 { print "topic", s, $1, $3, "messages=" $(NF - 1), "partitions=" $NF }'
    done
    # By name: 0.6.0 numbers users anew, in no fixed order, at every start (measured).
    cli user list -l list 2>&1 | awk -F'|' 'NF > 3 { print "user", $4, $3 }'
}

# Every partition's runs of valid offsets, "S T P first last" a line (the harness's
# own scanner, which shares no code with iggy-warden).
all_runs() {
    "$VALID" "$1" | jq -r '.partitions[] | .partition as $p | .runs[] | "\($p | gsub("/"; " ")) \(.[0]) \(.[1])"'
}

# serves dir tag: every run of every partition is served, in polls of 1,000.
serves() {
    local d=$1 s t p first last from
    while read -r -u 3 s t p first last; do
        for ((from = first; from <= last; from += 1000)); do
            poll_expect "$d" "$2-$s-$t-$p-$from" "$s" "$t" "$p" "$from" \
                $((last + 1 - from < 1000 ? last + 1 - from : 1000)) || return 1
        done
    done 3<"$d/runs-$2.txt"
}

# The payloads of a moved partition's segments, one a line, in offset order; fails when
# a message has user headers or a payload that is not one line of text (the CLI sends
# lines).
payloads() {
    python3 - "$1" <<'EOF'
import glob, os, struct, sys
out = []
for log in sorted(glob.glob(os.path.join(sys.argv[1], "*.log"))):
    b = open(log, "rb").read()
    at = 0
    while at + 56 <= len(b):
        headers, length = struct.unpack_from("<II", b, at + 48)
        payload = b[at + 56:at + 56 + length]
        if headers or len(payload) != length or b"\n" in payload or not payload.isascii():
            sys.exit(f"{log}: message at byte {at} cannot be sent again as a line")
        out.append(payload.decode())
        at += 56 + length + headers
    if at != len(b):
        sys.exit(f"{log}: {len(b) - at} bytes after the last whole message")
print("\n".join(out))
EOF
}

# prepare base: a ready copy of the fixture, listed by the server (and, for "users",
# with two users created on it first). Sets nothing; writes $WORK/base-NAME.
prepare() {
    local b=$WORK/base-$1
    mkdir -p "$b" && cp -r "$FIXTURES/clean" "$b/data" && chmod -R u+w "$b/data"
    "$W" recover --data-dir "$b/data" --state-dir "$b/state" >"$b/recover.out" 2>&1 || { echo "recover of the fixture: $(tail -1 "$b/recover.out")"; return 1; }
    start_server "$b" 1 || { echo "server did not start on the base"; return 1; }
    if [ "$1" = users ]; then
        cli user create alice Alice-secret-1 >/dev/null 2>&1 && cli user create bob Bob-secret-2 >/dev/null 2>&1 ||
            { echo "cannot create users"; stop_server "$b"; return 1; }
    fi
    listing >"$b/listing.txt"
    stop_server "$b" || { echo "base server needed SIGKILL"; return 1; }
    "$W" check --data-dir "$b/data" >"$b/check.out" 2>&1 || { echo "base not ready: $(tail -1 "$b/check.out")"; return 1; }
    rm -rf "$b/state" "$b/server.pid"
}

# Length of the last entry of a base's state/log, found by the harness's framing.
last_entry_len() {
    local t=$WORK/frame-$1
    rm -rf "$t" && mkdir -p "$t/state" && cp "$WORK/base-$1/data/state/log" "$t/state/log"
    "$INJECT" "$t" state-log-flip-last-entry | jq -r '.original_len - .offset'
}

# The users the cut entries created, as `recover`'s report names them.
cut_users() { grep -o 'create user [0-9]* "[^"]*"' "$1" | sed 's/.*"\(.*\)"/\1/' | sort -u; }

# exercise dir expected-listing: start, compare the listing, serve every message, append
# to every partition, create a topic with messages; SIGTERM, recover, restart, serve it
# all again; one more append lands next; SIGTERM, recover, check ready.
exercise() {
    local d=$1 want=$2 ok=1 s t p first last n
    all_runs "$d/data" >"$d/runs-kept.txt" || { echo "scanner failed"; return 1; }
    start_server "$d" 1 || { echo "server did not start: $(grep -m1 -iE 'panic|error' "$d/server-1.log")"; return 1; }
    listing >"$d/listing-1.txt"
    diff "$want" "$d/listing-1.txt" >"$d/listing.diff" || { echo "listing differs: $(tr '\n' ' ' <"$d/listing.diff")"; ok=0; }
    [ $ok = 1 ] && { serves "$d" kept || ok=0; }
    # Appends after the last valid offset of every partition.
    : >"$d/appended.txt"
    while [ $ok = 1 ] && read -r -u 3 s t p n; do
        send "$s" "$t" "$p" "app-$s$t$p-" 0 "$APPENDS" || { echo "send to $s/$t/$p failed"; ok=0; break; }
        poll_expect "$d" "app-$s-$t-$p" "$s" "$t" "$p" "$n" "$APPENDS" "app-$s$t$p-" "$n" || { ok=0; break; }
        echo "$s $t $p $n" >>"$d/appended.txt"
    done 3< <(awk '{ last[$1 " " $2 " " $3] = $5 } END { for (k in last) print k, last[k] + 1 }' "$d/runs-kept.txt" | sort)
    if [ $ok = 1 ]; then
        cli topic create 0 added-after-repair 1 none >/dev/null 2>&1 || { echo "topic create failed"; ok=0; }
        new_topic=$(cli topic list 0 -l list 2>/dev/null | awk -F'|' '$3 == "added-after-repair" { print $1 }')
        [ -n "$new_topic" ] || { echo "new topic not listed"; ok=0; }
        [ $ok = 1 ] && { send 0 "$new_topic" 0 new- 0 100 && poll_expect "$d" newtopic 0 "$new_topic" 0 0 100 new- 0 || { echo "new topic: messages not served"; ok=0; }; }
    fi
    stop_server "$d" || { echo "server needed SIGKILL"; ok=0; }
    grep -qi panic "$d/server-1.log" && { echo "server panicked (run 1)"; ok=0; }
    [ $ok = 1 ] || return 1

    "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-2.out" 2>&1 || { echo "second recover exit $?: $(tail -1 "$d/recover-2.out")"; return 1; }
    start_server "$d" 2 || { echo "server did not restart: $(grep -m1 -iE 'panic|error' "$d/server-2.log")"; return 1; }
    serves "$d" kept || ok=0
    while [ $ok = 1 ] && read -r -u 3 s t p n; do
        poll_expect "$d" "again-$s-$t-$p" "$s" "$t" "$p" "$n" "$APPENDS" "app-$s$t$p-" "$n" || { ok=0; break; }
    done 3<"$d/appended.txt"
    [ $ok = 1 ] && { poll_expect "$d" newtopic-again 0 "$new_topic" 0 0 100 new- 0 || ok=0; }
    if [ $ok = 1 ]; then
        read -r s t p n <"$d/appended.txt"
        send "$s" "$t" "$p" "app-$s$t$p-" "$APPENDS" 1 && poll_expect "$d" last "$s" "$t" "$p" $((n + APPENDS)) 1 "app-$s$t$p-" "$n" || { echo "append after restart failed"; ok=0; }
    fi
    stop_server "$d" || { echo "server needed SIGKILL after restart"; ok=0; }
    grep -qi panic "$d/server-2.log" && { echo "server panicked (run 2)"; ok=0; }
    [ $ok = 1 ] || return 1
    "$W" recover --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-3.out" 2>&1 || { echo "third recover exit $?"; return 1; }
    "$W" check --data-dir "$d/data" >"$d/check-final.txt" 2>&1 || { echo "final check: $(tail -1 "$d/check-final.txt")"; return 1; }
}

# damage base fault keep dir: a copy of the base with the fault injected.
damage() {
    local base=$1 fault=$2 keep=$3 d=$4 arg=()
    mkdir -p "$d" && cp -r "$WORK/base-$base/data" "$d/data"
    case $keep in
    -) ;;
    end-*) arg=($(($(last_entry_len "$base") - ${keep#end-}))) ;;
    *) arg=("$keep") ;;
    esac
    "$INJECT" "$d/data" "$fault" "${arg[@]}" >"$d/inject.json" 2>"$d/inject.err" || { echo "inject: $(cat "$d/inject.err")"; return 1; }
}

# A case whose cut would orphan messages: exit 3 in every mode, then both operator steps.
run_orphan() {
    local name=$1 base=$2 fault=$3 keep=$4 mode=$5 d=$WORK/$1 before m rc
    damage "$base" "$fault" "$keep" "$d" || return 1
    before=$(digest "$d/data")
    for m in tolerate-tail salvage point-in-time absolute; do
        "$W" recover --mode $m --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-$m.out" 2>&1
        rc=$?
        [ $rc = 3 ] || { echo "recover --mode $m exit $rc, not 3"; return 1; }
        [ "$(digest "$d/data")" = "$before" ] || { echo "recover --mode $m changed files"; return 1; }
    done
    grep -q 'without metadata' "$d/recover-tolerate-tail.out" || { echo "the report does not say messages would lose their metadata"; return 1; }
    "$W" check --json --data-dir "$d/data" >"$d/check-damaged.json" 2>/dev/null

    # Operator step 1: put back a state/log from before the damage (a backup).
    local a=$d/backup
    mkdir -p "$a" && cp -r "$d/data" "$a/data" && cp "$WORK/base-$base/data/state/log" "$a/data/state/log"
    "$W" recover --data-dir "$a/data" --state-dir "$a/state" >"$a/recover-1.out" 2>&1 || { echo "backup: recover exit $?"; return 1; }
    exercise "$a" "$WORK/base-$base/listing.txt" || { echo "(backup step)"; return 1; }

    # Operator step 2: move the orphaned folders out, recover, re-create, publish again.
    m=$d/move
    local rel
    mkdir -p "$m/moved" && cp -r "$d/data" "$m/data"
    for rel in $(jq -r '.problems[] | select(.kind == "folder-without-metadata") | .path' "$d/check-damaged.json" | sed "s|^$d/data/||"); do
        mkdir -p "$m/moved/$(dirname "$rel")" && mv "$m/data/$rel" "$m/moved/$rel"
    done
    [ -d "$m/moved/streams" ] || { echo "check named no folder-without-metadata"; return 1; }
    "$W" recover --mode $mode --data-dir "$m/data" --state-dir "$m/state" >"$m/recover-1.out" 2>&1 || { echo "move: recover --mode $mode exit $?: $(tail -1 "$m/recover-1.out")"; return 1; }
    "$W" check --data-dir "$m/data" >"$m/check-1.out" 2>&1 || { echo "move: not ready after recover"; return 1; }
    start_server "$m" 0 || { echo "move: server did not start: $(grep -m1 -iE 'panic|error' "$m/server-0.log")"; return 1; }
    listing >"$m/listing-cut.txt"
    # Re-create by name what the base listed and the cut server lacks, then publish.
    local ok=1 sid sname tname parts pdir
    while read -r -u 3 _ sid sname _; do
        grep -q "^stream [0-9]* $sname " "$m/listing-cut.txt" && continue
        cli stream create "$sname" >/dev/null 2>&1 || { echo "move: stream create $sname failed"; ok=0; }
    done 3< <(grep '^stream' "$WORK/base-$base/listing.txt")
    while [ $ok = 1 ] && read -r -u 3 _ sid _ tname _ parts; do
        sname=$(awk -v id="$sid" '$1 == "stream" && $2 == id { print $3 }' "$WORK/base-$base/listing.txt")
        cli topic list "$sname" -l list 2>/dev/null | awk -F'|' -v t="$tname" '$3 == t { f = 1 } END { exit !f }' && continue
        cli topic create "$sname" "$tname" "${parts#partitions=}" none >/dev/null 2>&1 || { echo "move: topic create $sname/$tname failed"; ok=0; }
    done 3< <(grep '^topic' "$WORK/base-$base/listing.txt")
    # Publish each moved partition's payloads again, to the stream and topic of the same
    # names (the folders' numbers may differ), and read them back in order.
    for pdir in "$m"/moved/streams/*/topics/*/partitions/*; do
        [ $ok = 1 ] || break
        read -r sid tid pid <<<"$(echo "${pdir#"$m/moved/"}" | awk -F/ '{ print $2, $4, $6 }')"
        sname=$(awk -v id="$sid" '$1 == "stream" && $2 == id { print $3 }' "$WORK/base-$base/listing.txt")
        tname=$(awk -v s="$sid" -v id="$tid" '$1 == "topic" && $2 == s && $3 == id { print $4 }' "$WORK/base-$base/listing.txt")
        payloads "$pdir" >"$m/payloads-$sid-$tid-$pid.txt" || { echo "move: $(tail -1 "$m/payloads-$sid-$tid-$pid.txt")"; ok=0; break; }
        cli message send -p "$pid" "$sname" "$tname" <"$m/payloads-$sid-$tid-$pid.txt" >/dev/null 2>&1 || { echo "move: send failed"; ok=0; break; }
        local count
        count=$(wc -l <"$m/payloads-$sid-$tid-$pid.txt")
        cli message poll --offset 0 --message-count "$count" "$sname" "$tname" "$pid" >"$m/poll-republished.txt" 2>&1
        if [ "$(rows "$m/poll-republished.txt")" != "$(awk '{ print NR - 1, $0 }' "$m/payloads-$sid-$tid-$pid.txt")" ]; then
            echo "move: the $count payloads published again are not served in order at 0..$((count - 1))"
            ok=0
        fi
    done
    stop_server "$m" || { echo "move: server needed SIGKILL"; ok=0; }
    [ $ok = 1 ] || return 1
    "$W" recover --data-dir "$m/data" --state-dir "$m/state" >"$m/recover-2.out" 2>&1 || { echo "move: recover after re-publishing exit $?"; return 1; }
    # Same names, topics and counts as before the damage; the re-created stream and
    # topic get the ids the server gives them, and users are as they were.
    exercise "$m" "$WORK/base-$base/listing.txt" || { echo "(move step)"; return 1; }
    echo "exit 3 in every mode, unchanged; backup step and move step ($(find "$m/moved" -name '*.log' | wc -l) segment(s) moved, $(cat "$m"/payloads-*.txt | wc -l) payloads re-published) served"
}

# A case a mode cuts: `refusing` modes exit 3 unchanged, `mode` repairs; the users of
# the cut entries must be exactly `gone` (the listing shows it), and `check` may name
# no other.
run_cut() {
    local name=$1 base=$2 fault=$3 keep=$4 refusing=$5 mode=$6 gone=$7 d=$WORK/$1 before m rc said u
    damage "$base" "$fault" "$keep" "$d" || return 1
    before=$(digest "$d/data")
    for m in $refusing; do
        "$W" recover --mode "$m" --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-$m.out" 2>&1
        rc=$?
        [ $rc = 3 ] || { echo "recover --mode $m exit $rc, not 3"; return 1; }
        [ "$(digest "$d/data")" = "$before" ] || { echo "recover --mode $m changed files"; return 1; }
    done
    # What the cut entries did, as `check` names them (a torn entry's command may be
    # gone): every user it names as created there must be one the case expects gone.
    "$W" check --data-dir "$d/data" >"$d/check-damaged.out" 2>&1
    said=$(grep -o 'entries at or after it: .*' "$d/check-damaged.out" | sed 's/^entries at or after it: //')
    for u in $(cut_users "$d/check-damaged.out"); do
        case " $gone " in *" $u "*) ;; *) echo "check names user $u as cut, expected only [$gone]"; return 1 ;; esac
    done
    "$W" recover --mode "$mode" --data-dir "$d/data" --state-dir "$d/state" >"$d/recover-1.out" 2>&1 || { echo "recover --mode $mode exit $?: $(tail -1 "$d/recover-1.out")"; return 1; }
    "$W" check --data-dir "$d/data" >"$d/check-1.out" 2>&1 || { echo "check after recover: not ready"; return 1; }
    local want=$d/listing-want.txt
    cp "$WORK/base-$base/listing.txt" "$want"
    for u in $gone; do sed -i "/^user $u /d" "$want"; done
    exercise "$d" "$want" || return 1
    echo "recover --mode $mode cut at byte $(jq -r .offset "$d/inject.json") (${refusing:+$refusing exit 3 unchanged; }users gone: ${gone:-none}; check named: ${said:-nothing}; recover: $(tail -1 "$d/recover-1.out")); served"
}

CASES=${CASES:-"fixture-torn-1 fixture-torn-half fixture-torn-5-off fixture-zero-tail fixture-flip-last fixture-flip-earlier fixture-index-gap users-torn-1 users-torn-header users-torn-half users-torn-1-off users-zero-tail users-flip-last users-flip-last-salvage users-flip-earlier users-index-gap"}
run() {
    case $1 in
    fixture-torn-1) run_orphan "$1" fixture state-log-torn-tail 1 tolerate-tail ;;
    fixture-torn-half) run_orphan "$1" fixture state-log-torn-tail - salvage ;;
    fixture-torn-5-off) run_orphan "$1" fixture state-log-torn-tail end-5 tolerate-tail ;;
    fixture-zero-tail) run_cut "$1" fixture state-log-zero-tail - absolute tolerate-tail "" ;;
    fixture-flip-last) run_orphan "$1" fixture state-log-flip-last-entry - tolerate-tail ;;
    fixture-flip-earlier) run_orphan "$1" fixture state-log-flip-earlier-entry - point-in-time ;;
    fixture-index-gap) run_orphan "$1" fixture state-log-index-gap - point-in-time ;;
    users-torn-1) run_cut "$1" users state-log-torn-tail 1 absolute tolerate-tail "bob" ;;
    users-torn-header) run_cut "$1" users state-log-torn-tail 52 "" salvage "bob" ;;
    users-torn-half) run_cut "$1" users state-log-torn-tail - "" salvage "bob" ;;
    users-torn-1-off) run_cut "$1" users state-log-torn-tail end-1 "" tolerate-tail "bob" ;;
    users-zero-tail) run_cut "$1" users state-log-zero-tail - "" salvage "" ;;
    users-flip-last) run_cut "$1" users state-log-flip-last-entry - absolute tolerate-tail "bob" ;;
    users-flip-last-salvage) run_cut "$1" users state-log-flip-last-entry - "" salvage "bob" ;;
    users-flip-earlier) run_cut "$1" users state-log-flip-earlier-entry - "tolerate-tail salvage absolute" point-in-time "alice bob" ;;
    users-index-gap) run_cut "$1" users state-log-index-gap - "tolerate-tail salvage" point-in-time "bob" ;;
    *) echo "no case $1"; return 1 ;;
    esac
}

failed=0
for base in fixture users; do
    msg=$(prepare $base) || { echo "FAIL base $base: $msg"; exit 1; }
done
for c in $CASES; do
    msg=$(run "$c")
    rc=$?
    # A server left behind by a failed case would hold the port for the next one.
    for pid_file in "$WORK/$c/server.pid" "$WORK/$c"/*/server.pid; do
        [ -f "$pid_file" ] && kill -KILL "$(cat "$pid_file")" 2>/dev/null
    done
    if [ $rc = 0 ]; then verdict=PASS; else verdict=FAIL failed=1; fi
    printf '%s %-24s %s\n' $verdict "$c" "${msg//$'\n'/; }"
done
[ -n "${KEEP:-}" ] && echo "work folder: $WORK"
exit $failed
