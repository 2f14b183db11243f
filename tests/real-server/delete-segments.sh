#!/usr/bin/env bash
# A `state/log` entry iggy-server 0.6.0 writes and cannot read back, and what `check`
# and `recover` say of it.
#
# 0.6.0 records every delete-segments request of its binary protocol in `state/log`
# (code 503), but its reader (`EntryCommand::from_bytes`) has no case for that code,
# so the next start stops with `Error: SdkError(InvalidCommand)`, whatever the data.
# The entry changes no metadata when replayed ("State is not affected by the delete
# segments"), so the log without it is the same metadata. So:
#   1. a fresh server; stream s1, topic t1 (100 messages); a delete-segments request
#      for 0 segments of t1 (`delete-segments.py`: the 0.6.0 CLI cannot send it);
#      then topic t2 (50 messages) and user alice, whose entries come after it;
#      SIGTERM;
#   2. `check` must name the entry `state-log-unreplayable` (InvalidCommand) and exit
#      non-zero;
#   3. the server must then fail to start, as `check` says: the script prints how;
#   4. `recover` (tolerate-tail) must exit 3 and change no byte; on a copy whose last
#      entry (user alice, created last) is torn as a crash leaves it, `recover --mode
#      salvage` must drop the entry and cut the torn one in one run, and the server
#      must start and serve t2, with user iggy only;
#   5. `recover --mode salvage` drops the entry and renumbers t2's (exit 0); the
#      server must start, serve t1's 100 and t2's 50 messages, append 10 more to t2
#      at offsets 50 to 59, and `check` must say ready after it stops;
#   6. after one more restart, t2 must be served from 0 to 59;
#   7. a request that deletes 1 segment of a partition of 2,400 messages (then 100
#      more sent): 0.6.0 removes the newest segment's log, not the oldest, and on
#      SIGTERM writes the messages it held in memory at byte 0 of the segment before,
#      over older ones (lost before any repair); `check` names the entry and the
#      damage, `recover --mode salvage` re-lays the partition and drops the entry,
#      and the server must serve every valid message the harness's scanner found.
# Last run (iggy-server 0.6.0 built from server-0.6.0): PASS; 1,800 valid messages
# left in step 7 (offsets 700 to 2,499), all served after salvage.
# Prints PASS or FAIL; exits 1 on FAIL. Not part of CI; needs the same variables as
# judge.sh (IGGY_SERVER, IGGY_CLI, IGGY_SERVER_CONFIG) and python3. PORT defaults to
# 8390.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
export IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy
d=$WORK/delete-segments
mkdir -p "$d/data"
fail() { fail_server "$@"; }

# 1: a delete-segments request between two topics.
start_server "$d" 1 || fail "server did not start: $(tail -3 "$d/server-1.log")"
cli stream create s1 >/dev/null 2>&1 || fail "stream create"
cli topic create s1 t1 1 none >/dev/null 2>&1 || fail "topic create t1"
send s1 t1 0 a 0 100 || fail "send to t1"
python3 tests/real-server/delete-segments.py "$PORT" iggy iggy 0 0 0 0 ||
    fail "the delete-segments request was not accepted"
cli topic create s1 t2 1 none >/dev/null 2>&1 || fail "topic create t2"
send s1 t2 0 b 0 50 || fail "send to t2"
cli user create alice alice-secret >/dev/null 2>&1 || fail "user create alice"
stop_server "$d" || fail "server did not stop"

# 2: what iggy-warden says.
"$W" check --data-dir "$d/data" >"$d/check.out" 2>&1
code=$?
grep 'state-log-unreplayable' "$d/check.out" | cut -c1-220 | sed 's/^/  check: /'
[ "$code" != 0 ] || fail "check said ready: $(cat "$d/check.out")"
grep -q 'state-log-unreplayable.*delete 0 segments of partition 0.*InvalidCommand' "$d/check.out" ||
    fail "check did not name the delete-segments entry: $(cat "$d/check.out")"

# 3: the server, the judge.
if start_server "$d" 2; then
    fail "the server started: check was wrong"
fi
say "server: $(grep -m1 -o 'Error: .*' "$d/server-2.log" || tail -1 "$d/server-2.log")"
grep -q 'InvalidCommand' "$d/server-2.log" || fail "the server stopped, but not on InvalidCommand: $(tail -5 "$d/server-2.log")"

# 4: not crash damage: tolerate-tail leaves it to an operator.
before=$(cd "$d/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
"$W" recover --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-tt.out" 2>&1
code=$?
[ "$code" = 3 ] || fail "recover (tolerate-tail) exit $code: $(cat "$d/recover-tt.out")"
after=$(cd "$d/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
[ "$before" = "$after" ] || fail "recover (tolerate-tail) changed the data directory"
say "recover (tolerate-tail): exit 3, nothing changed"

# 4b: on a copy, alice's entry (the last) torn as a crash leaves it: salvage drops
# the delete-segments entry and cuts the torn one in one rewrite; the server starts
# with both topics and without alice.
t=$WORK/delete-torn
mkdir -p "$t" && cp -a "$d/data" "$t/data"
"$INJECT" "$t/data" state-log-torn-tail >/dev/null || fail "inject a torn last entry"
"$W" recover --mode salvage --data-dir "$t/data" --state-dir "$WORK/state-torn" >"$t/recover.out" 2>&1 ||
    fail "recover --mode salvage (torn) exit $?: $(cat "$t/recover.out")"
grep -q 'and cut its crash tail' "$t/recover.out" || fail "the torn tail was not cut with the drop: $(cat "$t/recover.out")"
start_server "$t" 1 || fail "server did not start after the drop and cut: $(tail -5 "$t/server-1.log")"
users=$(cli user list -l list 2>&1 | awk -F'|' 'NF > 3 { gsub(/ /, "", $4); print $4 }' | sort | tr '\n' ' ')
poll_expect "$t" t2 s1 t2 0 0 50 b || fail "t2 not served whole after the drop and cut"
stop_server "$t" || fail "server did not stop"
say "torn copy: dropped and cut in one run; t2 served; users: $users"
[ "$users" = "iggy " ] || fail "expected only user iggy after the cut, listed: $users"

# 5: salvage drops the entry; the server starts with both topics and their messages.
"$W" recover --mode salvage --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-salvage.out" 2>&1 ||
    fail "recover --mode salvage exit $?: $(cat "$d/recover-salvage.out")"
say "recover --mode salvage: $(grep -m1 -o 'drop 1 entry.*' "$d/recover-salvage.out")"
start_server "$d" 3 || fail "server did not start after the drop: $(tail -5 "$d/server-3.log")"
topics=$(cli topic list s1 2>&1 | awk -F'|' 'NF > 3 { gsub(/ /, "", $4); print $4 }' | grep '^t' | sort | tr '\n' ' ')
say "topics of s1: $topics"
[ "$topics" = "t1 t2 " ] || fail "expected topics t1 and t2, listed: $topics"
poll_expect "$d" t1 s1 t1 0 0 100 a || fail "t1 not served whole"
poll_expect "$d" t2 s1 t2 0 0 50 b || fail "t2 not served whole"
send s1 t2 0 b 50 10 || fail "send 10 more to t2"
poll_expect "$d" t2-more s1 t2 0 50 10 b || fail "t2's 10 new messages not at offsets 50 to 59"
say "served t1 0..99 and t2 0..49; 10 appended to t2 at 50..59"
stop_server "$d" || fail "server did not stop"
"$W" check --data-dir "$d/data" >"$d/check-after.out" 2>&1 || fail "check after the drop: $(tail -3 "$d/check-after.out")"

# 6: and across a restart, with the renumbered log appended to since.
start_server "$d" 4 || fail "server did not restart: $(tail -5 "$d/server-4.log")"
poll_expect "$d" t2-all s1 t2 0 0 60 b || fail "t2 not served whole after a restart"
stop_server "$d" || fail "server did not stop"
say "after a restart: t2 0..59 served"

# 7: a request for 1 segment. 0.6.0 removes the newest segments (here the open one,
# whose messages were still in memory), keeps that segment's index, and on SIGTERM
# writes the messages it held at byte 0 of the segment before, over older messages.
d=$WORK/delete-one
mkdir -p "$d/data"
start_server "$d" 1 || fail "server did not start: $(tail -3 "$d/server-1.log")"
cli stream create s1 >/dev/null 2>&1 || fail "stream create"
cli topic create s1 t1 1 none >/dev/null 2>&1 || fail "topic create"
for i in 0 1 2 3; do send s1 t1 0 m $((i * 600)) 600 || fail "send"; done
python3 tests/real-server/delete-segments.py "$PORT" iggy iggy 0 0 0 1 ||
    fail "the delete-segments request was not accepted"
send s1 t1 0 m 2400 100 || fail "send after the request"
stop_server "$d" || fail "server did not stop"
"$VALID" "$d/data" >"$d/valid.json" || fail "scanner"
valid=$(jq '.partitions[0].messages' "$d/valid.json")
runs=$(jq -c '.partitions[0].runs' "$d/valid.json")
say "2,500 sent, 1 segment deleted: $valid valid messages left on disk, offsets $runs"
"$W" check --data-dir "$d/data" >"$d/check.out" 2>&1 && fail "check said ready"
grep -q 'state-log-unreplayable.*delete 1 segments' "$d/check.out" || fail "check did not name the entry: $(cat "$d/check.out")"
"$W" recover --mode salvage --data-dir "$d/data" --state-dir "$WORK/state-one" >"$d/recover.out" 2>&1 ||
    fail "recover --mode salvage exit $?: $(cat "$d/recover.out")"
say "recover --mode salvage: $(tail -1 "$d/recover.out")"
start_server "$d" 2 || fail "server did not start after salvage: $(tail -5 "$d/server-2.log")"
for run in $(jq -r '.partitions[0].runs[] | "\(.[0]):\(.[1])"' "$d/valid.json"); do
    first=${run%:*} last=${run#*:}
    poll_expect "$d" "run-$first" s1 t1 0 "$first" $((last - first + 1)) m ||
        fail "offsets $first..$last not served after salvage"
done
stop_server "$d" || fail "server did not stop"
"$W" check --data-dir "$d/data" >"$d/check-after.out" 2>&1 || fail "check after salvage: $(tail -3 "$d/check-after.out")"
say "served every one of the $valid valid messages"
echo "PASS"
