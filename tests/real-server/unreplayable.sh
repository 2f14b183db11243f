#!/usr/bin/env bash
# A `state/log` iggy-server 0.6.0 cannot replay, and what `check` and `recover` say of
# it; the server itself writes one.
#
# 0.6.0 replays `state/log` by the user ids its entries recorded, but numbers its
# users anew at every start (a slab filled in a hash map's order), and records a
# token's entry under the number its writer has then. So:
#   1. a fresh server; users alice and bob created (ids 1 and 2), alice deleted: the
#      log's users are root (0) and bob (2); SIGTERM;
#   2. a restart: root and bob get the numbers 0 and 1, in either order; each creates
#      a personal access token, so one token's entry records user 1; SIGTERM;
#   3. `check` must name that entry `state-log-unreplayable` ("user 1 does not
#      exist") and exit non-zero; `recover` must exit 3 under tolerate-tail and
#      salvage and change no byte;
#   4. the server must then fail to start, as `check` says: the script prints how;
#   5. `recover --mode point-in-time` cuts `state/log` before that entry (exit 0);
#      the server must start, list users iggy and bob, let bob log in, and
#      `check` must say ready after it stops.
# Last run (iggy-server 0.6.0 built from server-0.6.0): PASS twice, once with bob's
# token recorded under user 1, once with root's (its panic: `state/system.rs:433`).
# Prints PASS or FAIL; exits 1 on FAIL. Not part of CI; needs the same variables as
# judge.sh (IGGY_SERVER, IGGY_CLI, IGGY_SERVER_CONFIG). PORT defaults to 8390.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
export IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy
d=$WORK/unreplayable
mkdir -p "$d/data"
fail() { fail_server "$@"; }
as_bob() { timeout 60 "$IGGY_CLI" --tcp-server-address 127.0.0.1:$PORT --username bob --password bob-secret "$@"; }

# 1: users alice and bob, alice deleted.
start_server "$d" 1 || fail "server did not start: $(tail -3 "$d/server-1.log")"
cli user create alice alice-secret >/dev/null 2>&1 || fail "user create alice"
cli user create bob bob-secret >/dev/null 2>&1 || fail "user create bob"
cli user delete alice >/dev/null 2>&1 || fail "user delete alice"
stop_server "$d" || fail "server did not stop"

# 2: after a restart, a token each.
start_server "$d" 2 || fail "server did not restart: $(tail -3 "$d/server-2.log")"
cli pat create root-token >/dev/null 2>&1 || fail "pat create as root"
as_bob pat create bob-token >/dev/null 2>&1 || fail "pat create as bob"
stop_server "$d" || fail "server did not stop"

# 3: what iggy-warden says.
"$W" check --data-dir "$d/data" >"$d/check.out" 2>&1
code=$?
grep 'state-log-unreplayable' "$d/check.out" | sed 's/^/  check: /'
[ "$code" != 0 ] || fail "check said ready: $(cat "$d/check.out")"
grep -q 'state-log-unreplayable.*create personal access token.*user 1 does not exist' "$d/check.out" ||
    fail "check did not name the token's entry: $(cat "$d/check.out")"
before=$(cd "$d/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
for mode in tolerate-tail salvage; do
    "$W" recover --mode "$mode" --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-$mode.out" 2>&1
    code=$?
    [ "$code" = 3 ] || fail "recover --mode $mode exit $code: $(cat "$d/recover-$mode.out")"
done
after=$(cd "$d/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
[ "$before" = "$after" ] || fail "recover changed the data directory"
say "recover: exit 3 under tolerate-tail and salvage, nothing changed"

# 4: the server, the judge.
if start_server "$d" 3; then
    fail "the server started: check was wrong"
fi
say "server: $(grep -m1 -o "panicked at .*\|User: [0-9]* not found" "$d/server-3.log" || tail -1 "$d/server-3.log")"
grep -q "User: 1 not found" "$d/server-3.log" || fail "the server stopped, but not on user 1: $(tail -5 "$d/server-3.log")"


# 5: the operator's choice, point-in-time.
"$W" recover --mode point-in-time --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-pit.out" 2>&1 ||
    fail "recover --mode point-in-time exit $?: $(cat "$d/recover-pit.out")"
say "recover --mode point-in-time: $(grep -m1 'truncate state/log' "$d/recover-pit.out")"
start_server "$d" 4 || fail "server did not start after the cut: $(tail -5 "$d/server-4.log")"
users=$(cli user list -l list 2>&1 | awk -F'|' 'NF > 3 { gsub(/ /, "", $4); print $4 }' | sort | tr '\n' ' ')
say "users: $users"
[ "$users" = "bob iggy " ] || fail "expected users bob and iggy, listed: $users"
as_bob pat list >/dev/null 2>&1 || fail "bob cannot log in and list his tokens"
stop_server "$d" || fail "server did not stop"
"$W" check --data-dir "$d/data" >"$d/check-after.out" 2>&1 || fail "check after the cut: $(tail -3 "$d/check-after.out")"
echo "PASS"
