#!/bin/sh
# Offline checks of the operators' kit in deploy/ (run by CTest). Nothing is
# built, started or applied: no image is built, no container or unit runs.
#   - yamllint on every YAML file under deploy/;
#   - the systemd unit: `systemd-analyze verify` (on a copy whose ExecStart
#     is /bin/true, since varscoped is not installed here; once as shipped
#     and once with its commented-out TLS/token directives on), the
#     sandboxing options it must keep, and `systemd-analyze security
#     --offline` under an exposure threshold;
#   - every flag that the example flagfile (its commented-out lines too),
#     the unit, the Dockerfile, the compose file and the Kubernetes manifest
#     pass to varscoped is a flag server/ defines (ABSL_FLAG), and every
#     flag compose passes to the trainer is one trainer.cc defines: renaming
#     a flag fails here; the flagfile's lines are plain --flag=value;
#   - the Dockerfile: build and runtime stages, the -dev packages of
#     scripts/deps.sh in the build stage and none in the runtime stage, a
#     non-root USER, HEALTHCHECK, VOLUME, EXPOSE; .dockerignore;
#   - the compose file: `docker compose config -q` or `docker-compose
#     config -q` (schema validation, no engine needed) when either is
#     installed; without them (podman-compose needs podman) only yamllint
#     and the structural greps below check it, and a note says so.
# deploy/k8s/check.sh checks the Kubernetes manifest's own facts.
# Needs: yamllint, systemd (systemd-analyze), procps (/bin/kill, named by
# ExecReload=); docker-compose optional.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "deploy/check.sh: FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 not found (apt-get install $2)"; }
need yamllint yamllint
need systemd-analyze systemd

dockerfile=$here/Dockerfile
compose=$here/docker-compose.yml
unit=$here/systemd/varscoped.service
flagfile=$here/varscoped.flags.example
k8s=$here/k8s/varscope.yaml
for f in "$dockerfile" "$compose" "$unit" "$flagfile" "$k8s" "$root/.dockerignore" \
         "$here/runtime-packages.sh"; do
  [ -f "$f" ] || fail "missing $f"
done

# --- YAML -----------------------------------------------------------------
find "$here" \( -name '*.yml' -o -name '*.yaml' \) -exec yamllint -s -d \
  '{extends: default, rules: {line-length: {max: 100}, document-start: disable}}' {} +
echo "yamllint: ok ($(find "$here" \( -name '*.yml' -o -name '*.yaml' \) | wc -l) files)"

# --- the flags that exist -------------------------------------------------
# varscoped's: every ABSL_FLAG under server/ but server/tools (the flags
# of varscope-reshard), plus Abseil's own that a deployment may use.
grep -rhoE 'ABSL_FLAG\([^,]+, *[a-z_][a-z0-9_]*' "$root/server" --include='*.cc' \
     --exclude-dir=tools | sed 's/.*, *//' > "$tmp/varscoped.defined"
printf '%s\n' flagfile fromenv tryfromenv undefok >> "$tmp/varscoped.defined"
# The varscope CLI's options (the probes call it).
grep -oE 'add_(option|flag)\("--[a-z_]+' "$root/cli/main.cc" | sed 's/.*--//' | sort -u \
  > "$tmp/cli.defined"
grep -qx addr "$tmp/cli.defined" || fail "found no options in cli/main.cc (has its layout changed?)"
if ! grep -qx listen "$tmp/varscoped.defined" || ! grep -qx data_dir "$tmp/varscoped.defined"; then
  fail "found no --listen/--data_dir in server/*.cc: has the ABSL_FLAG layout changed?"
fi
grep -hoE 'ABSL_FLAG\([^,]+, *[a-z_][a-z0-9_]*' \
     "$root/examples/distributed_trainer/trainer.cc" | sed 's/.*, *//' > "$tmp/trainer.defined"
grep -qx role "$tmp/trainer.defined" || fail "found no --role in trainer.cc"

# check_flags WHAT DEFINED PROGRAM < text: every --name in the text is a
# flag in DEFINED (or --noname of one, Abseil's negated boolean).
check_flags() {
  grep -oE -- '--[a-z][a-z0-9_]*' | sed 's/^--//' | sort -u > "$tmp/used"
  [ -s "$tmp/used" ] || fail "$1: found no flags (has its layout changed?)"
  while read -r name; do
    grep -qx "$name" "$2" && continue
    case $name in no?*) grep -qx "${name#no}" "$2" && continue ;; esac
    fail "$1 passes --$name, which is not a flag of $3"
  done < "$tmp/used"
  echo "flags: $1: $(tr '\n' ' ' < "$tmp/used")ok"
}

# --- the example flagfile -------------------------------------------------
# Abseil reads each line after leading blanks as one argument, verbatim:
# a trailing blank, quote or "# comment" becomes part of the value.
awk '!/^#/ && !/^$/ { print NR ": " $0 }' "$flagfile" > "$tmp/ff"
[ -s "$tmp/ff" ] || fail "$flagfile has no flags"
if grep -vE '^[0-9]+: --[a-z][a-z0-9_]*=[^[:space:]]' "$tmp/ff"; then
  fail "$flagfile: the lines above are not --flag=value (comments start the line with #)"
fi
if grep -E '[[:space:]]$|[[:space:]]#|["'\'']' "$tmp/ff"; then
  fail "$flagfile: a trailing blank, an inline comment or a quote above would be part of the value"
fi
sed 's/^[0-9]*: //' "$tmp/ff" | check_flags "varscoped.flags.example" "$tmp/varscoped.defined" varscoped
# The commented-out flags are meant to be uncommented: they must exist too.
sed -n 's/^#\(--[a-z][a-z0-9_]*=\)/\1/p' "$flagfile" \
  | check_flags "varscoped.flags.example (commented out)" "$tmp/varscoped.defined" varscoped
grep -qE '^--listen=(127\.[0-9.]+|\[::1\]|localhost):[0-9]+$' "$flagfile" \
  || fail "$flagfile must listen on loopback"
grep -qx -- '--data_dir=/var/lib/varscope' "$flagfile" \
  || fail "$flagfile: --data_dir must be /var/lib/varscope (the unit's StateDirectory)"

# --- the systemd unit -----------------------------------------------------
# shellcheck disable=SC2016  # $MAINPID is systemd's, not ours
for line in 'ExecStart=/usr/local/bin/varscoped --flagfile=/etc/varscope/varscoped.flags' \
            'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' \
            'DynamicUser=yes' 'StateDirectory=varscope' 'ProtectSystem=strict' \
            'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes'; do
  grep -qxF "$line" "$unit" || fail "$unit lacks the line: $line"
done
sed -n 's/^ExecStart=[^ ]*//p' "$unit" | check_flags "varscoped.service ExecStart" \
  "$tmp/varscoped.defined" varscoped
# verify wants ExecStart= to exist: the copy runs /bin/true instead; the
# unit file keeps its name (verify derives the unit name from it).
mkdir "$tmp/plain" "$tmp/full"
sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' "$unit" > "$tmp/plain/varscoped.service"
# "full": every commented-out directive (#Key=value) turned on.
sed 's/^#\([A-Z][A-Za-z]*=\)/\1/' "$tmp/plain/varscoped.service" > "$tmp/full/varscoped.service"
grep -q '^LoadCredential=' "$tmp/full/varscoped.service" \
  || fail "the unit's commented LoadCredential= lines are gone (update this check)"
for variant in plain full; do
  # Unknown keys and bad values are only warnings (exit 0): any output fails.
  (cd "$tmp/$variant" && systemd-analyze verify ./varscoped.service) > "$tmp/verify" 2>&1 \
    || { cat "$tmp/verify" >&2; fail "systemd-analyze verify ($variant) failed"; }
  if [ -s "$tmp/verify" ]; then
    cat "$tmp/verify" >&2
    fail "systemd-analyze verify ($variant) warned"
  fi
  # Exposure is 0-100 here (systemd shows it /10): 20 is "2.0 OK".
  (cd "$tmp/$variant" && systemd-analyze security --offline=yes --threshold=20 \
     ./varscoped.service) > "$tmp/security" 2>&1 \
    || { tail -n 1 "$tmp/security" >&2; fail "the unit's sandbox got weaker (exposure above 2.0)"; }
  echo "systemd-analyze verify ($variant): ok; $(tail -n 1 "$tmp/security" | sed 's/^[^O]*Overall/overall/')"
done

# --- the Dockerfile -------------------------------------------------------
grep -qE '^FROM [^ ]+ AS build$' "$dockerfile" || fail "Dockerfile: no build stage (FROM ... AS build)"
grep -qE '^FROM [^ ]+ AS runtime$' "$dockerfile" || fail "Dockerfile: no runtime stage"
[ "$(grep -E '^FROM ' "$dockerfile" | tail -n 1 | sed 's/.* AS //')" = runtime ] \
  || fail "Dockerfile: the runtime stage must be the last (it is the image)"
sed -n '/^FROM [^ ]* AS build$/,/^FROM [^ ]* AS runtime$/p' "$dockerfile" \
  | tr -s ' \\\n' '   ' > "$tmp/build-stage"
sed -n '/^FROM [^ ]* AS runtime$/,$p' "$dockerfile" | grep -v '^ *#' > "$tmp/runtime-stage"
# The build stage installs what scripts/deps.sh builds with (not the test,
# sanitizer and lint tools).
sed -n '/^VARSCOPE_PACKAGES=(/,/^)/p' "$root/scripts/deps.sh" | sed '1d;$d' | tr -s ' ' '\n' \
  | grep -E -- '-dev$|^(cmake|ninja-build|pkg-config|protobuf-compiler|protobuf-compiler-grpc|grpc-proto)$' \
  | grep -vxE 'libgtest-dev|libgmock-dev' > "$tmp/build-packages"
[ -s "$tmp/build-packages" ] || fail "found no packages in scripts/deps.sh"
while read -r pkg; do
  case " $(cat "$tmp/build-stage") " in *" $pkg "*) ;; *)
    fail "Dockerfile: the build stage does not install $pkg (scripts/deps.sh has it)" ;;
  esac
done < "$tmp/build-packages"
for pkg in libcpp-httplib-dev libcli11-dev; do
  grep -q " $pkg " "$tmp/build-stage" || fail "Dockerfile: the build stage lacks $pkg"
done
grep -q -- '-DVARSCOPE_BUILD_TESTS=OFF' "$tmp/build-stage" || fail "Dockerfile: build without tests"
grep -q -- '-DVARSCOPE_BUILD_PYTHON=OFF' "$tmp/build-stage" \
  || fail "Dockerfile: build without the Python package (its packages are not installed)"
grep -q 'option(VARSCOPE_BUILD_TESTS ' "$root/CMakeLists.txt" \
  || fail "CMakeLists.txt has no VARSCOPE_BUILD_TESTS option any more"
grep -q -- '-dev' "$tmp/runtime-stage" && fail "Dockerfile: a -dev package in the runtime stage"
user=$(sed -n 's/^USER //p' "$tmp/runtime-stage" | tail -n 1)
[ -n "$user" ] || fail "Dockerfile: the runtime stage sets no USER"
case ${user%%:*} in root|0) fail "Dockerfile: USER is root" ;; esac
grep -qE '^HEALTHCHECK ' "$tmp/runtime-stage" || fail "Dockerfile: no HEALTHCHECK"
grep -qF 'CMD ["varscope", "--addr", "127.0.0.1:50051", "health"]' "$tmp/runtime-stage" \
  || fail "Dockerfile: the HEALTHCHECK must run varscope --addr 127.0.0.1:50051 health"
grep -qxF 'VOLUME ["/var/lib/varscope"]' "$tmp/runtime-stage" || fail "Dockerfile: no VOLUME /var/lib/varscope"
grep -qxF 'EXPOSE 50051 9464' "$tmp/runtime-stage" || fail "Dockerfile: EXPOSE 50051 9464"
grep -E '^(ENTRYPOINT|CMD) ' "$tmp/runtime-stage" > "$tmp/entry"
for want in '"--listen=0.0.0.0:50051"' '"--metrics_listen=0.0.0.0:9464"' \
            '"--data_dir=/var/lib/varscope"' '["varscoped"'; do
  grep -qF -- "$want" "$tmp/entry" || fail "Dockerfile: the entrypoint lacks $want"
done
check_flags "Dockerfile ENTRYPOINT/CMD" "$tmp/varscoped.defined" varscoped < "$tmp/entry"
grep -q 'build/cli/varscope ' "$tmp/build-stage" || fail "Dockerfile: the varscope CLI is not copied"
for pattern in .git build 'build-*'; do
  grep -qxF "$pattern" "$root/.dockerignore" || fail ".dockerignore lacks $pattern"
done
echo "Dockerfile: stages, packages, USER $user, HEALTHCHECK, VOLUME, EXPOSE: ok"

# --- the compose file -----------------------------------------------------
if docker compose version >/dev/null 2>&1; then
  docker compose -f "$compose" config -q || fail "docker compose config rejects $compose"
  echo "compose: docker compose config: ok"
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f "$compose" config -q || fail "docker-compose config rejects $compose"
  echo "compose: docker-compose config: ok"
else
  echo "compose: NOTE: neither 'docker compose' nor docker-compose is installed:" \
       "no schema validation, only yamllint and the checks below"
fi
# Each service's block (services are the 2-space keys under services:).
awk -v dir="$tmp" '
  /^[^ #]/ { in_services = ($0 == "services:"); name = ""; next }
  in_services && /^  [A-Za-z0-9_.-]+:$/ { name = substr($0, 3, length($0) - 3); next }
  in_services && name != "" && !/^ *#/ { print > (dir "/svc." name) }
' "$compose"
[ -f "$tmp/svc.varscoped" ] || fail "compose: no varscoped service"
workers=0
chiefs=0
for block in "$tmp"/svc.*; do
  svc=${block##*/svc.}
  grep -q 'image: varscope:latest\|<<: \*varscope-image\|<<: \*trainer' "$block" \
    || fail "compose: $svc does not use the varscope image"
  if grep -q '<<: \*trainer\|distributed_trainer' "$block"; then
    check_flags "compose $svc" "$tmp/trainer.defined" distributed_trainer < "$block"
    grep -q -- '--server=varscoped:50051' "$block" || fail "compose: $svc must reach varscoped:50051"
    grep -q -- '--workers=2' "$block" || fail "compose: $svc: --workers=2 (two worker services)"
    if grep -q -- '--role=chief' "$block"; then
      chiefs=$((chiefs + 1))
    elif grep -q -- "--role=worker\", \"--task=$workers\"" "$block"; then
      workers=$((workers + 1))
    else
      fail "compose: $svc: neither the chief nor worker --task=$workers (tasks count from 0)"
    fi
  else
    check_flags "compose $svc" "$tmp/varscoped.defined" varscoped < "$block"
  fi
done
if [ "$chiefs" != 1 ] || [ "$workers" != 2 ]; then
  fail "compose: want 1 chief and 2 workers, have $chiefs and $workers"
fi
grep -qE '^ +entrypoint: \["distributed_trainer"\]$' "$compose" || fail "compose: trainers need the entrypoint"
for port in 50051 9464; do
  grep -q "\"127.0.0.1:$port:$port\"" "$tmp/svc.varscoped" \
    || fail "compose: publish $port on the host's loopback only (127.0.0.1:$port:$port)"
done
grep -q 'varscope-data:/var/lib/varscope' "$tmp/svc.varscoped" || fail "compose: no data volume"
echo "compose: varscoped, 1 chief, 2 workers: ok"

# --- the Kubernetes manifest: the flags of the ConfigMap and the StatefulSet
awk -v dir="$tmp" '
  /^---$/ { n++; next }
  { print > (dir "/k8s-doc." n) }
' "$k8s"
found=0
for doc in "$tmp"/k8s-doc.*; do
  if grep -qE '^kind: (ConfigMap|StatefulSet)$' "$doc"; then
    found=$((found + 1))
    kind=$(sed -n 's/^kind: //p' "$doc")
    # YAML list items "- --flag" are the probes' CLI calls; the rest is
    # varscoped's command line and flagfile.
    grep -v '^ *#' "$doc" | grep -v '^ *- --' \
      | check_flags "k8s $kind" "$tmp/varscoped.defined" varscoped
    if grep -q '^ *- --' "$doc"; then
      grep '^ *- --' "$doc" | check_flags "k8s $kind probes" "$tmp/cli.defined" "the varscope CLI"
    fi
  fi
done
[ "$found" = 2 ] || fail "k8s: expected one ConfigMap and one StatefulSet, found $found"

echo "deploy: ok"
