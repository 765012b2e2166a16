#!/usr/bin/env bash
# Takes down what examples/demo/run.sh started: the serviceset `demo`
# (telefig down) and the registry on 127.0.0.1:5055.
#   examples/demo/down.sh [--purge]   # --purge also removes /tmp/telefig-demo and the demo images
set -euo pipefail
# shellcheck source=examples/demo/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

rc=0
telefig=$(find_telefig)
log "telefig down --name demo"
"$telefig" down -c "$CONF" --platform "$PLATFORM" -e "BUILD_COMMIT=$VERSION" \
    --name demo --state-dir "$DEMO_DIR/state" || rc=$?

if [ -f "$DEMO_DIR/registry.pid" ]; then
    pid=$(cat "$DEMO_DIR/registry.pid")
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping the registry (pid $pid)"
        kill "$pid"
    fi
    rm -f "$DEMO_DIR/registry.pid"
fi

if [ "${1:-}" = "--purge" ]; then
    log "removing $DEMO_DIR and the demo images"
    docker images -q --filter label=io.telefig.demo=1 | sort -u | xargs -r docker rmi -f >/dev/null
    rm -rf "$DEMO_DIR"
fi
exit "$rc"
