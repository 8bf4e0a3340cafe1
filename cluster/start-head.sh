#!/usr/bin/env bash
# Start the Ray head node for riskactors. Run this on the head machine.
#
# Usage: cluster/start-head.sh [--port PORT] [--num-cpus N] [--node-ip IP] [--dashboard]
# Env:   RAY_PORT (6379), RAY_NUM_CPUS (unset = Ray detects),
#        RAY_NODE_IP (unset = Ray detects), RAY_DASHBOARD (0|1, default 0)
#
# Only runs `ray start`. It never stops or kills anything: if Ray is already
# running on this node, stop it yourself with `ray stop` first.
set -euo pipefail

# Ray >= 2.59: every node and the driver must agree on the auth mode (see README)
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
# Ray starts actor processes at nice 15 by default; the shards must not lose the CPU to the fronts
export RAY_worker_niceness="${RAY_worker_niceness:-0}"

port="${RAY_PORT:-6379}"
num_cpus="${RAY_NUM_CPUS:-}"
node_ip="${RAY_NODE_IP:-}"
dashboard="${RAY_DASHBOARD:-0}"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --port)      port="$2"; shift 2 ;;
    --num-cpus)  num_cpus="$2"; shift 2 ;;
    --node-ip)   node_ip="$2"; shift 2 ;;
    --dashboard) dashboard=1; shift ;;
    -h|--help)   usage; exit 0 ;;
    *) echo "start-head.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

cmd=(ray start --head "--port=${port}")
[[ -n "$num_cpus" ]] && cmd+=("--num-cpus=${num_cpus}")
[[ -n "$node_ip" ]] && cmd+=("--node-ip-address=${node_ip}")
if [[ "$dashboard" == "1" ]]; then
  cmd+=(--include-dashboard=true --dashboard-host=0.0.0.0)
else
  cmd+=(--include-dashboard=false)
fi

echo "+ ${cmd[*]}"
"${cmd[@]}"
