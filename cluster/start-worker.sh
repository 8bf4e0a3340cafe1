#!/usr/bin/env bash
# Join this machine to a running riskactors Ray cluster as a worker node.
#
# Usage: cluster/start-worker.sh --head HEAD_IP[:PORT] [--port PORT] [--num-cpus N] [--node-ip IP]
#        cluster/start-worker.sh HEAD_IP[:PORT]
# Env:   RAY_HEAD (head address, required if not given as argument),
#        RAY_PORT (6379, used when the head address has no port),
#        RAY_NUM_CPUS (unset = Ray detects), RAY_NODE_IP (unset = Ray detects)
#
# Only runs `ray start`. It never stops or kills anything: if Ray is already
# running on this node, stop it yourself with `ray stop` first.
set -euo pipefail

# Ray >= 2.59: every node and the driver must agree on the auth mode (see README)
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
# Ray starts actor processes at nice 15 by default; the shards must not lose the CPU to the fronts
export RAY_worker_niceness="${RAY_worker_niceness:-0}"

head="${RAY_HEAD:-}"
port="${RAY_PORT:-6379}"
num_cpus="${RAY_NUM_CPUS:-}"
node_ip="${RAY_NODE_IP:-}"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --head)     head="$2"; shift 2 ;;
    --port)     port="$2"; shift 2 ;;
    --num-cpus) num_cpus="$2"; shift 2 ;;
    --node-ip)  node_ip="$2"; shift 2 ;;
    -h|--help)  usage; exit 0 ;;
    -*) echo "start-worker.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    *)  head="$1"; shift ;;
  esac
done

if [[ -z "$head" ]]; then
  echo "start-worker.sh: head address required (--head HEAD_IP or RAY_HEAD)" >&2
  usage >&2
  exit 2
fi
[[ "$head" == *:* ]] || head="${head}:${port}"

cmd=(ray start "--address=${head}")
[[ -n "$num_cpus" ]] && cmd+=("--num-cpus=${num_cpus}")
[[ -n "$node_ip" ]] && cmd+=("--node-ip-address=${node_ip}")

echo "+ ${cmd[*]}"
"${cmd[@]}"
