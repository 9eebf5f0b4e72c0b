# Shared by the benchmark scripts (sourced, not run): logging, Debian tools installed
# when missing, and free ports on 127.0.0.1 picked and waited for.

log() { echo "[bench] $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# need_debian TOOL... : installs the Debian packages of the same names that are missing.
need_debian() {
  local missing=() t
  for t in "$@"; do have "$t" || missing+=("$t"); done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} from Debian"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  grep -qi ":$(printf '%04X' "$1") " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A port nothing listens on and this script has not handed out yet.
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 500); do
    p=$((20000 + RANDOM % 30000))
    if [[ "$USED_PORTS" != *" $p "* ]] && ! port_in_use "$p"; then
      USED_PORTS+="$p "
      echo "$p"
      return
    fi
  done
  log "no free port found"
  exit 1
}

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  log "nothing listening on port $1"
  exit 1
}
