# Installs the Debian packages varscope builds with, if any is missing.
# Sourced by scripts/run and scripts/test.
VARSCOPE_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  grpc-proto libabsl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libssl-dev
  libgtest-dev libgmock-dev clang-14 openssl yamllint
  libcpp-httplib-dev libcli11-dev
)
# The Python package (python/; the container image builds without it).
VARSCOPE_PYTHON_PACKAGES=(python3-dev pybind11-dev python3-numpy)
# Only for the test suite (`varscope_install_deps test`).
VARSCOPE_TEST_PACKAGES=(
  systemd procps docker-compose  # deploy/check.sh: systemd-analyze, /bin/kill, compose config
  curl                           # the README walkthrough scrapes metrics
  python3-pytest                 # python/tests
)

# Usage: varscope_install_deps [test]
varscope_install_deps() {
  local missing=() wanted=("${VARSCOPE_PACKAGES[@]}" "${VARSCOPE_PYTHON_PACKAGES[@]}")
  [ "${1:-}" = test ] && wanted+=("${VARSCOPE_TEST_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
