#!/usr/bin/env bash
# Starts three memory servers on loopback, runs a workload across them with every page on two
# servers (replication 2), prints the stats, and stops the servers.
# Usage: bash examples/three-servers.sh [workload] [size]      (after npm ci)
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-seqscan}
size=${2:-4194304}
token=example-token
farmem="node dist/host/cli/main.js"
pids=()
urls=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for i in 1 2 3; do
  log=$(mktemp)
  $farmem serve --host 127.0.0.1 --port 0 --capacity 1GiB --token "$token" >"$log" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
  urls+=("$(grep -o 'ws://[0-9.:]*' "$log")")
done
store=$(IFS=,; echo "${urls[*]}")
echo "servers: $store"
$farmem run "build/assembly/$workload.wasm" --invoke run "$size" 1 \
  --local 10% --store "$store" --token "$token" --replication 2 --prefetch leap
