#!/usr/bin/env bash
# Starts PgBouncer in transaction pooling in front of the local PostgreSQL
# (127.0.0.1:5432), as most production deployments run it, for the tests
# and benches that go through a pooler. Installs Debian's package when it
# is missing. Idempotent: a pooler already answering on the port is kept.
#
#   bash .ci/pgbouncer.sh            # listens on 127.0.0.1:6433
#
# Then: COMMERCE_PGBOUNCER_URL=postgres://commerce_login@127.0.0.1:6433/postgres
# (the tests replace the database name with each scenario's own).
set -euo pipefail

port="${COMMERCE_PGBOUNCER_PORT:-6433}"
dir="${COMMERCE_PGBOUNCER_DIR:-/tmp/commerce-pgbouncer}"

ready() { pg_isready -h 127.0.0.1 -p "$port" -q 2>/dev/null; }

if ready; then
  echo "PgBouncer already answers on 127.0.0.1:$port"
  exit 0
fi

bin=$(command -v pgbouncer || true)
[ -z "$bin" ] && [ -x /usr/sbin/pgbouncer ] && bin=/usr/sbin/pgbouncer
if [ -z "$bin" ]; then
  echo "PgBouncer is not installed: installing it from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q pgbouncer
  bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
fi
"$bin" --version | head -n 1

mkdir -p "$dir"
# Trust on loopback, as the PostgreSQL server here: the users the tests log
# in as are listed, nothing else is accepted.
cat > "$dir/userlist.txt" <<'EOF'
"postgres" ""
"commerce_login" ""
EOF
# One fixed database with a single server connection, where every client
# of the same user shares one server session (the tenant-isolation test);
# every other database name falls through to the server under its own name.
cat > "$dir/pgbouncer.ini" <<EOF
[databases]
commerce_pooling_one = host=127.0.0.1 port=5432 dbname=commerce_pooling_one pool_size=1
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 10
; Every test database gets pools of its own: close server connections soon
; after their tests end, and never hold more than PostgreSQL can spare.
server_idle_timeout = 2
max_user_connections = 30
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
if id postgres >/dev/null 2>&1; then
  chown -R postgres "$dir"
  su postgres -s /bin/sh -c "$bin -d $dir/pgbouncer.ini"
else
  "$bin" -d "$dir/pgbouncer.ini"
fi
for _ in $(seq 1 30); do ready && break; sleep 0.5; done
if ! ready; then
  echo "PgBouncer did not start on 127.0.0.1:$port:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  exit 1
fi
echo "PgBouncer answers on 127.0.0.1:$port (transaction pooling)"
