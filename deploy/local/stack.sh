#!/usr/bin/env bash
# The local stack: Apache Kafka (KRaft: one node, or a 3-node cluster) and an S3 server (MinIO, or SeaweedFS), all
# real, no Docker.
#
#   deploy/local/stack.sh install   resolve Kafka's jars with mvn and build the S3 server(s) with Go (cached)
#   deploy/local/stack.sh start     install if needed, start all, wait until healthy (idempotent)
#   deploy/local/stack.sh stop      stop all (idempotent; every Kafka node found in the folder)
#   deploy/local/stack.sh status    print whether each is running and healthy; exit 1 if one is not
#   deploy/local/stack.sh env       print the INTAKE_* variables that point the service at this stack
#   deploy/local/stack.sh kafka-libs print the folder of Kafka's jars (for Kafka's own tools)
#   deploy/local/stack.sh start-X|stop-X   one part: kafka, minio, seaweedfs, or s3 (every S3 server of the stack);
#                                   start-kafka starts the nodes that are not running, so it also restarts a killed node
#
# S3 servers: INTAKE_STACK_S3 lists them (comma or space separated; default `minio`): `seaweedfs` runs SeaweedFS
# instead of MinIO, `minio,seaweedfs` runs both (the tests use both). The first is the one `env` points the
# service at; it listens on INTAKE_STACK_S3_PORT (an alias of INTAKE_STACK_MINIO_PORT, which is still honoured),
# the next one on that port + 2. Both encrypt at rest (SSE-S3) with a key generated per stack folder, never in
# git (INTAKE_STACK_S3_SSE=off starts them without one: only to show that the service then refuses to start).
# `env` also prints INTAKE_STACK_S3 and INTAKE_STACK_S3_ENDPOINTS (backend=host:port,...) for the tests.
#
# Versions are pinned below and in deploy/local/kafka/pom.xml. Downloads and builds are cached outside the
# clone in $INTAKE_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/prakerja-intake), so a second run and CI on
# the same machine start fast. Data, logs, pid files and the generated MinIO credentials live in
# $INTAKE_STACK_DIR (default .stack/ in the repo, ignored by git): two stacks with their own folder and ports run
# side by side.
#
# Ports (all on 127.0.0.1): INTAKE_STACK_KAFKA_PORT (K, 19092), INTAKE_STACK_KAFKA_CONTROLLER_PORT (C, 19093),
# INTAKE_STACK_S3_PORT = INTAKE_STACK_MINIO_PORT (19000), INTAKE_STACK_MINIO_CONSOLE_PORT (19001); SeaweedFS's
# own master, volume, filer and gRPC ports are the 7 from its S3 port + 10 (INTAKE_STACK_SEAWEEDFS_INTERNAL_PORT).
#
# Kafka cluster: INTAKE_STACK_BROKERS=3 starts three combined broker+controller nodes (node ids 1..3, one cluster
# id, one log dir each in $INTAKE_STACK_DIR/kafka-<id>, heap INTAKE_STACK_KAFKA_HEAP, default 256m each) with
# default.replication.factor=3, min.insync.replicas=2, unclean.leader.election.enable=false and the internal
# topics at replication 3 / min ISR 2; `env` then lists the three bootstrap addresses and
# INTAKE_TOPIC_REPLICATION=3. Unset (or 1): today's single node in $INTAKE_STACK_DIR/kafka (heap 768m).
# Port rule: node i (1-based) listens for clients on K + 10*(i-1) and for the controller quorum on
# C + 10*(i-1), so node 1 keeps K and C, and the defaults give 19092/19093, 19102/19103, 19112/19113.
# Start refuses any setting under which two of these ports (or the S3 ports) coincide.
set -euo pipefail

KAFKA_VERSION=4.1.1            # must match <kafka.version> in deploy/local/kafka/pom.xml
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # github.com/minio/minio (source-only; pseudo-version pinned)
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6   # github.com/seaweedfs/seaweedfs (pseudo-version pinned)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${INTAKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prakerja-intake}
state=${INTAKE_STACK_DIR:-$repo/.stack}
kafka_port=${INTAKE_STACK_KAFKA_PORT:-19092}
controller_port=${INTAKE_STACK_KAFKA_CONTROLLER_PORT:-19093}
s3_port=${INTAKE_STACK_S3_PORT:-${INTAKE_STACK_MINIO_PORT:-19000}}
minio_console_port=${INTAKE_STACK_MINIO_CONSOLE_PORT:-19001}
read -r -a s3_backends <<< "${INTAKE_STACK_S3:-minio}"; s3_backends=(${s3_backends[@]//,/ })
brokers=${INTAKE_STACK_BROKERS:-1}
case "$brokers" in 1|3) ;; *) printf '[stack] error: INTAKE_STACK_BROKERS must be 1 or 3, not %s\n' "$brokers" >&2; exit 1 ;; esac
if [ "$brokers" = 1 ]; then kafka_heap=${INTAKE_STACK_KAFKA_HEAP:-768m}; else kafka_heap=${INTAKE_STACK_KAFKA_HEAP:-256m}; fi
start_timeout=${INTAKE_STACK_START_TIMEOUT:-90}

# The jar folder is keyed by the pom's content: changing what the pom resolves resolves again.
kafka_libs=$cache/kafka/$KAFKA_VERSION-$(sha256sum "$here/kafka/pom.xml" | cut -c1-12)/libs
minio_bin=$cache/minio/$MINIO_VERSION/minio
seaweedfs_bin=$cache/seaweedfs/$SEAWEEDFS_VERSION/weed

if [ -n "${INTAKE_PYTHON:-}" ]; then py=$INTAKE_PYTHON
elif [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python
else py=python3; fi

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=deploy/local/proc.sh
. "$here/proc.sh"

for b in "${s3_backends[@]}"; do
  case "$b" in minio|seaweedfs) ;; *) die "INTAKE_STACK_S3: unknown S3 server '$b' (minio, seaweedfs)" ;; esac
done

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

install_seaweedfs() {
  # `go install` refuses SeaweedFS (its go.mod has replace directives): fetch the pinned module and build there.
  if [ -x "$seaweedfs_bin" ]; then return; fi
  command -v go >/dev/null || die "go not found: install Go 1.24+"
  log "building SeaweedFS $SEAWEEDFS_VERSION with go build (takes a few minutes the first time)"
  local src
  src=$(go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" \
        | "$py" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') \
    || die "go mod download github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION failed"
  mkdir -p "$(dirname "$seaweedfs_bin")"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$seaweedfs_bin.tmp" ./weed) >&2 || die "building SeaweedFS failed"
  mv "$seaweedfs_bin.tmp" "$seaweedfs_bin"
}

install_s3() { local b; for b in "${s3_backends[@]}"; do "install_$b"; done; }

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
  local i b ports=("$minio_console_port")
  for b in "${s3_backends[@]}"; do ports+=("$(s3_port_of "$b")"); done
  for i in $(seq 1 "$brokers"); do ports+=("$(node_port "$i")" "$(node_controller_port "$i")"); done
  local dup
  dup=$(printf '%s\n' "${ports[@]}" | sort | uniq -d | head -n 1)
  [ -z "$dup" ] || die "port $dup is used twice: INTAKE_STACK_KAFKA_PORT and INTAKE_STACK_KAFKA_CONTROLLER_PORT must not differ by a multiple of 10 below $((10 * brokers)), nor meet the S3 ports"
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
# The log cleaner allocates its offset map whole when it starts: 128 MB by default, half of a cluster node's 256m
# heap (a node once died of it at start-up, OutOfMemoryError starting LogManager). 32 MB maps ~1.3 M keys a pass.
log.cleaner.dedupe.buffer.size=33554432
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

need_probe_python() {
  # Kafka's health check (deploy/local/healthcheck.py) needs aiokafka: without it every probe fails, and a Kafka
  # that serves would be reported "not healthy" after the whole start timeout.
  "$py" -c 'import aiokafka' >/dev/null 2>&1 \
    || die "the Kafka health check runs $py, which cannot import aiokafka: run ./dev (it makes .venv) or set INTAKE_PYTHON"
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
s3_credentials() {
  # Generated once per stack folder, never committed: .stack/minio/credentials (every S3 server of the stack).
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

s3_port_of() {
  # The S3 port of server $1: the first listed on $s3_port, the next on $s3_port + 2.
  local i
  for i in "${!s3_backends[@]}"; do
    if [ "${s3_backends[$i]}" = "$1" ]; then echo $((s3_port + 2 * i)); return; fi
  done
  echo "$s3_port"
}

s3_sse_on() { [ "${INTAKE_STACK_S3_SSE:-on}" != off ]; }

minio_start() {
  local dir=$state/minio port
  port=$(s3_port_of minio)
  mkdir -p "$dir/data" "$state/logs"
  if pid_alive "$dir/pid"; then log "minio already running (pid $(cat "$dir/pid"))"; return; fi
  s3_credentials
  local kms=$MINIO_KMS_SECRET_KEY
  s3_sse_on || { kms=; log "MinIO without a KMS key (INTAKE_STACK_S3_SSE=off): it cannot encrypt"; }
  log "starting MinIO on 127.0.0.1:$port"
  MINIO_ROOT_USER=$MINIO_ROOT_USER MINIO_ROOT_PASSWORD=$MINIO_ROOT_PASSWORD MINIO_BROWSER=off \
  MINIO_KMS_SECRET_KEY=$kms \
  MINIO_UPDATE=off MINIO_CI_CD=1 \
    setsid nohup "$minio_bin" server "$dir/data" --quiet --anonymous \
      --address "127.0.0.1:$port" --console-address "127.0.0.1:$minio_console_port" \
      >>"$state/logs/minio.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

minio_healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(s3_port_of minio)/minio/health/live" 2>/dev/null
}

# -------------------------------------------------------------------------------------------- seaweedfs
seaweedfs_start() {
  # One `weed server` process: master, volume server, filer and S3 gateway, every port on 127.0.0.1. Buckets are
  # never created by a put (they would lack the default encryption `ensure_buckets` sets).
  local dir=$state/seaweedfs port base
  port=$(s3_port_of seaweedfs)
  base=${INTAKE_STACK_SEAWEEDFS_INTERNAL_PORT:-$((port + 10))}
  mkdir -p "$dir/data" "$state/logs"
  if pid_alive "$dir/pid"; then log "seaweedfs already running (pid $(cat "$dir/pid"))"; return; fi
  s3_credentials
  # The service's identity (the stack's S3 credentials); no anonymous identity, so anonymous requests are denied.
  (umask 077; printf '{"identities": [{"name": "intake", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}\n' \
    "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" > "$dir/s3.json")
  # The SSE-S3 key SeaweedFS derives its key-encryption key from, generated once per stack folder, never committed.
  local k=$dir/sse-key sse=
  if [ ! -f "$k" ]; then (umask 077; head -c 32 /dev/urandom | base64 > "$k"); fi
  if s3_sse_on; then sse=$(cat "$k"); else log "SeaweedFS without an SSE key (INTAKE_STACK_S3_SSE=off): it cannot encrypt"; fi
  # Its log warns that the KEK would be stored on the filer in plaintext: not with s3.sse.key, from which the KEK
  # is derived in memory (/etc/s3/sse_kek stays absent); and that the filer's IAM gRPC is unauthenticated: it
  # listens on 127.0.0.1 only (development).
  log "starting SeaweedFS on 127.0.0.1:$port (its own ports $base-$((base + 6)))"
  WEED_S3_SSE_KEY=$sse \
    setsid nohup "$seaweedfs_bin" server -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -metricsPort=0 \
      -master.port="$base" -master.port.grpc=$((base + 1)) -master.volumeSizeLimitMB=64 -master.telemetry=false \
      -master.electionTimeout=2s \
      -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) -volume.max=0 \
      -filer -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) -filer.localSocket="$dir/filer.sock" \
      -s3 -s3.port="$port" -s3.port.grpc=$((base + 6)) -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.config="$dir/s3.json" -s3.localSocket="$dir/s3.sock" -s3.autoCreateBucket=false \
      >>"$state/logs/seaweedfs.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

seaweedfs_healthy() {
  # The gateway answers before it can store (after a restart the master takes seconds to become raft leader):
  # healthy means the master assigns a file id (leader elected, a volume server registered) and the gateway
  # answers a signed (SigV4) listing of the buckets (its filer is up).
  local port base
  port=$(s3_port_of seaweedfs)
  base=${INTAKE_STACK_SEAWEEDFS_INTERNAL_PORT:-$((port + 10))}
  s3_credentials
  curl -fsS --max-time 2 "http://127.0.0.1:$base/dir/assign" 2>/dev/null | grep -q '"fid"' &&
  curl -fsS -o /dev/null --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" \
    "http://127.0.0.1:$port/" 2>/dev/null
}

s3_start() { local b; for b in "${s3_backends[@]}"; do "install_$b"; "${b}_start"; done; }
s3_wait() { local b; for b in "${s3_backends[@]}"; do wait_healthy "$b" "${b}_healthy" "$state/$b/pid"; done; }
# Every S3 server that has a pid file in this stack folder, whatever INTAKE_STACK_S3 says now (like Kafka's nodes).
s3_stop() { local b; for b in minio seaweedfs; do [ -f "$state/$b/pid" ] && stop_pidfile "$b" "$state/$b/pid"; done; return 0; }
s3_endpoints() {
  local b out=
  for b in "${s3_backends[@]}"; do out=${out:+$out,}$b=127.0.0.1:$(s3_port_of "$b"); done
  echo "$out"
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
  if ! grep -q '^INTAKE_DATA_KEKS=' "$f"; then
    # The key-encryption key wrapping the applicants' data keys (personal data sealed in Kafka records).
    (umask 077; printf 'INTAKE_DATA_KEKS=dev1:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> "$f")
  fi
  # shellcheck disable=SC1090
  . "$f"
}

print_env() {
  s3_credentials
  dev_secrets
  cat <<EOF
export INTAKE_KAFKA_BOOTSTRAP=$(kafka_bootstrap)
export INTAKE_S3_ENDPOINT=127.0.0.1:$(s3_port_of "${s3_backends[0]}")
export INTAKE_S3_ACCESS_KEY=$MINIO_ROOT_USER
export INTAKE_S3_SECRET_KEY=$MINIO_ROOT_PASSWORD
export INTAKE_STACK_S3=$(IFS=,; echo "${s3_backends[*]}")
export INTAKE_STACK_S3_ENDPOINTS=$(s3_endpoints)
export INTAKE_STATUS_TOKEN_KEY=$INTAKE_STATUS_TOKEN_KEY
export INTAKE_NIK_PEPPER=$INTAKE_NIK_PEPPER
export INTAKE_CLIENT_KEYS=$INTAKE_CLIENT_KEYS
export INTAKE_DATA_KEKS=$INTAKE_DATA_KEKS
export INTAKE_STACK_DIR=$state
EOF
  if [ "$brokers" != 1 ]; then
    printf 'export INTAKE_STACK_BROKERS=%s\nexport INTAKE_TOPIC_REPLICATION=%s\n' "$brokers" "$brokers"
  fi
}

cmd=${1:-status}
case "$cmd" in
  install) install_kafka; install_s3 ;;
  start)
    need_probe_python
    install_kafka; install_s3
    kafka_start; s3_start
    kafka_wait_healthy
    s3_wait
    ;;
  start-kafka) need_probe_python; install_kafka; kafka_start; kafka_wait_healthy ;;
  start-minio|start-seaweedfs)
    b=${cmd#start-}; "install_$b"; "${b}_start"; wait_healthy "$b" "${b}_healthy" "$state/$b/pid" ;;
  start-s3) s3_start; s3_wait ;;
  stop) kafka_stop; s3_stop ;;
  stop-kafka) kafka_stop ;;
  stop-minio|stop-seaweedfs) b=${cmd#stop-}; stop_pidfile "$b" "$state/$b/pid" ;;
  stop-s3) s3_stop ;;
  status)
    need_probe_python
    ok=0
    kafka_status || ok=1
    for b in "${s3_backends[@]}"; do
      if pid_alive "$state/$b/pid" && "${b}_healthy"; then echo "$b: healthy (127.0.0.1:$(s3_port_of "$b"))"
      else echo "$b: down"; ok=1; fi
    done
    exit $ok ;;
  env) print_env ;;
  kafka-libs) install_kafka; echo "$kafka_libs" ;;
  *) die "usage: $0 install|start|stop|status|env|start-X|stop-X (X: kafka, minio, seaweedfs, s3)" ;;
esac
