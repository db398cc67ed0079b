#!/usr/bin/env bash
# Start a throw-away PostgreSQL for the tests, on 127.0.0.1 only, with database `logwarden_test`.
#
# Used by .ci/run, and by a developer on a laptop:
#
#   eval "$(.ci/start-postgres.sh)"          # sets DATABASE_URL in your shell
#   npm test
#   .ci/stop-services.sh postgres
#
# stdout carries only the `export DATABASE_URL=...` line (so eval works); progress goes to
# stderr. The line is also written to $LW_SERVICES_DIR/postgres/env for `source`.
#
# What it does: initdb into a fresh directory under $LW_SERVICES_DIR (superuser `postgres`,
# trust authentication: it listens on loopback only and holds nothing but test data), start it
# on the first free port of 5432-5499 with TCP only (no socket directory to own or clean up),
# wait (bounded) with pg_isready, and create the database.
#
# Settings (environment):
#   LW_SERVICES_DIR   where the data directory and log go (default: .ci/.services in the repo)
#   PG_PORT           port to use instead of the first free one
#   PG_BIN            directory of initdb/pg_ctl/pg_isready (default: found from `postgres` or
#                     /usr/lib/postgresql/*/bin)
#   PG_START_TIMEOUT  seconds to wait for it (default: 60)
#
# PostgreSQL refuses to run as root: as root, it runs as the `postgres` system user (the one
# Debian's package creates), or `logwarden-pg`, created when no `postgres` user exists.
set -euo pipefail

readonly DB_NAME=logwarden_test
readonly DB_SUPERUSER=postgres

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_dir="${LW_SERVICES_DIR:-$repo_root/.ci/.services}"
state="$services_dir/postgres"
timeout_s="${PG_START_TIMEOUT:-60}"

# Seconds since this script started, on every line: the start-up timings CI reports.
log() { printf '[postgres +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[postgres +%ss] ERROR: %s\n' "$SECONDS" "$*" >&2; exit 1; }

# shellcheck source=ports.sh
source "$repo_root/.ci/ports.sh"

# Debian keeps the server programs out of PATH (/usr/lib/postgresql/N/bin); other systems put
# them on it. Take the newest version when several are installed.
find_pg_bin() {
  local postgres
  if postgres="$(command -v postgres)"; then
    dirname "$(readlink -f "$postgres")"; return 0
  fi
  postgres="$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$postgres" ] || return 1
  dirname "$postgres"
}

service_user() {
  if id -u postgres >/dev/null 2>&1; then echo postgres; else echo logwarden-pg; fi
}

as_service_user() {
  if [ "$(id -u)" -eq 0 ]; then
    local user
    user="$(service_user)"
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
      env HOME="$(getent passwd "$user" | cut -d: -f6)" "$@"
  else
    "$@"
  fi
}

postmaster_pid() { head -n 1 "$state/data/postmaster.pid" 2>/dev/null; }

print_log_tail() {
  if [ -s "$state/postgres.log" ]; then
    log "last 50 lines of $state/postgres.log:"
    tail -n 50 "$state/postgres.log" >&2
  fi
}

main() {
  local started=$SECONDS

  local running
  running="$(postmaster_pid || true)"
  if [ -n "$running" ] && kill -0 "$running" 2>/dev/null; then
    die "already running (pid $running); stop it first with .ci/stop-services.sh postgres"
  fi

  local bin="${PG_BIN:-}"
  if [ -z "$bin" ]; then
    bin="$(find_pg_bin)" || die "PostgreSQL server not found: install it (apt-get install postgresql) or set PG_BIN"
  fi
  local tool
  for tool in initdb pg_ctl pg_isready createdb; do
    [ -x "$bin/$tool" ] || die "$bin/$tool not found; set PG_BIN to the directory holding the server programs"
  done

  local port="${PG_PORT:-}"
  if [ -z "$port" ]; then
    port="$(first_free_port $(seq 5432 5499))" || die "no free port in 5432-5499; set PG_PORT"
  elif port_in_use "$port"; then
    die "PG_PORT=$port is already in use"
  fi

  rm -rf "$state"
  mkdir -p "$state"
  if [ "$(id -u)" -eq 0 ]; then
    local user
    user="$(service_user)"
    id -u "$user" >/dev/null 2>&1 || useradd --system --create-home --shell /usr/sbin/nologin "$user"
    chown "$user:" "$state"
    as_service_user test -w "$state" \
      || die "user $user cannot reach $state (a parent directory is private); set LW_SERVICES_DIR to e.g. /tmp/logwarden-services"
  fi

  log "initdb ($("$bin/postgres" --version))"
  as_service_user "$bin/initdb" --pgdata="$state/data" --username="$DB_SUPERUSER" --auth=trust \
    --encoding=UTF8 --locale=C --no-sync --no-instructions >"$state/initdb.log" 2>&1 \
    || { cat "$state/initdb.log" >&2; die "initdb failed"; }

  # Durability settings off: the data is thrown away after the run, and fsync is the slow part.
  cat >>"$state/data/postgresql.conf" <<EOF

# logwarden test instance (.ci/start-postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

  log "starting on 127.0.0.1:$port"
  # -W: do not let pg_ctl wait (it would try a socket); we wait below with pg_isready, bounded.
  as_service_user "$bin/pg_ctl" --pgdata="$state/data" --log="$state/postgres.log" -W start >/dev/null \
    || { print_log_tail; die "pg_ctl start failed"; }

  local deadline=$((SECONDS + timeout_s))
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      print_log_tail
      die "not accepting connections after ${timeout_s}s (stop it with .ci/stop-services.sh postgres)"
    fi
    sleep 0.5
  done

  "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$DB_SUPERUSER" "$DB_NAME"

  echo "export DATABASE_URL=postgres://$DB_SUPERUSER@127.0.0.1:$port/$DB_NAME" >"$state/env"
  log "ready at 127.0.0.1:$port, database $DB_NAME, in $((SECONDS - started))s"
  cat "$state/env"
}

main "$@"
