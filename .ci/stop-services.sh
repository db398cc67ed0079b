#!/usr/bin/env bash
# Stop the services that .ci/start-elasticsearch.sh and .ci/start-postgres.sh started.
#
#   .ci/stop-services.sh                    # both
#   .ci/stop-services.sh elasticsearch      # or: postgres
#
# Only processes recorded under $LW_SERVICES_DIR (default .ci/.services) are signalled, and only
# after checking they belong to that directory, so any other Elasticsearch or PostgreSQL on the
# machine is left alone. Safe to run when nothing is running. Data directories are kept (for a
# look at the logs) and wiped by the next start.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_dir="${LW_SERVICES_DIR:-$repo_root/.ci/.services}"

log() { printf '[stop-services] %s\n' "$*" >&2; }

# /proc first: a minimal machine may have no ps.
cmdline_of() {
  if [ -r "/proc/$1/cmdline" ]; then tr '\0' ' ' <"/proc/$1/cmdline"; else ps -o args= -p "$1" 2>/dev/null; fi
}

# True when $1 is alive and its command line mentions $2 (our directory).
owned_and_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null && cmdline_of "$1" | grep -qF "$2"
}

# Waits up to $2 seconds for pid $1 to go away.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# Sends $2 to $1, then escalates to SIGKILL if it has not exited within $3 seconds.
stop_pid() {
  local pid="$1" signal="$2" grace="$3" what="$4"
  kill "-$signal" "$pid" 2>/dev/null || return 0
  if ! wait_gone "$pid" "$grace"; then
    log "$what (pid $pid) did not stop within ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null
    wait_gone "$pid" 10 || log "$what (pid $pid) is still there"
  fi
}

stop_elasticsearch() {
  local state="$services_dir/elasticsearch"
  local home
  home="$(ls -d "$services_dir"/elasticsearch-*/ 2>/dev/null | head -n 1)"
  [ -n "$home" ] || return 0
  home="${home%/}"
  local launcher server
  launcher="$(cat "$state/launcher.pid" 2>/dev/null)"
  server="$(cat "$state/server.pid" 2>/dev/null)"
  # The launcher's shutdown hook stops the server cleanly; the server pid is the fallback for
  # a launcher that died and left its server behind.
  if owned_and_alive "$launcher" "$home"; then
    log "stopping Elasticsearch (launcher pid $launcher)"
    stop_pid "$launcher" TERM 60 "Elasticsearch launcher"
  fi
  if owned_and_alive "$server" "$home"; then
    log "stopping Elasticsearch (server pid $server)"
    stop_pid "$server" TERM 60 "Elasticsearch"
  fi
  rm -f "$state/launcher.pid" "$state/server.pid" "$state/env"
}

stop_postgres() {
  local state="$services_dir/postgres"
  local pid
  pid="$(head -n 1 "$state/data/postmaster.pid" 2>/dev/null)"
  # The postmaster's command line is `postgres -D <data dir>`. SIGINT is PostgreSQL's "fast"
  # shutdown (what `pg_ctl stop -m fast` sends), without needing pg_ctl or the service user.
  if owned_and_alive "$pid" "$state/data"; then
    log "stopping PostgreSQL (pid $pid)"
    stop_pid "$pid" INT 30 "PostgreSQL"
  fi
  rm -f "$state/env"
}

main() {
  local services=("$@")
  [ "${#services[@]}" -gt 0 ] || services=(elasticsearch postgres)
  local s
  for s in "${services[@]}"; do
    case "$s" in
      elasticsearch) stop_elasticsearch ;;
      postgres) stop_postgres ;;
      *) log "unknown service '$s' (expected: elasticsearch, postgres)"; exit 2 ;;
    esac
  done
}

main "$@"
