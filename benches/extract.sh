#!/usr/bin/env bash
# Extract benchmarks (docs/benchmarks.md, "Extract"). Every figure is a ratio
# against a baseline measured side by side in this one invocation.
#
#   bash benches/extract.sh
#
# 1. PostgreSQL: a table of N rows (default 1,000,000: int, text, numeric,
#    timestamptz) read by `extract.sql` (one-task DAG, release build) vs
#    `psql \copy (SELECT ...) TO file CSV`, the same query.
# 2. S3: the Online Retail year (305 CSVs) uploaded to moto, read by
#    `extract.s3` (glob) vs `extract.file` reading the same files locally.
#
# 3. MySQL (MariaDB), when NIGHTJAR_TEST_MYSQL is set: the same N rows
#    (int, varchar, DECIMAL(10,2), TIMESTAMP(6)) read by `extract.sql` vs the
#    `mariadb --batch` client writing the same query to a TSV file.
#
# Needs the services (bash scripts/services.sh; target/services.env).
# Settings: NIGHTJAR_BENCH_PG_ROWS (1000000), NIGHTJAR_RETAIL_DIR, NIGHTJAR_BENCH_REPS (3),
# NIGHTJAR_BIN (see below).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ -z ${NIGHTJAR_TEST_PG:-} && -f target/services.env ]]; then
    set -a
    # shellcheck disable=SC1091
    . target/services.env
    set +a
fi
: "${NIGHTJAR_TEST_PG:?start the services: bash scripts/services.sh (then set -a; . target/services.env)}"
: "${NIGHTJAR_TEST_AWS:?start the services: bash scripts/services.sh}"
ROWS=${NIGHTJAR_BENCH_PG_ROWS:-1000000}
REPS=${NIGHTJAR_BENCH_REPS:-3}
DATA=${NIGHTJAR_RETAIL_DIR:-}
if [[ -z $DATA ]]; then
    for d in /work/shared/data/online-retail/by-day "$ROOT/../shared/data/online-retail/by-day"; do
        [[ -d $d ]] && DATA=$d && break
    done
fi
WORK=$(mktemp -d /tmp/nightjar-extract-bench.XXXX)
trap 'rm -rf "$WORK"' EXIT

# NIGHTJAR_BIN: a nightjar binary to use instead of building the release one
# (e.g. to check this script quickly with target/debug/nightjar; such
# figures are not benchmark results).
if [[ -n ${NIGHTJAR_BIN:-} ]]; then
    NJ=$NIGHTJAR_BIN
else
    echo "== building nightjar (release)" >&2
    cargo build --release --quiet --bin nightjar
    NJ=$ROOT/target/release/nightjar
fi

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- 1. PostgreSQL ----------------------------------------------------------
SCHEMA=nj_bench_$$
psql -q "$NIGHTJAR_TEST_PG" -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA $SCHEMA;
CREATE TABLE $SCHEMA.tx AS
  SELECT g AS id, 'customer-' || (g % 5000) AS name, (g % 100000) / 100.0::numeric(10,2) AS amount,
         timestamptz '2024-01-01 00:00+00' + g * interval '1 second' AS updated_at
  FROM generate_series(1, $ROWS) g;
ALTER TABLE $SCHEMA.tx ALTER COLUMN amount TYPE numeric(10,2);
ANALYZE $SCHEMA.tx;
SQL
QUERY="SELECT id, name, amount, updated_at FROM $SCHEMA.tx"
P=$WORK/pg
mkdir -p "$P/dags"
cat >"$P/nightjar.toml" <<TOML
default_env = "local"
[env.local.connections.src]
kind = "postgres"
url_env = "NIGHTJAR_TEST_PG"
TOML
cat >"$P/dags/pg.toml" <<TOML
name = "pg"
schedule = "@daily"
start = 2024-01-01
[[task]]
id = "extract"
kind = "extract.sql"
connection = "src"
query = "$QUERY"
batch_rows = 50000
TOML
pg_nj=(); pg_psql=()
for i in $(seq "$REPS"); do
    rm -rf "$P/.nightjar"
    t0=$(now); "$NJ" run "$P/dags/pg.toml" --date 2024-01-0"$i" >/dev/null; t1=$(now)
    pg_nj+=("$(echo "$t1 - $t0" | bc -l)")
    t0=$(now); psql -q "$NIGHTJAR_TEST_PG" -c "\\copy ($QUERY) TO '$WORK/pg.csv' CSV HEADER"; t1=$(now)
    pg_psql+=("$(echo "$t1 - $t0" | bc -l)")
done
psql -q "$NIGHTJAR_TEST_PG" -c "DROP SCHEMA $SCHEMA CASCADE"
PG_NJ=$(printf '%s\n' "${pg_nj[@]}" | median)
PG_PSQL=$(printf '%s\n' "${pg_psql[@]}" | median)

# ---- 3. MySQL (MariaDB) ------------------------------------------------------
MY_NJ=""; MY_CLI=""
if [[ -n ${NIGHTJAR_TEST_MYSQL:-} ]]; then
    # mysql://user:pass@host:port/db -> client options (the password via MYSQL_PWD, not argv).
    read -r MY_USER MY_PASS MY_HOST MY_PORT < <(python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(p.username or "root", u.unquote(p.password or ""), p.hostname, p.port or 3306)' "$NIGHTJAR_TEST_MYSQL")
    MYDB=nj_bench_$$
    my() { MYSQL_PWD=$MY_PASS mariadb --protocol=tcp -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" "$@"; }
    my -e "CREATE DATABASE $MYDB; CREATE TABLE $MYDB.tx (id BIGINT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2), updated_at TIMESTAMP(6) NOT NULL)"
    fill="SET time_zone = '+00:00'; INSERT INTO $MYDB.tx WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $ROWS)
          SELECT n, CONCAT('customer-', n % 5000), (n % 100000) / 100, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL n SECOND FROM g"
    # The recursion limit is named differently by MariaDB and MySQL 8.
    my -e "SET SESSION max_recursive_iterations = 100000000; $fill" 2>/dev/null ||
        my -e "SET SESSION cte_max_recursion_depth = 100000000; $fill"
    MYQUERY="SELECT id, name, amount, updated_at FROM $MYDB.tx"
    M=$WORK/my
    mkdir -p "$M/dags"
    printf 'default_env = "local"\n[env.local.connections.src]\nkind = "mysql"\nurl_env = "NIGHTJAR_TEST_MYSQL"\n' >"$M/nightjar.toml"
    printf 'name = "my"\nschedule = "@daily"\nstart = 2024-01-01\n[[task]]\nid = "extract"\nkind = "extract.sql"\nconnection = "src"\nquery = "%s"\nbatch_rows = 50000\n' "$MYQUERY" >"$M/dags/my.toml"
    my_nj=(); my_cli=()
    for i in $(seq "$REPS"); do
        rm -rf "$M/.nightjar"
        t0=$(now); "$NJ" run "$M/dags/my.toml" --date 2024-01-0"$i" >/dev/null; t1=$(now)
        my_nj+=("$(echo "$t1 - $t0" | bc -l)")
        # --quick: the client streams rows too instead of buffering the result.
        t0=$(now); my --batch --quick -e "$MYQUERY" >"$WORK/my.tsv"; t1=$(now)
        my_cli+=("$(echo "$t1 - $t0" | bc -l)")
    done
    my -e "DROP DATABASE $MYDB"
    MY_NJ=$(printf '%s\n' "${my_nj[@]}" | median)
    MY_CLI=$(printf '%s\n' "${my_cli[@]}" | median)
fi

# ---- 2. S3 (moto) vs local files ------------------------------------------
S3_NJ=""; S3_LOCAL=""
if [[ -d ${DATA:-} ]]; then
    BUCKET=nj-bench-$$
    python3 - "$NIGHTJAR_TEST_AWS" "$BUCKET" "$DATA" <<'PY'
import os, sys, boto3
ep, bucket, data = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=bucket)
for f in sorted(os.listdir(data)):
    s3.upload_file(os.path.join(data, f), bucket, "by-day/" + f)
PY
    S=$WORK/s3
    mkdir -p "$S/dags"
    cat >"$S/nightjar.toml" <<TOML
default_env = "local"
[env.local.connections.s3]
kind = "s3"
endpoint_url = "$NIGHTJAR_TEST_AWS"
region = "us-east-1"
emulator = true
TOML
    cols='[task.columns]
InvoiceNo = "string"
StockCode = "string"
Quantity = "int64"
InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S" }
UnitPrice = "decimal(10,3)"
CustomerID = "int64"'
    printf 'name = "s3"\nschedule = "@daily"\nstart = 2011-01-01\n[[task]]\nid = "extract"\nkind = "extract.s3"\nuri = "s3://%s/by-day/*.csv"\n%s\n' "$BUCKET" "$cols" >"$S/dags/s3.toml"
    printf 'name = "local"\nschedule = "@daily"\nstart = 2011-01-01\n[[task]]\nid = "extract"\nkind = "extract.file"\npath = "%s/*.csv"\n%s\n' "$DATA" "$cols" >"$S/dags/local.toml"
    s3_nj=(); s3_local=()
    for i in $(seq "$REPS"); do
        rm -rf "$S/.nightjar"
        t0=$(now); "$NJ" run "$S/dags/s3.toml" --date 2011-01-0"$i" >/dev/null; t1=$(now)
        s3_nj+=("$(echo "$t1 - $t0" | bc -l)")
        t0=$(now); "$NJ" run "$S/dags/local.toml" --date 2011-01-0"$i" >/dev/null; t1=$(now)
        s3_local+=("$(echo "$t1 - $t0" | bc -l)")
    done
    python3 - "$NIGHTJAR_TEST_AWS" "$BUCKET" <<'PY'
import sys, boto3
ep, bucket = sys.argv[1:]
s3 = boto3.resource("s3", endpoint_url=ep, region_name="us-east-1",
                    aws_access_key_id="testing", aws_secret_access_key="testing")
b = s3.Bucket(bucket); b.objects.all().delete(); b.delete()
PY
    S3_NJ=$(printf '%s\n' "${s3_nj[@]}" | median)
    S3_LOCAL=$(printf '%s\n' "${s3_local[@]}" | median)
fi

printf '\n%-52s %10s %10s %8s\n' "benchmark (median of $REPS)" "nightjar" "baseline" "ratio"
printf '%-52s %9.2fs %9.2fs %7.2fx\n' "PostgreSQL $ROWS rows: extract.sql vs psql \\copy CSV" "$PG_NJ" "$PG_PSQL" "$(echo "$PG_NJ / $PG_PSQL" | bc -l)"
if [[ -n $MY_NJ ]]; then
    printf '%-52s %9.2fs %9.2fs %7.2fx\n' "MySQL $ROWS rows: extract.sql vs mariadb --batch" "$MY_NJ" "$MY_CLI" "$(echo "$MY_NJ / $MY_CLI" | bc -l)"
fi
if [[ -n $S3_NJ ]]; then
    printf '%-52s %9.2fs %9.2fs %7.2fx\n' "Online Retail year: extract.s3 (moto) vs extract.file" "$S3_NJ" "$S3_LOCAL" "$(echo "$S3_NJ / $S3_LOCAL" | bc -l)"
else
    echo "(S3 part skipped: no Online Retail by-day folder)"
fi

# One-line figures for benches/all.sh.
echo "summary: PostgreSQL $ROWS rows, extract.sql vs psql \\copy (s) | $PG_NJ | $PG_PSQL (psql) | $(printf '%.2f' "$(echo "$PG_NJ / $PG_PSQL" | bc -l)")x | within 2x | $(awk -v a="$PG_NJ" -v b="$PG_PSQL" 'BEGIN {print (a / b <= 2) ? "yes" : "NO"}')"
if [[ -n $S3_NJ ]]; then
    echo "summary: Online Retail year, extract.s3 (moto) vs extract.file (s) | $S3_NJ | $S3_LOCAL (local files) | $(printf '%.2f' "$(echo "$S3_NJ / $S3_LOCAL" | bc -l)")x | - | -"
fi
if [[ -n $MY_NJ ]]; then
    echo "summary: MySQL (MariaDB) $ROWS rows, extract.sql vs mariadb --batch (s) | $MY_NJ | $MY_CLI (mariadb) | $(printf '%.2f' "$(echo "$MY_NJ / $MY_CLI" | bc -l)")x | - | -"
fi
