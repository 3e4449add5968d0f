#!/usr/bin/env bash
# The local Causeway cluster of `make run`: three processors, a persister,
# the static driver on the sample cloud, the listener and the notifier, as
# local processes with their logs under one folder ($RUN_DIR, default .run).
#
#   deploy/dev/cluster.sh start    start from scratch, load the sample templates,
#                                  send the alarm storm and print an RCA
#   deploy/dev/cluster.sh stop     stop every process of the cluster (SIGTERM)
#   deploy/dev/cluster.sh status   the processes and the processors' status
#
# It uses its own RabbitMQ vhost and MariaDB database (causeway_dev), created
# anew at each start, so it never touches other data. RabbitMQ and MariaDB
# must run (make services).
set -euo pipefail

cd "$(dirname "$0")/../.."
readonly TOP=$PWD
readonly RUN_DIR=${RUN_DIR:-$TOP/.run}
readonly BIN=$TOP/bin/causeway
# The binary's path as /proc/PID/exe shows it (symlinks resolved).
BIN_PATH=$(readlink -m "$BIN")
readonly BIN_PATH
readonly NAME=causeway_dev
readonly DSN="root@tcp(127.0.0.1:3306)/$NAME"
readonly AMQP="amqp://guest:guest@127.0.0.1:5672/$NAME"
readonly ADMIN_TOKEN=dev-admin-token
readonly LISTENER_TOKEN=dev-listener-token
readonly NODES=(p1 p2 p3)

die() {
	printf 'cluster.sh: %s\n' "$*" >&2
	# A start that failed half way leaves what it started running.
	local pidfile
	for pidfile in "$RUN_DIR"/*.pid; do
		if [[ -f $pidfile ]] && ours "$(<"$pidfile")"; then
			printf 'cluster.sh: processes of the cluster still run; stop them with: make stop\n' >&2
			break
		fi
	done
	exit 1
}

# ours PID: whether PID is a process of this cluster's binary. A pid file
# may outlive its process (a reboot, a crash) and its pid be reused by
# another process, which must not be signalled. A binary rebuilt or removed
# while it runs reads as "PATH (deleted)".
ours() {
	local exe
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	[[ ${exe% (deleted)} == "$BIN_PATH" ]]
}

stop_all() {
	local pidfile pid pids=()
	shopt -s nullglob
	for pidfile in "$RUN_DIR"/*.pid; do
		pid=$(<"$pidfile")
		if ours "$pid"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	if ((${#pids[@]})); then
		for _ in $(seq 1 60); do
			local alive=0
			for pid in "${pids[@]}"; do
				ours "$pid" && alive=1
			done
			((alive)) || break
			sleep 0.5
		done
		for pid in "${pids[@]}"; do
			if ours "$pid"; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	fi
	rm -f "$RUN_DIR"/*.pid
}

# spawn NAME ARGS...: run the binary in the background, logging to $RUN_DIR/NAME.log.
spawn() {
	local name=$1
	shift
	"$BIN" "$@" >"$RUN_DIR/$name.log" 2>&1 &
	echo $! >"$RUN_DIR/$name.pid"
}

write_config() {
	local peers="" n i
	for i in "${!NODES[@]}"; do
		peers+="      - {id: ${NODES[$i]}, address: \"127.0.0.1:$((7101 + i))\"}"$'\n'
	done
	cat >"$RUN_DIR/causeway.yaml" <<YAML
# Written by deploy/dev/cluster.sh for the local cluster.
database: {dsn: "$DSN"}
bus: {url: "$AMQP", reconnect_min: 100ms, reconnect_max: 2s}
persister:
  batch_wait: 10ms
  metrics_listen: "127.0.0.1:9181"
drivers:
  publisher: {spool_path: "$RUN_DIR/driver/spool.db"}
  metrics_listen: "127.0.0.1:9182"
  static:
    directory: "$TOP/deploy/sample/topology"
    interval: 30s
listener:
  server:
    listen: "127.0.0.1:8091"
    auth: {tokens: [{token: $LISTENER_TOKEN}]}
  publisher: {spool_path: "$RUN_DIR/listener/spool.db"}
  metrics_listen: "127.0.0.1:9183"
  alertmanager:
    mapping:
      rules:
        - resource_type_label: resource_type
          resource_id_labels: [resource_id]
          default_severity: warning
  events: {}
notifier:
  metrics_listen: "127.0.0.1:9184"
YAML
	for i in "${!NODES[@]}"; do
		n=${NODES[$i]}
		{
			cat "$RUN_DIR/causeway.yaml"
			cat <<YAML
processor:
  node_id: $n
  data_dir: "$RUN_DIR/$n"
  database_dsn: "$DSN"
  amqp_url: "$AMQP"
  poll_interval: 500ms
  raft:
    bind_addr: "127.0.0.1:$((7101 + i))"
    peers:
$peers  api:
    listen: "127.0.0.1:$((8081 + i))"
    tokens: [{name: dev, token: $ADMIN_TOKEN, role: admin}]
  snapshot:
    policy: {every_events: 1000, every_interval: 30s}
YAML
		} >"$RUN_DIR/processor-$n.yaml"
	done
}

fresh_services() {
	mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $NAME; CREATE DATABASE $NAME" ||
		die "cannot reach MariaDB as root on 127.0.0.1 (run: make services)"
	rabbitmqctl -q delete_vhost "$NAME" >/dev/null 2>&1 || true
	rabbitmqctl -q add_vhost "$NAME" >/dev/null || die "cannot create the RabbitMQ vhost $NAME (run: make services)"
	rabbitmqctl -q set_permissions -p "$NAME" guest '.*' '.*' '.*' >/dev/null ||
		die "cannot give RabbitMQ's guest user the vhost $NAME (is there a guest user? run: make services)"
}

api() { "$BIN" "$@" --url http://127.0.0.1:8081 --token "$ADMIN_TOKEN"; }

wait_for() { # SECONDS DESCRIPTION COMMAND...
	local seconds=$1 what=$2
	shift 2
	for _ in $(seq 1 $((seconds * 2))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	die "timed out waiting for $what (logs in $RUN_DIR)"
}

leader_known() { api status -o json | grep -Eq '"leader": *"[^"]+'; }
ready() { api status -o json | grep -q '"ready": *true'; }
has_topology() { api topology show -o json | grep -q '"vm-08"'; }

start() {
	[[ -x $BIN ]] || die "$BIN is missing (run: make build)"
	mkdir -p "$RUN_DIR"
	stop_all
	rm -rf "${RUN_DIR:?}"/*
	mkdir -p "$RUN_DIR/driver" "$RUN_DIR/listener"
	echo "== fresh vhost and database $NAME"
	fresh_services
	write_config
	echo "== migrate"
	"$BIN" migrate -c "$RUN_DIR/causeway.yaml"
	echo "== start: persister, processors ${NODES[*]}, static driver, listener, notifier (logs in $RUN_DIR)"
	spawn persister persister -c "$RUN_DIR/causeway.yaml"
	for n in "${NODES[@]}"; do
		spawn "processor-$n" processor -c "$RUN_DIR/processor-$n.yaml"
	done
	spawn listener listener -c "$RUN_DIR/causeway.yaml"
	spawn notifier notifier -c "$RUN_DIR/causeway.yaml"
	wait_for 60 "a raft leader" leader_known
	echo "== load the sample templates"
	for f in "$TOP"/deploy/templates/*.yaml; do
		api templates add "$f" >/dev/null
		echo "   $(basename "$f")"
	done
	spawn driver driver static -c "$RUN_DIR/causeway.yaml"
	wait_for 90 "the sample topology in the graph" has_topology
	wait_for 60 "the processors to catch up" ready
	echo "== alarm storm: tor-switch-1 loses its uplink (Alertmanager webhooks)"
	local alarm
	alarm=$(cd "$TOP" && go run ./deploy/dev/storm -listener-token "$LISTENER_TOKEN" -api-token "$ADMIN_TOKEN") ||
		die "the alarm storm did not produce the expected deduced alarm (logs in $RUN_DIR)"
	local now
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	echo
	echo "== root cause of the deduced alarm on instance vm-01 ($alarm):"
	api rca show "$alarm"
	cat <<EOF

The cluster runs on: API http://127.0.0.1:8081 (also :8082, :8083), listener http://127.0.0.1:8091.
  see it again:      $BIN rca show $alarm --url http://127.0.0.1:8081 --token $ADMIN_TOKEN
  the whole graph:   $BIN topology show --url http://127.0.0.1:8081 --token $ADMIN_TOKEN
  the cluster:       $BIN status --url http://127.0.0.1:8081 --token $ADMIN_TOKEN
  ask about the past: $BIN rca show $alarm --at $now -c $RUN_DIR/causeway.yaml   (rebuilt from MariaDB)
  stop it:           make stop
EOF
}

status() {
	local pidfile
	shopt -s nullglob
	for pidfile in "$RUN_DIR"/*.pid; do
		if ours "$(<"$pidfile")"; then
			echo "$(basename "$pidfile" .pid): running (pid $(<"$pidfile"))"
		else
			echo "$(basename "$pidfile" .pid): not running"
		fi
	done
	api status || true
}

case ${1:-start} in
start) start ;;
stop)
	stop_all
	echo "cluster stopped"
	;;
status) status ;;
*) die "unknown command $1 (start, stop or status)" ;;
esac
