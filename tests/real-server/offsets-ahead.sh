#!/usr/bin/env bash
# A consumer whose stored offset a crash left past its partition's end, under the real
# iggy-server 0.6.0, and what `check` and `recover` say of it.
#
#   1. a fresh server; a stream, a topic of one partition; 20 messages sent; consumer
#      7 polls them all with `--next --auto-commit` (its stored offset: 19); SIGTERM;
#   2. the last message torn (`inject-fault torn-log-tail`), as a crash leaves a
#      message the consumer had already been served;
#   3. `recover` cuts it (19 messages kept, the next offset 19) and must warn that
#      consumer 7 will not see the next 1 message; the offset file must be unchanged
#      and `check` must say ready with the same warning;
#   4. the server starts and serves the 19 kept messages; 3 messages are sent
#      (offsets 19, 20, 21); consumer 7 polls `--next`: the script reports what the
#      consumer gets. The warning is right when it gets offsets 20 and 21 only:
#      offset 19 skipped without an error.
# With RESET=1, step 3 runs `recover --reset-offsets-ahead`: it must reset consumer
# 7's file to 18 (the last kept message) with no warning left, `check` must warn of
# nothing, and in step 4 consumer 7 must get offsets 19, 20 and 21.
# Last run (iggy-server 0.6.0 built from server-0.6.0): PASS, consumer 7 got [20 21];
# with RESET=1, PASS, consumer 7 got [19 20 21].
# The kept messages are polled before the sends: once new messages are in the
# server's memory, a poll from offset 0 returned only those (0.6.0, seen here).
# Prints PASS or FAIL; exits 1 on FAIL. Not part of CI; needs the same variables as
# judge.sh (IGGY_SERVER, IGGY_CLI, IGGY_SERVER_CONFIG). PORT defaults to 8390.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
RESET=${RESET:-}
export IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy
d=$WORK/ahead
mkdir -p "$d/data"
fail() { fail_server "$@"; }

# 1: a consumer that has seen every message.
start_server "$d" 1 || fail "server did not start: $(tail -3 "$d/server-1.log")"
cli stream create ahead >/dev/null 2>&1 || fail "stream create"
cli topic create ahead t 1 none >/dev/null 2>&1 || fail "topic create"
send ahead t 0 m 0 20 || fail "send"
cli message poll --next --auto-commit --consumer 7 --message-count 100 ahead t 0 >"$d/poll-1.txt" 2>&1
say "consumer 7 polled offsets $(rows "$d/poll-1.txt" | cut -d' ' -f1 | tr '\n' ' ')"
stop_server "$d" || fail "server did not stop"
part=$(find "$d/data/streams" -mindepth 5 -maxdepth 5 -path '*/partitions/*' -type d | head -1)
offset_file=$part/offsets/consumers/7
[ -f "$offset_file" ] || fail "no offset file for consumer 7 under $part/offsets/consumers"
stored=$(od -An -t u8 "$offset_file" | tr -d ' ')
say "stored offset of consumer 7: $stored"
[ "$stored" = 19 ] || fail "expected 19 stored"

# 2-3: a torn last message, cut by recover.
"$INJECT" "$d/data" torn-log-tail "${part#"$d/data/"}" >/dev/null || fail "inject-fault"
before=$(sha256sum <"$offset_file")
reset_flag=()
[ -n "$RESET" ] && reset_flag=(--reset-offsets-ahead)
"$W" recover "${reset_flag[@]}" --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover.out" 2>&1 ||
    fail "recover exit $?: $(tail -1 "$d/recover.out")"
"$W" check --data-dir "$d/data" >"$d/check.out" 2>&1 || fail "check after recover: $(tail -1 "$d/check.out")"
if [ -n "$RESET" ]; then
    grep 'reset .*offsets/consumers/7' "$d/recover.out" | sed 's/^/  recover: /'
    grep -q "reset .*offsets/consumers/7 from offset 19 to 18" "$d/recover.out" ||
        fail "recover did not reset consumer 7: $(cat "$d/recover.out")"
    ! grep -q '^warning: ' "$d/recover.out" || fail "a warning is left: $(cat "$d/recover.out")"
    now=$(od -An -t u8 "$offset_file" | tr -d ' ')
    [ "$now" = 18 ] || fail "expected 18 stored after the reset, found $now"
    ! grep -q "warning: " "$d/check.out" || fail "check still warns: $(cat "$d/check.out")"
    expected="19 20 21"
else
    grep '^warning: ' "$d/recover.out" | sed 's/^/  recover: /'
    grep -q "consumer offset 19 stored, past the end of partition .* (its next message gets offset 19): that consumer will not see the next 1 message(s) produced" "$d/recover.out" ||
        fail "recover did not warn of consumer 7: $(cat "$d/recover.out")"
    [ "$(sha256sum <"$offset_file")" = "$before" ] || fail "recover changed the offset file"
    grep -q "^  warning: .*consumer offset 19 stored" "$d/check.out" || fail "check did not warn"
    expected="20 21"
fi
say "check: $(tail -1 "$d/check.out")"

# 4: what the server does with it.
start_server "$d" 2 || fail "server did not start after recover: $(grep -m1 -iE 'error|panic' "$d/server-2.log")"
poll_expect "$d" kept ahead t 0 0 19 m || fail "the kept messages are not served"
send ahead t 0 n 0 3 || fail "send after recover"
poll_expect "$d" new ahead t 0 19 3 n 19 || fail "the new messages are not served at 19..21"
say "the partition serves offsets 0..18 (kept) and 19..21 (sent after the restart)"
cli message poll --next --consumer 7 --message-count 100 ahead t 0 >"$d/poll-2.txt" 2>&1
got=$(rows "$d/poll-2.txt" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')
say "consumer 7 polls --next after the restart: offsets [$got]"
stop_server "$d" || fail "server did not stop"
[ "$got" = "$expected" ] || fail "expected consumer 7 to get offsets [$expected], got [$got]"
if [ -n "$RESET" ]; then
    echo "PASS: after the reset the consumer got every message produced, from offset 19"
else
    echo "PASS: the consumer skipped offset 19 without an error, as recover and check warned"
fi
