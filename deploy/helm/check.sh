#!/usr/bin/env bash
# Build helm once (Go module proxy, cached outside the repo), then lint and render the chart with
# each ci/*.yaml values file. Rendered manifests go to $PORPOISE_HELM_OUT (default a temp dir);
# tests/unit/test_helm_chart.py validates them against the Kubernetes object schemas.
#
#   check.sh build    only build helm; prints its path
#   check.sh          build, lint and render (exit 1 on any lint error)
#
# Environment: HELM_VERSION (default v3.21.4, the newest v3 that builds with Go 1.26.8 here),
# PORPOISE_HELM_CACHE (default ~/.cache/porpoise), PORPOISE_KUBE_VERSION (default 1.31.0).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSION=${HELM_VERSION:-v3.21.4}
BIN="${PORPOISE_HELM_CACHE:-$HOME/.cache/porpoise}/helm-$VERSION/bin"
HELM="$BIN/helm"
CHART="$HERE/porpoise"
# A `go install`ed helm assumes Kubernetes 1.20 (release builds set it by ldflags): name a supported one.
KUBE=${PORPOISE_KUBE_VERSION:-1.31.0}

log() { echo "helm-check: $*" >&2; }

build() {
  [ -x "$HELM" ] && return 0
  command -v go >/dev/null 2>&1 || { log "Go is needed to build helm (apt-get install golang-go)"; exit 1; }
  local tmp="$BIN.tmp.$$" t0=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building helm.sh/helm/v3 $VERSION into $BIN ..."
  GOBIN="$tmp" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 \
    nice -n 10 go install -trimpath "helm.sh/helm/v3/cmd/helm@$VERSION" >&2 || { rm -rf "$tmp"; exit 1; }
  rm -rf "$BIN" && mv "$tmp" "$BIN"
  log "built in $((SECONDS - t0)) s"
}

build
if [ "${1:-}" = build ]; then echo "$HELM"; exit 0; fi
# Helm keeps no state for lint/template, but point its dirs away from $HOME all the same.
export HELM_CACHE_HOME=${TMPDIR:-/tmp}/porpoise-helm-cache HELM_CONFIG_HOME=${TMPDIR:-/tmp}/porpoise-helm-config
OUT=${PORPOISE_HELM_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/porpoise-helm.XXXXXX")}
mkdir -p "$OUT"
for values in "$CHART"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  "$HELM" lint --strict --kube-version "$KUBE" "$CHART" -f "$values" >&2
  "$HELM" template porpoise "$CHART" --namespace porpoise --kube-version "$KUBE" -f "$values" >"$OUT/$name.yaml"
  log "$name: $(grep -c '^kind:' "$OUT/$name.yaml") objects -> $OUT/$name.yaml"
done
echo "$OUT"
