#!/usr/bin/env bash
# The Online Retail year as a backfill (issues 8 and 12): `nightjar backfill
# retail_nightly --from 2010-12-01 --to 2011-12-09 --parallel 2` (374
# logical dates, 305 with a file) into a fresh SQLite warehouse, against one
# run of the same DAG over every file at once (extract by glob, loads in
# `replace` mode) with the same binary, side by side in this invocation.
# The ratio is what cutting the year into nightly runs costs: per-run
# orchestration, per-day files, per-day replace_partition deletes. Peak RSS
# of each side too. Not a timed test.
#
#   NIGHTJAR_BIN=target/release/nightjar bash benches/backfill_year.sh
#
# Settings: NIGHTJAR_RETAIL_DIR (the by-day folder), NIGHTJAR_BENCH_WORK
# (scratch, wiped; default /tmp/nightjar-backfill-year).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${NIGHTJAR_RETAIL_DIR:-$ROOT/../shared/data/online-retail/by-day}
[[ -d $DATA ]] || { echo "backfill_year: no by-day folder at $DATA; set NIGHTJAR_RETAIL_DIR" >&2; exit 2; }
DATA=$(cd "$DATA" && pwd)
BIN=$(realpath "${NIGHTJAR_BIN:-$ROOT/target/release/nightjar}")
[[ -x $BIN ]] || { echo "backfill_year: build first (cargo build --release) or set NIGHTJAR_BIN" >&2; exit 2; }
WORK=${NIGHTJAR_BENCH_WORK:-/tmp/nightjar-backfill-year}
rm -rf "$WORK" && mkdir -p "$WORK"

# A project with the repository's retail DAG, jobs and SQL; one PII key.
project() {
    local p=$WORK/$1
    mkdir -p "$p/.nightjar"
    cp -r "$ROOT/dags" "$ROOT/jobs" "$ROOT/sql" "$p/"
    printf 'hex:%s\n' "$(printf '5a%.0s' $(seq 32))" >"$p/.nightjar/pii.key"
    echo "$p"
}

# Wall seconds and peak RSS (MB) of a command, run in $1.
measure() {
    local dir=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$dir" && /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >"$WORK/out.log" 2>&1) || {
        echo "backfill_year: failed: $*" >&2
        tail -20 "$WORK/out.log" >&2
        exit 1
    }
    t1=$(date +%s.%N)
    echo "$(echo "$t1 - $t0" | bc) $(($(cat "$WORK/rss") / 1024))"
}

command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null

BF=$(project backfill)
read -r bf_s bf_mb < <(measure "$BF" "$BIN" backfill retail_nightly --from 2010-12-01 --to 2011-12-09 \
    --parallel 2 --var "input=$DATA" --var archive="$WORK/raw")
runs=$(grep -o '[0-9]* run(s): [0-9]* succeeded' "$WORK/out.log" | head -1)

FULL=$(project full)
sed -i -e 's/mode = "replace_partition"/mode = "replace"/' \
    -e '/^partition = { column = "order_date", value = "{{ ds }}" }$/d' "$FULL/dags/retail_nightly.toml"
sed -i 's/{{ ds }}\.csv/*.csv/' "$FULL/jobs/retail/extract.toml"
read -r one_s one_mb < <(measure "$FULL" "$BIN" run retail_nightly --date 2011-12-09 \
    --var "input=$DATA" --var archive="$WORK/raw-full")

rows() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM ' + sys.argv[2]).fetchone()[0])" "$1/.nightjar/warehouse.db" "$2"; }
same=yes
for t in orders cancelled_orders invoice_lines; do
    [[ $(rows "$BF" $t) == $(rows "$FULL" $t) ]] || same="NO ($t)"
done
ratio=$(echo "scale=1; $bf_s / $one_s" | bc)
per_run=$(echo "scale=1; ($bf_s - $one_s) * 1000 / 374" | bc)

echo "Online Retail year: backfill of 374 dates vs one run over every file (same binary, same DAG)"
echo
echo "| what | wall s | peak RSS MB |"
echo "| --- | ---: | ---: |"
echo "| backfill, --parallel 2 ($runs) | $bf_s | $bf_mb |"
echo "| one run over the 305 files | $one_s | $one_mb |"
echo
echo "ratio ${ratio}x; ${per_run} ms more per logical date; same orders / cancelled / invoice_lines rows: $same"
echo "summary: Online Retail year, backfill of 374 dates vs one full run (s) | $bf_s | $one_s (one run) | ${ratio}x (${per_run} ms per date) | - | $same"
echo "summary: Online Retail year backfill, peak RSS (MB) | $bf_mb | $one_mb (one run) | - | < 400 MB | $([[ $bf_mb -lt 400 ]] && echo yes || echo NO)"
