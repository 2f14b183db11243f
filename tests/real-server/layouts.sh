#!/usr/bin/env bash
# Which segment layouts does the real iggy-server 0.6.0 serve correctly?
#
# For each layout: copy a real fixture (fixtures/iggy-0.6.0 of iggy-warden), add the
# offsets/{consumers,groups} folders git does not keep, drop each partition's trailing
# empty segment pair, craft the layout (layouts.py), then with the real server:
#   1. start: no panic;
#   2. poll every partition from its first offset with a count spanning everything,
#      compare offsets and message bytes (byte-exact, via --output-file) with the disk;
#   3. poll at offsets inside the gap (and around it), record what comes back;
#   4. append 50 messages to the target partition: they must land at max+1.. and be
#      readable; the whole partition is polled again;
#   5. SIGTERM; remove the trailing empty pair the server's rotation left (as iggy-warden
#      recover does; 0.6.0 resets a partition's offsets on it); restart; repeat 2, 3 and
#      the read of the 50; append 10 more, they must land right after.
#   D-killed additionally restarts once WITH the server-made empty pair left in place.
#
# Needs: the iggy-server and iggy CLI of apache/iggy tag server-0.6.0 (IGGY_SERVER,
# IGGY_SERVER_CONFIG as for judge.sh; the CLI beside the server), python3, ss.
# Env: PORT (8395), BIN (dir of the binaries), CONFIG, FIXTURES, OUT (a new temp folder),
#      LAYOUTS (space-separated subset). Bounded: every CLI call has a 30 s timeout,
#      a start waits at most 30 s, a stop 30 s before SIGKILL.
# Output: $OUT/<layout>/ (data, server logs, poll outputs), $OUT/results.txt
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${PORT:-8395}
: "${IGGY_SERVER:?path to iggy-server 0.6.0}" "${IGGY_SERVER_CONFIG:?path to core/configs/server.toml of the same source}"
BIN=${BIN:-$(dirname "$IGGY_SERVER")}
CONFIG=${CONFIG:-$IGGY_SERVER_CONFIG}
FIXTURES=${FIXTURES:-$HERE/../../fixtures/iggy-0.6.0}
OUT=${OUT:-$(mktemp -d /tmp/iggy-layouts.XXXXXX)}
LAYOUTS=${LAYOUTS:-"D-killed D-clean A B-killed B-clean C-open C-sealed"}
LAY="python3 $HERE/layouts.py"
APPEND=50
APPEND2=10

[ "$PORT" = 8390 ] && { echo "port 8390 belongs to someone else" >&2; exit 2; }
for f in "$BIN/iggy-server" "$BIN/iggy" "$CONFIG"; do [ -e "$f" ] || { echo "missing $f" >&2; exit 2; }; done
port_busy() { ss -Hltn "sport = :$PORT" | grep -q .; }
if port_busy; then echo "something already listens on port $PORT; refusing (SO_REUSEPORT)" >&2; exit 2; fi

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null; sleep 2
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
say() { echo "$*" | tee -a "$RESULTS"; }

# start_server dir tag: no setsid; exec so that $! is the server's own pid.
start_server() {
    local d=$1 log=$1/server-$2.log
    port_busy && { say "    !! port $PORT busy before start"; return 1; }
    (cd "$d" && exec env IGGY_CONFIG_PATH="$CONFIG" IGGY_SYSTEM_PATH="$d/data" \
        IGGY_TCP_ADDRESS=127.0.0.1:$PORT IGGY_HTTP_ENABLED=false IGGY_QUIC_ENABLED=false \
        IGGY_WEBSOCKET_ENABLED=false IGGY_SYSTEM_SEGMENT_SIZE=64KB RUST_BACKTRACE=1 \
        "$BIN/iggy-server" >"$log" 2>&1) &
    SERVER_PID=$!
    echo "$SERVER_PID" >"$d/server.pid"
    for _ in $(seq 1 150); do
        # Both shards print it; wait for the last one (2 CPUs here: 2 shards).
        [ "$(grep -c 'Initialized in' "$log")" -ge "$(nproc)" ] && { sleep 0.3; return 0; }
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

stop_server() { # dir → 0 exited on SIGTERM, 1 needed SIGKILL
    local pid=$SERVER_PID rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; rc=1; fi
    wait "$pid" 2>/dev/null
    SERVER_PID=
    for _ in $(seq 1 25); do port_busy || break; sleep 0.2; done
    port_busy && say "    !! port $PORT still busy after stop"
    return $rc
}

cli() { timeout 30 "$BIN/iggy" --tcp-server-address 127.0.0.1:$PORT --username iggy --password iggy "$@"; }

# Offsets in a CLI table.
table_offsets() { awk -F'|' '/^\| *[0-9]+ *\|/ { gsub(/ /, "", $2); printf "%s ", $2 }' "$1"; }

# poll_all_parts d tag disk.json [extra rel json]: check 2 on every partition.
poll_all_parts() {
    local d=$1 tag=$2 disk=$3 xrel=${4:-} xjson=${5:-} rel s t p first last count f res ok=0
    for rel in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))))' "$disk"); do
        read -r s t p <<<"${rel//\// }"
        read -r first last <<<"$(python3 -c 'import json,sys; k=[int(x) for x in json.load(open(sys.argv[1]))[sys.argv[2]]]; print(min(k), max(k))' "$disk" "$rel")"
        [ "$rel" = "$xrel" ] && last=$(python3 -c 'import json,sys; print(max(int(x) for x in json.load(open(sys.argv[1]))))' "$xjson")
        count=$((last - first + 1))
        f=$d/poll-$tag-${rel//\//_}
        rm -f "$f.bin"
        cli message poll --offset "$first" --message-count "$count" --output-file "$f.bin" "$s" "$t" "$p" >"$f.out" 2>&1
        local crc=$?
        if [ "$rel" = "$xrel" ]; then
            res=$($LAY compare "$disk" "$rel" "$f.bin" --extra "$xjson")
        else
            res=$($LAY compare "$disk" "$rel" "$f.bin")
        fi
        case $res in OK*) ;; *) ok=1 ;; esac
        say "    [2:$tag] $rel poll --offset $first --message-count $count → cli rc=$crc, $(grep -m1 -E '^Polled [0-9]' "$f.out" | sed 's/, it took.*//')"
        say "           $res"
        [ $crc = 0 ] || say "           cli: $(grep -v '^Executing' "$f.out" | head -3 | tr '\n' ' ')"
    done
    return $ok
}

# gap_poll d tag s t p offset count: check 3, one poll, table output.
gap_poll() {
    local d=$1 tag=$2 s=$3 t=$4 p=$5 off=$6 n=$7 f crc
    f=$d/gap-$tag-$off.txt
    cli message poll --offset "$off" --message-count "$n" "$s" "$t" "$p" >"$f" 2>&1
    crc=$?
    say "    [3:$tag] poll --offset $off --message-count $n → cli rc=$crc, $(grep -m1 -E '^Polled [0-9]' "$f" | sed 's/, it took.*//'); offsets: [$(table_offsets "$f")]"
    [ $crc = 0 ] || say "           cli: $(grep -v '^Executing' "$f" | head -4 | tr '\n' ' ')"
}

# range_poll d tag s t p from count: one poll, compared byte-exact with the disk messages
# whose offsets lie in from..from+count-1.
range_poll() {
    local d=$1 tag=$2 s=$3 t=$4 p=$5 off=$6 n=$7 f crc
    f=$d/range-$tag-$off-$n
    rm -f "$f.bin"
    cli message poll --offset "$off" --message-count "$n" --output-file "$f.bin" "$s" "$t" "$p" >"$f.out" 2>&1
    crc=$?
    say "    [3:$tag] poll --offset $off --message-count $n → cli rc=$crc: $($LAY compare "$d/disk1.json" "$s/$t/$p" "$f.bin" --from "$off" --to $((off + n - 1)))"
    [ $crc = 0 ] || say "           cli: $(grep -v '^Executing' "$f.out" | head -4 | tr '\n' ' ')"
}

last_poll() { # d tag s t p: what --last says the partition's newest offset is
    local f=$1/last-$2.txt
    cli message poll --last --message-count 1 "$3" "$4" "$5" >"$f" 2>&1
    say "    [--last:$2] cli rc=$?, newest offset served: [$(table_offsets "$f")]"
}

server_log_report() { # d tag
    local log=$1/server-$2.log
    if grep -qi panic "$log"; then
        say "    [log:$2] PANIC: $(grep -i -m2 panic "$log" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ')"
    else
        say "    [log:$2] no panic"
    fi
    local errs
    errs=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E ' (ERROR|WARN) ' | grep -v "config_writer' of kind OneShot timed out" | head -4)
    [ -n "$errs" ] && say "    [log:$2] ERROR/WARN lines (first 4, config_writer shutdown timeout omitted):" && echo "$errs" | sed 's/^/             /' | tee -a "$RESULTS"
    return 0
}

remove_trailing_empty() { # partdir → prints what it removed
    local part=$1 last
    last=$(ls "$part" | grep -E '^[0-9]{20}\.log$' | sort | tail -1)
    [ -n "$last" ] || return 0
    local base=${last%.log}
    if [ ! -s "$part/$base.log" ] && [ ! -s "$part/$base.index" ]; then
        rm -f "$part/$base.log" "$part/$base.index"
        echo "removed server-made trailing empty pair $base"
    fi
}

run_layout() {
    local L=$1 fixture target craft="" gaps="" d s t p part first_off max_off n
    case $L in
        D-killed) fixture=killed-under-load target=0/0/0 ;;
        D-clean) fixture=clean target=0/0/0 ;;
        A) fixture=killed-under-load target=0/0/0 craft="rmseg 7208" ;;
        B-killed) fixture=killed-under-load target=0/0/2 craft="rmseg 0" ;;
        B-clean) fixture=clean target=0/0/0 craft="rmseg 0" ;;
        C-open) fixture=killed-under-load target=0/0/0 craft="cutmid 15305 100" ;;
        C-sealed) fixture=killed-under-load target=0/0/0 craft="cutmid 3768 100" ;;
        *) say "unknown layout $L"; return 1 ;;
    esac
    d=$OUT/$L
    rm -rf "$d"; mkdir -p "$d"
    read -r s t p <<<"${target//\// }"
    part=$d/data/streams/$s/topics/$t/partitions/$p
    say ""
    say "=== $L: fixture $fixture, target partition $target, craft: ${craft:-none}"
    $LAY prep "$FIXTURES/$fixture" "$d/data" | sed 's/^/    /' | tee -a "$RESULTS"
    rm -rf "$d/data/logs"
    local gap_first= gap_last= seg_start= seg_last=
    if [ -n "$craft" ]; then
        # shellcheck disable=SC2086
        $LAY ${craft%% *} "$part" ${craft#* } >"$d/craft.json" || { say "    craft failed: $(cat "$d/craft.json")"; return 1; }
        say "    craft: $(cat "$d/craft.json")"
        gap_first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gap_first"])' "$d/craft.json")
        gap_last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gap_last"])' "$d/craft.json")
        seg_start=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("segment", ""))' "$d/craft.json")
        seg_last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("last_offset", ""))' "$d/craft.json")
    fi
    say "    target partition on disk:"
    $LAY ls "$part" | tee -a "$RESULTS"
    $LAY idxcheck "$part" >"$d/idxcheck.txt"; say "    every .index == index rebuilt from its .log: $([ $? = 0 ] && echo yes || echo NO)"
    $LAY disk "$d/data" "$d/disk1.json" | sed 's/^/    disk: /' | tee -a "$RESULTS"
    read -r first_off max_off <<<"$(python3 -c 'import json,sys; k=[int(x) for x in json.load(open(sys.argv[1]))[sys.argv[2]]]; print(min(k), max(k))' "$d/disk1.json" "$target")"

    # ---------- run 1
    say "  -- run 1"
    if ! start_server "$d" 1; then
        say "    [1] server did not start / not initialized in 30 s"
        server_log_report "$d" 1
        stop_server "$d"; return 1
    fi
    say "    [1] started (pid $SERVER_PID)"
    poll_all_parts "$d" r1 "$d/disk1.json"
    gap_checks() { # tag
        local tag=$1
        if [ -n "$gap_first" ]; then
            gap_poll "$d" "$tag" "$s" "$t" "$p" "$gap_first" 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" $(((gap_first + gap_last) / 2)) 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" "$gap_last" 5
            [ "$gap_first" -ge 2 ] && gap_poll "$d" "$tag" "$s" "$t" "$p" $((gap_first - 2)) 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" $((gap_last + 1)) 5
        fi
        [ "$L" = B-killed ] || [ "$L" = B-clean ] && {
            cli message poll --first --message-count 3 "$s" "$t" "$p" >"$d/first-$tag.txt" 2>&1
            say "    [3:$tag] poll --first --message-count 3 → cli rc=$?, offsets: [$(table_offsets "$d/first-$tag.txt")]"
        }
        if [ "${craft%% *}" = cutmid ]; then
            # C only: which parts of the cut segment, and of the partition, stay readable?
            range_poll "$d" "$tag" "$s" "$t" "$p" "$seg_start" $((gap_first - seg_start))
            range_poll "$d" "$tag" "$s" "$t" "$p" $((gap_first - 5)) 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" $((gap_last + 201)) 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" $((seg_last - 50)) 5
            gap_poll "$d" "$tag" "$s" "$t" "$p" "$seg_last" 1
            [ "$seg_last" -lt "$max_off" ] && range_poll "$d" "$tag" "$s" "$t" "$p" $((seg_last + 1)) $((max_off - seg_last))
        fi
        gap_poll "$d" "$tag" "$s" "$t" "$p" $((end_now + 1)) 5 # past the end: what "nothing" looks like
    }
    local end_now=$max_off
    gap_checks r1
    last_poll "$d" r1-before-append "$s" "$t" "$p"

    # check 4: append
    awk -v pre="$L-new-" -v n=$APPEND 'BEGIN { for (i = 0; i < n; i++) printf "%s%05d\n", pre, i }' |
        cli message send -p "$p" "$s" "$t" >"$d/send1.out" 2>&1
    say "    [4] send $APPEND messages → cli rc=$?"
    $LAY sent "$L-new-" $((max_off + 1)) $APPEND "$d/sent1.json"
    rm -f "$d/new-r1.bin"
    cli message poll --offset $((max_off + 1)) --message-count $APPEND --output-file "$d/new-r1.bin" "$s" "$t" "$p" >"$d/new-r1.out" 2>&1
    say "    [4] poll --offset $((max_off + 1)) --message-count $APPEND → cli rc=$?: $($LAY compare "$d/disk1.json" "$target" "$d/new-r1.bin" --from $((max_off + 1)) --extra "$d/sent1.json")"
    grep -q '^Error\|^error' "$d/new-r1.out" && say "           cli: $(grep -v '^Executing' "$d/new-r1.out" | head -3 | tr '\n' ' ')"
    last_poll "$d" r1-after-append "$s" "$t" "$p"
    # where did they land, whatever the offset?
    cli message poll --last --message-count $APPEND "$s" "$t" "$p" >"$d/last50-r1.txt" 2>&1
    say "    [4] poll --last --message-count $APPEND → offsets [$(table_offsets "$d/last50-r1.txt" | awk '{print $1 " … " $NF " (" NF " rows)"}')], payloads $(awk -F'|' '/^\| *[0-9]+ *\|/ { gsub(/ /, "", $6); print $6 }' "$d/last50-r1.txt" | sed -n '1p;$p' | tr '\n' ' ')"
    say "    [4] every partition polled again after the append (target: $first_off..$((max_off + APPEND))):"
    poll_all_parts "$d" r1-after-append "$d/disk1.json" "$target" "$d/sent1.json"
    if stop_server "$d"; then say "    [1] stopped on SIGTERM"; else say "    [1] needed SIGKILL"; fi
    server_log_report "$d" 1

    # ---------- run 2
    say "  -- run 2 (restart)"
    say "    target partition after stop:"
    $LAY ls "$part" | tee -a "$RESULTS"
    $LAY idxcheck "$part" >"$d/idxcheck-after-run1.txt"
    say "    after run 1, every .index == index rebuilt from its .log (relative offset = offset - start): $([ $? = 0 ] && echo yes || { echo NO:; grep -v 'rebuilt: True' "$d/idxcheck-after-run1.txt"; })"
    if [ "$L" = D-killed ]; then cp -a "$d/data" "$d/data-keep-empty"; fi
    local rm_msg
    rm_msg=$(for q in "$d"/data/streams/*/topics/*/partitions/*; do m=$(remove_trailing_empty "$q"); [ -n "$m" ] && echo "${q#"$d"/data/}: $m"; done)
    say "    before restart: ${rm_msg:-no trailing empty pair to remove}"
    $LAY disk "$d/data" "$d/disk2.json" >/dev/null
    if ! start_server "$d" 2; then
        say "    [5] server did not restart"
        server_log_report "$d" 2
        stop_server "$d"; return 1
    fi
    say "    [5] restarted (pid $SERVER_PID)"
    poll_all_parts "$d" r2 "$d/disk2.json" "$target" "$d/sent1.json"
    end_now=$((max_off + APPEND))
    gap_checks r2
    last_poll "$d" r2 "$s" "$t" "$p"
    n=$((max_off + APPEND + 1))
    awk -v pre="$L-again-" -v n=$APPEND2 'BEGIN { for (i = 0; i < n; i++) printf "%s%05d\n", pre, i }' |
        cli message send -p "$p" "$s" "$t" >"$d/send2.out" 2>&1
    say "    [5] send $APPEND2 more → cli rc=$?"
    $LAY sent "$L-again-" $n $APPEND2 "$d/sent2.json"
    rm -f "$d/new-r2.bin"
    cli message poll --offset $n --message-count $APPEND2 --output-file "$d/new-r2.bin" "$s" "$t" "$p" >"$d/new-r2.out" 2>&1
    say "    [5] poll --offset $n --message-count $APPEND2 → cli rc=$?: $($LAY compare "$d/disk2.json" "$target" "$d/new-r2.bin" --from $n --extra "$d/sent2.json")"
    cli message poll --last --message-count $APPEND2 "$s" "$t" "$p" >"$d/last-r2b.txt" 2>&1
    say "    [5] poll --last --message-count $APPEND2 → offsets [$(table_offsets "$d/last-r2b.txt")]"
    if stop_server "$d"; then say "    [2] stopped on SIGTERM"; else say "    [2] needed SIGKILL"; fi
    server_log_report "$d" 2

    # ---------- D-killed only: restart with the server-made trailing empty pair kept
    if [ "$L" = D-killed ]; then
        say "  -- run 3 (D-killed only): restart on the run-1 data WITH the trailing empty pair the server left"
        local d3=$d/keep-empty
        mkdir -p "$d3" && mv "$d/data-keep-empty" "$d3/data"
        if start_server "$d3" 3; then
            $LAY disk "$d3/data" "$d3/disk.json" >/dev/null
            poll_all_parts "$d3" r3 "$d3/disk.json" "$target" "$d/sent1.json"
            last_poll "$d3" r3 "$s" "$t" "$p"
            echo "after-empty-pair" | cli message send -p "$p" "$s" "$t" >/dev/null 2>&1
            cli message poll --last --message-count 1 "$s" "$t" "$p" >"$d3/last-after-send.txt" 2>&1
            say "    [run3] one message sent; poll --last → offsets [$(table_offsets "$d3/last-after-send.txt")] payload $(awk -F'|' '/^\| *[0-9]+ *\|/ { gsub(/ /, "", $6); print $6 }' "$d3/last-after-send.txt")"
            stop_server "$d3"
            server_log_report "$d3" 3
        else
            say "    [run3] server did not start"; server_log_report "$d3" 3; stop_server "$d3"
        fi
    fi
}

say "iggy-server: $BIN/iggy-server ($(sha256sum "$BIN/iggy-server" | cut -c1-16)…), port $PORT, segment size 64KB, $(date -u +%FT%TZ)"
for L in $LAYOUTS; do run_layout "$L"; done
port_busy && say "!! port $PORT still busy at the end"
say ""
say "done"
