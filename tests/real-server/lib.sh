# Shared by the real-server scripts (sourced, not run): settings, the built binaries,
# a work folder, and starting, stopping and talking to iggy-server 0.6.0.
# Needs IGGY_SERVER, IGGY_CLI and IGGY_SERVER_CONFIG (see judge.sh); jq.
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2

: "${IGGY_SERVER:?path to iggy-server 0.6.0}" "${IGGY_CLI:?path to the iggy CLI 0.6.0}"
: "${IGGY_SERVER_CONFIG:?path to core/configs/server.toml of the same source}"
FIXTURES=${FIXTURES:-$PWD/fixtures/iggy-0.6.0}
PORT=${PORT:-8390}
SEGMENT_SIZE=${SEGMENT_SIZE:-64KB}

cargo build --release -q -p iggy-warden -p iggy-warden-harness --bins || exit 2
W=$PWD/target/release/iggy-warden
INJECT=$PWD/target/release/inject-fault
VALID=$PWD/target/release/valid-messages
WORK=$(mktemp -d /tmp/iggy-real-server.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT

start_server() { # dir tag
    local d=$1 log=$1/server-$2.log
    # Never beside another listener: with SO_REUSEPORT a second server on the port
    # takes a share of the connections and answers for this one.
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        echo "something already listens on 127.0.0.1:$PORT (another server?): choose another PORT" >"$log"
        return 1
    fi
    # exec: the pid written is the server's own.
    (cd "$d" && exec env IGGY_CONFIG_PATH="$IGGY_SERVER_CONFIG" IGGY_SYSTEM_PATH="$d/data" \
        IGGY_TCP_ADDRESS=127.0.0.1:$PORT IGGY_HTTP_ENABLED=false IGGY_QUIC_ENABLED=false \
        IGGY_WEBSOCKET_ENABLED=false IGGY_SYSTEM_SEGMENT_SIZE="$SEGMENT_SIZE" RUST_BACKTRACE=1 \
        "$IGGY_SERVER" >"$log" 2>&1) &
    echo $! >"$d/server.pid"
    for _ in $(seq 1 100); do
        grep -q 'Initialized in' "$log" && return 0
        kill -0 "$(cat "$d/server.pid")" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

stop_server() { # dir
    local pid
    pid=$(cat "$1/server.pid")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    return 1
}

# For a script with one server in the work folder $d: stop it, print FAIL, exit 1.
fail_server() {
    [ -f "$d/server.pid" ] && kill -KILL "$(cat "$d/server.pid")" 2>/dev/null
    echo "FAIL $*"
    exit 1
}
say() { echo "  $*"; }

cli() { timeout 60 "$IGGY_CLI" --tcp-server-address 127.0.0.1:$PORT --username iggy --password iggy "$@"; }

# Offsets and payloads of the rows a `message poll` printed: "offset payload" a line.
rows() { awk -F'|' '/^\| *[0-9]+ *\|/ { gsub(/ /, "", $2); p = $6; gsub(/^ +| +$/, "", p); print $2, p }' "$1"; }

# poll_expect dir tag S T P first count [payload-prefix base]: the partition serves
# exactly offsets first..first+count-1 (and, with a prefix, payload prefix%05d of
# offset-base).
poll_expect() {
    local d=$1 tag=$2 s=$3 t=$4 p=$5 first=$6 count=$7 prefix=${8:-} base=${9:-0} want got
    cli message poll --offset "$first" --message-count "$count" "$s" "$t" "$p" >"$d/poll-$tag.txt" 2>&1
    want=$(seq "$first" $((first + count - 1)))
    got=$(rows "$d/poll-$tag.txt" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "poll $tag: offsets $first..$((first + count - 1)) not served as such"; return 1; }
    [ -z "$prefix" ] && return 0
    if rows "$d/poll-$tag.txt" | awk -v pre="$prefix" -v base="$base" \
        '$2 != sprintf("%s%05d", pre, $1 - base) { bad = 1 } END { exit !bad }'; then
        echo "poll $tag: a payload differs from what was sent"
        return 1
    fi
}

send() { # s t p prefix from count
    awk -v pre="$4" -v from="$5" -v n="$6" 'BEGIN { for (i = from; i < from + n; i++) printf "%s%05d\n", pre, i }' |
        cli message send -p "$3" "$1" "$2" >/dev/null 2>&1
}

# ids streams/S/topics/T/partitions/P → "S T P", the numbers the CLI and `check` use.
ids() { echo "$1" | awk -F/ '{ print $2, $4, $6 }'; }

kept() { # check.json partition-rel → messages kept in that partition
    local s t p
    read -r s t p <<<"$(ids "$2")"
    jq -r --argjson s "$s" --argjson t "$t" --argjson p "$p" \
        '.partition_reports[] | select(.partition.stream == $s and .partition.topic == $t and .partition.partition == $p) | .messages' "$1"
}

