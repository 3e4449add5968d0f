#!/usr/bin/env bash
# Local RabbitMQ and MariaDB for Causeway, on loopback, without systemd.
#
#   deploy/services.sh [up]         install (apt) and start what is missing; on a
#                                   service it installed, also create the accounts
#                                   below; idempotent
#   deploy/services.sh accounts     create the causeway accounts when missing
#   deploy/services.sh status       one line per service; non-zero if one is down
#   deploy/services.sh env          print the exports the test suite reads
#   deploy/services.sh restart-rabbitmq | stop-rabbitmq | start-rabbitmq
#   deploy/services.sh stop-mariadb | start-mariadb
#
# The test suite and `make run` log in as RabbitMQ's guest/guest and as
# MariaDB's root over TCP on 127.0.0.1 with an empty password. "up" leaves a
# service it did not install as it is: it starts it when it is down, and
# fails (saying what is missing) when the test suite cannot log in. A
# service that does not answer while something else holds its port is not
# started: the script says so and fails. One that answers rabbitmqctl or
# mariadb-admin but accepts no connections on its port on 127.0.0.1 (a
# broker whose application is stopped, a MariaDB without networking) is not
# taken as running: "up", "start-*" and "status" say so and fail.
# On a service it installed (a marker under /var/lib/causeway-services says
# so), it lets root log in over TCP with an empty password (a fresh Debian
# MariaDB lets root in through the unix socket only) and creates the
# accounts.
#
# The accounts, for an installed Causeway (deploy/causeway.yaml): the vhost
# `causeway`, the user `causeway` (RabbitMQ and MariaDB) with the password of
# $CAUSEWAY_AMQP_PASSWORD / $CAUSEWAY_MYSQL_PASSWORD (both default to
# $CAUSEWAY_PASSWORD, then "causeway"), the database `causeway` and its
# grants. Only what is missing is created: an existing user keeps its
# password (the variables do not change it), nothing is removed.
#
# Needs root (apt, start-stop-daemon, rabbitmqctl); `env` does not.
set -euo pipefail

# CAUSEWAY_AMQP_PORT is the port RabbitMQ is expected on (used to test this
# script; the broker's configuration is what decides it).
readonly AMQP_PORT=${CAUSEWAY_AMQP_PORT:-5672}
# CAUSEWAY_MARIADBD is where mariadbd is looked for (used to test this
# script: a machine where it is not there).
readonly MARIADBD=${CAUSEWAY_MARIADBD:-/usr/sbin/mariadbd}
# The MariaDB instance is the distribution's (/etc/mysql/my.cnf). Setting
# CAUSEWAY_MYSQL_DATADIR runs a separate instance instead, with its own
# datadir, port, socket and pid file (used to test this script).
# CAUSEWAY_MYSQL_OUTPUT is where mariadbd's output goes when this script
# starts it.
readonly MYSQL_DATADIR=${CAUSEWAY_MYSQL_DATADIR:-}
readonly MYSQL_PORT=${CAUSEWAY_MYSQL_PORT:-3306}
readonly MYSQL_RUNDIR=${CAUSEWAY_MYSQL_RUNDIR:-/run/mysqld}
readonly MYSQL_SOCKET=$MYSQL_RUNDIR/mysqld.sock
readonly MYSQL_PIDFILE=$MYSQL_RUNDIR/mysqld.pid
# mariadbd's output when this script starts it, and the pid it started.
readonly MYSQL_OUTPUT=${CAUSEWAY_MYSQL_OUTPUT:-/var/log/causeway-services/mariadbd.log}
readonly MYSQL_STARTED_PID=$MYSQL_RUNDIR/causeway-services-mariadbd.pid
readonly WAIT_SECONDS=${CAUSEWAY_SERVICES_WAIT:-90}

AMQP_PASSWORD=${CAUSEWAY_AMQP_PASSWORD:-${CAUSEWAY_PASSWORD:-causeway}}
MYSQL_PASSWORD=${CAUSEWAY_MYSQL_PASSWORD:-${CAUSEWAY_PASSWORD:-causeway}}
APT_UPDATED=0
# Mark the services this script installed: only on those does "up" create
# accounts or change root's login. A separate MariaDB instance
# (CAUSEWAY_MYSQL_DATADIR) is marked in its datadir when this script
# initialised it.
readonly MARKER_DIR=/var/lib/causeway-services
readonly RABBIT_MARKER=$MARKER_DIR/rabbitmq-installed
if [[ -n $MYSQL_DATADIR ]]; then
	readonly MARIADB_MARKER=$MYSQL_DATADIR/causeway-services-initialised
else
	readonly MARIADB_MARKER=$MARKER_DIR/mariadb-installed
fi

say() { printf '%s\n' "$*"; }
die() {
	printf 'services.sh: %s\n' "$*" >&2
	exit 1
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, start-stop-daemon and rabbitmqctl need it); try: sudo $0 ${1:-}"
}

# port_open PORT: whether something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_free PORT WHAT: die unless 127.0.0.1:PORT is free, before starting a
# server on it. WHAT says which server does not answer though the port is
# taken: the one found there is someone else's (another program, or a
# server this script does not reach), and a server started beside it
# would fail to bind and be waited for in vain.
port_free() {
	port_open "$1" || return 0
	die "127.0.0.1:$1 is taken, but not by $2: not starting another one; see what holds it (ss -ltnp 'sport = :$1')"
}

# serving PORT WHAT HINT: wait until 127.0.0.1:PORT accepts connections,
# for a WHAT that answers its control tool: the test suite and make run
# connect over TCP there, and a server that answers rabbitmqctl or
# mariadb-admin ping may not (a broker booting or whose application is
# stopped, a listener on another port, a MariaDB without networking). It
# may be starting, so it gets WAIT_SECONDS; then the script dies, HINT
# saying where to look.
serving() {
	local port=$1 what=$2 hint=$3
	local end=$((SECONDS + WAIT_SECONDS))
	until port_open "$port"; do
		((SECONDS < end)) ||
			die "$what runs but does not accept connections on 127.0.0.1:$port (waited ${WAIT_SECONDS}s), where the test suite and make run connect; $hint"
		sleep 1
	done
}

# wait_until SECONDS DESCRIPTION COMMAND...: retry COMMAND once a second
# until SECONDS have passed (counting the time COMMAND takes itself).
wait_until() {
	local seconds=$1 what=$2
	shift 2
	local end=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || die "$what did not happen within ${seconds}s"
		sleep 1
	done
}

apt_install() {
	command -v apt-get >/dev/null || die "$1 is not installed and apt-get is not available; install it by hand"
	if [[ $APT_UPDATED -eq 0 ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
		APT_UPDATED=1
	fi
	# The packages' maintainer scripts may try to start the service through
	# an init system that is not there; that failure is not ours.
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
		die "apt-get install $* failed"
}

# mark FILE: record that this script installed (or initialised) a service.
mark() {
	install -d -m 0755 "$(dirname "$1")"
	: >"$1"
}

# ---------------------------------------------------------------- RabbitMQ

# rabbit_up: the node rabbitmqctl targets runs (its application may be
# stopped, or not listening on AMQP_PORT: see rabbit_serving).
rabbit_up() { rabbitmqctl -q ping >/dev/null 2>&1; }

rabbit_serving() {
	serving "$AMQP_PORT" "RabbitMQ (rabbitmqctl reaches its node)" \
		"is its application stopped (rabbitmqctl start_app) or its listener elsewhere (rabbitmqctl status, /etc/rabbitmq/rabbitmq.conf)?"
}

rabbit_install() {
	command -v rabbitmq-server >/dev/null && return 0
	# A broker that answers, or holds the port, runs without it on the
	# PATH (in a container, from another install): it is left as it is,
	# not installed beside (rabbit_start says what it finds).
	if rabbit_up || port_open "$AMQP_PORT"; then
		return 0
	fi
	# The configuration is written before the package is installed: where
	# systemd runs, the package starts the broker as soon as it is unpacked,
	# and a node started under another name than the one written afterwards
	# would be one rabbitmqctl no longer targets, holding the ports a second
	# one needs. The package ships neither file; existing ones are never
	# touched.
	install -d -m 0755 /etc/rabbitmq
	# Keep the broker on loopback.
	if [[ ! -e /etc/rabbitmq/rabbitmq.conf ]]; then
		printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$AMQP_PORT" >/etc/rabbitmq/rabbitmq.conf
	fi
	# The default node name rabbit@<hostname> fails to start where the
	# hostname does not resolve (containers). A node with no data yet (none
	# left by an earlier install) is named rabbit@localhost, with epmd and
	# the distribution port on loopback too.
	local envconf=/etc/rabbitmq/rabbitmq-env.conf
	if ! grep -qs '^NODENAME=' "$envconf" && [[ -z $(ls -A /var/lib/rabbitmq/mnesia 2>/dev/null) ]]; then
		cat >>"$envconf" <<-'EOF'
			NODENAME=rabbit@localhost
			ERL_EPMD_ADDRESS=127.0.0.1
			export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
		EOF
	fi
	apt_install rabbitmq-server
	mark "$RABBIT_MARKER"
	# The package may have started a node (systemd, or invoke-rc.d); give it
	# the chance to come up before deciding to start one.
	rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 || true
}

rabbit_start() {
	if rabbit_up; then
		rabbit_serving
		return 0
	fi
	port_free "$AMQP_PORT" "a RabbitMQ node that rabbitmqctl reaches"
	rabbitmq-server -detached >/dev/null 2>&1 || die "rabbitmq-server -detached failed; see /var/log/rabbitmq/"
	# await_startup fails at once until the node has registered with epmd,
	# so it is retried.
	wait_until "$WAIT_SECONDS" "RabbitMQ startup" rabbitmqctl -q await_startup --timeout 5
	wait_until "$WAIT_SECONDS" "RabbitMQ listening on 127.0.0.1:$AMQP_PORT" port_open "$AMQP_PORT"
}

rabbit_stop() {
	rabbit_up || return 0
	rabbitmqctl -q shutdown >/dev/null 2>&1 || die "rabbitmqctl shutdown failed"
	wait_until "$WAIT_SECONDS" "RabbitMQ shutdown" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$AMQP_PORT)"
}

# rabbit_accounts: the vhost and user causeway and the user's permissions
# on it, each only when missing; an existing user keeps its password.
rabbit_accounts() {
	local vhosts users perms
	vhosts=$(rabbitmqctl -q list_vhosts --no-table-headers 2>/dev/null) || die "rabbitmqctl list_vhosts failed"
	if ! grep -qx causeway <<<"$vhosts"; then
		rabbitmqctl -q add_vhost causeway >/dev/null || die "rabbitmqctl add_vhost causeway failed"
		say "rabbitmq: created the vhost causeway"
	fi
	users=$(rabbitmqctl -q list_users --no-table-headers 2>/dev/null) || die "rabbitmqctl list_users failed"
	if ! awk '{print $1}' <<<"$users" | grep -qx causeway; then
		rabbitmqctl -q add_user causeway "$AMQP_PASSWORD" >/dev/null || die "rabbitmqctl add_user causeway failed"
		say "rabbitmq: created the user causeway"
	else
		say "rabbitmq: the user causeway exists; its password is left as it is"
	fi
	perms=$(rabbitmqctl -q list_permissions -p causeway --no-table-headers 2>/dev/null) ||
		die "rabbitmqctl list_permissions -p causeway failed"
	if ! awk '{print $1}' <<<"$perms" | grep -qx causeway; then
		rabbitmqctl -q set_permissions -p causeway causeway '.*' '.*' '.*' >/dev/null ||
			die "rabbitmqctl set_permissions failed"
		say "rabbitmq: gave the user causeway the vhost causeway"
	fi
}


rabbit_version() { rabbitmqctl -q version 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------- MariaDB

# mysql_root SQL: run SQL as root over the unix socket (how a fresh Debian
# MariaDB lets root in).
mysql_root() { mariadb --protocol=socket -S "$MYSQL_SOCKET" -uroot -N -B -e "$1"; }

# maria_up: a MariaDB answers on the unix socket (it may not listen on
# TCP: see maria_serving).
maria_up() { mariadb-admin --protocol=socket -S "$MYSQL_SOCKET" -uroot ping >/dev/null 2>&1; }

maria_serving() {
	serving "$MYSQL_PORT" "MariaDB (of $MYSQL_SOCKET)" \
		"is networking off (skip-networking), or its port or bind-address another (/etc/mysql/, SHOW VARIABLES LIKE 'port')?"
}

maria_install() {
	[[ -x $MARIADBD ]] && return 0
	# A server that answers, or holds the port, runs without that binary
	# (MySQL, or a MariaDB before 10.5, whose server is mysqld): it is
	# left as it is, not installed over (maria_start says what it finds).
	if maria_up || port_open "$MYSQL_PORT"; then
		return 0
	fi
	apt_install mariadb-server
	mark "$MARKER_DIR/mariadb-installed"
}

maria_start() {
	if maria_up; then
		maria_serving
		return 0
	fi
	if start-stop-daemon --status --pidfile "$MYSQL_PIDFILE" --exec "$MARIADBD"; then
		# Started already (its own pid file is there), not answering yet.
		wait_until "$WAIT_SECONDS" "MariaDB startup" maria_up
		maria_serving
		return 0
	fi
	port_free "$MYSQL_PORT" "the MariaDB of $MYSQL_SOCKET"
	install -d -o mysql -g mysql -m 0755 "$MYSQL_RUNDIR"
	local datadir=${MYSQL_DATADIR:-/var/lib/mysql}
	local args=(--user=mysql)
	if [[ -n $MYSQL_DATADIR ]]; then
		install -d -o mysql -g mysql -m 0750 "$datadir"
		args+=(--datadir="$datadir" --port="$MYSQL_PORT" --socket="$MYSQL_SOCKET"
			--pid-file="$MYSQL_PIDFILE" --bind-address=127.0.0.1 --log-error="$datadir/error.log")
	fi
	if [[ ! -d $datadir/mysql ]]; then
		mariadb-install-db --user=mysql --datadir="$datadir" >/dev/null 2>&1 ||
			die "mariadb-install-db --datadir=$datadir failed"
		mark "$MARIADB_MARKER"
	fi
	# mariadbd refuses to run as root: it drops to the mysql user itself.
	# Its output goes to a log (start-stop-daemon --background would drop
	# it), and its pid to a file of ours, to see it die while it starts:
	# start-stop-daemon returns 0 once it has forked, whatever follows.
	local logs=$MYSQL_OUTPUT
	[[ -z $MYSQL_DATADIR ]] || logs+=" and $datadir/error.log"
	install -d -m 0755 "$(dirname "$MYSQL_OUTPUT")"
	printf '\n== %s: starting %s\n' "$(date -u +%FT%TZ)" "$MARIADBD" >>"$MYSQL_OUTPUT"
	rm -f "$MYSQL_STARTED_PID"
	start-stop-daemon --start --background --make-pidfile --pidfile "$MYSQL_STARTED_PID" \
		--output "$MYSQL_OUTPUT" --exec "$MARIADBD" -- "${args[@]}" ||
		die "could not start $MARIADBD; see $logs"
	local pid i
	pid=$(cat "$MYSQL_STARTED_PID" 2>/dev/null) || die "start-stop-daemon wrote no pid for $MARIADBD; see $logs"
	for ((i = 0; i < WAIT_SECONDS; i++)); do
		maria_up && break
		kill -0 "$pid" 2>/dev/null ||
			die "$MARIADBD exited while starting; see $logs"
		sleep 1
	done
	maria_up || die "MariaDB did not start within ${WAIT_SECONDS}s; see $logs"
	wait_until "$WAIT_SECONDS" "MariaDB listening on 127.0.0.1:$MYSQL_PORT" port_open "$MYSQL_PORT"
}

maria_stop() {
	start-stop-daemon --stop --quiet --oknodo --retry TERM/60/KILL/5 --pidfile "$MYSQL_PIDFILE" --exec "$MARIADBD" ||
		die "could not stop $MARIADBD"
	wait_until "$WAIT_SECONDS" "MariaDB shutdown" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$MYSQL_PORT)"
}

maria_root_tcp() {
	mariadb --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1
}

# sql_quote S: S as an SQL string literal. MariaDB reads a backslash in one
# as an escape (unless sql_mode has NO_BACKSLASH_ESCAPES, which Debian's
# does not), so it is doubled as well as the quote.
sql_quote() {
	local s=${1//\\/\\\\}
	printf "'%s'" "${s//\'/\'\'}"
}

# maria_root_login: the test suite logs in as root over TCP with an empty
# password. Only on a MariaDB this script installed is that arranged when it
# fails (root@127.0.0.1 created, root@localhost given the empty password
# beside its unix socket login); any other MariaDB is left as it is.
maria_root_login() {
	maria_root_tcp && return 0
	[[ -e $MARIADB_MARKER ]] ||
		die "root cannot log in over TCP on 127.0.0.1 with an empty password, as the test suite and make run do; this MariaDB was not installed by this script, so it is left as it is (give root@127.0.0.1 and root@localhost an empty password yourself, on a test machine only)"
	mysql_root "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
		GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
		die "could not create root@127.0.0.1 through the unix socket"
	# Without skip-name-resolve a TCP login from 127.0.0.1 is matched as
	# root@localhost, which a fresh Debian install lets in through the unix
	# socket only.
	if ! maria_root_tcp; then
		mysql_root "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');" ||
			die "could not let root@localhost log in with an empty password"
	fi
	maria_root_tcp || die "root still cannot log in over TCP on 127.0.0.1 with an empty password"
	say "mariadb: root logs in over TCP on 127.0.0.1 with an empty password (this script installed it)"
}

# maria_accounts: the database causeway, the user causeway and its grants,
# each only when missing; an existing user keeps its password. GRANT only
# adds privileges.
maria_accounts() {
	local pw host exists
	pw=$(sql_quote "$MYSQL_PASSWORD")
	mysql_root "CREATE DATABASE IF NOT EXISTS causeway CHARACTER SET utf8mb4;" ||
		die "could not create the database causeway"
	for host in 127.0.0.1 localhost; do
		exists=$(mysql_root "SELECT COUNT(*) FROM mysql.user WHERE User='causeway' AND Host='$host'") ||
			die "could not list the MariaDB users"
		if [[ $exists == 0 ]]; then
			mysql_root "CREATE USER 'causeway'@'$host' IDENTIFIED BY $pw;" ||
				die "could not create the user causeway@$host"
			say "mariadb: created the user causeway@$host"
		else
			say "mariadb: the user causeway@$host exists; its password is left as it is"
		fi
		# PROCESS: a new leader finds (information_schema.INNODB_LOCK_WAITS)
		# and kills the connection of a deposed leader holding the fence.
		mysql_root "GRANT ALL PRIVILEGES ON causeway.* TO 'causeway'@'$host';
			GRANT PROCESS ON *.* TO 'causeway'@'$host';" ||
			die "could not grant the user causeway@$host its privileges"
	done
}

maria_version() { mysql_root 'SELECT VERSION()' 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------- commands

cmd_up() {
	need_root up
	rabbit_install
	maria_install
	rabbit_start
	if [[ -e $RABBIT_MARKER ]]; then
		rabbit_accounts
	fi
	say "rabbitmq: running $(rabbit_version) on 127.0.0.1:$AMQP_PORT"
	maria_start
	maria_root_login
	if [[ -e $MARIADB_MARKER ]]; then
		maria_accounts
	fi
	say "mariadb: running $(maria_version) on 127.0.0.1:$MYSQL_PORT"
	if [[ ! -e $RABBIT_MARKER || ! -e $MARIADB_MARKER ]]; then
		say "services this script did not install were left as they are; to create Causeway's accounts on them: $0 accounts"
	fi
}

cmd_accounts() {
	need_root accounts
	rabbit_up || die "RabbitMQ is not running (try: $0 up)"
	maria_up || die "MariaDB is not running (try: $0 up)"
	rabbit_accounts
	maria_accounts
	say "accounts: vhost, database and user causeway present"
}

cmd_status() {
	need_root status
	local rc=0
	if ! rabbit_up; then
		say "rabbitmq: down"
		rc=1
	elif ! port_open "$AMQP_PORT"; then
		say "rabbitmq: its node runs, but nothing accepts connections on 127.0.0.1:$AMQP_PORT"
		rc=1
	else
		say "rabbitmq: running $(rabbit_version) on 127.0.0.1:$AMQP_PORT"
	fi
	if ! maria_up; then
		say "mariadb: down"
		rc=1
	elif ! port_open "$MYSQL_PORT"; then
		say "mariadb: it answers on $MYSQL_SOCKET, but nothing accepts connections on 127.0.0.1:$MYSQL_PORT"
		rc=1
	else
		say "mariadb: running $(maria_version) on 127.0.0.1:$MYSQL_PORT"
	fi
	return "$rc"
}

cmd_env() {
	printf "export CAUSEWAY_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:%s/'\n" "$AMQP_PORT"
	printf "export CAUSEWAY_TEST_MYSQL_DSN='root@tcp(127.0.0.1:%s)/'\n" "$MYSQL_PORT"
}

main() {
	local cmd=${1:-up}
	case $cmd in
	up) cmd_up ;;
	accounts) cmd_accounts ;;
	status) cmd_status ;;
	env) cmd_env ;;
	restart-rabbitmq)
		need_root "$cmd"
		rabbit_stop
		rabbit_start
		say "rabbitmq: restarted"
		;;
	stop-rabbitmq)
		need_root "$cmd"
		rabbit_stop
		say "rabbitmq: stopped"
		;;
	start-rabbitmq)
		need_root "$cmd"
		rabbit_start
		say "rabbitmq: running"
		;;
	stop-mariadb)
		need_root "$cmd"
		maria_stop
		say "mariadb: stopped"
		;;
	start-mariadb)
		need_root "$cmd"
		maria_start
		say "mariadb: running"
		;;
	-h | --help | help) sed -n '2,/^set -e/{/^#/{s/^# \{0,1\}//;p}}' "$0" ;;
	*) die "unknown command $cmd (try: $0 help)" ;;
	esac
}

main "$@"
