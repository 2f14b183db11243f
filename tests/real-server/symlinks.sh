#!/usr/bin/env bash
# What iggy-server 0.6.0 does with symbolic links and files where folders belong in
# its data directory, and what `iggy-warden check` says of the same layout.
#
# For each case, on a copy of fixtures/iggy-0.6.0/clean with its offsets folders
# created: change the layout, start the server, poll the 300 messages of partition
# 1/0/0 and 100 of 0/0/0, append 10 to 1/0/0 and poll them back, stop it (SIGTERM).
#   none           the layout as it is
#   part-link      partition folder 1/0/0 moved out and linked back
#   streams-link   streams/ moved out and linked back
#   log-link       1/0/0's 00000000000000000000.log moved out and linked back
#   offsets-link   0/0/0's consumer offset file moved out and linked back
#   offsets-file   1/0/0's offsets folder replaced by a file
#   part-file      partition folder 0/0/1 replaced by a file
# Prints one line per case. Last run (iggy-server 0.6.0): the server served every
# message and took the appends in none, part-link, streams-link, log-link and
# offsets-link; it failed to start in offsets-file (CannotReadConsumerOffsets) and
# part-file (CannotReadPartitions). `check` said ready on none and named every other
# case: symlink (log-link also log-missing, since it reads no log through a link) or
# not-a-folder.
#
# Not part of CI; needs the same variables as judge.sh (IGGY_SERVER, IGGY_CLI,
# IGGY_SERVER_CONFIG). PORT defaults to 8390.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
CLEAN=$FIXTURES/clean

prepare() { # case → its folder, with data/ ready for the server
    local d=$WORK/$1 p
    mkdir -p "$d" && cp -a "$CLEAN" "$d/data"
    for p in "$d"/data/streams/*/topics/*/partitions/*; do
        mkdir -p "$p/offsets/consumers" "$p/offsets/groups"
    done
    # The empty pairs the fixture ends two partitions with: the server resets on them.
    rm -f "$d"/data/streams/0/topics/0/partitions/0/00000000000000002886.* \
        "$d"/data/streams/0/topics/0/partitions/1/00000000000000001200.*
    echo "$d"
}

move_and_link() { # case-folder relative-path
    mkdir -p "$1/elsewhere"
    mv "$1/data/$2" "$1/elsewhere/$(basename "$2")"
    ln -s "$1/elsewhere/$(basename "$2")" "$1/data/$2"
}

served() { # dir tag s t p offset count → how many of count the server returned
    cli message poll --offset "$6" --message-count "$7" "$3" "$4" "$5" >"$1/poll-$2.txt" 2>&1
    rows "$1/poll-$2.txt" | wc -l
}

run_case() { # case
    local d=$WORK/$1 verdict res
    verdict=$("$W" check --data-dir "$d/data" --json | jq -r '[.problems[].kind] | unique | join(",")')
    if ! start_server "$d" "$1"; then
        echo "$1: server did not start ($(grep -o 'Error: .*' "$d/server-$1.log" | head -1)); check: ${verdict:-ready}"
        stop_server "$d"
        return
    fi
    res="served $(served "$d" a 1 0 0 0 300)/300 of 1/0/0, $(served "$d" b 0 0 0 0 100)/100 of 0/0/0"
    send 1 0 0 new 0 10
    res="$res, appended and served $(served "$d" c 1 0 0 300 10)/10"
    stop_server "$d"
    echo "$1: $res, panics $(grep -c panicked "$d/server-$1.log"); check: ${verdict:-ready}"
}

d=$(prepare none)
d=$(prepare part-link) && move_and_link "$d" streams/1/topics/0/partitions/0
d=$(prepare streams-link) && move_and_link "$d" streams
d=$(prepare log-link) && move_and_link "$d" streams/1/topics/0/partitions/0/00000000000000000000.log
d=$(prepare offsets-link) && move_and_link "$d" streams/0/topics/0/partitions/0/offsets/consumers/2497150693
d=$(prepare offsets-file) && rm -r "$d/data/streams/1/topics/0/partitions/0/offsets" &&
    echo x >"$d/data/streams/1/topics/0/partitions/0/offsets"
d=$(prepare part-file) && rm -r "$d/data/streams/0/topics/0/partitions/1" &&
    echo x >"$d/data/streams/0/topics/0/partitions/1"
for c in none part-link streams-link log-link offsets-link offsets-file part-file; do
    run_case "$c"
done
