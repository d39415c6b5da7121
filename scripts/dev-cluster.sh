#!/usr/bin/env bash
# Installs what is missing, builds Release, and starts a local Tenure cluster
# on 127.0.0.1: 3 controllers, a few agents and some shards. Prints where to
# look, then keeps running until Ctrl-C (which stops everything cleanly).
#
#   scripts/dev-cluster.sh [--agents N] [--shards N] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

agents=3
shards=32
dir="$root/.cluster"
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    -h|--help) sed -n 2,7p "$0"; exit 0 ;;
    *) echo "dev-cluster: unknown flag $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build

bin="$root/build/bin"
rm -rf "$dir"
mkdir -p "$dir"
pids=()
cleanup() {
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; data and logs kept in $dir"
}
trap cleanup EXIT INT TERM

peers=""
for i in 1 2 3; do peers="$peers  - {id: c$i, address: 127.0.0.1:700$i}"$'\n'; done
for i in 1 2 3; do
  cat > "$dir/c$i.yaml" <<YAML
node_id: c$i
data_dir: $dir/c$i
listen: 127.0.0.1:700$i
peers:
$peers
raft: {heartbeat_interval_ms: 100, election_timeout_ms: 1000}
worker_lease_ms: 3000
YAML
  "$bin/tenure-controller" --config "$dir/c$i.yaml" >"$dir/c$i.log" 2>&1 &
  pids+=($!)
done

# Poll (with a deadline) until the group has a leader.
deadline=$((SECONDS + 30))
until curl -sf http://127.0.0.1:7001/readyz >/dev/null 2>&1; do
  if [ $SECONDS -gt $deadline ]; then echo "no leader after 30 s; see $dir/c*.log" >&2; exit 1; fi
  sleep 0.2
done

curl -sf -X POST http://127.0.0.1:7001/v1/shards -H 'Content-Type: application/json' \
  -d "{\"count\": $shards, \"prefix\": \"s-\"}" >/dev/null

if [ -x "$bin/tenure-agent" ]; then
  for i in $(seq 1 "$agents"); do
    port=$((8100 + i))
    cat > "$dir/w$i.yaml" <<YAML
worker_id: w$i
listen: 127.0.0.1:$port
controllers: [127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:7003]
data_dir: $dir/w$i
zone: z$(( (i - 1) % 2 + 1 ))
YAML
    "$bin/tenure-agent" --config "$dir/w$i.yaml" >"$dir/w$i.log" 2>&1 &
    pids+=($!)
  done
fi

cat <<INFO

Tenure local cluster is up.
  controllers:  http://127.0.0.1:7001  http://127.0.0.1:7002  http://127.0.0.1:7003
  agents:       $(for i in $(seq 1 "$agents"); do printf 'http://127.0.0.1:%s  ' $((8100 + i)); done)
  shards:       $shards (prefix s-)
  logs, data:   $dir

Try:
  export TENURE_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
  $bin/tenurectl cluster              # who leads, terms, indexes
  curl -s http://127.0.0.1:7001/v1/shards | python3 -m json.tool
  curl -s http://127.0.0.1:7001/v1/workers
  curl -s http://127.0.0.1:8101/v1/grants
  curl -N http://127.0.0.1:7002/v1/watch?since=0
  curl -s http://127.0.0.1:7001/metrics | grep ^tenure_
Ctrl-C stops the cluster.
INFO
wait
