#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests (no cluster needed).
#
#   deploy/kubernetes/validate.sh                 generated files up to date, every overlay rendered by kustomize
#                                                 and the SeaweedFS chart by helm with seaweedfs/values.yaml,
#                                                 every object validated by kubeconform -strict
#   deploy/kubernetes/validate.sh files F.yaml…   validate these manifest files instead of the overlays
#   deploy/kubernetes/validate.sh render OVERLAY  print an overlay as kustomize renders it (OVERLAY seaweedfs:
#                                                 the SeaweedFS chart as helm renders it with our values)
#   deploy/kubernetes/validate.sh install         install the tools and build the schemas (all cached)
#
# Schemas, all taken from registry packages and never from a cluster:
#   * Kubernetes: PyPI kubernetes-validate (a dev dependency), its vX.Y.0-local-strict set, $refs rewritten;
#   * KEDA: the CRDs in the Go module github.com/kedacore/keda/v2 (go mod download);
#   * Prometheus Operator: the CRDs in the Go module github.com/prometheus-operator/prometheus-operator;
#   * Strimzi (no CRD package anywhere): Strimzi's own CRD generator run over its API model, both jars from
#     Maven Central (schemas/strimzi/pom.xml), exactly as Strimzi's build writes its released CRDs. Needs a
#     JDK 21+ (the jars are Java 21 bytecode): JAVA_HOME, java on PATH, or /usr/lib/jvm/*.
# CRD schemas are made strict by schemas/build_schemas.py (unknown fields fail). A kind with no schema fails.
# Tools and schemas are cached in $INTAKE_CACHE_DIR/k8s (default ${XDG_CACHE_HOME:-~/.cache}/prakerja-intake/k8s).
set -euo pipefail

KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2
HELM_VERSION=v3.22.0
# SeaweedFS's Helm chart ships in its Go module (k8s/charts/seaweedfs, chart 4.53.0 at this pseudo-version).
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
# The oldest Kubernetes the manifests target (preStop sleep: beta, on by default, since 1.30) and the newest
# kubernetes-validate ships: an API removed meanwhile fails one of them.
read -r -a KUBE_VERSIONS <<< "${INTAKE_KUBE_VERSIONS:-1.33.0 1.37.0}"
KEDA_VERSION=v2.21.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
OVERLAYS=(staging production)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${INTAKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/prakerja-intake}/k8s
if [ -n "${INTAKE_PYTHON:-}" ]; then py=$INTAKE_PYTHON
elif [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python
else py=python3; fi

kubeconform=$cache/kubeconform-$KUBECONFORM_VERSION/kubeconform
kustomize=$cache/kustomize-$KUSTOMIZE_VERSION/kustomize
helm=$cache/helm-$HELM_VERSION/helm
strimzi_key=$(cat "$here/schemas/strimzi/pom.xml" "$here/schemas/build_schemas.py" | sha256sum | cut -c1-12)
crd_key=$(printf '%s %s %s' "$KEDA_VERSION" "$PROMETHEUS_OPERATOR_VERSION" "$strimzi_key" | sha256sum | cut -c1-12)
crd_schemas=$cache/schemas/crds-$crd_key

log() { printf '[validate] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

go_install() {  # binary-path module@version
  local bin=$1 module=$2
  [ -x "$bin" ] && return
  command -v go >/dev/null || die "go not found: install Go 1.24+"
  log "building $module with go install (cached in $(dirname "$bin"))"
  mkdir -p "$(dirname "$bin")"
  GOBIN=$(dirname "$bin") CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$module" >&2
  [ -x "$bin" ] || die "go install $module did not produce $bin"
}

module_dir() {  # module@version -> its folder in the module cache
  go mod download -json "$1" | "$py" -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))'
}

find_java21() {
  local candidates=() j v
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null && candidates+=("$(command -v java)")
  for j in /usr/lib/jvm/*/bin/java; do [ -x "$j" ] && candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 21 ]; then echo "$j"; return; fi
  done
  return 1
}

k8s_schemas() {  # KUBE_VERSION -> the folder of its strict schemas
  local pkg version dir kube=$1
  pkg=$("$py" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))' 2>/dev/null) ||
    die "kubernetes-validate is missing from $py: install the project's dev extra (./dev does)"
  version=$("$py" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')
  dir=$cache/schemas/kubernetes-$version-v$kube-$(sha256sum < "$here/schemas/build_schemas.py" | cut -c1-12)
  if [ ! -f "$dir/.complete" ]; then
    local src=$pkg/kubernetes-json-schema/v$kube-local-strict
    [ -d "$src" ] || die "kubernetes-validate $version has no schemas for Kubernetes $kube"
    rm -rf "$dir"
    "$py" "$here/schemas/build_schemas.py" k8s "$src" "$dir" >&2
    touch "$dir/.complete"
  fi
  echo "$dir"
}

build_crd_schemas() {
  [ -f "$crd_schemas/.complete" ] && return
  command -v go >/dev/null || die "go not found: install Go 1.24+"
  command -v mvn >/dev/null || die "mvn not found: install Maven"
  local keda prom java jars out m=io.strimzi.api.kafka.model
  log "building CRD schemas: KEDA $KEDA_VERSION, Prometheus Operator $PROMETHEUS_OPERATOR_VERSION, Strimzi (Maven Central)"
  keda=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
  prom=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  java=$(find_java21) || die "the Strimzi CRD generator needs a JDK 21+ (set JAVA_HOME)"
  jars=$cache/strimzi-$strimzi_key/jars
  out=$cache/strimzi-$strimzi_key/crds
  rm -rf "$jars" "$out" "$crd_schemas"; mkdir -p "$jars" "$out"
  mvn -q -B -f "$here/schemas/strimzi/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$jars" >&2
  # The arguments of Strimzi's api/pom.xml (execution generate-crd-co-install-v1), for the kinds we use.
  "$java" -cp "$jars/*" io.strimzi.crdgenerator.CrdGenerator --target-kube 1.16+ --crd-api-version v1 \
      --api-versions v1 --storage-version v1 --yaml \
      "$m.kafka.Kafka=$out/kafka.yaml" "$m.nodepool.KafkaNodePool=$out/kafkanodepool.yaml" \
      "$m.topic.KafkaTopic=$out/kafkatopic.yaml" "$m.user.KafkaUser=$out/kafkauser.yaml" >&2
  "$py" "$here/schemas/build_schemas.py" crd "$crd_schemas" \
      "$keda"/config/crd/bases/keda.sh_*.yaml \
      "$prom"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml \
      "$out"/*.yaml >&2
  touch "$crd_schemas/.complete"
}

install() {
  go_install "$kubeconform" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  go_install "$kustomize" "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  go_install "$helm" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  local kube
  for kube in "${KUBE_VERSIONS[@]}"; do k8s_schemas "$kube" >/dev/null; done
  build_crd_schemas
}

conform() {  # files, or - (stdin); against every version of KUBE_VERSIONS; fails if any object fails
  local kube rc=0 input=()
  if [ "$*" = - ]; then
    input=("$(mktemp --suffix .yaml)"); cat > "${input[0]}"   # kubeconform reads only *.yaml/*.json files
  else
    input=("$@")
  fi
  local out
  for kube in "${KUBE_VERSIONS[@]}"; do
    log "Kubernetes $kube"
    out=$("$kubeconform" -strict -summary -output text -kubernetes-version "$kube" \
      -schema-location "$(k8s_schemas "$kube")/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$crd_schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
      "${input[@]}") || rc=1
    printf '%s\n' "$out"
    if [[ $out == *"Summary: 0 resource"* ]]; then log "error: nothing to validate"; rc=1; fi
  done
  if [ "$*" = - ]; then rm -f "${input[0]}"; fi
  return $rc
}

render() {
  if [ "$1" = seaweedfs ]; then
    local chart
    chart=$(module_dir "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION")/k8s/charts/seaweedfs
    HELM_CACHE_HOME=$cache/helm-home HELM_CONFIG_HOME=$cache/helm-home HELM_DATA_HOME=$cache/helm-home \
      "$helm" template seaweedfs "$chart" --namespace intake-storage -f "$here/seaweedfs/values.yaml"
  else
    "$kustomize" build "$here/overlays/$1"
  fi
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install ;;
  render)
    [ $# -eq 1 ] || die "usage: validate.sh render OVERLAY"
    install; render "$1" ;;
  files)
    [ $# -ge 1 ] || die "usage: validate.sh files FILE..."
    install; conform "$@" ;;
  all)
    install
    "$py" "$here/generate.py" --check
    for overlay in "${OVERLAYS[@]}" seaweedfs; do
      log "overlay $overlay"
      render "$overlay" | conform -
    done
    log "seaweedfs/network-policy.yaml"
    conform "$here/seaweedfs/network-policy.yaml"
    log "every overlay is valid"
    ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
