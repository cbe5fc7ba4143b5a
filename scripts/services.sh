#!/usr/bin/env bash
# Installs (when missing) and starts the real servers the tests talk to, on
# loopback only, then writes their addresses to target/services.env:
#
#   PostgreSQL (Debian package)  NIGHTJAR_TEST_PG=postgres://nightjar@127.0.0.1:54329/postgres
#   moto server (PyPI)           NIGHTJAR_TEST_AWS=http://127.0.0.1:50550  (S3, SQS, Logs, Step Functions)
#   MariaDB (Debian package)     NIGHTJAR_TEST_MYSQL=mysql://nightjar:nightjar@127.0.0.1:53306/nightjar
#   PostgreSQL TLS CA            NIGHTJAR_TEST_PG_CA=/tmp/nightjar-services/pg-tls/ca.crt
#                                (the server takes TLS and plain clients; its certificate names 127.0.0.1 and localhost)
#
# and installs (not servers): asl-validator and playwright-core (npm, into
# target/node) and chromium (apt): NIGHTJAR_CHROMIUM, NIGHTJAR_PLAYWRIGHT_CORE.
#
# Safe to run again: a server already answering on its port is reused.
# `bash scripts/services.sh stop` stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT=${NIGHTJAR_PG_PORT:-54329}
MOTO_PORT=${NIGHTJAR_MOTO_PORT:-50550}
MYSQL_PORT=${NIGHTJAR_MYSQL_PORT:-53306}
STATE=${NIGHTJAR_SERVICES_DIR:-/tmp/nightjar-services}
ENV_FILE=target/services.env
mkdir -p "$STATE" target

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ "${1:-}" = stop ]; then
    [ -f "$STATE/moto.pid" ] && kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true
    [ -f "$STATE/mariadb/mariadb.pid" ] && kill "$(cat "$STATE/mariadb/mariadb.pid")" 2>/dev/null || true
    bin=$(pg_bin)
    if [ -n "$bin" ] && [ -d "$STATE/pg" ]; then
        if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$STATE/pg" stop -m fast || true
        else "$bin/pg_ctl" -D "$STATE/pg" stop -m fast || true; fi
    fi
    exit 0
fi

# --- PostgreSQL -------------------------------------------------------------
if [ -z "$(pg_bin)" ]; then
    echo "== installing postgresql (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(pg_bin)
# PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A private CA and a server certificate for 127.0.0.1/localhost, so tests
# can connect with TLS (verify-full against ca.crt) as well as without.
TLS="$STATE/pg-tls"
if [ ! -f "$TLS/server.crt" ]; then
    mkdir -p "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=nightjar test CA" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/ext.cnf"
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
        -extfile "$TLS/ext.cnf" -out "$TLS/server.crt" 2>/dev/null
    chmod 600 "$TLS/server.key"
    [ "$(id -u)" = 0 ] && chown postgres "$TLS/server.key" "$TLS/server.crt"
fi
PG_TLS_OPTS="-c ssl=on -c ssl_cert_file=$TLS/server.crt -c ssl_key_file=$TLS/server.key"

pg_tls_on() {
    pg "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U nightjar -d postgres -tAc "SHOW ssl" 2>/dev/null | grep -qx on
}
if pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && ! pg_tls_on; then
    # A server started before TLS was added: turn it on in place (a reload, no restart).
    echo "== enabling TLS on the running postgresql"
    pg "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U nightjar -d postgres -q \
        -c "ALTER SYSTEM SET ssl_cert_file = '$TLS/server.crt'" -c "ALTER SYSTEM SET ssl_key_file = '$TLS/server.key'" \
        -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
fi
if pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "== postgresql already up on 127.0.0.1:$PG_PORT"
else
    if [ ! -f "$STATE/pg/PG_VERSION" ]; then
        mkdir -p "$STATE/pg"
        [ "$(id -u)" = 0 ] && chown -R postgres "$STATE/pg" && chmod 700 "$STATE/pg"
        pg "$BIN/initdb" -D "$STATE/pg" -U nightjar --auth=trust >"$STATE/initdb.log"
    fi
    echo "== starting postgresql on 127.0.0.1:$PG_PORT"
    pg "$BIN/pg_ctl" -D "$STATE/pg" -l "$STATE/pg/server.log" -w start \
        -o "-h 127.0.0.1 -p $PG_PORT -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off $PG_TLS_OPTS" >/dev/null
fi

# --- moto server --------------------------------------------------------------
moto_up() {
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/', timeout=1)" 2>/dev/null
}
# 5.2.5 fixes Step Functions executions after the first in a region
# (getmoto/moto#10077), which tests/it/sfn_e2e.rs needs.
moto_current() {
    python3 - <<'PY' 2>/dev/null
import moto.server, flask_cors
from importlib.metadata import version
v = tuple(int(x) for x in version("moto").split(".")[:3])
raise SystemExit(0 if (5, 2, 5) <= v < (6,) else 1)
PY
}
if ! moto_current; then
    echo "== installing moto[server] (pip)"
    python3 -m pip install -q 'moto[server]>=5.2.5,<6'
    # An older moto still serving on the port must make way for the new one.
    pkill -f "moto.server -H 127.0.0.1 -p $MOTO_PORT" 2>/dev/null && sleep 1 || true
fi
if moto_up; then
    echo "== moto already up on 127.0.0.1:$MOTO_PORT"
else
    echo "== starting moto on 127.0.0.1:$MOTO_PORT"
    nohup python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    for _ in $(seq 1 100); do
        moto_up && break
        sleep 0.2
    done
    moto_up || { cat "$STATE/moto.log"; exit 1; }
fi

# --- MariaDB (MySQL-compatible) ---------------------------------------------------
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    echo "== installing mariadb-server (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mariadb-server >/dev/null
fi
MY="$STATE/mariadb"
my_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u nightjar -pnightjar ping >/dev/null 2>&1; }
if my_up; then
    echo "== mariadb already up on 127.0.0.1:$MYSQL_PORT"
else
    # mariadbd refuses to run as root: as root, the data belongs to `mysql`.
    my_user=$(id -un); [ "$(id -u)" = 0 ] && my_user=mysql
    if [ ! -d "$MY/data/mysql" ]; then
        mkdir -p "$MY/data"
        [ "$(id -u)" = 0 ] && chown -R mysql "$MY"
        mariadb-install-db --no-defaults --user="$my_user" --datadir="$MY/data" --auth-root-authentication-method=normal \
            >"$MY/install.log" 2>&1 || { cat "$MY/install.log"; exit 1; }
    fi
    echo "== starting mariadb on 127.0.0.1:$MYSQL_PORT"
    nohup /usr/sbin/mariadbd --no-defaults --user="$my_user" --datadir="$MY/data" --bind-address=127.0.0.1 \
        --port="$MYSQL_PORT" --socket="$MY/mariadb.sock" --pid-file="$MY/mariadb.pid" --skip-log-bin \
        --innodb-flush-log-at-trx-commit=0 --default-time-zone=+00:00 >"$MY/server.log" 2>&1 &
    for _ in $(seq 1 150); do
        mariadb-admin --no-defaults --socket="$MY/mariadb.sock" -u root ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    # The test user and database (idempotent).
    mariadb --no-defaults --socket="$MY/mariadb.sock" -u root -e "
        CREATE DATABASE IF NOT EXISTS nightjar;
        CREATE USER IF NOT EXISTS 'nightjar'@'127.0.0.1' IDENTIFIED BY 'nightjar';
        CREATE USER IF NOT EXISTS 'nightjar'@'localhost' IDENTIFIED BY 'nightjar';
        GRANT ALL ON *.* TO 'nightjar'@'127.0.0.1'; GRANT ALL ON *.* TO 'nightjar'@'localhost';" \
        || { cat "$MY/server.log"; exit 1; }
    my_up || { cat "$MY/server.log"; exit 1; }
fi

cat >"$ENV_FILE" <<EOF
NIGHTJAR_TEST_PG=postgres://nightjar@127.0.0.1:$PG_PORT/postgres
NIGHTJAR_TEST_PG_CA=$TLS/ca.crt
NIGHTJAR_TEST_AWS=http://127.0.0.1:$MOTO_PORT
NIGHTJAR_TEST_MYSQL=mysql://nightjar:nightjar@127.0.0.1:$MYSQL_PORT/nightjar
EOF
echo "== services ready ($ENV_FILE)"

# --- asl-validator (npm), for tests/it/sfn_compile.rs ------------------------------
# Checks the Amazon States Language nightjar compiles DAGs to. Installed into
# target/node (gitignored); skipped when already there.
if [ ! -x target/node/node_modules/.bin/asl-validator ]; then
    echo "== installing asl-validator (npm) into target/node"
    npm install --silent --no-audit --no-fund --prefix target/node asl-validator >/dev/null
fi

# --- chromium (apt) and playwright-core (npm), for tests/it/ui_e2e.rs --------------
# The web UI's end-to-end test drives Debian's chromium through
# playwright-core (the library only: no browser download, never
# `npx playwright install`).
if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f target/node/node_modules/playwright-core/package.json ]; then
    echo "== installing playwright-core (npm) into target/node"
    npm install --silent --no-audit --no-fund --prefix target/node playwright-core >/dev/null
fi
cat >>"$ENV_FILE" <<EOF2
NIGHTJAR_CHROMIUM=/usr/bin/chromium
NIGHTJAR_PLAYWRIGHT_CORE=$(pwd)/target/node/node_modules/playwright-core
EOF2
