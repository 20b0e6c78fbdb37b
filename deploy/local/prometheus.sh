#!/usr/bin/env bash
# Our own Prometheus for the local stack: scrapes the API and consumers, evaluates the alert rules.
#
#   deploy/local/prometheus.sh install               install prometheus + promtool (Debian package) if missing
#   deploy/local/prometheus.sh start [TARGET...]     install if needed, start (or re-target) and wait until ready
#   deploy/local/prometheus.sh stop                  stop it (idempotent)
#   deploy/local/prometheus.sh status                print whether it runs; exit 1 if not ready
#   deploy/local/prometheus.sh check                 promtool: check the config and rules, run the rule tests
#
# TARGET is [job=]host:port (its /metrics is scraped; job defaults to "intake"). Without targets:
# $INTAKE_PROMETHEUS_TARGETS, else the ./dev up defaults "intake-api=127.0.0.1:8080 intake-consumer=127.0.0.1:9102".
# `start` on a running instance replaces the targets and reloads the config (file-based discovery, no restart).
#
# Listens on 127.0.0.1:$INTAKE_PROMETHEUS_PORT (19090). Scrape and rule interval: $INTAKE_PROMETHEUS_INTERVAL
# (default 15s, as in deploy/observability/prometheus.yml). Config, data and pid live in $INTAKE_PROMETHEUS_DIR
# (default $INTAKE_STACK_DIR/prometheus = .stack/prometheus, ignored by git); the log is $INTAKE_PROMETHEUS_LOG
# (default .stack/logs/prometheus.log). Tests run a second instance with their own port, folder and log.
#
# The Debian package ships a system service; this script never uses it: it keeps invoke-rc.d from starting it
# during the install (policy-rc.d), then stops and disables it if it runs anyway.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
obs=$repo/deploy/observability
state=${INTAKE_STACK_DIR:-$repo/.stack}
dir=${INTAKE_PROMETHEUS_DIR:-$state/prometheus}
logfile=${INTAKE_PROMETHEUS_LOG:-$state/logs/prometheus.log}
port=${INTAKE_PROMETHEUS_PORT:-19090}
interval=${INTAKE_PROMETHEUS_INTERVAL:-15s}
start_timeout=${INTAKE_PROMETHEUS_START_TIMEOUT:-60}
default_targets="intake-api=127.0.0.1:8080 intake-consumer=127.0.0.1:9102"
url=http://127.0.0.1:$port

log() { printf '[prometheus] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=deploy/local/proc.sh
. "$here/proc.sh"
ready() { curl -fsS -o /dev/null --max-time 2 "$url/-/ready" 2>/dev/null; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"; fi
}

# ---------------------------------------------------------------------------------------------- install
stop_debian_service() {
  # The package's own service (port 9090) is not ours: stop it and keep it from starting at boot.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  else
    if [ -x /etc/init.d/prometheus ]; then as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
    if command -v update-rc.d >/dev/null; then as_root update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
    if command -v deb-systemd-helper >/dev/null; then
      as_root deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
    fi
  fi
}

install_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then return; fi
  command -v apt-get >/dev/null || die "prometheus/promtool not found and apt-get is missing: install Prometheus 2.x"
  log "installing Debian's prometheus package (apt-get)"
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    # exit 101 = "action not allowed": invoke-rc.d does not start the package's service during the install
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    own_policy=1
  fi
  local rc=0
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
  } >&2 || rc=$?
  if [ "$own_policy" = 1 ]; then as_root rm -f "$policy"; fi
  [ "$rc" = 0 ] || die "apt-get install prometheus failed ($rc)"
  stop_debian_service
  command -v prometheus >/dev/null && command -v promtool >/dev/null || die "the package did not provide prometheus"
}

# ------------------------------------------------------------------------------------------------ config
write_targets() {
  # One file per job in $dir/targets/, read by file_sd (see deploy/observability/prometheus.yml).
  local -A jobs=()
  local t job addr
  for t in "$@"; do
    if [[ $t == *=* ]]; then job=${t%%=*}; addr=${t#*=}; else job=intake; addr=$t; fi
    [[ $addr =~ ^[^=/[:space:]]+:[0-9]+$ ]] || die "bad target '$t' (want [job=]host:port)"
    [[ $job =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad job name '$job'"
    jobs[$job]="${jobs[$job]:+${jobs[$job]}, }\"$addr\""
  done
  mkdir -p "$dir/targets"
  local tmp
  tmp=$(mktemp -d "$dir/targets.XXXXXX")
  for job in "${!jobs[@]}"; do
    printf '[{"targets": [%s], "labels": {"job": "%s"}}]\n' "${jobs[$job]}" "$job" > "$tmp/$job.json"
  done
  rm -f "$dir/targets/"*.json
  if compgen -G "$tmp/*.json" >/dev/null; then mv "$tmp/"*.json "$dir/targets/"; fi
  rmdir "$tmp"
}

write_config() {
  mkdir -p "$dir/data" "$dir/targets" "$(dirname "$logfile")"
  sed -E "s/^(  (scrape|evaluation)_interval:) .*/\1 $interval/" "$obs/prometheus.yml" > "$dir/prometheus.yml"
  cp "$obs/rules.yml" "$dir/rules.yml"
  promtool check config "$dir/prometheus.yml" >/dev/null || die "invalid config: promtool check config $dir/prometheus.yml"
}

# ------------------------------------------------------------------------------------------------ start/stop
start() {
  install_prometheus
  local targets=("$@")
  if [ ${#targets[@]} = 0 ]; then read -r -a targets <<< "${INTAKE_PROMETHEUS_TARGETS:-$default_targets}"; fi
  write_config
  write_targets "${targets[@]}"
  if pid_alive "$dir/pid"; then
    log "already running (pid $(cat "$dir/pid")): targets ${targets[*]}; reloading"
    kill -HUP "$(cat "$dir/pid")"
  else
    log "starting Prometheus on $url scraping ${targets[*]} every $interval"
    setsid nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle \
        >>"$logfile" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
  fi
  local deadline=$((SECONDS + start_timeout))
  until ready; do
    pid_alive "$dir/pid" || die "prometheus exited during start-up: see $logfile"
    [ $SECONDS -lt $deadline ] || die "prometheus not ready after ${start_timeout}s: see $logfile"
    sleep 0.3
  done
  log "ready on $url"
}

stop() { stop_pidfile prometheus "$dir/pid"; }

check() {
  install_prometheus
  promtool check rules "$obs/rules.yml"
  promtool check config "$obs/prometheus.yml"
  (cd "$obs/tests" && promtool test rules ./*.yml)
}

cmd=${1:-status}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install_prometheus ;;
  start) start "$@" ;;
  stop) stop ;;
  status)
    if pid_alive "$dir/pid" && ready; then echo "prometheus: healthy ($url)"; else echo "prometheus: down"; exit 1; fi ;;
  check) check ;;
  *) die "usage: $0 install|start [TARGET...]|stop|status|check" ;;
esac
