#!/usr/bin/env bash
# Installs what is missing, builds Release, and starts a local Tenure cluster
# on 127.0.0.1: 3 controllers, a few agents and some shards, and beside each
# agent the example program (examples/kv-service, a sharded key-value
# service the agent calls at its app.url). Prints where to look, then keeps
# running until Ctrl-C (which stops everything cleanly).
#
#   scripts/dev-cluster.sh [--agents N] [--shards N] [--dir DIR] [--tls] [--auth] [--no-build] [--port-base P] [--no-kv]
#
# --tls: everything over mutual TLS, with certificates from scripts/gen-certs.sh
# (controllers, agents, and tenurectl with an admin certificate).
# --auth: bearer tokens from files (0600) for admin, agents, peers and clients.
# --port-base P: controllers on P+1..P+3, agents on P+1101.., kv services on
# P+1201.. (default 7000).
# --no-build: use the programs already built (in build/bin, or --bin DIR).
# --no-kv: agents without the example program (no app.url).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

agents=3
shards=32
dir="$root/.cluster"
tls=0
auth=0
build=1
kv=1
base=7000
bin_dir="$root/build/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --tls) tls=1; shift ;;
    --auth) auth=1; shift ;;
    --no-build) build=0; shift ;;
    --no-kv) kv=0; shift ;;
    --port-base) base=$2; shift 2 ;;
    --bin) bin_dir=$2; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "dev-cluster: unknown flag $1" >&2; exit 2 ;;
  esac
done

if [ $build = 1 ]; then
  ./scripts/install-deps.sh
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build
fi

bin=$(cd "$bin_dir" && pwd)
rm -rf "$dir"
mkdir -p "$dir"
pids=()
stopped=0
cleanup() {
  [ $stopped = 0 ] || return 0
  stopped=1
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; data and logs kept in $dir"
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM

scheme=http
curl_tls=()
ctl_tls=()
if [ $tls = 1 ]; then
  workers=$(seq -s, -f 'w%g' 1 "$agents")
  ./scripts/gen-certs.sh "$dir/certs" --workers "$workers" >/dev/null
  scheme=https
  curl_tls=(--cacert "$dir/certs/ca.crt" --cert "$dir/certs/admin-admin.crt" --key "$dir/certs/admin-admin.key")
  ctl_tls=(--cacert "$dir/certs/ca.crt" --cert "$dir/certs/admin-admin.crt" --key "$dir/certs/admin-admin.key")
fi
tls_block() {  # kind id
  [ $tls = 1 ] || return 0
  echo "tls: {cert_file: $dir/certs/$1-$2.crt, key_file: $dir/certs/$1-$2.key, ca_file: $dir/certs/ca.crt}"
}
curl_auth=()
if [ $auth = 1 ]; then
  (umask 077; mkdir -p "$dir/tokens"
   for t in admin agent peer client app; do head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/tokens/$t"; done)
  curl_auth=(-H "Authorization: Bearer $(cat "$dir/tokens/admin")")
fi
controller_auth() {
  [ $auth = 1 ] || return 0
  echo "auth: {admin_token_file: $dir/tokens/admin, agent_token_file: $dir/tokens/agent, peer_token_file: $dir/tokens/peer}"
}
agent_auth() {
  [ $auth = 1 ] || return 0
  echo "auth: {agent_token_file: $dir/tokens/agent, client_token_file: $dir/tokens/client}"
}
app_block() {  # kv service port
  [ $kv = 1 ] || return 0
  local token=""
  [ $auth = 1 ] && token=", token_file: $dir/tokens/app"
  echo "app: {url: \"http://127.0.0.1:$1\", drain_timeout_ms: 2000, prepare_timeout_ms: 2000$token}"
}
# The example program beside agent i: its fence calls carry the client token
# (--auth), it requires the agent's app token of the webhooks (--auth), and, under --tls, the worker's certificate (the agent's API then
# requires one from the CA).
start_kv() {  # i
  local i=$1 args=()
  if [ $tls = 1 ]; then
    args+=(--agent-ca "$dir/certs/ca.crt" --agent-cert "$dir/certs/worker-w$i.crt" --agent-key "$dir/certs/worker-w$i.key")
  fi
  [ $auth = 1 ] && args+=(--agent-token-file "$dir/tokens/client" --app-token-file "$dir/tokens/app")
  python3 "$root/examples/kv-service/kv_service.py" --listen "127.0.0.1:$((base + 1200 + i))" \
    --agent "$scheme://127.0.0.1:$((base + 1100 + i))" --shared-dir "$dir/shared" "${args[@]}" \
    >"$dir/kv-w$i.log" 2>&1 &
  pids+=($!)
}

peers=""
for i in 1 2 3; do peers="$peers  - {id: c$i, address: 127.0.0.1:$((base + i))}"$'\n'; done
for i in 1 2 3; do
  cat > "$dir/c$i.yaml" <<YAML
node_id: c$i
data_dir: $dir/c$i
listen: 127.0.0.1:$((base + i))
peers:
$peers
raft: {heartbeat_interval_ms: 100, election_timeout_ms: 1000}
worker_lease_ms: 3000
$(controller_auth)
$(tls_block controller c$i)
YAML
  "$bin/tenure-controller" --config "$dir/c$i.yaml" >"$dir/c$i.log" 2>&1 &
  pids+=($!)
done

# Poll (with a deadline) until the group has a leader.
deadline=$((SECONDS + 30))
until curl -sf "${curl_tls[@]}" "$scheme://127.0.0.1:$((base + 1))/readyz" >/dev/null 2>&1; do
  if [ $SECONDS -gt $deadline ]; then echo "no leader after 30 s; see $dir/c*.log" >&2; exit 1; fi
  sleep 0.2
done

curl -sf "${curl_tls[@]}" "${curl_auth[@]}" -X POST "$scheme://127.0.0.1:$((base + 1))/v1/shards" \
  -H 'Content-Type: application/json' -d "{\"count\": $shards, \"prefix\": \"s-\"}" >/dev/null

if [ -x "$bin/tenure-agent" ]; then
  for i in $(seq 1 "$agents"); do
    port=$((base + 1100 + i))
    # The program first, so the agent's first calls find it.
    [ $kv = 0 ] || start_kv "$i"
    cat > "$dir/w$i.yaml" <<YAML
worker_id: w$i
listen: 127.0.0.1:$port
controllers: [127.0.0.1:$((base + 1)), 127.0.0.1:$((base + 2)), 127.0.0.1:$((base + 3))]
data_dir: $dir/w$i
zone: z$(( (i - 1) % 2 + 1 ))
$(agent_auth)
$(app_block $((base + 1200 + i)))
$(tls_block worker w$i)
YAML
    "$bin/tenure-agent" --config "$dir/w$i.yaml" >"$dir/w$i.log" 2>&1 &
    pids+=($!)
  done
fi

endpoints="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
ctl="$bin/tenurectl ${ctl_tls[*]}"
[ $auth = 1 ] && ctl="TENURE_TOKEN_FILE=$dir/tokens/admin $ctl"
kv_info=""
if [ $kv = 1 ] && [ -x "$bin/tenure-agent" ]; then
  kv_base=$((base + 1200))
  kv_info=$(cat <<KV

The example program (examples/kv-service/kv_service.py; README, "An example program"):
  kv services:  $(for i in $(seq 1 "$agents"); do printf 'http://127.0.0.1:%s (w%s)  ' $((kv_base + i)) "$i"; done)
  shared dir:   $dir/shared     logs: $dir/kv-w*.log
Write and read a key at the service of the shard's owner (the others answer 421 not_owner):
  w=\$(curl -s ${curl_tls[*]} $scheme://127.0.0.1:$((base + 1))/v1/shards/s-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker"])')
  curl -s -X PUT --data-binary hello http://127.0.0.1:\$(($kv_base + \${w#w}))/kv/s-1/greeting
  curl -s http://127.0.0.1:\$(($kv_base + \${w#w}))/kv/s-1/greeting
KV
)
fi
cat <<INFO

Tenure local cluster is up.
  controllers:  $scheme://127.0.0.1:$((base + 1))  $scheme://127.0.0.1:$((base + 2))  $scheme://127.0.0.1:$((base + 3))
  agents:       $(for i in $(seq 1 "$agents"); do printf '%s://127.0.0.1:%s  ' $scheme $((base + 1100 + i)); done)
  shards:       $shards (prefix s-)
  logs, data:   $dir
  mutual TLS:   $([ $tls = 1 ] && echo "on, certificates in $dir/certs" || echo off)
  tokens:       $([ $auth = 1 ] && echo "on, in $dir/tokens" || echo off)

Try:
  export TENURE_ENDPOINTS=$endpoints
  $ctl cluster              # who leads, terms, indexes
  curl -s ${curl_tls[*]} $scheme://127.0.0.1:$((base + 1))/v1/shards | python3 -m json.tool
  curl -s ${curl_tls[*]} $scheme://127.0.0.1:$((base + 1101))/v1/grants
  curl -s ${curl_tls[*]} $scheme://127.0.0.1:$((base + 1))/metrics | grep ^tenure_
$kv_info
Ctrl-C stops the cluster.
INFO
wait
