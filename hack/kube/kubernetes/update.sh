#!/usr/bin/env bash
# update.sh pins this tools module to a Kubernetes release.
#
# k8s.io/kubernetes cannot be required as is: its go.mod requires its staging
# modules at v0.0.0 and replaces them with ./staging/src/... directories that
# are not part of the module zip. This script reads that replace block from the
# release's own go.mod and replaces every staging module with its published
# v0.X.Y tag instead, then adds the commands we build as tools.
#
# Usage: hack/kube/kubernetes/update.sh v1.37.2
set -euo pipefail

cd "$(dirname "$0")"
version=${1:?usage: $0 v1.MINOR.PATCH}
staging=v0.${version#v1.}

gomod=$(go mod download -json "k8s.io/kubernetes@${version}" |
	awk -F'"' '$2 == "GoMod" { print $4 }')
[[ -n "$gomod" ]] || { echo "no go.mod for k8s.io/kubernetes@${version}" >&2; exit 1; }

# Module paths replaced with a local ./staging/ directory, in a replace block
# or on a single replace line.
mapfile -t modules < <(awk '
	{ sub(/^replace[ \t]+/, "") }
	$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }
' "$gomod")
[[ ${#modules[@]} -gt 0 ]] || { echo "no staging replaces in ${gomod}" >&2; exit 1; }

args=()
for m in "${modules[@]}"; do
	args+=("-replace=${m}=${m}@${staging}")
done
go mod edit "${args[@]}"
echo "replaced ${#modules[@]} staging modules with ${staging}" >&2

go get -tool \
	"k8s.io/kubernetes/cmd/kube-apiserver@${version}" \
	"k8s.io/kubernetes/cmd/kube-controller-manager@${version}" \
	"k8s.io/kubernetes/cmd/kube-scheduler@${version}"
go mod tidy
