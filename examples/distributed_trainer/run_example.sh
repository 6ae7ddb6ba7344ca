#!/bin/sh
# Runs varscoped on a free 127.0.0.1 port, then a chief and N workers.
# Usage: run_example.sh VARSCOPED TRAINER MODE WORKERS MAX_FINAL_LOSS
set -eu
varscoped=$1 trainer=$2 mode=$3 workers=$4 max_loss=$5
dir=$(mktemp -d)
"$varscoped" --listen=127.0.0.1:0 --port_file="$dir/port" --log_level=warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
server=127.0.0.1:$(cat "$dir/port")
pids=""
i=0
while [ $i -lt "$workers" ]; do
  "$trainer" --server="$server" --role=worker --task=$i --workers="$workers" \
    --mode="$mode" & pids="$pids $!"
  i=$((i + 1))
done
# The chief starts last: workers wait for it to create the variables.
"$trainer" --server="$server" --role=chief --workers="$workers" --mode="$mode" \
  --max_final_loss="$max_loss"
for p in $pids; do wait "$p"; done
