#!/usr/bin/env bash
# Start a throw-away single-node Elasticsearch 8.19 for the tests, on 127.0.0.1 only.
#
# Used by .ci/run, and by a developer on a laptop:
#
#   eval "$(.ci/start-elasticsearch.sh)"     # sets ES_URL in your shell
#   npm test
#   .ci/stop-services.sh elasticsearch
#
# stdout carries only the `export ES_URL=...` line (so eval works); progress goes to stderr.
# The line is also written to $LW_SERVICES_DIR/elasticsearch/env for `source`.
#
# What it does: takes the zip distribution from Maven Central with mvn (the only place CI can
# reach that publishes Elasticsearch; cached in ~/.m2), unzips it under $LW_SERVICES_DIR, and
# runs it in the background with security off and a fresh data directory, on the first free
# port of 9200, 9250-9299. It waits (bounded) for the cluster to be yellow.
#
# Settings (environment):
#   LW_SERVICES_DIR   where the distribution, data and logs go (default: .ci/.services in the repo)
#   ES_PORT           HTTP port to use instead of the first free one
#   ES_JAVA_HOME      JDK to run it with (default: the first JDK >= 17 found)
#   ES_JAVA_OPTS      JVM options (default: -Xms1g -Xmx1g)
#   ES_ZIP            a local elasticsearch-8.19.0.zip to use instead of fetching it with mvn
#   ES_START_TIMEOUT  seconds to wait for the cluster (default: 180)
#
# Elasticsearch refuses to run as root: as root, it runs as the system user `logwarden-es`,
# created when absent.
set -euo pipefail

readonly ES_VERSION=8.19.0
readonly ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"
readonly ES_USER=logwarden-es

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_dir="${LW_SERVICES_DIR:-$repo_root/.ci/.services}"
es_home="$services_dir/elasticsearch-$ES_VERSION"
state="$services_dir/elasticsearch"
timeout_s="${ES_START_TIMEOUT:-180}"

# Seconds since this script started, on every line: the start-up timings CI reports.
log() { printf '[elasticsearch +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[elasticsearch +%ss] ERROR: %s\n' "$SECONDS" "$*" >&2; exit 1; }

# shellcheck source=ports.sh
source "$repo_root/.ci/ports.sh"

java_major() {
  "$1/bin/java" -version 2>&1 | head -n 1 | sed -E 's/.*version "([0-9]+).*/\1/'
}

# Elasticsearch 8.19 needs a JDK >= 17, and the integ-test zip ships none of its own.
find_jdk() {
  local candidate major
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/*; do
    if [ -z "$candidate" ] || [ ! -x "$candidate/bin/java" ]; then continue; fi
    major="$(java_major "$candidate")"
    if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

# The processes belonging to THIS distribution carry its path on their command line; checking
# it keeps us from signalling a recycled pid or someone else's cluster.
is_our_process() {
  local pid="$1"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$es_home"
}

fetch_zip() {
  if [ -n "${ES_ZIP:-}" ]; then
    [ -f "$ES_ZIP" ] || die "ES_ZIP=$ES_ZIP does not exist"
    echo "$ES_ZIP"; return 0
  fi
  # The local repository is named explicitly: Maven's own default follows the passwd entry, not
  # $HOME, and a settings.xml may move it; either way we would not know where the zip landed.
  local repo="$HOME/.m2/repository"
  local zip="$repo/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
  if [ ! -f "$zip" ]; then
    command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) or set ES_ZIP to a downloaded elasticsearch-$ES_VERSION.zip"
    log "fetching $ES_ARTIFACT from Maven Central"
    mvn -B -q dependency:get -Dmaven.repo.local="$repo" -Dartifact="$ES_ARTIFACT" -Dtransitive=false >&2 \
      || die "mvn could not fetch $ES_ARTIFACT"
    [ -f "$zip" ] || die "mvn reported success but $zip is missing; set ES_ZIP to a downloaded elasticsearch-$ES_VERSION.zip"
  fi
  echo "$zip"
}

print_log_tail() {
  local f
  for f in "$state/logs/elasticsearch.log" "$state/console.log"; do
    if [ -s "$f" ]; then
      log "last 50 lines of $f:"
      tail -n 50 "$f" >&2
      return 0
    fi
  done
  log "no log was written (see $state)"
}

main() {
  local started=$SECONDS

  if [ -f "$state/launcher.pid" ] && is_our_process "$(cat "$state/launcher.pid")"; then
    die "already running (pid $(cat "$state/launcher.pid")); stop it first with .ci/stop-services.sh elasticsearch"
  fi
  command -v curl >/dev/null || die "curl not found (apt-get install curl)"

  local jdk="${ES_JAVA_HOME:-}"
  if [ -z "$jdk" ]; then
    jdk="$(find_jdk)" || die "no JDK >= 17 found: install openjdk-17-jdk-headless or set ES_JAVA_HOME"
  fi

  local port="${ES_PORT:-}"
  if [ -z "$port" ]; then
    port="$(first_free_port 9200 $(seq 9250 9299))" || die "no free port among 9200, 9250-9299; set ES_PORT"
  elif port_in_use "$port"; then
    die "ES_PORT=$port is already in use"
  fi

  mkdir -p "$services_dir"
  if [ ! -x "$es_home/bin/elasticsearch" ]; then
    local zip
    zip="$(fetch_zip)"
    command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"
    log "unpacking $(basename "$zip") into $services_dir"
    rm -rf "$es_home"
    unzip -q "$zip" -d "$services_dir"
  fi

  # Commands run as the service user when we are root; as ourselves otherwise.
  local run_as=()

  # A fresh data directory each time: tests expect an empty cluster.
  rm -rf "$state"
  mkdir -p "$state/data" "$state/logs"

  if [ "$(id -u)" -eq 0 ]; then
    id -u "$ES_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /usr/sbin/nologin "$ES_USER"
    chown -R "$ES_USER:$(id -g "$ES_USER")" "$es_home" "$state"
    # A prefix rather than a function so that the background run below is one exec chain
    # (setpriv -> env -> bin/elasticsearch -> java): `$!` is then Elasticsearch's launcher itself.
    run_as=(setpriv --reuid="$ES_USER" --regid="$(id -g "$ES_USER")" --init-groups
      env HOME="$(getent passwd "$ES_USER" | cut -d: -f6)")
    "${run_as[@]}" test -x "$state" \
      || die "user $ES_USER cannot reach $state (a parent directory is private); set LW_SERVICES_DIR to e.g. /tmp/logwarden-services"
  fi

  log "starting $ES_VERSION on 127.0.0.1:$port (JDK $jdk, $(java_major "$jdk"))"
  ES_JAVA_HOME="$jdk" ES_JAVA_OPTS="${ES_JAVA_OPTS:--Xms1g -Xmx1g}" \
    "${run_as[@]}" "$es_home/bin/elasticsearch" \
    -p "$state/server.pid" \
    -E discovery.type=single-node \
    -E xpack.security.enabled=false \
    -E http.host=127.0.0.1 \
    -E transport.host=127.0.0.1 \
    -E http.port="$port" \
    -E path.data="$state/data" \
    -E path.logs="$state/logs" \
    -E cluster.routing.allocation.disk.threshold_enabled=false \
    -E action.destructive_requires_name=false \
    </dev/null >"$state/console.log" 2>&1 &
  local launcher=$!
  echo "$launcher" >"$state/launcher.pid"

  local url="http://127.0.0.1:$port"
  local deadline=$((SECONDS + timeout_s))
  until curl -fsS --max-time 5 -o /dev/null "$url/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      print_log_tail
      die "Elasticsearch exited during start-up"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      print_log_tail
      die "not yellow after ${timeout_s}s at $url (still running; stop it with .ci/stop-services.sh elasticsearch)"
    fi
    sleep 1
  done

  echo "export ES_URL=$url" >"$state/env"
  log "ready at $url in $((SECONDS - started))s (logs: $state/logs)"
  cat "$state/env"
}

main "$@"
