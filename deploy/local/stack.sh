#!/usr/bin/env bash
# Local server stack for development and tests (Debian 12, run as root, no Docker):
#   RabbitMQ (AMQP 5672, management 15672), PostgreSQL 15 (backend for FerretDB),
#   FerretDB v1 (MongoDB wire protocol on 27017), Mailpit (SMTP 1025, HTTP API 8025).
#
# Usage: stack.sh install|start|stop|restart|status|env
#        stack.sh rabbitmq-start|rabbitmq-stop|postgres-start|postgres-stop
#        stack.sh mongo-start|mongo-stop|smtp-start|smtp-stop
#
# Environment:
#   STACK_CACHE  built binaries (default ~/.cache/petsit-stack)
#   STACK_HOME   data dirs, logs, pid files (default ~/.local/state/petsit-stack)
#   PG_PORT      PostgreSQL port (default 55432)
#   MONGO_PORT   FerretDB port (default 27017)
#   FERRETDB_DEBUG_ADDR  FerretDB metrics and pprof (e.g. 127.0.0.1:8088; default off)
set -euo pipefail

# /usr/sbin/rabbitmqctl & co. are wrappers that run the real tools as the rabbitmq user
# (with its Erlang cookie); never put /usr/lib/rabbitmq/bin itself on PATH.
export PATH="/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"
export DEBIAN_FRONTEND=noninteractive

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STACK_CACHE="${STACK_CACHE:-$HOME/.cache/petsit-stack}"
STACK_HOME="${STACK_HOME:-$HOME/.local/state/petsit-stack}"
PG_PORT="${PG_PORT:-55432}"
MONGO_PORT="${MONGO_PORT:-27017}"
AMQP_PORT=5672
RABBITMQ_MGMT_PORT=15672
SMTP_PORT_LOCAL=1025
MAILPIT_HTTP_PORT=8025

FERRETDB_VERSION=v1.24.2
MAILPIT_VERSION=v1.33.1
PG_BIN=/usr/lib/postgresql/15/bin
BIN_DIR="$STACK_CACHE/bin"
FERRETDB_BIN="$BIN_DIR/ferretdb"
MAILPIT_BIN="$BIN_DIR/mailpit"
LOG_DIR="$STACK_HOME/log"
RUN_DIR="$STACK_HOME/run"
PG_DATA="$STACK_HOME/postgres/data"
PG_LOG="$LOG_DIR/postgres.log"
PG_SOCKET_DIR="$STACK_HOME/postgres/run"
# A Unix socket path may not exceed 107 bytes.
((${#PG_SOCKET_DIR} <= 80)) || PG_SOCKET_DIR=/tmp
FERRETDB_LOG="$LOG_DIR/ferretdb.log"
MAILPIT_LOG="$LOG_DIR/mailpit.log"
RABBITMQ_BASE="$STACK_HOME/rabbitmq"
RABBITMQ_NODE=rabbit@localhost
RABBITMQ_LOG="$RABBITMQ_BASE/log/$RABBITMQ_NODE.log"
RABBITMQ_PID_FILE="$RABBITMQ_BASE/rabbitmq.pid"
RABBITMQ_STARTUP_LOG="$LOG_DIR/rabbitmq-startup.log"
FERRETDB_PID_FILE="$RUN_DIR/ferretdb.pid"
MAILPIT_PID_FILE="$RUN_DIR/mailpit.pid"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_for TIMEOUT_S WHAT LOGFILE CMD...: run CMD every second until it succeeds;
# on timeout print the tail of LOGFILE and fail.
wait_for() {
  local timeout=$1 what=$2 logfile=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      if [[ -n $logfile && -e $logfile ]]; then
        log "---- last lines of $logfile ----"
        tail -n 40 "$logfile" >&2 || true
        log "----"
      fi
      exit 1
    fi
    sleep 1
  done
}

# wait_port_closed TIMEOUT_S WHAT PORT: wait until nothing accepts on PORT.
wait_port_closed() {
  local timeout=$1 what=$2 port=$3
  local deadline=$((SECONDS + timeout))
  while port_open "$port"; do
    ((SECONDS < deadline)) || die "$what still answers on port $port after ${timeout}s"
    sleep 1
  done
}

# ---------------------------------------------------------------- install

POLICY_RC_CREATED=0
remove_policy_rc() {
  if ((POLICY_RC_CREATED)); then
    rm -f /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=0
  fi
}

install_apt_packages() {
  local need=()
  [[ -x /usr/sbin/rabbitmq-server ]] || need+=(rabbitmq-server)
  [[ -x $PG_BIN/pg_ctl ]] || need+=(postgresql)
  if ((${#need[@]} == 0)); then
    log "apt: rabbitmq-server and postgresql 15 already installed"
    return 0
  fi
  # No systemd here: keep the package scripts from starting the servers
  # (invoke-rc.d honours policy-rc.d exit code 101); this script runs them itself.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
    trap remove_policy_rc EXIT
  fi
  log "apt: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${need[@]}" >"$STACK_CACHE/apt-install.log" 2>&1 \
    || { tail -n 40 "$STACK_CACHE/apt-install.log" >&2; die "apt-get install ${need[*]} failed"; }
  remove_policy_rc
  [[ -x /usr/sbin/rabbitmq-server ]] || die "rabbitmq-server missing after apt-get install"
  [[ -x $PG_BIN/pg_ctl ]] || die "$PG_BIN/pg_ctl missing after apt-get install"
  # In case a package script started a server anyway, stop it: we run our own.
  if [[ " ${need[*]} " == *" rabbitmq-server "* ]] && pgrep -u rabbitmq -f beam >/dev/null 2>&1; then
    log "apt: stopping the RabbitMQ node started by the package"
    rabbitmqctl stop >/dev/null 2>&1 || true
  fi
  if [[ " ${need[*]} " == *" postgresql "* ]] && pgrep -u postgres -x postgres >/dev/null 2>&1 \
      && command -v pg_ctlcluster >/dev/null 2>&1; then
    log "apt: stopping the PostgreSQL cluster started by the package"
    pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
  fi
}

ferretdb_ok() {
  [[ -x $FERRETDB_BIN ]] || return 1
  local out
  out=$("$FERRETDB_BIN" --version 2>/dev/null) || return 1
  grep -qx "version: ${FERRETDB_VERSION}" <<<"$out"
}

build_ferretdb() {
  if ferretdb_ok; then
    log "ferretdb: $FERRETDB_BIN ($FERRETDB_VERSION) present"
    return 0
  fi
  log "ferretdb: building $FERRETDB_VERSION (about a minute)"
  local json dir tmp
  # `go install` yields a binary that panics at start-up: the module zip lacks
  # build/version/version.txt. Build from a writable copy of the module instead.
  json=$(cd / && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@${FERRETDB_VERSION}") \
    || die "go mod download FerretDB failed: $json"
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' | head -n 1)
  [[ -n $dir && -d $dir ]] || die "could not find the FerretDB module dir in: $json"
  tmp=$(mktemp -d "$STACK_CACHE/ferretdb-build.XXXXXX")
  cp -a "$dir/." "$tmp/"
  chmod -R u+w "$tmp"
  mkdir -p "$tmp/build/version"
  printf '%s' "$FERRETDB_VERSION" >"$tmp/build/version/version.txt"
  if ! (cd "$tmp" && GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
          go build -trimpath -o "$FERRETDB_BIN.new" ./cmd/ferretdb) >"$STACK_CACHE/ferretdb-build.log" 2>&1; then
    tail -n 40 "$STACK_CACHE/ferretdb-build.log" >&2
    rm -rf "$tmp"
    die "building FerretDB failed"
  fi
  rm -rf "$tmp"
  mv -f "$FERRETDB_BIN.new" "$FERRETDB_BIN"
  ferretdb_ok || die "built $FERRETDB_BIN but '--version' does not report $FERRETDB_VERSION"
  log "ferretdb: built $FERRETDB_BIN"
}

mailpit_ok() {
  [[ -x $MAILPIT_BIN ]] || return 1
  local out
  out=$("$MAILPIT_BIN" --help 2>&1) || return 1
  grep -q -- '--smtp-auth-accept-any' <<<"$out"
}

build_mailpit() {
  if mailpit_ok; then
    log "mailpit: $MAILPIT_BIN present"
    return 0
  fi
  log "mailpit: building $MAILPIT_VERSION"
  if ! (cd / && GOBIN="$BIN_DIR" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
          go install "github.com/axllent/mailpit@${MAILPIT_VERSION}") >"$STACK_CACHE/mailpit-build.log" 2>&1; then
    tail -n 40 "$STACK_CACHE/mailpit-build.log" >&2
    die "building Mailpit failed"
  fi
  mailpit_ok || die "built $MAILPIT_BIN but it does not run"
  log "mailpit: built $MAILPIT_BIN"
}

cmd_install() {
  [[ $(id -u) -eq 0 ]] || die "run as root"
  command -v go >/dev/null 2>&1 || die "go not found (expected /usr/local/go/bin/go)"
  mkdir -p "$BIN_DIR"
  install_apt_packages
  build_ferretdb
  build_mailpit
  log "install: done"
}

# ---------------------------------------------------------------- helpers for start/stop

require_installed() {
  [[ $(id -u) -eq 0 ]] || die "run as root"
  [[ -x /usr/sbin/rabbitmq-server && -x $PG_BIN/pg_ctl && -x $FERRETDB_BIN && -x $MAILPIT_BIN ]] \
    || die "stack not installed: run '$0 install' first"
}

# The servers run as their own users (postgres, rabbitmq) with data under
# STACK_HOME, which by default lies below /root (mode 700): give the user search
# (x) permission on each ancestor directory it cannot pass yet.
grant_traversal() {
  local user=$1 target=$2 path="" part
  local -a parts
  IFS=/ read -ra parts <<<"${target#/}"
  for part in "${parts[@]}"; do
    [[ -n $part ]] || continue
    path+="/$part"
    [[ -d $path ]] || break
    if ! runuser -u "$user" -- test -x "$path" 2>/dev/null; then
      if command -v setfacl >/dev/null 2>&1; then
        setfacl -m "u:$user:x" "$path"
        log "granted user $user search permission on $path (ACL)"
      else
        chmod o+x "$path"
        log "granted search permission on $path (chmod o+x) so that $user can reach $target"
      fi
    fi
  done
}

# proc_alive PID [NAME]: PID is a running (not zombie) process, whose command is NAME
# if given (NAME may end in '*'). PID 1 here does not always reap orphans at once,
# so a killed server can linger as a zombie that `kill -0` still finds.
proc_alive() {
  local pid=$1 name=${2:-} stat comm
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ ${stat##*) } != Z* && ${stat##*) } != X* ]] || return 1
  [[ -z $name ]] && return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  # shellcheck disable=SC2053 # NAME may be a glob
  [[ $comm == $name ]]
}

# pid_alive PIDFILE NAME: the pid in PIDFILE is a live process whose command is NAME.
pid_alive() {
  local pidfile=$1 name=$2
  [[ -s $pidfile ]] || return 1
  proc_alive "$(<"$pidfile")" "$name"
}

# record_listener_pid PORT NAME PIDFILE: store the pid that listens on PORT.
record_listener_pid() {
  local pid
  pid=$(listener_pid "$1")
  if [[ -n $pid ]] && proc_alive "$pid" "$2"; then
    echo "$pid" >"$3"
  fi
}

# listener_pid PORT: pid of the process listening on 127.0.0.1:PORT (empty if none).
listener_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

# stop_process NAME PIDFILE PORT: TERM (then KILL) a background server we started.
stop_process() {
  local name=$1 pidfile=$2 port=$3 pid=""
  if pid_alive "$pidfile" "$name"; then
    pid=$(<"$pidfile")
  else
    pid=$(listener_pid "$port")
    if [[ -n $pid ]] && ! proc_alive "$pid" "$name"; then
      die "port $port is held by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), not by $name: not stopping it"
    fi
  fi
  if [[ -z $pid ]]; then
    log "$name: not running"
    rm -f "$pidfile"
    return 0
  fi
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while proc_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name: still alive after 15s, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  wait_port_closed 10 "$name" "$port"
}

# ---------------------------------------------------------------- RabbitMQ

rabbitmq_configure() {
  mkdir -p "$RABBITMQ_BASE/mnesia" "$RABBITMQ_BASE/log" "$LOG_DIR"
  chown -R rabbitmq:rabbitmq "$RABBITMQ_BASE"
  grant_traversal rabbitmq "$RABBITMQ_BASE"
  # Read by rabbitmq-server and by the CLI tools (rabbitmqctl, rabbitmq-diagnostics).
  local envconf
  envconf=$(cat <<CONF
# Written by deploy/local/stack.sh (petsit local stack); rewritten on each start.
NODENAME=$RABBITMQ_NODE
MNESIA_BASE=$RABBITMQ_BASE/mnesia
LOG_BASE=$RABBITMQ_BASE/log
PID_FILE=$RABBITMQ_PID_FILE
CONFIG_FILE=/etc/rabbitmq/rabbitmq.conf
CONF
)
  local plugins=(rabbitmq_management)
  if [[ -n $(compgen -G '/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_prometheus-*') ]]; then
    plugins+=(rabbitmq_prometheus)
  fi
  local conf
  conf=$(cat <<CONF
# Written by deploy/local/stack.sh (petsit local stack); rewritten on each start.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
distribution.listener.interface = 127.0.0.1
management.tcp.port = $RABBITMQ_MGMT_PORT
loopback_users.guest = true
log.file.level = info
log.console = false
CONF
)
  if [[ " ${plugins[*]} " == *" rabbitmq_prometheus "* ]]; then
    conf+=$'\nprometheus.tcp.ip = 127.0.0.1'
  fi
  conf+=$'\n'$(grep -v -e '^#' -e '^$' "$HERE/../rabbitmq/petsit.conf")
  mkdir -p /etc/rabbitmq
  [[ $(cat /etc/rabbitmq/rabbitmq-env.conf 2>/dev/null) == "$envconf" ]] || printf '%s\n' "$envconf" >/etc/rabbitmq/rabbitmq-env.conf
  [[ $(cat /etc/rabbitmq/rabbitmq.conf 2>/dev/null) == "$conf" ]] || printf '%s\n' "$conf" >/etc/rabbitmq/rabbitmq.conf
  local enabled
  enabled=$(cat /etc/rabbitmq/enabled_plugins 2>/dev/null || true)
  local p missing=0
  for p in "${plugins[@]}"; do
    [[ $enabled == *"$p"* ]] || missing=1
  done
  if ((missing)); then
    log "rabbitmq: enabling plugins ${plugins[*]}"
    rabbitmq-plugins enable --offline "${plugins[@]}" >>"$RABBITMQ_STARTUP_LOG" 2>&1 \
      || { tail -n 20 "$RABBITMQ_STARTUP_LOG" >&2; die "rabbitmq-plugins enable failed"; }
  fi
}

rabbitmq_ping() {
  timeout 30 rabbitmq-diagnostics -q ping >/dev/null 2>&1
}

rabbitmq_node_pid_alive() {
  pid_alive "$RABBITMQ_PID_FILE" 'beam*'
}

# Launch the node without waiting (start_all overlaps its boot with the others).
rabbitmq_launch() {
  if port_open "$AMQP_PORT"; then
    log "rabbitmq: already answering on $AMQP_PORT"
    return 0
  fi
  rabbitmq_configure
  if rabbitmq_node_pid_alive; then
    log "rabbitmq: node process $(<"$RABBITMQ_PID_FILE") exists, waiting for it"
    return 0
  fi
  log "rabbitmq: starting $RABBITMQ_NODE (logs in $RABBITMQ_BASE/log)"
  # The wrapper switches to the rabbitmq user; -detached daemonizes the node.
  (cd / && exec setsid rabbitmq-server -detached </dev/null >>"$RABBITMQ_STARTUP_LOG" 2>&1) \
    || { tail -n 20 "$RABBITMQ_STARTUP_LOG" >&2; die "rabbitmq-server -detached failed"; }
}

rabbitmq_wait() {
  local logfile=$RABBITMQ_LOG
  [[ -e $logfile ]] || logfile=$RABBITMQ_STARTUP_LOG
  wait_for 90 "RabbitMQ (rabbitmq-diagnostics ping)" "$logfile" rabbitmq_ping
  wait_for 60 "RabbitMQ AMQP port $AMQP_PORT" "$RABBITMQ_LOG" port_open "$AMQP_PORT"
  wait_for 60 "RabbitMQ management API on $RABBITMQ_MGMT_PORT" "$RABBITMQ_LOG" \
    curl -sf -u guest:guest "http://127.0.0.1:$RABBITMQ_MGMT_PORT/api/overview"
  log "rabbitmq: up (AMQP 127.0.0.1:$AMQP_PORT, management http://127.0.0.1:$RABBITMQ_MGMT_PORT)"
}

rabbitmq_start() {
  rabbitmq_launch
  rabbitmq_wait
}

rabbitmq_stop() {
  if ! port_open "$AMQP_PORT" && ! rabbitmq_node_pid_alive && ! rabbitmq_ping; then
    log "rabbitmq: not running"
    return 0
  fi
  local pid=""
  rabbitmq_node_pid_alive && pid=$(<"$RABBITMQ_PID_FILE")
  log "rabbitmq: stopping"
  timeout 120 rabbitmqctl stop >/dev/null 2>&1 || log "rabbitmq: 'rabbitmqctl stop' failed"
  if [[ -n $pid ]]; then
    local deadline=$((SECONDS + 60))
    while proc_alive "$pid"; do
      if ((SECONDS >= deadline)); then
        log "rabbitmq: node pid $pid still alive after 60s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
      fi
      sleep 0.5
    done
  fi
  wait_port_closed 30 "rabbitmq" "$AMQP_PORT"
  log "rabbitmq: stopped"
}

# ---------------------------------------------------------------- PostgreSQL (FerretDB's backend)

pg() { (cd / && runuser -u postgres -- "$@"); }

postgres_start() {
  mkdir -p "$LOG_DIR" "$STACK_HOME/postgres"
  chown postgres:postgres "$STACK_HOME/postgres"
  chmod 700 "$STACK_HOME/postgres"
  grant_traversal postgres "$STACK_HOME/postgres"
  touch "$PG_LOG"
  chown postgres:postgres "$PG_LOG"
  mkdir -p "$PG_SOCKET_DIR"
  [[ $PG_SOCKET_DIR == /tmp ]] || chown postgres:postgres "$PG_SOCKET_DIR"
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    log "postgres: initdb $PG_DATA"
    rm -rf "$PG_DATA"
    pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 \
      || { tail -n 20 "$PG_LOG" >&2; die "initdb failed"; }
    echo "include_if_exists = 'stack.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Settings of this stack (port can change between runs via PG_PORT).
  cat >"$PG_DATA/stack.conf" <<CONF
# Written by deploy/local/stack.sh on each start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = off
# FerretDB v1 sends every filter as \`_jsonb->\$1 @> \$2\` with the field name as a parameter: a generic plan can
# never use an expression index, and PostgreSQL switched FerretDB's prepared lookups to generic ones under load
# (a lookup by id became a sequential scan: 2.3 ms instead of 0.05 ms). Planning each time costs ~0.03 ms.
plan_cache_mode = force_custom_plan
CONF
  chown postgres:postgres "$PG_DATA/stack.conf"
  if port_open "$PG_PORT"; then
    log "postgres: already answering on $PG_PORT (reloading its settings)"
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null 2>&1 || log "postgres: reload failed; settings apply at its next start"
  else
    postgres_clear_stale
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1 \
      || { tail -n 30 "$PG_LOG" >&2; die "pg_ctl start failed"; }
  fi
  wait_for 60 "PostgreSQL on $PG_PORT" "$PG_LOG" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres
  local have
  have=$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -XtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'") || die "psql on 127.0.0.1:$PG_PORT failed"
  if [[ $have != 1 ]]; then
    log "postgres: createdb ferretdb"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb
  fi
  # FerretDB v1 filters by jsonb containment, which its btree indexes cannot serve: give them GIN twins.
  PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d ferretdb \
    -XqAt -v ON_ERROR_STOP=1 -f "$HERE/ferretdb-index-twins.sql" >/dev/null \
    || die "could not install the index twins of ferretdb-index-twins.sql"
  log "postgres: up (127.0.0.1:$PG_PORT)"
}

# postgres_processes: pids of live postgres processes working in PG_DATA.
postgres_processes() {
  local p
  for p in $(pgrep -u postgres -x postgres 2>/dev/null || true); do
    if proc_alive "$p" && [[ $(readlink "/proc/$p/cwd" 2>/dev/null) == "$PG_DATA" ]]; then
      echo "$p"
    fi
  done
}

# After a crash or a kill, wait for the old server's processes to go and drop a
# stale postmaster.pid (its pid may since belong to another process).
postgres_clear_stale() {
  local deadline=$((SECONDS + 30))
  while [[ -n $(postgres_processes) ]]; do
    if ((SECONDS >= deadline)); then
      die "postgres processes of $PG_DATA still running but nothing answers on $PG_PORT: $(postgres_processes | tr '\n' ' ')(pg_ctl -D $PG_DATA stop, or a different PG_PORT than the running one?)"
    fi
    log "postgres: waiting for the processes of a previous server to exit"
    sleep 1
  done
  if [[ -e $PG_DATA/postmaster.pid ]]; then
    log "postgres: removing stale $PG_DATA/postmaster.pid"
    rm -f "$PG_DATA/postmaster.pid"
  fi
  local lock="$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT.lock"
  if [[ -e $lock ]] && ! proc_alive "$(head -n 1 "$lock" 2>/dev/null)" postgres; then
    log "postgres: removing stale $lock"
    rm -f "$lock" "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
  fi
}

postgres_stop() {
  if [[ -s $PG_DATA/postmaster.pid ]] && pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "postgres: stopping"
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || { tail -n 20 "$PG_LOG" >&2; die "pg_ctl stop failed"; }
    log "postgres: stopped"
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------- FerretDB (MongoDB wire protocol)

# mongo_ping: a MongoDB {ping: 1} on the admin database answers ok: 1.
# Uses pymongo when importable, else a hand-made OP_MSG; without python3 a TCP connect.
mongo_ping() {
  if ! command -v python3 >/dev/null 2>&1; then
    port_open "$MONGO_PORT"
    return
  fi
  python3 - "$MONGO_PORT" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
try:
    import pymongo
except ImportError:
    pymongo = None
if pymongo is not None:
    c = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000)
    sys.exit(0 if c.admin.command("ping").get("ok") == 1 else 1)
def cstr(s): return s.encode() + b"\0"
body = (b"\x10" + cstr("ping") + struct.pack("<i", 1)
        + b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin") + b"\0")
doc = struct.pack("<i", len(body) + 4) + body
payload = struct.pack("<I", 0) + b"\0" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(msg)
data = b""
while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.exit(0 if (b"\x01ok\0" + struct.pack("<d", 1.0)) in data else 1)
PY
}

mongo_start() {
  if port_open "$MONGO_PORT"; then
    log "ferretdb: already answering on $MONGO_PORT"
  else
    port_open "$PG_PORT" || postgres_start
    mkdir -p "$STACK_HOME/ferretdb" "$LOG_DIR" "$RUN_DIR"
    log "ferretdb: starting on 127.0.0.1:$MONGO_PORT (postgresql backend on $PG_PORT)"
    # The subshell redirects its own stdio first, so that nothing keeps the
    # caller's stdout/stderr open (e.g. a pipe to tee) once we return.
    (
      cd "$STACK_HOME/ferretdb"
      exec </dev/null >>"$FERRETDB_LOG" 2>&1
      # GOGC=400: FerretDB v1 allocates per document converted; the default GC target spent ~10 % of its CPU
      # collecting under the benchmark's load. A few hundred MB of heap is nothing on a development machine.
      GOGC="${FERRETDB_GOGC:-400}" setsid nohup "$FERRETDB_BIN" \
        --handler=postgresql \
        "--postgresql-url=postgres://postgres@127.0.0.1:$PG_PORT/ferretdb?pool_max_conns=50" \
        "--listen-addr=127.0.0.1:$MONGO_PORT" \
        "--state-dir=$STACK_HOME/ferretdb" \
        "--debug-addr=${FERRETDB_DEBUG_ADDR:--}" \
        --telemetry=disable \
        --log-level=warn &
      echo $! >"$FERRETDB_PID_FILE"
    )
  fi
  wait_for 60 "FerretDB port $MONGO_PORT" "$FERRETDB_LOG" port_open "$MONGO_PORT"
  wait_for 60 "FerretDB ping on $MONGO_PORT" "$FERRETDB_LOG" mongo_ping
  record_listener_pid "$MONGO_PORT" ferretdb "$FERRETDB_PID_FILE"
  log "ferretdb: up (mongodb://127.0.0.1:$MONGO_PORT/)"
}

mongo_stop() { stop_process ferretdb "$FERRETDB_PID_FILE" "$MONGO_PORT"; }

# ---------------------------------------------------------------- Mailpit (SMTP sink + HTTP API)

mailpit_api_ok() {
  curl -sf -o /dev/null "http://127.0.0.1:$MAILPIT_HTTP_PORT/api/v1/messages"
}

smtp_start() {
  if port_open "$SMTP_PORT_LOCAL"; then
    log "mailpit: already answering on $SMTP_PORT_LOCAL"
  else
    mkdir -p "$STACK_HOME/mailpit" "$LOG_DIR" "$RUN_DIR"
    log "mailpit: starting (SMTP 127.0.0.1:$SMTP_PORT_LOCAL, API 127.0.0.1:$MAILPIT_HTTP_PORT)"
    (
      cd "$STACK_HOME/mailpit"
      exec </dev/null >>"$MAILPIT_LOG" 2>&1
      setsid nohup "$MAILPIT_BIN" \
        --smtp "127.0.0.1:$SMTP_PORT_LOCAL" \
        --listen "127.0.0.1:$MAILPIT_HTTP_PORT" \
        --smtp-auth-accept-any \
        --smtp-auth-allow-insecure \
        --smtp-disable-rdns \
        --database "$STACK_HOME/mailpit/mailpit.db" \
        --max 100000 \
        --disable-version-check &
      echo $! >"$MAILPIT_PID_FILE"
    )
  fi
  wait_for 30 "Mailpit SMTP port $SMTP_PORT_LOCAL" "$MAILPIT_LOG" port_open "$SMTP_PORT_LOCAL"
  wait_for 30 "Mailpit API on $MAILPIT_HTTP_PORT" "$MAILPIT_LOG" mailpit_api_ok
  record_listener_pid "$SMTP_PORT_LOCAL" mailpit "$MAILPIT_PID_FILE"
  log "mailpit: up (SMTP 127.0.0.1:$SMTP_PORT_LOCAL, http://127.0.0.1:$MAILPIT_HTTP_PORT/api/v1/messages)"
}

smtp_stop() { stop_process mailpit "$MAILPIT_PID_FILE" "$SMTP_PORT_LOCAL"; }

# ---------------------------------------------------------------- commands

cmd_start() {
  require_installed
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  local t0=$SECONDS
  rabbitmq_launch # boots while the others start
  postgres_start
  mongo_start
  smtp_start
  rabbitmq_wait
  log "start: all up in $((SECONDS - t0))s"
}

cmd_stop() {
  smtp_stop
  mongo_stop
  postgres_stop
  rabbitmq_stop
  log "stop: done"
}

cmd_status() {
  local bad=0
  report() { # NAME CHECK...
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then
      printf '%-36s up\n' "$name"
    else
      printf '%-36s DOWN\n' "$name"
      bad=1
    fi
  }
  report "rabbitmq amqp 127.0.0.1:$AMQP_PORT" port_open "$AMQP_PORT"
  report "rabbitmq management :$RABBITMQ_MGMT_PORT" curl -sf -u guest:guest "http://127.0.0.1:$RABBITMQ_MGMT_PORT/api/overview"
  report "postgres 127.0.0.1:$PG_PORT" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres
  report "ferretdb (mongo ping) :$MONGO_PORT" mongo_ping
  report "mailpit smtp 127.0.0.1:$SMTP_PORT_LOCAL" port_open "$SMTP_PORT_LOCAL"
  report "mailpit api :$MAILPIT_HTTP_PORT" mailpit_api_ok
  return "$bad"
}

cmd_env() {
  cat <<ENV
export AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/
export MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT/
export SMTP_HOST=127.0.0.1
export SMTP_PORT=$SMTP_PORT_LOCAL
export MAILPIT_URL=http://127.0.0.1:$MAILPIT_HTTP_PORT
export RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:$RABBITMQ_MGMT_PORT
ENV
}

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    env) cmd_env ;;
    rabbitmq-start) require_installed; mkdir -p "$LOG_DIR"; rabbitmq_start ;;
    rabbitmq-stop) rabbitmq_stop ;;
    postgres-start) require_installed; postgres_start ;;
    postgres-stop) postgres_stop ;;
    mongo-start) require_installed; mongo_start ;;
    mongo-stop) mongo_stop ;;
    smtp-start) require_installed; smtp_start ;;
    smtp-stop) smtp_stop ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
