#!/usr/bin/env bash
# Makes a CA and the certificates of a local Tenure cluster (docs/security.md,
# "Certificates"), with the openssl CLI. Each leaf names its identity in a
# subjectAltName URI (tenure://controller/<id>, tenure://worker/<id>,
# tenure://admin/<name>) and, to serve on this machine, IP 127.0.0.1 and
# DNS localhost. Keys are written 0600.
#
#   scripts/gen-certs.sh DIR [--controllers c1,c2,c3] [--workers w1,w2,w3] [--admins admin] [--days N]
#
# Writes DIR/ca.crt, DIR/ca.key and DIR/<kind>-<id>.{crt,key}. An existing
# CA in DIR is reused, so more certificates can be issued later. For
# production, issue from your own CA with the same URIs and your hosts' names.
set -euo pipefail

dir=${1:-}
[ -n "$dir" ] && [ "${dir#-}" = "$dir" ] || { sed -n 2,12p "$0"; exit 2; }
shift
controllers=c1,c2,c3
workers=w1,w2,w3
admins=admin
days=30
while [ $# -gt 0 ]; do
  case "$1" in
    --controllers) controllers=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --admins) admins=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "gen-certs: unknown flag $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=tenure-dev-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

issue() {  # kind id
  local kind=$1 id=$2 base="$dir/$1-$2"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n%s\n%s\n' \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=URI:tenure://$kind/$id,IP:127.0.0.1,DNS:localhost" >"$base.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$base.key" -out "$base.csr" -subj "/CN=$id" 2>/dev/null
  openssl x509 -req -in "$base.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -extfile "$base.ext" -out "$base.crt" 2>/dev/null
  rm -f "$base.csr" "$base.ext"
}

for id in ${controllers//,/ }; do issue controller "$id"; done
for id in ${workers//,/ }; do issue worker "$id"; done
for id in ${admins//,/ }; do issue admin "$id"; done
chmod 644 "$dir"/*.crt
echo "certificates in $dir: ca.crt, $(cd "$dir" && ls -- *-*.crt | tr '\n' ' ')"
