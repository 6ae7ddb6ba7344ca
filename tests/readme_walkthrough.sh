#!/usr/bin/env bash
# Runs the README's walkthrough (the sh block between <!-- walkthrough -->
# and <!-- /walkthrough -->) against a real varscoped, its lines exactly as
# written, with three substitutions a test needs: the daemon listens on free
# ports (127.0.0.1:50051 and :9464 in the text become them; the CLI, whose
# default address is 127.0.0.1:50051, gets the port through $VARSCOPE_ADDR),
# `build-release/` is this build's directory, and `grpcurl` (not packaged
# for Debian) is tests/tools/grpcurl_shim.cc, which speaks the same
# reflection protocol.
# Usage: readme_walkthrough.sh BUILD_DIR SOURCE_DIR SHIM_DIR
set -euo pipefail
build=$1 src=$2 shims=$3
work=$(mktemp -d)
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

script=$(sed -n '/^<!-- walkthrough -->$/,/^<!-- \/walkthrough -->$/p' "$src/README.md" \
  | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
[ -n "$script" ] || { echo "README.md has no walkthrough block" >&2; exit 1; }

"$build/server/varscoped" --listen=127.0.0.1:0 --port_file="$work/port" \
  --metrics_listen=127.0.0.1:0 --data_dir="$work/data" >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { cat "$work/daemon.log"; echo "varscoped did not start" >&2; exit 1; }
port=$(cat "$work/port")
metrics=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$work/daemon.log" | head -1)
[ -n "$metrics" ] || { cat "$work/daemon.log"; echo "no metrics port in the log" >&2; exit 1; }

printf '%s\n' "$script" \
  | sed -e "s|127\.0\.0\.1:50051|127.0.0.1:$port|g" -e "s|127\.0\.0\.1:9464|127.0.0.1:$metrics|g" \
        -e "s|build-release/|$build/|g" > "$work/walkthrough.sh"
cd "$work"
echo "--- running the README walkthrough (daemon on $port, metrics on $metrics)"
if ! PATH="$shims:$PATH" VARSCOPE_ADDR="127.0.0.1:$port" bash -euxo pipefail walkthrough.sh; then
  echo "--- the walkthrough failed; the daemon's log:" >&2
  cat "$work/daemon.log" >&2
  exit 1
fi
echo "--- README walkthrough: ok"
