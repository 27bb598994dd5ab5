# shellcheck shell=bash
# Helpers shared by the scripts in this folder: `source scripts/lib.sh`.

# Where scripts/install-deps.sh installs the tools that Debian ships too old (nats-server,
# yt-dlp); src/dev_infra.rs looks there too.
JUKEBOX_TOOLS_DIR="${JUKEBOX_TOOLS_DIR:-${HOME:-/root}/.local/share/jukebox/tools}"

# Puts the tools folder first on PATH, ahead of Debian's older nats-server and yt-dlp.
ensure_path() {
  case ":$PATH:" in
    *":$JUKEBOX_TOOLS_DIR/bin:"*) ;;
    *) export PATH="$JUKEBOX_TOOLS_DIR/bin:$PATH" ;;
  esac
}

# wait_tcp HOST PORT SECONDS: succeeds as soon as something accepts a TCP connection at
# HOST:PORT; fails once SECONDS have passed (after at least one try).
wait_tcp() {
  local host=$1 port=$2 deadline=$((SECONDS + $3))
  while true; do
    # bash's /dev/tcp has no timeout of its own: an unreachable host would hang.
    # shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
    if timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
