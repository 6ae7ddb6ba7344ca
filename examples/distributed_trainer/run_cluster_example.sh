#!/bin/bash
# The distributed trainer against a 3-shard cluster on 127.0.0.1, with one
# shard killed (kill -9) mid-training and restarted on its data directory:
# the job must still reach its loss target without restarting any worker.
# Usage: run_cluster_example.sh VARSCOPED TRAINER WORKERS MAX_FINAL_LOSS
set -euo pipefail
varscoped=$1 trainer=$2 workers=$3 max_loss=$4
dir=$(mktemp -d)
shard_pids=(0 0 0)
cleanup() {
  kill "${shard_pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/token"
# Three free ports (nothing answers on them; distinct).
ports=()
while [ ${#ports[@]} -lt 3 ]; do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${ports[*]} " != *" $p "* ]]; then
    ports+=("$p")
  fi
done
spec="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
start_shard() {
  rm -f "$dir/port$1"
  "$varscoped" --listen="127.0.0.1:${ports[$1]}" --port_file="$dir/port$1" --cluster="$spec" \
    --shard="$1" --cluster_token_file="$dir/token" --data_dir="$dir/shard$1" \
    --log_level=warn --deadlock_detection=abort &
  shard_pids[$1]=$!
  for _ in $(seq 200); do [ -s "$dir/port$1" ] && return; sleep 0.05; done
  echo "shard $1 did not start" >&2
  exit 1
}
for i in 0 1 2; do start_shard $i; done
trainer_pids=()
for ((i = 0; i < workers; i++)); do
  "$trainer" --server="127.0.0.1:${ports[$((i % 3))]}" --role=worker --task=$i \
    --workers="$workers" --mode=async > "$dir/worker$i.log" 2>&1 &
  trainer_pids+=($!)
done
"$trainer" --server="127.0.0.1:${ports[0]}" --role=chief --workers="$workers" --mode=async \
  --max_final_loss="$max_loss" > "$dir/chief.log" 2>&1 &
chief=$!
# Mid-training (worker 0 reported step 100), kill the shard holding
# softmax/weights (shard 0 of 3) and start it again on its data directory.
for _ in $(seq 1200); do grep -q "step 100 " "$dir/worker0.log" && break; sleep 0.05; done
grep -q "step 100 " "$dir/worker0.log" || { echo "no progress" >&2; cat "$dir"/*.log >&2; exit 1; }
kill -9 "${shard_pids[0]}"
wait "${shard_pids[0]}" 2>/dev/null || true
echo "killed shard 0 at worker 0's step 100"
start_shard 0
status=0
for p in "${trainer_pids[@]}"; do wait "$p" || status=1; done
wait "$chief" || status=1
cat "$dir/chief.log"
grep -h "retrying" "$dir"/worker*.log | head -3 || true
if [ $status -ne 0 ]; then cat "$dir"/*.log >&2; fi
exit $status
