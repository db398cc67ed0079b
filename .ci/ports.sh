# Port helpers shared by the service start scripts (sourced, not run).

# A connect that succeeds means something listens there already (e.g. another engineer's server).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the first of the given ports nothing listens on; fails when all are taken.
first_free_port() {
  local p
  for p in "$@"; do
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
