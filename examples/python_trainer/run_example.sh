#!/bin/sh
# Runs varscoped on a free 127.0.0.1 port, then N Python worker processes
# and the chief (examples/python_trainer/trainer.py).
# Usage: run_example.sh PYTHON VARSCOPED WORKERS MAX_FINAL_LOSS
set -eu
python=$1 varscoped=$2 workers=$3 max_loss=$4
trainer="$(dirname "$0")/trainer.py"
dir=$(mktemp -d)
"$varscoped" --listen=127.0.0.1:0 --port_file="$dir/port" --log_level=warn &
daemon=$!
pids=""
# Workers too: a failed chief must not leave them waiting.
trap 'kill $pids $daemon 2>/dev/null || true; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
server=127.0.0.1:$(cat "$dir/port")
i=0
while [ $i -lt "$workers" ]; do
  "$python" "$trainer" --server="$server" --role=worker --task=$i --workers="$workers" &
  pids="$pids $!"
  i=$((i + 1))
done
# The chief starts last: workers wait for it to create the variables.
"$python" "$trainer" --server="$server" --role=chief --workers="$workers" \
  --max_final_loss="$max_loss"
for p in $pids; do wait "$p"; done
