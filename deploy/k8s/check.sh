#!/bin/sh
# Offline checks of the Kubernetes manifests (no cluster here): YAML lint,
# and the facts the StatefulSet's shell relies on. It was never applied
# to a real cluster by this test.
set -eu
dir=$(dirname "$0")
yamllint -s -d '{extends: default, rules: {line-length: {max: 100}, document-start: disable}}' \
  "$dir/varscope.yaml"
f="$dir/varscope.yaml"
replicas=$(sed -n 's/^  replicas: \([0-9]*\)$/\1/p' "$f")
env_replicas=$(grep -A1 'name: REPLICAS' "$f" | sed -n 's/.*value: "\([0-9]*\)".*/\1/p')
[ -n "$replicas" ] && [ "$replicas" = "$env_replicas" ] \
  || { echo "REPLICAS ($env_replicas) must equal spec.replicas ($replicas)" >&2; exit 1; }
grep -q 'serviceName: varscope-headless' "$f" || { echo "serviceName must be the headless service" >&2; exit 1; }
grep -q 'clusterIP: None' "$f" || { echo "the headless service needs clusterIP: None" >&2; exit 1; }
grep -q 'varscope-$i.varscope-headless.$NAMESPACE.svc.cluster.local:50051' "$f" \
  || { echo "the --cluster list must use the StatefulSet's stable pod names" >&2; exit 1; }
# The flagfile is what varscoped reads: every line a --flag=value.
sed -n '/^  flags: |/,/^---/p' "$f" | sed '1d;$d' | grep -v '^    --[a-z_]*=' \
  && { echo "the ConfigMap flagfile has a line that is not --flag=value" >&2; exit 1; }
echo "deploy/k8s: ok"
