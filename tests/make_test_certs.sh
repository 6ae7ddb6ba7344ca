#!/usr/bin/env bash
# Makes throw-away TLS material for the security tests in directory $1:
#   ca.pem/ca.key            the CA trusted by the server (--tls_client_ca)
#   server.pem/server.key    for 127.0.0.1 and localhost, signed by ca
#   client.pem/client.key    a client certificate signed by ca
#   shard.pem/shard.key      a cluster shard's: serves 127.0.0.1 and dials
#                            its peers with it (server and client auth)
#   other_ca.pem             an unrelated CA
#   rogue.pem/rogue.key      a client certificate signed by other_ca
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ca() {  # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -days 2 -subj "/CN=$2" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() {  # name subject ca extension-line
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
    -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca "varscope test CA"
ca other_ca "some other CA"
leaf server localhost ca "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
leaf client trainer-1 ca "extendedKeyUsage=clientAuth"
leaf shard varscope-shard ca "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
leaf rogue intruder other_ca "extendedKeyUsage=clientAuth"
