#!/bin/sh
# Runs varscoped on a free 127.0.0.1 port and the RNN example against it.
# Usage: run_example.sh VARSCOPED RNN
set -eu
dir=$(mktemp -d)
"$1" --listen=127.0.0.1:0 --port_file="$dir/port" --log_level=warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
"$2" --server=127.0.0.1:$(cat "$dir/port")
