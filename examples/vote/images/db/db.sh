#!/bin/sh
# vote database: Debian's PostgreSQL 15 on a volume at $PGDATA. Initialised on first start;
# clients on the stack's network connect as `postgres` without a password (an example, on an
# overlay network of its own: put a password secret in front of this before anything real).
set -eu
BIN=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$BIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=trust >/dev/null
  echo "host all all 0.0.0.0/0 trust" >>"$PGDATA/pg_hba.conf"
  "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  "$BIN/createdb" -U postgres votes
  "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  echo "db: initialised $PGDATA"
fi
# SIGTERM to postgres is a smart shutdown; docker's SIGTERM reaches it directly (exec).
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
