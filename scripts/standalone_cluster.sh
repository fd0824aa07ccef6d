#!/usr/bin/env bash
# A Spark standalone cluster on loopback from the pip-installed pyspark: one master, N workers.
#
#   scripts/standalone_cluster.sh start STATE_DIR   # returns once every worker is ALIVE at the master
#   scripts/standalone_cluster.sh stop  STATE_DIR   # kills what `start` started; safe to repeat
#   scripts/standalone_cluster.sh status STATE_DIR  # the master's JSON status
#
# STATE_DIR receives the pids (*.pid), daemon logs (*.log) and the workers' work folders (work-*/,
# where executor stdout/stderr land). Settings (environment): PYTHON (default .venv/bin/python, used
# to locate pyspark), SPARK_MASTER_PORT (7077), SPARK_MASTER_WEBUI_PORT (8080), RADNET_WORKERS (2),
# RADNET_WORKER_CORES (1), RADNET_WORKER_MEMORY (2g), RADNET_CLUSTER_TIMEOUT (90 s).
# Submit with: spark-submit --master spark://127.0.0.1:$SPARK_MASTER_PORT ...
set -euo pipefail

action="${1:-}"
state="${2:-}"
if [[ -z "$action" || -z "$state" ]]; then
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    exit 2
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
host=127.0.0.1
port="${SPARK_MASTER_PORT:-7077}"
ui_port="${SPARK_MASTER_WEBUI_PORT:-8080}"
workers="${RADNET_WORKERS:-2}"
cores="${RADNET_WORKER_CORES:-1}"
memory="${RADNET_WORKER_MEMORY:-2g}"
timeout="${RADNET_CLUSTER_TIMEOUT:-90}"
status_url="http://$host:$ui_port/json/"

alive_workers() {
    # The master's JSON UI lists every worker it knows with its state.
    curl -fsS --max-time 2 "$status_url" 2>/dev/null \
        | "$python" -c 'import json,sys; print(sum(w["state"] == "ALIVE" for w in json.load(sys.stdin)["workers"]))' \
        2>/dev/null || echo 0
}

# Start one daemon in the background, detached from our stdin and from any inherited file
# descriptors (a caller's `flock` lock must not outlive the caller inside a daemon).
launch() {
    local name="$1"
    shift
    (
        cd "$state"
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        # Workers must not see the repository through PYTHONPATH: executors get radnet_spark
        # only from what spark-submit ships.
        exec env -u PYTHONPATH -u PYSPARK_PYTHON -u PYSPARK_DRIVER_PYTHON \
            SPARK_HOME="$SPARK_HOME" JAVA_HOME="$JAVA_HOME" SPARK_LOG_DIR="$state" \
            "$SPARK_HOME/bin/spark-class" "$@" </dev/null >"$state/$name.log" 2>&1
    ) &
    echo $! >"$state/$name.pid"
}

stop_all() {
    local pidfile pid
    shopt -s nullglob
    for pidfile in "$state"/*.pid; do
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

case "$action" in
start)
    mkdir -p "$state"
    state="$(cd "$state" && pwd)"
    if ls "$state"/*.pid >/dev/null 2>&1; then
        echo "$state already holds a cluster's pids; run '$0 stop $state' first." >&2
        exit 1
    fi
    if curl -fsS --max-time 2 "$status_url" >/dev/null 2>&1; then
        echo "A Spark master already answers on $status_url; stop it or set SPARK_MASTER_WEBUI_PORT." >&2
        exit 1
    fi
    SPARK_HOME="$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
    JAVA_HOME="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
    export SPARK_HOME JAVA_HOME
    launch master org.apache.spark.deploy.master.Master --host "$host" --port "$port" --webui-port "$ui_port"
    for i in $(seq "$workers"); do
        mkdir -p "$state/work-$i"
        launch "worker-$i" org.apache.spark.deploy.worker.Worker --host "$host" --cores "$cores" \
            --memory "$memory" --webui-port $((ui_port + i)) --work-dir "$state/work-$i" \
            "spark://$host:$port"
    done
    deadline=$((SECONDS + timeout))
    while [[ "$(alive_workers)" -lt "$workers" ]]; do
        if [[ $SECONDS -ge $deadline ]]; then
            echo "The cluster did not register $workers workers within ${timeout}s; logs in $state." >&2
            stop_all
            exit 1
        fi
        for pidfile in "$state"/*.pid; do
            if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                echo "$(basename "$pidfile" .pid) exited during start-up; see $state/$(basename "$pidfile" .pid).log" >&2
                stop_all
                exit 1
            fi
        done
        sleep 1
    done
    echo "spark://$host:$port ($workers workers x $cores core, UI $status_url)"
    ;;
stop)
    [[ -d "$state" ]] && stop_all
    exit 0
    ;;
status)
    curl -fsS --max-time 2 "$status_url"
    ;;
*)
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    exit 2
    ;;
esac
