#!/usr/bin/env bash
# Run the riskactors HTTP front (uvicorn, one process) against a running Ray cluster.
#
# Usage: cluster/serve.sh [riskactors serve flags...]
#   e.g. cluster/serve.sh --placement sharded --shards 16 --host 0.0.0.0 --port 8000
# Env:   RISKACTORS_ADDRESS or RAY_ADDRESS (Ray address, default "auto" = the
#        cluster this node belongs to), and RISKACTORS_HOST, RISKACTORS_PORT,
#        RISKACTORS_PLACEMENT (sharded|dedicated), RISKACTORS_SHARDS, which
#        `riskactors serve` reads itself. Flags given here override the env.
#
# Stop it with Ctrl-C (or SIGTERM to this process's PID); Ray keeps running.
set -euo pipefail

# Ray >= 2.59: every node and the driver must agree on the auth mode (see README)
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"

address="${RISKACTORS_ADDRESS:-${RAY_ADDRESS:-auto}}"

cmd=(riskactors serve --address "$address" "$@")
echo "+ ${cmd[*]}"
exec "${cmd[@]}"
