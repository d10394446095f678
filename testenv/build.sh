#!/usr/bin/env bash
# Build the kwok tier's binaries from the Go module in this folder, once per
# set of pinned versions, into a cache outside the clone:
#
#   ${GAMEDAY_TESTENV_CACHE:-$HOME/.cache/llm-gameday/testenv}/<key>/bin/
#     etcd kube-apiserver kube-controller-manager kube-scheduler kubectl
#     kwok kwokctl kube-state-metrics
#
# <key> is the Kubernetes version plus a short hash of go.mod, go.sum,
# versions.env, our wrapper sources, `go version`, and the build flags, so a
# version bump builds a new cache and an unchanged one is reused. The cache is
# complete only when <key>/.complete exists; it is written after every binary
# built and answered its version command with the pinned version, and the
# folder is renamed into place from a temporary one, so a reader never sees a
# half-built cache. Concurrent runs serialise on a lock file (flock); the
# second waits and then reuses the first one's result.
#
# The last line of stdout is the bin folder; progress goes to stderr.
# Exit status is non-zero on any failure, naming the binary.
#
# Usage: testenv/build.sh [--print-key | --help]
#   --print-key   print the cache key (e.g. for a CI cache key) and exit
#
# Environment: GAMEDAY_TESTENV_CACHE (cache root), and the usual Go variables
# (GOMODCACHE, GOCACHE, GOFLAGS, GOMAXPROCS, GOPROXY) are passed through to go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prog="testenv/build.sh"

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

mode=build
case "${1:-}" in
  "") ;;
  --print-key) mode=print-key ;;
  -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) die "unknown argument: $1 (try --help)" ;;
esac

command -v go >/dev/null || die "go not found on PATH (Go ${GO_VERSION_MIN:-1.26}+ is needed)"

# shellcheck source=versions.env
source "$here/versions.env"
: "${KUBE_VERSION:?versions.env: KUBE_VERSION missing}"
: "${ETCD_VERSION:?versions.env: ETCD_VERSION missing}"
: "${KWOK_VERSION:?versions.env: KWOK_VERSION missing}"
: "${KUBE_STATE_METRICS_VERSION:?versions.env: KUBE_STATE_METRICS_VERSION missing}"

kube_minor="${KUBE_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"

# --- what to build --------------------------------------------------------
# name | package | ldflags | version command | string its output must contain
kube_ld=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ld+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
  kube_ld+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${kube_minor}"
  kube_ld+=" -X ${pkg}.gitTreeState=clean"
done
kwok_ld="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}"
# The Kubernetes version kwokctl assumes by default: the one built here.
kwok_ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION}"
etcd_ld="-X go.etcd.io/etcd/api/v3/version.GitSHA=go-module-${ETCD_VERSION}"
ksm_ld="-X github.com/prometheus/common/version.Version=${KUBE_STATE_METRICS_VERSION}"
ksm_ld+=" -X github.com/prometheus/common/version.Revision=go-module"
ksm_ld+=" -X k8s.io/kube-state-metrics/v2/pkg/app.ClientGoVersion=${staging_version}"

targets=(
  "kube-apiserver|k8s.io/kubernetes/cmd/kube-apiserver|${kube_ld}|--version|Kubernetes ${KUBE_VERSION}"
  "kube-controller-manager|k8s.io/kubernetes/cmd/kube-controller-manager|${kube_ld}|--version|Kubernetes ${KUBE_VERSION}"
  "kube-scheduler|k8s.io/kubernetes/cmd/kube-scheduler|${kube_ld}|--version|Kubernetes ${KUBE_VERSION}"
  "kubectl|k8s.io/kubernetes/cmd/kubectl|${kube_ld}|version --client|Client Version: ${KUBE_VERSION}"
  "etcd|./cmd/etcd|${etcd_ld}|--version|etcd Version: ${ETCD_VERSION#v}"
  "kwok|sigs.k8s.io/kwok/cmd/kwok|${kwok_ld}|--version|${KWOK_VERSION}"
  "kwokctl|sigs.k8s.io/kwok/cmd/kwokctl|${kwok_ld}|--version|${KWOK_VERSION}"
  "kube-state-metrics|k8s.io/kube-state-metrics/v2|${ksm_ld}|version|${KUBE_STATE_METRICS_VERSION}"
)
build_flags=(-mod=readonly -trimpath -pgo=off)
# -s -w: no symbol table or DWARF (stack traces still work); a third smaller
# cache and faster links.
link_flags="-s -w"
# Bump when the recipe changes in a way the inputs below do not show.
recipe=1

# --- cache key ------------------------------------------------------------
go_version="$(go version)"
key_hash="$(
  {
    echo "recipe=${recipe}"
    echo "${go_version} GOOS=${GOOS:-} GOARCH=${GOARCH:-} GOAMD64=${GOAMD64:-} CGO_ENABLED=0"
    echo "flags=${build_flags[*]} ldflags=${link_flags}"
    printf '%s\n' "${targets[@]}"
    for f in go.mod go.sum versions.env; do echo "== $f"; cat "$here/$f"; done
    find "$here/cmd" -type f -name '*.go' | LC_ALL=C sort | while read -r f; do
      echo "== ${f#"$here"/}"; cat "$f"
    done
  } | sha256sum | cut -c1-12
)"
key="${KUBE_VERSION}-${key_hash}"
if [[ "$mode" == print-key ]]; then
  echo "$key"
  exit 0
fi

cache_root="${GAMEDAY_TESTENV_CACHE:-${HOME:?HOME unset and no GAMEDAY_TESTENV_CACHE}/.cache/llm-gameday/testenv}"
dest="${cache_root}/${key}"
stamp="${dest}/.complete"

# Fast path: a complete cache is never modified, so no lock is needed.
if [[ -f "$stamp" ]]; then
  log "reusing ${dest}"
  echo "${dest}/bin"
  exit 0
fi

mkdir -p "$cache_root"
command -v flock >/dev/null || die "flock not found (util-linux) — needed to build safely"
exec 9>"${cache_root}/.${key}.lock"
if ! flock -n 9; then
  log "another build of ${key} is running; waiting for it"
  flock 9
fi
if [[ -f "$stamp" ]]; then
  log "reusing ${dest} (built by the run we waited for)"
  echo "${dest}/bin"
  exit 0
fi
# Only a complete cache is ever renamed into place; anything else there was
# put by hand or by a half-finished removal.
if [[ -e "$dest" ]]; then
  log "removing incomplete ${dest}"
  rm -rf "$dest"
fi

cd "$here"
# go.mod must hold what versions.env pins (hack/update-gomod.sh writes both).
check_pin() {
  local mod="$1" want="$2" got
  got="$(go list -mod=readonly -m -f '{{.Version}}' "$mod")" ||
    die "cannot read $mod from testenv/go.mod (run testenv/hack/update-gomod.sh)"
  [[ "$got" == "$want" ]] ||
    die "testenv/go.mod has $mod $got but versions.env pins $want; run testenv/hack/update-gomod.sh"
}
check_pin k8s.io/kubernetes "$KUBE_VERSION"
check_pin go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin sigs.k8s.io/kwok "$KWOK_VERSION"
check_pin k8s.io/kube-state-metrics/v2 "$KUBE_STATE_METRICS_VERSION"

tmp="$(mktemp -d "${cache_root}/.tmp-${key}.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$tmp/bin"

log "building ${#targets[@]} binaries into ${dest} (${go_version#go version })"
log "pinned: kubernetes ${KUBE_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION}, kube-state-metrics ${KUBE_STATE_METRICS_VERSION}"
total_start=$SECONDS
for t in "${targets[@]}"; do
  IFS='|' read -r name pkg ldflags _ _ <<<"$t"
  start=$SECONDS
  log "building ${name} (${pkg})"
  rc=0
  CGO_ENABLED=0 go build "${build_flags[@]}" -ldflags "${link_flags} ${ldflags# }" \
    -o "$tmp/bin/${name}" "$pkg" || rc=$?
  if (( rc != 0 )); then
    die "building ${name} (${pkg}) failed with exit status ${rc}; the go error is above"
  fi
  log "built ${name} in $((SECONDS - start))s"
done

# Every binary must run and report the pinned version.
: > "$tmp/versions.txt"
for t in "${targets[@]}"; do
  IFS='|' read -r name _ _ vcmd want <<<"$t"
  rc=0
  # shellcheck disable=SC2086  # vcmd is a word list
  out="$(timeout 60 "$tmp/bin/${name}" $vcmd 2>&1)" || rc=$?
  if (( rc != 0 )); then
    printf '%s\n' "$out" >&2
    die "${name} ${vcmd} failed with exit status ${rc}"
  fi
  if [[ "$out" != *"$want"* ]]; then
    printf '%s\n' "$out" >&2
    die "${name} ${vcmd} does not report '${want}'"
  fi
  { echo "== ${name} ${vcmd}"; printf '%s\n' "$out"; } >> "$tmp/versions.txt"
done

{
  echo "key=${key}"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$((SECONDS - total_start))"
  echo "go=${go_version}"
  grep -E '^[A-Z_]+=' "$here/versions.env"
} > "$tmp/.complete"

chmod 755 "$tmp"
mv -T "$tmp" "$dest"
trap - EXIT
log "done in $((SECONDS - total_start))s; versions in ${dest}/versions.txt"
echo "${dest}/bin"
