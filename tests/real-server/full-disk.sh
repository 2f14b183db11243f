#!/usr/bin/env bash
# A full disk under the real server, run by hand (not in CI: it mounts a tmpfs, which
# needs root; run it as root, or inside `unshare -m -r` where that allows mounting).
#
#   1. a tmpfs of $DISK_SIZE (default 8m) is the server's data directory; the server
#      (64 KB segments) gets a stream, a topic of $PARTITIONS partitions (3) and a user;
#   2. clients send batches of 1,000 messages to every partition until a send fails
#      and the tmpfs has no room left; then, with the disk still full, a topic and a
#      user are created (metadata appended to state/log on a full disk);
#   3. the server is SIGKILLed and the tmpfs grown by 8m (space freed);
#   4. the harness's scanner (`valid-messages`) lists every valid message; `check` says
#      what the full disk left; with CONTROL=1 a copy is also started unrepaired first,
#      to show what 0.6.0 does with it;
#   5. `recover` (tolerate-tail; if it exits 3, the script says so and runs salvage),
#      then `check` must say ready and the scanner must find the same messages;
#   6. the server must start, list the stream, serve every valid message (each run of
#      offsets, polled as such), and take appends right after the last message of
#      every partition, again after SIGTERM, `recover` and a restart.
# Prints what it measured and PASS or FAIL; exits 1 on FAIL.
#   IGGY_SERVER=.../iggy-server IGGY_CLI=.../iggy \
#   IGGY_SERVER_CONFIG=.../core/configs/server.toml tests/real-server/full-disk.sh
# Optional: DISK_SIZE, PARTITIONS, PORT (8390), KEEP=1 keeps the work folder (the
# tmpfs is unmounted in any case, its last contents copied to data-final/).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
DISK_SIZE=${DISK_SIZE:-8m}
PARTITIONS=${PARTITIONS:-3}
APPENDS=500
# A fresh data directory: the root user is created with these credentials.
export IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy
d=$WORK/full
mkdir -p "$d/data"
mount -t tmpfs -o "size=$DISK_SIZE" tmpfs "$d/data" || { echo "FAIL cannot mount a tmpfs (needs root)"; exit 2; }
cleanup() {
    [ -f "$d/server.pid" ] && kill -KILL "$(cat "$d/server.pid")" 2>/dev/null
    sleep 0.5
    mkdir -p "$d/data-final" && cp -a "$d/data/." "$d/data-final/" 2>/dev/null
    umount "$d/data"
    [ -n "${KEEP:-}" ] && echo "work folder: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; exit 1; }
say() { echo "  $*"; }

# 1-2: fill it.
start_server "$d" 1 || fail "server did not start on the empty tmpfs"
cli stream create full >/dev/null 2>&1 || fail "stream create"
cli topic create full t "$PARTITIONS" none >/dev/null 2>&1 || fail "topic create"
cli user create before-full Before-full-1 >/dev/null 2>&1 || fail "user create"
declare -A acked
for ((p = 0; p < PARTITIONS; p++)); do acked[$p]=0; done
batch=0 full=0
while [ $full = 0 ] && [ $batch -lt 1000 ]; do
    for ((p = 0; p < PARTITIONS; p++)); do
        awk -v p="$p" -v b="$batch" 'BEGIN { for (i = 0; i < 1000; i++) printf "p%d-b%05d-m%04d-%0180d\n", p, b, i, 0 }' |
            cli message send -p "$p" full t >"$d/send.out" 2>&1
        if [ $? != 0 ] || grep -qiE 'error|failed' "$d/send.out"; then full=1; break; fi
        acked[$p]=$((acked[$p] + 1000))
    done
    batch=$((batch + 1))
done
avail=$(df --output=avail -B1 "$d/data" | tail -1)
say "sends stopped after $batch rounds ($(tail -1 "$d/send.out" | cut -c1-160)); tmpfs free: $avail bytes"
say "acknowledged per partition: $(for ((p = 0; p < PARTITIONS; p++)); do printf '%s ' "${acked[$p]}"; done)"
cli topic create full made-on-full-disk 1 none >"$d/topic-full.out" 2>&1
say "topic create on the full disk: exit $? ($(tail -1 "$d/topic-full.out" | cut -c1-120))"
cli user create made-on-full-disk Full-disk-1 >"$d/user-full.out" 2>&1
say "user create on the full disk: exit $? ($(tail -1 "$d/user-full.out" | cut -c1-120))"
grep -m3 -iE 'no space|panic' "$d/server-1.log" | cut -c1-200 | sed 's/^/  server log: /'

# 3: crash, then room again.
kill -KILL "$(cat "$d/server.pid")"
while kill -0 "$(cat "$d/server.pid")" 2>/dev/null; do sleep 0.2; done
mount -o remount,size=$(( $(df --output=size -B1 "$d/data" | tail -1) + 8 * 1024 * 1024 )) "$d/data" || fail "cannot grow the tmpfs"
say "server SIGKILLed; tmpfs grown to $(df --output=size -B1 "$d/data" | tail -1) bytes"

# 4: what the full disk left.
"$VALID" "$d/data" >"$d/valid-before.json" || fail "scanner"
say "valid messages per partition: $(jq -r '[.partitions[] | "\(.partition)=\(.messages) runs \(.runs | map("\(.[0])..\(.[1])") | join(","))"] | join("; ")' "$d/valid-before.json")"
"$W" check --data-dir "$d/data" >"$d/check-damaged.txt" 2>&1
say "check before recover: exit $? ($(tail -1 "$d/check-damaged.txt"))"
grep -E '^  [a-z-]+:' "$d/check-damaged.txt" | awk '{ print $1 }' | sort | uniq -c | sed 's/^/    /'
if [ -n "${CONTROL:-}" ]; then
    c=$WORK/control
    mkdir -p "$c" && cp -a "$d/data" "$c/data"
    if start_server "$c" 1; then
        for ((p = 0; p < PARTITIONS; p++)); do
            first=$(jq -r --arg id "0/0/$p" '.partitions[] | select(.partition == $id) | .runs[-1][1]' "$d/valid-before.json")
            cli message poll --offset "$first" --message-count 1 full t "$p" >"$c/poll-$p.txt" 2>&1
            send full t "$p" control- 0 1
            cli message poll --offset 0 --message-count 100000 full t "$p" >"$c/all-$p.txt" 2>&1
            say "CONTROL unrepaired: partition $p: last valid offset $first served as: $(rows "$c/poll-$p.txt" | head -1 | cut -c1-40); an append landed at offset $(rows "$c/all-$p.txt" | awk '$2 ~ /^control-/ { print $1 }')"
        done
        stop_server "$c"
    else
        say "CONTROL unrepaired: the server did not start: $(grep -m1 -iE 'error|panic' "$c/server-1.log" | cut -c1-200)"
    fi
fi

# 5: recover.
mode=tolerate-tail
"$W" recover --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-1.out" 2>&1
rc=$?
if [ $rc = 3 ]; then
    say "recover (tolerate-tail) exit 3: $(grep -m1 'needs an operator' "$d/recover-1.out" | cut -c1-200); running salvage"
    mode=salvage
    "$W" recover --mode salvage --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-1.out" 2>&1
    rc=$?
fi
[ $rc = 0 ] || fail "recover --mode $mode exit $rc: $(tail -1 "$d/recover-1.out")"
say "recover --mode $mode: $(grep -E '^r[0-9]+:' "$d/recover-1.out" | sed 's/ (.*//' | sed -E 's/^r[0-9]+: //' | sort | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ';') $(tail -1 "$d/recover-1.out")"
"$W" check --data-dir "$d/data" >"$d/check-1.txt" 2>&1 || fail "check after recover: $(tail -1 "$d/check-1.txt")"
"$VALID" "$d/data" >"$d/valid-after.json"
[ "$(jq -c '[.partitions[] | {partition, runs}]' "$d/valid-before.json")" = "$(jq -c '[.partitions[] | {partition, runs}]' "$d/valid-after.json")" ] ||
    fail "the valid messages changed: before $(jq -c '[.partitions[] | .messages]' "$d/valid-before.json"), after $(jq -c '[.partitions[] | .messages]' "$d/valid-after.json")"

# 6: serve, append, restart.
jq -r '.partitions[] | .partition as $p | .runs[] | "\($p | gsub("/"; " ")) \(.[0]) \(.[1])"' "$d/valid-after.json" >"$d/runs.txt"
serve_all() {
    local s t p first last from
    while read -r -u 3 s t p first last; do
        for ((from = first; from <= last; from += 1000)); do
            poll_expect "$d" "$1-$p-$from" full t "$p" "$from" $((last + 1 - from < 1000 ? last + 1 - from : 1000)) || return 1
        done
    done 3<"$d/runs.txt"
}
start_server "$d" 2 || fail "server did not start after recover: $(grep -m1 -iE 'error|panic' "$d/server-2.log" | cut -c1-200)"
cli topic list full -l list >"$d/topics.txt" 2>&1
serve_all kept || { stop_server "$d"; fail "not every valid message served"; }
declare -A next
for ((p = 0; p < PARTITIONS; p++)); do
    next[$p]=$(($(awk -v p="$p" '$3 == p { l = $5 } END { print (l == "" ? -1 : l) }' "$d/runs.txt") + 1))
    send full t "$p" "after-$p-" 0 $APPENDS || { stop_server "$d"; fail "append to partition $p"; }
    poll_expect "$d" "app-$p" full t "$p" "${next[$p]}" $APPENDS "after-$p-" "${next[$p]}" || { stop_server "$d"; fail "appends to partition $p not at ${next[$p]}"; }
done
stop_server "$d" || fail "server needed SIGKILL"
"$W" recover --data-dir "$d/data" --state-dir "$WORK/state" >"$d/recover-2.out" 2>&1 || fail "second recover exit $?"
start_server "$d" 3 || fail "server did not restart"
serve_all again || { stop_server "$d"; fail "not every valid message served after restart"; }
for ((p = 0; p < PARTITIONS; p++)); do
    poll_expect "$d" "again-$p" full t "$p" "${next[$p]}" $APPENDS "after-$p-" "${next[$p]}" || { stop_server "$d"; fail "appends to partition $p lost across the restart"; }
done
stop_server "$d" || fail "server needed SIGKILL after restart"
grep -qi panic "$d"/server-[23].log && fail "server panicked"
say "topics after recover: $(awk -F'|' 'NF > 3 { printf "%s ", $3 }' "$d/topics.txt")"
echo "PASS full disk: $(jq '[.partitions[] | .messages] | add' "$d/valid-after.json") valid messages served after recover --mode $mode; appends at $(for ((p = 0; p < PARTITIONS; p++)); do printf '%s ' "${next[$p]}"; done)on, across a restart"
