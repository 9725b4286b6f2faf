#!/usr/bin/env bash
# Start a local Prefect server (SQLite under $PREFECT_HOME) and a process worker in the background, then
# register the deployments of prefect.yaml whose flow files exist. Idempotent: what already runs is kept.
#
#   SYMMV_PREFECT_PORT (4200)  SYMMV_PREFECT_HOST (127.0.0.1)  SYMMV_WORK_POOL (symmv-local)
#   PREFECT_HOME (<repo>/.prefect): database, pids/, logs/, env.sh   SYMMV_SERVE_TIMEOUT_S (120)
#
# Stop both with scripts/stop.sh. Runs: `prefect deployment run 'build-symmv/demo'` (FLOW/DEPLOYMENT).
set -euo pipefail
cd "$(dirname "$0")/.."
export PWD  # prefect.yaml's pull step is `{{ $PWD }}`: `prefect deploy` must see the repo root here
REPO=$PWD
BIN=${SYMMV_VENV_BIN:-$REPO/.venv/bin}
PY=$BIN/python
PORT=${SYMMV_PREFECT_PORT:-4200}
HOST=${SYMMV_PREFECT_HOST:-127.0.0.1}
POOL=${SYMMV_WORK_POOL:-symmv-local}
TIMEOUT_S=${SYMMV_SERVE_TIMEOUT_S:-120}  # a fresh server answers in ~25 s on an idle 2-core box

export PREFECT_HOME=${PREFECT_HOME:-$REPO/.prefect}
export PREFECT_API_URL="http://$HOST:$PORT/api"
export PREFECT_UI_ENABLED=true  # symmv.pipeline.config.prefect_defaults() turns it off for ephemeral runs
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_CLI_PROMPT=false
PIDS=$PREFECT_HOME/pids
LOGS=$PREFECT_HOME/logs
mkdir -p "$PIDS" "$LOGS"

alive() {  # alive NAME: its pid file names a running prefect process
  local pid
  pid=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
  ps -o args= -p "$pid" 2>/dev/null | grep -q prefect
}

healthy() {
  "$PY" - "$PREFECT_API_URL/health" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

start() {  # start NAME CMD...: in its own session (stop.sh signals the whole group), pid + log under PREFECT_HOME
  local name=$1; shift
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  echo "serve: started $name (pid $!, log $LOGS/$name.log)"
}

if alive server; then
  echo "serve: server already running (pid $(cat "$PIDS/server.pid")) at $PREFECT_API_URL"
elif healthy; then
  echo "serve: a Prefect API not started by this script already answers at $PREFECT_API_URL; using it"
else
  start server "$BIN/prefect" server start --host "$HOST" --port "$PORT"
fi

waited=0
until healthy; do
  if [ -f "$PIDS/server.pid" ] && ! alive server; then
    echo "serve: the server exited; last lines of $LOGS/server.log:" >&2; tail -n 20 "$LOGS/server.log" >&2; exit 1
  fi
  if [ "$waited" -ge "$TIMEOUT_S" ]; then
    echo "serve: no answer from $PREFECT_API_URL/health after ${TIMEOUT_S}s (see $LOGS/server.log)" >&2; exit 1
  fi
  sleep 2; waited=$((waited + 2))
done
echo "serve: API ready at $PREFECT_API_URL"

if ! "$BIN/prefect" work-pool inspect "$POOL" >/dev/null 2>&1; then
  "$BIN/prefect" work-pool create "$POOL" --type process >/dev/null
  echo "serve: created process work pool $POOL"
fi

# `prefect deploy --all` stops at the first flow file it cannot load, so deploy by FLOW/NAME only those
# whose entrypoint exists (train-all and evaluate appear as their flows are written).
mapfile -t names < <("$PY" - <<'EOF'
from pathlib import Path
import yaml
for d in yaml.safe_load(Path("prefect.yaml").read_text())["deployments"]:
    path, function = d["entrypoint"].split(":")
    if Path(path).is_file():
        print(f"{function.replace('_', '-')}/{d['name']}")  # how `prefect deploy --name` matches a flow
EOF
)
if [ "${#names[@]}" -gt 0 ]; then
  args=(); for n in "${names[@]}"; do args+=(--name "$n"); done
  "$BIN/prefect" --no-prompt deploy "${args[@]}" >>"$LOGS/deploy.log" 2>&1 \
    || { echo "serve: prefect deploy failed; last lines of $LOGS/deploy.log:" >&2; tail -n 30 "$LOGS/deploy.log" >&2; exit 1; }
  echo "serve: deployed ${names[*]}"
else
  echo "serve: no deployment in prefect.yaml has its flow file; nothing deployed" >&2
fi

if alive worker; then
  echo "serve: worker already running (pid $(cat "$PIDS/worker.pid")) on pool $POOL"
else
  start worker "$BIN/prefect" worker start --pool "$POOL" --type process --name "symmv-local-$HOST-$PORT"
fi

cat >"$PREFECT_HOME/env.sh" <<EOF
# source this to talk to the server that scripts/serve.sh started
export PREFECT_HOME="$PREFECT_HOME" PREFECT_API_URL="$PREFECT_API_URL"
EOF
echo "serve: UI at http://$HOST:$PORT  (run: PREFECT_API_URL=$PREFECT_API_URL $BIN/prefect deployment run 'build-symmv/demo')"
