#!/bin/sh
# cargo's runner (.cargo/config.toml): every binary cargo runs goes through here. Test binaries
# (target/*/deps/*) need DATABASE_URL's server; when nothing answers there, one private
# PostgreSQL is started at that loopback address for the whole run (data in
# target/private-pg, started once under a lock), using the PostgreSQL binaries installed on
# this machine. When the server answers (CI), or for anything else, the binary just runs.
set -u
case "$1" in
  */deps/*) ;;
  *) exec "$@" ;;
esac
url=${DATABASE_URL:-}
rest=${url#*://}
rest=${rest%%/*}
rest=${rest%%\?*}
rest=${rest##*@}
host=${rest%:*}
port=${rest##*:}
[ "$host" = "$rest" ] && port=5432
case "$host" in
  127.0.0.1|localhost) ;;
  *) exec "$@" ;;
esac
answers() {
  if command -v bash >/dev/null 2>&1; then
    bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
  else
    pg_isready -q -h "$host" -p "$port" -t 2 2>/dev/null
  fi
}
bridge=$(dirname "$1")/../aap-bridge
if [ -x "$bridge" ] && ! answers; then
  target=$(cd "$(dirname "$1")/.." && pwd)
  mkdir -p "$target/private-pg"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    if ! answers; then
      echo "aap-bridge tests: nothing answers at $host:$port (DATABASE_URL): starting a private PostgreSQL there, data in $target/private-pg/cluster (stop it with: $bridge db stop --dir $target/private-pg/cluster)" >&2
      "$bridge" db start --dir "$target/private-pg/cluster" --test-port "$port" >&2 ||
        echo "aap-bridge tests: the private PostgreSQL did not start; tests that need a database will fail" >&2
    fi
  ) 9>"$target/private-pg/lock"
fi
exec "$@"
