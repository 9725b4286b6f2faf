#!/usr/bin/env bash
# Stop what scripts/serve.sh started (worker first, then server): SIGTERM to each one's process group,
# a second SIGTERM if it is still up (a Prefect worker only begins shutting down on the first one), then
# SIGKILL after SYMMV_STOP_TIMEOUT_S (20) seconds. Removes the pid files. Safe to run when nothing runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PREFECT_HOME=${PREFECT_HOME:-$PWD/.prefect}
PIDS=$PREFECT_HOME/pids
TIMEOUT_S=${SYMMV_STOP_TIMEOUT_S:-20}

signal() {  # signal SIG PID: the process group serve.sh created with setsid (pid == pgid), else the pid
  kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null
}

wait_gone() {  # wait_gone PID SECONDS: 0 once the process has exited
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

stop_one() {
  local name=$1 file=$PIDS/$1.pid pid
  pid=$(cat "$file" 2>/dev/null) || { echo "stop: $name not running (no pid file)"; return 0; }
  if ! ps -o args= -p "$pid" 2>/dev/null | grep -q prefect; then  # gone, or the pid now names something else
    echo "stop: $name not running (stale pid $pid)"
  else
    signal TERM "$pid"
    if ! wait_gone "$pid" $((TIMEOUT_S / 2)); then
      signal TERM "$pid"
      wait_gone "$pid" $((TIMEOUT_S - TIMEOUT_S / 2)) || { echo "stop: $name (pid $pid) ignored SIGTERM; killing"; signal KILL "$pid"; wait_gone "$pid" 5; }
    fi
    echo "stop: $name stopped (pid $pid)"
    # children that outlived the leader (flow-run subprocesses) share its process group
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_one worker
stop_one server
