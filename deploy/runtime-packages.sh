#!/bin/sh
# Prints, one per line and sorted, the Debian packages that own the shared
# libraries the given ELF binaries load (as ldd resolves them here). The
# Dockerfile's build stage runs it on the binaries it built, and the runtime
# stage installs exactly that list: no -dev package, no compiler, and no
# hand-kept list of sonames to fall behind when a library is added (Debian's
# cpp-httplib, say, is a shared library, libcpp-httplib0.11, not headers only).
#   deploy/runtime-packages.sh build/server/varscoped build/cli/varscope
# Fails if a library is not found or no installed package owns it.
set -eu
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for bin in "$@"; do
  ldd "$bin" > "$tmp/ldd" || { echo "ldd failed on $bin" >&2; exit 1; }
  if grep -q 'not found' "$tmp/ldd"; then
    echo "$bin: missing libraries:" >&2
    grep 'not found' "$tmp/ldd" >&2
    exit 1
  fi
  # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and the loader "/lib64/ld-linux-x86-64.so.2 (0x...)".
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$tmp/ldd" >> "$tmp/libs"
done
sort -u "$tmp/libs" > "$tmp/libs.sorted"
: > "$tmp/packages"
while read -r lib; do
  real=$(readlink -f "$lib")
  owner=""
  # Merged /usr: ldd may name /lib/... while dpkg recorded /usr/lib/... (or
  # the reverse), and the soname link or its target may be the recorded one.
  for path in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    if owner=$(dpkg-query -S "$path" 2>/dev/null | head -n 1) && [ -n "$owner" ]; then
      break
    fi
    owner=""
  done
  [ -n "$owner" ] || { echo "no installed package owns $lib" >&2; exit 1; }
  # "libgrpc++1.51:amd64: /usr/lib/..." -> libgrpc++1.51
  echo "${owner%%:*}" >> "$tmp/packages"
done < "$tmp/libs.sorted"
sort -u "$tmp/packages"
