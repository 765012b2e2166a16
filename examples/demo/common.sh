# shellcheck shell=bash disable=SC2034
# Shared by run.sh and down.sh (sourced, not run).
DEMO_DIR=${TELEFIG_DEMO_DIR:-/tmp/telefig-demo}
REGISTRY_ADDR=127.0.0.1:5055
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONF=$REPO_ROOT/examples/demo/serviceset.conf
PLATFORM=$REPO_ROOT/examples/demo/platform.yaml
VERSION=${DEMO_VERSION:-v1}

log() { printf '==> %s\n' "$*" >&2; }

# The telefig to run: $TELEFIG, else target/release/telefig (built if missing).
find_telefig() {
    if [ -n "${TELEFIG:-}" ]; then
        printf '%s\n' "$TELEFIG"
        return
    fi
    local bin=$REPO_ROOT/target/release/telefig
    if [ ! -x "$bin" ]; then
        log "building telefig (cargo build --release; set TELEFIG=path to skip)"
        (cd "$REPO_ROOT" && cargo build --release >&2)
    fi
    printf '%s\n' "$bin"
}

registry_answers() {
    [ "$(busybox wget -q -O - "http://$REGISTRY_ADDR/v2/" 2>/dev/null)" = "{}" ]
}
