#!/usr/bin/env bash
# probe.sh OUT PORT CLIENTS SECONDS [SLEEP]: the timing of the 0.6.0 rotation race's file
# events, for issue #16 (can the sidecar see the race before the server panics?).
# Starts iggy-server 0.6.0 (64 KB segments, messages_required_to_save = 64) on a fresh
# data directory OUT/data, with inotify-log.py logging every create/modify/delete under
# it (with the file's size, and for an .index write the size of its .log stat'ed after
# it); CLIENTS loops send batches of 300 messages of 96 bytes (SLEEP s apart) until the
# server panics or SECONDS pass; then SIGTERM to the server (by its pid; SIGKILL after
# 20 s). OUT must not exist. Then: python3 analyze.py OUT.
# Needs IGGY_SERVER, IGGY_CLI, IGGY_SERVER_CONFIG (as judge.sh) and python3.
# What it measured is in README.md beside it.
set -u
[ $# -ge 4 ] || { sed -n 2,11p "$0"; exit 2; }
PORT=$2 CLIENTS=$3 SECS=$4 SLP=${5:-0}
S=${IGGY_SERVER:?path to iggy-server 0.6.0} CLI=${IGGY_CLI:?path to the iggy CLI 0.6.0}
CFG=${IGGY_SERVER_CONFIG:?path to core/configs/server.toml}
[ ! -e "$1" ] || { echo "$1 exists"; exit 2; }; mkdir -p "$1/data"; d=$(realpath "$1")
python3 "$(dirname "$0")/inotify-log.py" $d/data $d/inotify.log & ip=$!
(cd $d && exec env IGGY_CONFIG_PATH=$CFG IGGY_SYSTEM_PATH=$d/data IGGY_TCP_ADDRESS=127.0.0.1:$PORT IGGY_HTTP_ENABLED=false \
  IGGY_QUIC_ENABLED=false IGGY_WEBSOCKET_ENABLED=false IGGY_SYSTEM_SEGMENT_SIZE=64KB RUST_BACKTRACE=1 \
  IGGY_ROOT_USERNAME=iggy IGGY_ROOT_PASSWORD=iggy IGGY_SYSTEM_PARTITION_MESSAGES_REQUIRED_TO_SAVE=64 $S >$d/server.log 2>&1) & sp=$!
cli() { timeout 60 $CLI --tcp-server-address 127.0.0.1:$PORT --username iggy --password iggy "$@"; }
for i in $(seq 50); do grep -q 'has started' $d/server.log && break; sleep 0.2; done
sleep 0.5
cli stream create s1 >/dev/null && cli topic create s1 t1 1 none >/dev/null || echo "create failed"
end=$(($(date +%s) + SECS))
client() { local c=$1 b=0
  while [ $(date +%s) -lt $end ] && [ ! -e $d/stop ]; do
    awk -v c=$c -v b=$b 'BEGIN{for(m=0;m<300;m++){s=sprintf("c%02d-b%05d-m%03d-",c,b,m); while(length(s)<96)s=s "x"; print s}}' |
      timeout 20 $CLI --tcp-server-address 127.0.0.1:$PORT --username iggy --password iggy message send -p 0 s1 t1 >/dev/null 2>&1
    b=$((b+1)); [ "$SLP" != 0 ] && sleep $SLP
  done; }
pids=(); for ((c=0;c<CLIENTS;c++)); do client $c & pids+=($!); done
t0=$(date +%s.%N)
while [ $(date +%s) -lt $end ]; do grep -q 'panicked at' $d/server.log && break; sleep 0.2; done
touch $d/stop
grep -q 'panicked at' $d/server.log && echo "panic" > $d/result || echo "no panic" > $d/result
kill -TERM $sp; for i in $(seq 100); do kill -0 $sp 2>/dev/null || break; sleep 0.2; done; kill -KILL $sp 2>/dev/null
wait "${pids[@]}" 2>/dev/null
kill $ip
echo "t0 $t0" >> $d/result
ls $d/data/streams/0/topics/0/partitions/0/ | grep -c log >> $d/result
