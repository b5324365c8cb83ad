# shellcheck shell=bash
# Sourced by scripts/test.sh (under set -euo pipefail): starts a throwaway
# PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only,
# and exports
#   KEYWARDEN_TEST_POSTGRES     the DSN of an empty database (with a password)
#   KEYWARDEN_REQUIRE_POSTGRES  1, so PostgreSQL tests fail instead of skipping
# Sourcing it again in the same shell reuses the running cluster. Debian's
# postgresql package is installed when initdb is missing. Nothing is written
# outside the temporary directory; the cluster is not stopped at exit (CI
# machines are thrown away; stop it with pg_ctl -D "$KEYWARDEN_PG_DIR/data" stop).

keywarden_pg_setup() {
  local bin dir port pass try as=()
  # initdb and pg_ctl refuse to run as root: the cluster belongs to postgres.
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  if [ -n "${KEYWARDEN_PG_DIR:-}" ] && [ -n "${KEYWARDEN_TEST_POSTGRES:-}" ] &&
     [ -f "${KEYWARDEN_PG_DIR}/data/postmaster.pid" ]; then
    bin=$(cat "$KEYWARDEN_PG_DIR/bindir")
    if "${as[@]}" "$bin/pg_ctl" -D "$KEYWARDEN_PG_DIR/data" status >/dev/null 2>&1; then
      echo "postgres: reusing the cluster in $KEYWARDEN_PG_DIR"
      export KEYWARDEN_REQUIRE_POSTGRES=1
      return 0
    fi
  fi
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "postgres: installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  bin=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)")
  dir=$(mktemp -d "${TMPDIR:-/tmp}/keywarden-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  # The password only lives in the DSN variable and in a 0600 file in $dir.
  pass=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
  (umask 077 && printf '%s\n' "$pass" >"$dir/pwfile")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pwfile"; fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$dir/pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; return 1; }
  for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    # A port something already answers on is taken.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=on -c max_connections=200" \
        start >/dev/null; then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then
    echo "postgres: the cluster in $dir did not start; see $dir/server.log" >&2
    tail -n 20 "$dir/server.log" >&2 || true
    return 1
  fi
  # Tests create and drop their own databases: the role needs CREATEDB, and
  # pg_signal_backend so that DROP DATABASE ... WITH (FORCE) may also end an
  # autovacuum worker busy in the database.
  "${as[@]}" "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE keywarden LOGIN CREATEDB PASSWORD '$pass'" \
    -c "GRANT pg_signal_backend TO keywarden" \
    -c "CREATE DATABASE keywarden OWNER keywarden" >/dev/null
  echo "$bin" >"$dir/bindir"
  export KEYWARDEN_PG_DIR="$dir"
  export KEYWARDEN_TEST_POSTGRES="postgres://keywarden:${pass}@127.0.0.1:${port}/keywarden?sslmode=disable"
  export KEYWARDEN_REQUIRE_POSTGRES=1
  echo "postgres: cluster in $dir listening on 127.0.0.1:$port"
}
keywarden_pg_setup
unset -f keywarden_pg_setup
