#!/usr/bin/env bash
# docker.sh - make a Docker Engine available for Orchestra's container
# services and tests, on a Debian machine without systemd and without access
# to an image registry. Idempotent: a second run only checks.
#
#   scripts/docker.sh          install (if needed) docker.io, busybox-static and
#                              iptables from Debian, start dockerd (if needed)
#                              with its state under $ORCHESTRA_DOCKER_DIR, and
#                              import the base image local/busybox:1 (if needed)
#   scripts/docker.sh stop     stop the dockerd this script started
#
# stdout: one line, the engine's socket path; use it as
#   export DOCKER_HOST=unix://$(scripts/docker.sh)
# stderr: progress.
#
# Environment:
#   ORCHESTRA_DOCKER_DIR  state directory (default /tmp/orchestra-docker)
#   DOCKER_STORAGE        overlay2 | vfs (default: overlay2 when an overlay mount works)
#
# An engine that already answers on the socket is used as it is, whoever
# started it. Images: none can be pulled here, so Dockerfiles start
# `FROM local/busybox:1` (busybox-static in an otherwise empty root file
# system, PATH=/bin, /www/index.html for `busybox httpd`).
set -euo pipefail

base=${ORCHESTRA_DOCKER_DIR:-/tmp/orchestra-docker}
sock=$base/docker.sock
pidfile=$base/dockerd.pid
log=$base/dockerd.log
image=local/busybox:1

say() { echo "docker.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# The machine's PID 1 may reap orphans late: a dead daemon can linger as a
# zombie, so "kill -0" is no liveness test.
alive() {
  local st
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

our_dockerd() {
  local p
  [ -s "$pidfile" ] || return 1
  p=$(cat "$pidfile")
  alive "$p" && grep -q dockerd "/proc/$p/comm" 2>/dev/null || return 1
  echo "$p"
}

answers() { [ -S "$sock" ] && curl -sf -m 2 --unix-socket "$sock" http://engine/_ping >/dev/null 2>&1; }

if [ "${1:-}" = stop ]; then
  if p=$(our_dockerd); then
    say "stopping dockerd (pid $p)"
    kill -TERM "$p"
    for _ in $(seq 1 150); do alive "$p" || break; sleep 0.1; done
    alive "$p" && die "dockerd (pid $p) still runs after 15s"
  else
    say "no dockerd started by this script runs"
  fi
  exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [stop]"

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts dockerd)"
mkdir -p "$base"

# 1. Packages, from Debian.
missing=()
for p in docker.io busybox-static iptables curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # docker.io's postinst cannot start the service without systemd; that is expected.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v dockerd >/dev/null || die "dockerd is missing after installing docker.io"
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=$(command -v docker)
d() { "$docker_cli" -H "unix://$sock" "$@"; }

# 2. The daemon.
storage() {
  local t
  if [ -n "${DOCKER_STORAGE:-}" ]; then echo "$DOCKER_STORAGE"; return; fi
  t=$(mktemp -d "$base/.overlay-probe.XXXXXX")
  mkdir -p "$t"/{l,u,w,m}
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"
    echo overlay2
  else
    echo vfs
  fi
  rm -rf "$t"
}

if answers; then
  say "engine already answers on $sock"
else
  if p=$(our_dockerd); then
    say "dockerd (pid $p) runs but does not answer yet; waiting"
  else
    mkdir -p "$base/docker" "$base/docker-exec"
    rm -f "$pidfile"
    # A containerd left by a killed dockerd would be reused: forget a dead one.
    cpid_file=$base/docker-exec/containerd/containerd.pid
    if [ -s "$cpid_file" ] && ! alive "$(cat "$cpid_file")"; then rm -f "$cpid_file"; fi
    drv=$(storage)
    say "starting dockerd (storage $drv), log $log"
    setsid nohup dockerd \
      --data-root "$base/docker" \
      --exec-root "$base/docker-exec" \
      -H "unix://$sock" \
      --pidfile "$pidfile" \
      --storage-driver "$drv" \
      >>"$log" 2>&1 </dev/null &
    p=$!
  fi
  for _ in $(seq 1 600); do
    answers && break
    if ! alive "$p"; then
      tail -20 "$log" >&2
      die "dockerd exited before answering; see $log"
    fi
    sleep 0.1
  done
  answers || { tail -20 "$log" >&2; die "dockerd did not answer within 60s; see $log"; }
  say "engine ready"
fi

# 3. The base image, from busybox-static (no registry needed).
if ! d image inspect "$image" >/dev/null 2>&1; then
  [ -x /bin/busybox ] || die "/bin/busybox is missing (package busybox-static)"
  root=$(mktemp -d "$base/.rootfs.XXXXXX")
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,www,var/log}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for a in $("$root/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  echo '<h1>hello from busybox</h1>' >"$root/www/index.html"
  tar -C "$root" -c . | d import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$image" >/dev/null
  rm -rf "$root"
  say "imported $image"
fi

echo "$sock"
