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
# The TLS/token Secret: mounted as a directory (subPath mounts never see
# an updated Secret, so a SIGHUP token reload would read the old file), and
# every /etc/varscope/tls/<key> the shards' flags name is one of its keys.
secret=$(awk '/^---$/ { if (doc ~ /\nkind: Secret\n/ && doc ~ /name: varscope-tls-auth\n/) print doc; doc = ""; next }
              { doc = doc "\n" $0 }
              END { if (doc ~ /\nkind: Secret\n/ && doc ~ /name: varscope-tls-auth\n/) print doc }' "$f")
[ -n "$secret" ] || { echo "no Secret varscope-tls-auth" >&2; exit 1; }
grep -A2 -- '- name: tls-auth$' "$f" | grep -q 'mountPath: /etc/varscope/tls$' \
  || { echo "the tls-auth volume must be mounted at /etc/varscope/tls" >&2; exit 1; }
grep -A3 -- '- name: tls-auth$' "$f" | grep -q 'subPath' \
  && { echo "mount the tls-auth Secret as a directory, without subPath" >&2; exit 1; }
grep -A2 -- '- name: tls-auth$' "$f" | grep -q 'secretName: varscope-tls-auth$' \
  || { echo "the tls-auth volume must use the Secret varscope-tls-auth" >&2; exit 1; }
keys=$(grep -o '/etc/varscope/tls/[A-Za-z0-9._-]*' "$f" | sed 's#.*/##' | sort -u)
for flag in tls_cert tls_key cluster_ca auth_tokens_file; do
  grep -q -- "--$flag=/etc/varscope/tls/" "$f" \
    || { echo "the shards' --$flag must come from the Secret (/etc/varscope/tls/)" >&2; exit 1; }
done
for key in $keys; do
  printf '%s\n' "$secret" | grep -q "^  $key: |$" \
    || { echo "the flags read /etc/varscope/tls/$key, which the Secret lacks" >&2; exit 1; }
done
# Its values are placeholders: each token must stay shorter than the 16
# bytes varscoped requires, so that a forgotten placeholder makes varscoped
# refuse to start instead of becoming a live, published credential.
printf '%s\n' "$secret" | grep -q 'EVERY VALUE BELOW IS A PLACEHOLDER' \
  || { echo "say that the Secret's values are placeholders" >&2; exit 1; }
printf '%s\n' "$secret" | sed -n '/^  tokens: |$/,/^  [a-z]/p' | sed '1d;$d' | grep -v '^ *#' \
  | awk 'length($3) >= 16 { print; bad = 1 } END { exit bad }' \
  || { echo "the placeholder tokens above must be shorter than 16 bytes" >&2; exit 1; }
echo "deploy/k8s: ok"
