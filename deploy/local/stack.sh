#!/usr/bin/env bash
# The local stack: Apache Kafka (KRaft: one node, or a 3-node cluster) and a MinIO server, all real, no Docker.
#
#   deploy/local/stack.sh install   resolve Kafka's jars with mvn and build MinIO with go install (cached)
#   deploy/local/stack.sh start     install if needed, start both, wait until healthy (idempotent)
#   deploy/local/stack.sh stop      stop both (idempotent; every Kafka node found in the folder)
#   deploy/local/stack.sh status    print whether each is running and healthy; exit 1 if not both healthy
#   deploy/local/stack.sh env       print the INTAKE_* variables that point the service at this stack
#   deploy/local/stack.sh kafka-libs print the folder of Kafka's jars (for Kafka's own tools)
#   deploy/local/stack.sh start-kafka|stop-kafka|start-minio|stop-minio   one part only (start-kafka starts the
#                                   nodes that are not running, so it also restarts a killed node)
#
# Versions are pinned below and in deploy/local/kafka/pom.xml. Downloads and builds are cached outside the
# clone in $INTAKE_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/prakerja-intake), so a second run and CI on
# the same machine start fast. Data, logs, pid files and the generated MinIO credentials live in
# $INTAKE_STACK_DIR (default .stack/ in the repo, ignored by git): two stacks with their own folder and ports run
# side by side.
#
# Ports (all on 127.0.0.1): INTAKE_STACK_KAFKA_PORT (K, 19092), INTAKE_STACK_KAFKA_CONTROLLER_PORT (C, 19093),
# INTAKE_STACK_MINIO_PORT (19000), INTAKE_STACK_MINIO_CONSOLE_PORT (19001).
#
# Kafka cluster: INTAKE_STACK_BROKERS=3 starts three combined broker+controller nodes (node ids 1..3, one cluster
# id, one log dir each in $INTAKE_STACK_DIR/kafka-<id>, heap INTAKE_STACK_KAFKA_HEAP, default 256m each) with
# default.replication.factor=3, min.insync.replicas=2, unclean.leader.election.enable=false and the internal
# topics at replication 3 / min ISR 2; `env` then lists the three bootstrap addresses and
# INTAKE_TOPIC_REPLICATION=3. Unset (or 1): today's single node in $INTAKE_STACK_DIR/kafka (heap 768m).
# Port rule: node i (1-based) listens for clients on K + 10*(i-1) and for the controller quorum on
# C + 10*(i-1), so node 1 keeps K and C, and the defaults give 19092/19093, 19102/19103, 19112/19113.
# Start refuses any setting under which two of these ports (or the MinIO ports) coincide.
set -euo pipefail

KAFKA_VERSION=4.1.1            # must match <kafka.version> in deploy/local/kafka/pom.xml
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # github.com/minio/minio (source-only; pseudo-version pinned)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${INTAKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prakerja-intake}
state=${INTAKE_STACK_DIR:-$repo/.stack}
kafka_port=${INTAKE_STACK_KAFKA_PORT:-19092}
controller_port=${INTAKE_STACK_KAFKA_CONTROLLER_PORT:-19093}
minio_port=${INTAKE_STACK_MINIO_PORT:-19000}
minio_console_port=${INTAKE_STACK_MINIO_CONSOLE_PORT:-19001}
brokers=${INTAKE_STACK_BROKERS:-1}
case "$brokers" in 1|3) ;; *) printf '[stack] error: INTAKE_STACK_BROKERS must be 1 or 3, not %s\n' "$brokers" >&2; exit 1 ;; esac
if [ "$brokers" = 1 ]; then kafka_heap=${INTAKE_STACK_KAFKA_HEAP:-768m}; else kafka_heap=${INTAKE_STACK_KAFKA_HEAP:-256m}; fi
start_timeout=${INTAKE_STACK_START_TIMEOUT:-90}

# The jar folder is keyed by the pom's content: changing what the pom resolves resolves again.
kafka_libs=$cache/kafka/$KAFKA_VERSION-$(sha256sum "$here/kafka/pom.xml" | cut -c1-12)/libs
minio_bin=$cache/minio/$MINIO_VERSION/minio

if [ -n "${INTAKE_PYTHON:-}" ]; then py=$INTAKE_PYTHON
elif [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python
else py=python3; fi

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=deploy/local/proc.sh
. "$here/proc.sh"

# ---------------------------------------------------------------------------------------------- install
install_kafka() {
  if [ -f "$kafka_libs/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (and a JDK 17+)"
  log "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central into $kafka_libs"
  rm -rf "$kafka_libs"; mkdir -p "$kafka_libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$kafka_libs" >&2
  [ -f "$kafka_libs/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar was not resolved"
  touch "$kafka_libs/.complete"
}

install_minio() {
  if [ -x "$minio_bin" ]; then return; fi
  command -v go >/dev/null || die "go not found: install Go 1.24+"
  log "building MinIO $MINIO_VERSION with go install (takes a few minutes the first time)"
  mkdir -p "$(dirname "$minio_bin")"
  GOBIN=$(dirname "$minio_bin") CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION" >&2
  [ -x "$minio_bin" ] || die "go install did not produce $minio_bin"
}

# ------------------------------------------------------------------------------------------------ kafka
# Node i of $brokers: its ports (the rule in the header), its folder, its log file.
node_port() { echo $((kafka_port + 10 * ($1 - 1))); }
node_controller_port() { echo $((controller_port + 10 * ($1 - 1))); }
node_dir() { if [ "$brokers" = 1 ]; then echo "$state/kafka"; else echo "$state/kafka-$1"; fi; }
node_log() { if [ "$brokers" = 1 ]; then echo "$state/logs/kafka-server${2:-.log}"; else echo "$state/logs/kafka-$1-server${2:-.log}"; fi; }
kafka_bootstrap() {
  local i out=""
  for i in $(seq 1 "$brokers"); do out="$out${out:+,}127.0.0.1:$(node_port "$i")"; done
  echo "$out"
}

check_ports() {
  # The port rule cannot collide: refuse a setting where two listeners of this stack would share a port.
  local i ports=("$minio_port" "$minio_console_port")
  for i in $(seq 1 "$brokers"); do ports+=("$(node_port "$i")" "$(node_controller_port "$i")"); done
  local dup
  dup=$(printf '%s\n' "${ports[@]}" | sort | uniq -d | head -n 1)
  [ -z "$dup" ] || die "port $dup is used twice: INTAKE_STACK_KAFKA_PORT and INTAKE_STACK_KAFKA_CONTROLLER_PORT must not differ by a multiple of 10 below $((10 * brokers)), nor meet the MinIO ports"
}

kafka_node_start() {
  local i=$1 dir port cport voters="" j replication=$brokers min_isr
  dir=$(node_dir "$i"); port=$(node_port "$i"); cport=$(node_controller_port "$i")
  min_isr=$(( brokers > 1 ? 2 : 1 ))
  for j in $(seq 1 "$brokers"); do voters="$voters${voters:+,}$j@127.0.0.1:$(node_controller_port "$j")"; done
  mkdir -p "$dir/data" "$state/logs"
  if pid_alive "$dir/pid"; then log "kafka node $i already running (pid $(cat "$dir/pid"))"; return; fi
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=$replication
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=60000
EOF
  cat > "$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $(node_log "$i")
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
EOF
  local cp="$kafka_libs/*"
  local jvm=(java "-Xms256m" "-Xmx$kafka_heap" "-XX:+UseG1GC" "-Djava.awt.headless=true"
             "-Dlog4j2.configurationFile=$dir/log4j2.properties" "-Dkafka.logs.dir=$state/logs" -cp "$cp")
  if [ ! -f "$dir/data/meta.properties" ]; then
    # One cluster id for every node of this stack folder, generated once.
    local idfile=$state/kafka-cluster-id cluster_id
    if [ "$brokers" = 1 ] || [ ! -s "$idfile" ]; then
      "${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$state/logs/kafka-format.log" | tail -n 1 > "$idfile"
    fi
    cluster_id=$(cat "$idfile")
    log "formatting Kafka storage of node $i (cluster $cluster_id)"
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
        >>"$state/logs/kafka-format.log" 2>&1 || die "kafka storage format failed: see $state/logs/kafka-format.log"
  fi
  log "starting Kafka $KAFKA_VERSION node $i on 127.0.0.1:$port (controller 127.0.0.1:$cport)"
  setsid nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$(node_log "$i" .out)" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

kafka_start() {
  check_ports
  local i
  for i in $(seq 1 "$brokers"); do kafka_node_start "$i"; done
}

kafka_node_healthy() {
  # Healthy means a real metadata request to that node succeeds and lists every node of the cluster
  # (deploy/local/healthcheck.py, via aiokafka).
  "$py" "$here/healthcheck.py" kafka "127.0.0.1:$(node_port "$1")" "$brokers" >/dev/null 2>&1
}

kafka_wait_healthy() {
  local i
  for i in $(seq 1 "$brokers"); do
    _node=$i
    wait_healthy "kafka node $i" _kafka_current_healthy "$(node_dir "$i")/pid"
  done
}
_kafka_current_healthy() { kafka_node_healthy "$_node"; }

kafka_stop() {
  # Every node this folder holds, whatever INTAKE_STACK_BROKERS says now. All are told to stop at once: stopped one
  # by one, the last node would wait for a controller quorum that is already gone.
  local d
  for d in "$state"/kafka "$state"/kafka-*; do
    if pid_alive "$d/pid"; then kill -TERM "$(cat "$d/pid")" 2>/dev/null || true; fi
  done
  for d in "$state"/kafka "$state"/kafka-*; do
    [ -f "$d/pid" ] && stop_pidfile "kafka ($(basename "$d"))" "$d/pid"
  done
  return 0
}

kafka_status() {
  local i ok=0 name=kafka
  for i in $(seq 1 "$brokers"); do
    [ "$brokers" = 1 ] || name="kafka node $i"
    if pid_alive "$(node_dir "$i")/pid" && kafka_node_healthy "$i"; then
      echo "$name: healthy (127.0.0.1:$(node_port "$i"))"
    else echo "$name: down"; ok=1; fi
  done
  return $ok
}

# ------------------------------------------------------------------------------------------------ minio
minio_credentials() {
  # Generated once per stack folder, never committed: .stack/minio/credentials.
  local f=$state/minio/credentials
  mkdir -p "$state/minio"
  if [ ! -f "$f" ]; then
    umask 077
    printf 'MINIO_ROOT_USER=intake-%s\nMINIO_ROOT_PASSWORD=%s\n' \
      "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
      "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$f"
  fi
  # shellcheck disable=SC1090
  . "$f"
  # The static KMS key MinIO encrypts objects with (SSE-S3), generated once per stack folder, never committed.
  # Production uses a real KMS (MinIO KES); the service only asks for bucket-default encryption.
  local k=$state/minio/kms-key
  if [ ! -f "$k" ]; then
    umask 077
    printf 'intake-local-key:%s\n' "$(head -c 32 /dev/urandom | base64)" > "$k"
  fi
  MINIO_KMS_SECRET_KEY=$(cat "$k")
}

minio_start() {
  local dir=$state/minio
  mkdir -p "$dir/data" "$state/logs"
  if pid_alive "$dir/pid"; then log "minio already running (pid $(cat "$dir/pid"))"; return; fi
  minio_credentials
  log "starting MinIO on 127.0.0.1:$minio_port"
  MINIO_ROOT_USER=$MINIO_ROOT_USER MINIO_ROOT_PASSWORD=$MINIO_ROOT_PASSWORD MINIO_BROWSER=off \
  MINIO_KMS_SECRET_KEY=$MINIO_KMS_SECRET_KEY \
  MINIO_UPDATE=off MINIO_CI_CD=1 \
    setsid nohup "$minio_bin" server "$dir/data" --quiet --anonymous \
      --address "127.0.0.1:$minio_port" --console-address "127.0.0.1:$minio_console_port" \
      >>"$state/logs/minio.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

minio_healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$minio_port/minio/health/live" 2>/dev/null
}

# ------------------------------------------------------------------------------------------------ common
wait_healthy() {
  local name=$1 check=$2 pidfile=$3 deadline=$((SECONDS + start_timeout))
  until "$check"; do
    pid_alive "$pidfile" || die "$name exited during start-up: see $state/logs/"
    [ $SECONDS -lt $deadline ] || die "$name not healthy after ${start_timeout}s: see $state/logs/"
    sleep 0.5
  done
  log "$name healthy"
}

dev_secrets() {
  # Development-only keys for the service, generated once per stack folder (.stack/secrets), never committed.
  local f=$state/secrets
  mkdir -p "$state"
  if [ ! -f "$f" ]; then
    umask 077
    printf 'INTAKE_STATUS_TOKEN_KEY=%s\nINTAKE_NIK_PEPPER=%s\n' \
      "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
      "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$f"
  fi
  if ! grep -q '^INTAKE_CLIENT_KEYS=' "$f"; then
    # Two API clients: the registration front end (may submit) and the back office (may read KTP images).
    (umask 077; printf 'INTAKE_CLIENT_KEYS=web:dev1:%s:submit,backoffice:dev1:%s:read_ktp\n' \
      "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
      "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> "$f")
  fi
  # shellcheck disable=SC1090
  . "$f"
}

print_env() {
  minio_credentials
  dev_secrets
  cat <<EOF
export INTAKE_KAFKA_BOOTSTRAP=$(kafka_bootstrap)
export INTAKE_S3_ENDPOINT=127.0.0.1:$minio_port
export INTAKE_S3_ACCESS_KEY=$MINIO_ROOT_USER
export INTAKE_S3_SECRET_KEY=$MINIO_ROOT_PASSWORD
export INTAKE_STATUS_TOKEN_KEY=$INTAKE_STATUS_TOKEN_KEY
export INTAKE_NIK_PEPPER=$INTAKE_NIK_PEPPER
export INTAKE_CLIENT_KEYS=$INTAKE_CLIENT_KEYS
export INTAKE_STACK_DIR=$state
EOF
  if [ "$brokers" != 1 ]; then
    printf 'export INTAKE_STACK_BROKERS=%s\nexport INTAKE_TOPIC_REPLICATION=%s\n' "$brokers" "$brokers"
  fi
}

cmd=${1:-status}
case "$cmd" in
  install) install_kafka; install_minio ;;
  start)
    install_kafka; install_minio
    kafka_start; minio_start
    kafka_wait_healthy
    wait_healthy minio minio_healthy "$state/minio/pid"
    ;;
  start-kafka) install_kafka; kafka_start; kafka_wait_healthy ;;
  start-minio) install_minio; minio_start; wait_healthy minio minio_healthy "$state/minio/pid" ;;
  stop) kafka_stop; stop_pidfile minio "$state/minio/pid" ;;
  stop-kafka) kafka_stop ;;
  stop-minio) stop_pidfile minio "$state/minio/pid" ;;
  status)
    ok=0
    kafka_status || ok=1
    if pid_alive "$state/minio/pid" && minio_healthy; then echo "minio: healthy (127.0.0.1:$minio_port)"; else echo "minio: down"; ok=1; fi
    exit $ok ;;
  env) print_env ;;
  kafka-libs) install_kafka; echo "$kafka_libs" ;;
  *) die "usage: $0 install|start|stop|status|env|start-kafka|stop-kafka|start-minio|stop-minio" ;;
esac
