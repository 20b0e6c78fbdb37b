#!/usr/bin/env bash
# The local stack: a single-node Apache Kafka broker (KRaft) and a MinIO server, both real, no Docker.
#
#   deploy/local/stack.sh install   resolve Kafka's jars with mvn and build MinIO with go install (cached)
#   deploy/local/stack.sh start     install if needed, start both, wait until healthy (idempotent)
#   deploy/local/stack.sh stop      stop both (idempotent)
#   deploy/local/stack.sh status    print whether each is running and healthy; exit 1 if not both healthy
#   deploy/local/stack.sh env       print the INTAKE_* variables that point the service at this stack
#   deploy/local/stack.sh kafka-libs print the folder of Kafka's jars (for Kafka's own tools)
#
# Versions are pinned below and in deploy/local/kafka/pom.xml. Downloads and builds are cached outside the
# clone in $INTAKE_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/prakerja-intake), so a second run and CI on
# the same machine start fast. Data, logs, pid files and the generated MinIO credentials live in
# $INTAKE_STACK_DIR (default .stack/ in the repo, ignored by git).
#
# Ports (all on 127.0.0.1): INTAKE_STACK_KAFKA_PORT (19092), INTAKE_STACK_KAFKA_CONTROLLER_PORT (19093),
# INTAKE_STACK_MINIO_PORT (19000), INTAKE_STACK_MINIO_CONSOLE_PORT (19001).
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
kafka_heap=${INTAKE_STACK_KAFKA_HEAP:-768m}
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
kafka_start() {
  local dir=$state/kafka
  mkdir -p "$dir/data" "$state/logs"
  if pid_alive "$dir/pid"; then log "kafka already running (pid $(cat "$dir/pid"))"; return; fi
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=60000
EOF
  cat > "$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $state/logs/kafka-server.log
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
    local cluster_id
    cluster_id=$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$state/logs/kafka-format.log" | tail -n 1)
    log "formatting Kafka storage (cluster $cluster_id)"
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
        >>"$state/logs/kafka-format.log" 2>&1 || die "kafka storage format failed: see $state/logs/kafka-format.log"
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$kafka_port"
  setsid nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$state/logs/kafka.out" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

kafka_healthy() {
  # Healthy means a real metadata request succeeds (deploy/local/healthcheck.py, via aiokafka).
  "$py" "$here/healthcheck.py" kafka "127.0.0.1:$kafka_port" >/dev/null 2>&1
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
export INTAKE_KAFKA_BOOTSTRAP=127.0.0.1:$kafka_port
export INTAKE_S3_ENDPOINT=127.0.0.1:$minio_port
export INTAKE_S3_ACCESS_KEY=$MINIO_ROOT_USER
export INTAKE_S3_SECRET_KEY=$MINIO_ROOT_PASSWORD
export INTAKE_STATUS_TOKEN_KEY=$INTAKE_STATUS_TOKEN_KEY
export INTAKE_NIK_PEPPER=$INTAKE_NIK_PEPPER
export INTAKE_CLIENT_KEYS=$INTAKE_CLIENT_KEYS
export INTAKE_STACK_DIR=$state
EOF
}

cmd=${1:-status}
case "$cmd" in
  install) install_kafka; install_minio ;;
  start)
    install_kafka; install_minio
    kafka_start; minio_start
    wait_healthy kafka kafka_healthy "$state/kafka/pid"
    wait_healthy minio minio_healthy "$state/minio/pid"
    ;;
  start-kafka) install_kafka; kafka_start; wait_healthy kafka kafka_healthy "$state/kafka/pid" ;;
  start-minio) install_minio; minio_start; wait_healthy minio minio_healthy "$state/minio/pid" ;;
  stop) stop_pidfile kafka "$state/kafka/pid"; stop_pidfile minio "$state/minio/pid" ;;
  stop-kafka) stop_pidfile kafka "$state/kafka/pid" ;;
  stop-minio) stop_pidfile minio "$state/minio/pid" ;;
  status)
    ok=0
    if pid_alive "$state/kafka/pid" && kafka_healthy; then echo "kafka: healthy (127.0.0.1:$kafka_port)"; else echo "kafka: down"; ok=1; fi
    if pid_alive "$state/minio/pid" && minio_healthy; then echo "minio: healthy (127.0.0.1:$minio_port)"; else echo "minio: down"; ok=1; fi
    exit $ok ;;
  env) print_env ;;
  kafka-libs) install_kafka; echo "$kafka_libs" ;;
  *) die "usage: $0 install|start|stop|status|env|start-kafka|stop-kafka|start-minio|stop-minio" ;;
esac
