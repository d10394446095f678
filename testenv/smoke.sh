#!/usr/bin/env bash
# Smoke check of the kwok tier: build (or reuse) the binaries, start a
# cluster with kwokctl's binary runtime, check the API answers, schedule a
# pod on a fake node, delete the cluster, and check no process is left.
#
# Usage: testenv/smoke.sh            (exit 0 on success)
# All state lives in a temporary folder; ~/.kwok and ~/.kube are not used.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf 'testenv/smoke.sh: %s\n' "$*" >&2; }

bin="$("$here/build.sh" | tail -n 1)"
export PATH="${bin}:${PATH}"

work="$(mktemp -d "${TMPDIR:-/tmp}/gameday-kwok-smoke.XXXXXX")"
name="smoke-$$"
export KWOK_WORKDIR="${work}/kwok" KUBECONFIG="${work}/kubeconfig"
# kubectl's discovery cache, kept out of ~/.kube.
export KUBECACHEDIR="${work}/kube-cache"

left_over() { ps -eo pid=,args= | grep -F -- "${KWOK_WORKDIR}/" | grep -v -F grep || true; }
cleanup() {
  local rc=$?
  if [[ -d "${KWOK_WORKDIR}/clusters/${name}" ]]; then
    kwokctl --name "$name" delete cluster --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
  fi
  if (( rc != 0 )) && [[ -d "${KWOK_WORKDIR}/clusters/${name}/logs" ]]; then
    for f in "${KWOK_WORKDIR}/clusters/${name}/logs/"*.log; do
      log "--- last lines of ${f##*/}"; tail -n 5 "$f" >&2
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s%N)
# kwokctl keeps polling while kube-apiserver is down, whatever --wait says,
# hence the outer timeout.
timeout 120 kwokctl create cluster --name "$name" --runtime binary \
  --config "$here/kwokctl-local.yaml" \
  --kubeconfig "$KUBECONFIG" \
  --etcd-binary "$bin/etcd" \
  --kube-apiserver-binary "$bin/kube-apiserver" \
  --kube-controller-manager-binary "$bin/kube-controller-manager" \
  --kube-scheduler-binary "$bin/kube-scheduler" \
  --kwok-controller-binary "$bin/kwok" \
  --wait 60s >"${work}/create.log" 2>&1 || {
  cat "${work}/create.log" >&2
  log "kwokctl create cluster failed"
  exit 1
}
ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "cluster ${name} ready in ${ready_ms} ms"

kubectl get ns >&2
kubectl version >&2
kwokctl --name "$name" scale node --replicas 1 >/dev/null 2>&1
kubectl create deployment smoke --image=registry.invalid/smoke:1 >/dev/null
kubectl rollout status deployment/smoke --timeout=60s >&2
kubectl get nodes,pods -o wide >&2

kwokctl --name "$name" delete cluster --kubeconfig "$KUBECONFIG" >/dev/null 2>&1
for _ in $(seq 50); do
  [[ -z "$(left_over)" ]] && break
  sleep 0.2
done
if [[ -n "$(left_over)" ]]; then
  left_over >&2
  log "processes left after kwokctl delete cluster"
  exit 1
fi
log "ok: ready in ${ready_ms} ms, deleted, no process left"
