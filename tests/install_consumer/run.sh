#!/bin/sh
# Installs the build into a temporary prefix and builds an outside program
# against it twice: with CMake's find_package(varscope) and with
# pkg-config. Also checks the CLI and the daemon were installed.
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
for bin in varscoped varscope varscope-reshard; do
  [ -x "$work/prefix/bin/$bin" ] || { echo "cmake --install did not install bin/$bin" >&2; exit 1; }
done
"$work/prefix/bin/varscope" --help >/dev/null

cmake -S "$src/tests/install_consumer" -B "$work/cmake" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"

pc="$work/prefix/lib/pkgconfig"
[ -f "$pc/varscope.pc" ] || pc="$work/prefix/lib/$(ls "$work/prefix/lib" | grep -m1 linux-gnu)/pkgconfig"
# shellcheck disable=SC2046
c++ -std=c++17 -o "$work/consumer-pc" "$src/tests/install_consumer/consumer.cc" \
  $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs varscope)
"$work/consumer-pc"
echo "install: find_package(varscope) and pkg-config varscope: ok"
