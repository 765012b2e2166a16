#!/usr/bin/env bash
# A telefig demo that needs only Docker installed (dockerd is started if it
# is not running) — no internet.
#
# Builds stand-in images from Debian's busybox-static, serves them from a
# local registry (Debian's docker-registry) on 127.0.0.1:5055, and starts the
# serviceset `demo`: web (busybox httpd on 127.0.0.1:18080) with its logging,
# metrics, proxy and discovery sidecars. Everything lives under
# /tmp/telefig-demo; examples/demo/down.sh takes it all down again.
#
#   examples/demo/run.sh            # TELEFIG=target/debug/telefig to use a debug build
set -euo pipefail
# shellcheck source=examples/demo/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# --- prerequisites ----------------------------------------------------------
# The suite's set-up functions (one copy): a Docker Engine that answers —
# dockerd started if it is installed but not running — and Debian's
# busybox-static and docker-registry, installed without starting the
# registry's own service (it would listen on :5000).
DOCKERD_LOG=$DEMO_DIR/dockerd.log
mkdir -p "$DEMO_DIR"
# shellcheck source=tests/setup
. "$REPO_ROOT/tests/setup"
ensure_docker
if [ -n "$STARTED_DOCKERD_PID" ]; then
    log "dockerd (pid $STARTED_DOCKERD_PID) keeps running after the demo; its log: $DOCKERD_LOG"
fi
ensure_packages busybox-static docker-registry

# --- the registry on 127.0.0.1:5055 -------------------------------------------
if registry_answers; then
    log "registry already up on $REGISTRY_ADDR"
else
    cat >"$DEMO_DIR/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DEMO_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YAML
    log "starting docker-registry on $REGISTRY_ADDR (log: $DEMO_DIR/registry.log)"
    nohup docker-registry serve "$DEMO_DIR/registry.yml" >"$DEMO_DIR/registry.log" 2>&1 &
    echo $! >"$DEMO_DIR/registry.pid"
    for _ in $(seq 1 50); do
        registry_answers && break
        sleep 0.2
    done
    registry_answers || { log "the registry did not come up:"; cat "$DEMO_DIR/registry.log" >&2; exit 1; }
fi

# --- images, built from busybox-static ----------------------------------------
# name:tag and its CMD. Sidecars run /bin/agent, which says what it was asked
# to do and idles until SIGTERM, then exits at once.
images=(
    "demo/web:$VERSION|[\"/bin/sh\",\"-c\",\"trap 'exit 0' TERM; httpd -f -p 127.0.0.1:18080 -h /www & wait\"]"
    "singer:latest|[\"/bin/agent\",\"singer\"]"
    "metrics-agent:latest|[\"/bin/agent\",\"metrics-agent\"]"
    "traffic-proxy:latest|[\"/bin/agent\",\"traffic-proxy\"]"
    "zk-register-service:latest|[\"/bin/agent\",\"zk-register-service\"]"
)

rootfs_tar() {
    local root=$DEMO_DIR/rootfs
    rm -rf "$root"
    mkdir -p "$root"/{bin,etc,tmp,www,var/log,root}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    cat >"$root/bin/agent" <<'SH'
#!/bin/sh
# A stand-in for a platform agent: prints its arguments, idles until SIGTERM.
name=${1:-agent}
[ "$#" -gt 0 ] && shift
trap 'echo "$name: SIGTERM, exiting"; exit 0' TERM INT
echo "$name: running with: $*"
while :; do sleep 1 & wait $!; done
SH
    chmod 755 "$root/bin/agent"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    echo "telefig demo" >"$root/www/index.html"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$DEMO_DIR/rootfs.tar" .
}

built_rootfs=""
for entry in "${images[@]}"; do
    ref=${entry%%|*}
    cmd=${entry#*|}
    local_ref=telefig-demo/$ref
    fresh=""
    if ! docker image inspect "$local_ref" >/dev/null 2>&1; then
        if [ -z "$built_rootfs" ]; then rootfs_tar; built_rootfs=1; fi
        log "building $local_ref"
        docker import --change "CMD $cmd" --change "LABEL io.telefig.demo=1" \
            "$DEMO_DIR/rootfs.tar" "$local_ref" >/dev/null
        fresh=1
    fi
    log "pushing $REGISTRY_ADDR/$ref"
    docker tag "$local_ref" "$REGISTRY_ADDR/$ref"
    docker push "$REGISTRY_ADDR/$ref" >/dev/null
    # A fresh image: drop its registry-named tag so that telefig pulls it.
    if [ -n "$fresh" ]; then docker rmi "$REGISTRY_ADDR/$ref" >/dev/null; fi
done
rm -rf "$DEMO_DIR/rootfs" "$DEMO_DIR/rootfs.tar"

# --- telefig ------------------------------------------------------------------
telefig=$(find_telefig)
log "telefig start (state dir $DEMO_DIR/state)"
"$telefig" start -c "$CONF" --platform "$PLATFORM" -e "BUILD_COMMIT=$VERSION" \
    --name demo --state-dir "$DEMO_DIR/state"
log "telefig status --name demo"
"$telefig" status --name demo
log "web answers: $(busybox wget -q -O - http://127.0.0.1:18080/ 2>&1 || true)"
cat >&2 <<TXT

Try:  $telefig logs web-discovery
      $telefig plan -c $CONF --platform $PLATFORM -e BUILD_COMMIT=$VERSION --name demo
      $telefig render -c $CONF --platform $PLATFORM -e BUILD_COMMIT=$VERSION --name demo
Stop: $REPO_ROOT/examples/demo/down.sh
TXT
