#!/usr/bin/env bash
# Data-plane benchmark (docs/benchmarks.md, "Data plane"). Not a timed test:
# every figure is a ratio against a baseline measured side by side, in this
# one invocation, on this machine.
#
#   bash benches/data_plane.sh
#
# 1. builds nightjar (release) and the csv-crate baseline (benches/csv_baseline.rs);
# 2. runs benches/dags/retail_year.toml over the whole Online Retail year
#    (305 files, 541,909 rows) in one run: extract.file (glob) ->
#    transform.clean (cancelled apart, dedupe) -> load.sqlite (replace);
# 3. runs benches/retail_pandas.py, the same pipeline in pandas;
#    wall time and peak RSS of both processes come from /usr/bin/time -v;
# 4. checks both wrote the same tables (fails loudly otherwise);
# 5. parse throughput: nightjar's extract task alone (its duration from
#    `nightjar show --json`) vs the csv crate reading the same bytes, and
#    nightjar's parse + typing alone on one thread (benches/csv_baseline.rs);
# 6. streams a generated ~2 GB CSV through extract -> clean -> load.parquet
#    (benches/dags/retail_stream.toml) and measures peak RSS and time;
# 7. prints one table.
#
# Settings (environment):
#   NIGHTJAR_RETAIL_DIR   the by-day folder (default /work/shared/data/online-retail/by-day,
#                         else ../shared/data/online-retail/by-day from the repo)
#   NIGHTJAR_BENCH_WORK   scratch folder (default /tmp/nightjar-dataplane; wiped)
#   NIGHTJAR_BENCH_REPS   runs of each year pipeline, median reported (default 3)
#   NIGHTJAR_BENCH_BIG    size of the generated CSV in bytes (default 2e9; 0 skips part 6)
#   PYTHON                the Python with pandas (default python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${NIGHTJAR_RETAIL_DIR:-}
if [[ -z $DATA ]]; then
    for d in /work/shared/data/online-retail/by-day "$ROOT/../shared/data/online-retail/by-day"; do
        [[ -d $d ]] && DATA=$d && break
    done
fi
[[ -d ${DATA:-} ]] || { echo "data_plane: no by-day folder; set NIGHTJAR_RETAIL_DIR" >&2; exit 2; }
DATA=$(cd "$DATA" && pwd)
WORK=${NIGHTJAR_BENCH_WORK:-/tmp/nightjar-dataplane}
REPS=${NIGHTJAR_BENCH_REPS:-3}
BIG=${NIGHTJAR_BENCH_BIG:-2e9}
PYTHON=${PYTHON:-python3}
DATE=2011-12-09

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\ndata_plane: FAILED: %s\n' "$*" >&2; exit 1; }

[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install -y time)"
"$PYTHON" -c 'import pandas' 2>/dev/null || die "pandas is missing for $PYTHON (pip install pandas)"

rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK/big" "$WORK"/proj-*/.nightjar/artifacts' EXIT

# ---------------------------------------------------------------- 1. build
say "building (release)"
(cd "$ROOT" && cargo build --release --bin nightjar) >&2
BIN=$ROOT/target/release/nightjar
BASELINE=$(cd "$ROOT" && cargo bench --bench csv_baseline --no-run --message-format=json 2>/dev/null |
    "$PYTHON" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "csv_baseline" and m.get("executable"):
        print(m["executable"])')
[[ -x $BASELINE ]] || die "could not build benches/csv_baseline.rs (cargo bench --bench csv_baseline --no-run)"
# Copies: a rebuild in the working tree during the benchmark changes nothing.
mkdir -p "$WORK/bin"
cp "$BIN" "$WORK/bin/nightjar" && cp "$BASELINE" "$WORK/bin/csv_baseline"
BIN=$WORK/bin/nightjar BASELINE=$WORK/bin/csv_baseline

# A scratch project holding benches/dags and benches/jobs: run history,
# artifacts and the warehouse (.nightjar/warehouse.db) stay out of the repo.
fresh_project() {
    local p=$WORK/proj-$1
    rm -rf "$p"
    mkdir -p "$p"
    cp -r "$ROOT/benches/dags" "$ROOT/benches/jobs" "$p/"
    echo "$p"
}

# timed OUT CMD...: runs CMD under /usr/bin/time -v, its output to OUT.log,
# the measurements to OUT.time, and its RSS every 0.1 s to OUT.rss
# ("unix_ms rss_kB" lines: which task holds the memory).
timed() {
    local out=$1
    shift
    /usr/bin/time -v -o "$out.time" "$@" >"$out.log" 2>&1 &
    local tpid=$! cpid=""
    while kill -0 "$tpid" 2>/dev/null; do
        [[ -z $cpid ]] && cpid=$(pgrep -P "$tpid" | head -1 || true)
        [[ -n $cpid ]] && awk -v t="$(date +%s%3N)" '/^VmRSS/ {print t, $2}' "/proc/$cpid/status" 2>/dev/null >>"$out.rss" || true
        sleep 0.1
    done
    if ! wait "$tpid"; then
        tail -30 "$out.log" >&2
        die "$* (log: $out.log)"
    fi
}
wall() { # seconds, from "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
    awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$1"
}
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
max() { sort -g | tail -1; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm the page cache: every reader below finds the files in memory.
cat "$DATA"/*.csv >/dev/null
NFILES=$(ls "$DATA"/*.csv | wc -l)

# --------------------------------------------- 2 + 3. the year, both ways
: >"$WORK/nj.wall"; : >"$WORK/nj.rss"; : >"$WORK/pd.wall"; : >"$WORK/pd.rss"
for i in $(seq "$REPS"); do
    say "year run $i/$REPS: nightjar"
    P=$(fresh_project "year$i")
    (cd "$P" && timed "$WORK/nj$i" "$BIN" run dags/retail_year.toml --date "$DATE" --var "input=$DATA")
    wall "$WORK/nj$i.time" >>"$WORK/nj.wall"
    rss_mb "$WORK/nj$i.time" >>"$WORK/nj.rss"
    echo >>"$WORK/nj.rss"
    say "year run $i/$REPS: pandas"
    rm -f "$WORK/pandas$i.db"
    timed "$WORK/pd$i" "$PYTHON" "$ROOT/benches/retail_pandas.py" "$DATA" "$WORK/pandas$i.db"
    wall "$WORK/pd$i.time" >>"$WORK/pd.wall"
    rss_mb "$WORK/pd$i.time" >>"$WORK/pd.rss"
    echo >>"$WORK/pd.rss"
done
NJ_WALL=$(median <"$WORK/nj.wall"); NJ_RSS=$(max <"$WORK/nj.rss")
PD_WALL=$(median <"$WORK/pd.wall"); PD_RSS=$(max <"$WORK/pd.rss")
PANDAS_VERSION=$("$PYTHON" -c 'import pandas; print(pandas.__version__)')
(cd "$WORK/proj-year1" && "$BIN" --json show "retail_year@$DATE") >"$WORK/year_show.json" ||
    die "nightjar show retail_year@$DATE"

# ------------------------------------------------ 4. the same tables?
say "checking both wrote the same tables"
"$PYTHON" - "$WORK/proj-year1/.nightjar/warehouse.db" "$WORK/pandas1.db" <<'EOF' >&2 || die "nightjar's and pandas' tables differ (see above)"
import sqlite3, sys
checks = [
    "count(*)", "sum(Quantity)", "count(distinct InvoiceNo)", "count(distinct StockCode)",
    "count(Description)", "count(CustomerID)", "sum(CustomerID)", "min(InvoiceDate)", "max(InvoiceDate)",
    "round(sum(UnitPrice), 3)", "round(sum(Quantity * UnitPrice), 2)", "count(distinct Country)",
]
dbs = [sqlite3.connect(p) for p in sys.argv[1:3]]
bad = 0
for table in ["orders", "cancelled_orders"]:
    cols = [[r[1] for r in db.execute(f"pragma table_info({table})")] for db in dbs]
    if cols[0] != cols[1]:
        print(f"{table}: columns differ: nightjar {cols[0]} / pandas {cols[1]}"); bad += 1
    for c in checks:
        a, b = (db.execute(f"select {c} from {table}").fetchone()[0] for db in dbs)
        ok = a == b
        bad += not ok
        print(f"{'ok ' if ok else 'DIFF'} {table:16} {c:38} nightjar={a!r} pandas={b!r}")
sys.exit(1 if bad else 0)
EOF
ROWS=$("$PYTHON" -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(*(d.execute(f"select count(*) from {t}").fetchone()[0] for t in ("orders","cancelled_orders")))' "$WORK/pandas1.db")

# --------------------------------------------- 5. parse throughput
say "parse throughput: the csv crate"
"$BASELINE" "$DATA" | tee "$WORK/csv_year.txt" >&2
CSV_BYTES=$(grep '^csv_baseline' "$WORK/csv_year.txt" | sed -E 's/.* bytes=([0-9]+).*/\1/')
CSV_MBS=$(grep '^csv_baseline' "$WORK/csv_year.txt" | sed -E 's/.* mb_per_s=([0-9.]+).*/\1/')
# nightjar's own parse + typing, one thread, no output, same process.
TYPED_MBS=$(grep '^nightjar_typed' "$WORK/csv_year.txt" | sed -E 's/.* mb_per_s=([0-9.]+).*/\1/')
: >"$WORK/ex.secs"
for i in $(seq "$REPS"); do
    say "parse throughput: nightjar extract alone $i/$REPS"
    P=$(fresh_project "extract$i")
    (cd "$P" && timed "$WORK/ex$i" "$BIN" run dags/retail_year.toml --date "$DATE" --var "input=$DATA" --task extract)
    (cd "$P" && "$BIN" --json show "retail_year@$DATE") >"$WORK/ex$i.json"
    "$PYTHON" - "$WORK/ex$i.json" >>"$WORK/ex.secs" <<'EOF'
import json, sys
from datetime import datetime
t = next(t["task"] for t in json.load(open(sys.argv[1]))["tasks"] if t["task"]["task_id"] == "extract")
assert t["state"] == "success", t
print((datetime.fromisoformat(t["ended_at"]) - datetime.fromisoformat(t["started_at"])).total_seconds())
EOF
done
EX_SECS=$(median <"$WORK/ex.secs")
EX_MBS=$(awk -v b="$CSV_BYTES" -v s="$EX_SECS" 'BEGIN {printf "%.1f", b / 1e6 / s}')

# ------------------------------------------------ 6. the 2 GB stream
if [[ $BIG != 0 ]]; then
    say "generating the big CSV ($BIG bytes)"
    "$PYTHON" "$ROOT/benches/gen_big_csv.py" "$DATA" "$WORK/big/orders.csv" "$BIG" | tee "$WORK/gen.txt" >&2
    BIG_BYTES=$(stat -c %s "$WORK/big/orders.csv")
    say "streaming it: the csv crate"
    NIGHTJAR_BENCH_REPS=1 "$BASELINE" "$WORK/big/orders.csv" | tee "$WORK/csv_big.txt" >&2
    CSV_BIG_SECS=$(grep '^csv_baseline' "$WORK/csv_big.txt" | sed -E 's/.* secs=([0-9.]+).*/\1/')
    say "streaming it: nightjar extract -> clean -> load.parquet"
    P=$(fresh_project stream)
    (cd "$P" && timed "$WORK/st" "$BIN" run dags/retail_stream.toml --date "$DATE" --var "input=$WORK/big" --var "out=$P/out")
    (cd "$P" && "$BIN" --json show "retail_stream@$DATE") >"$WORK/stream_show.json"
    ST_WALL=$(wall "$WORK/st.time"); ST_RSS=$(rss_mb "$WORK/st.time")
    rm -rf "$WORK/big" "$P/.nightjar/artifacts" "$P/out"
fi

# ------------------------------------------------------------ 7. the table
say "per-task durations (nightjar show --json) and the process's peak RSS while each task ran"
SHOWS=("$WORK/year_show.json:$WORK/nj1.rss")
[[ $BIG != 0 ]] && SHOWS+=("$WORK/stream_show.json:$WORK/st.rss")
for f in "${SHOWS[@]}"; do
    "$PYTHON" - "${f%%:*}" "${f##*:}" <<'EOF' >&2
import json, sys
from datetime import datetime
d = json.load(open(sys.argv[1]))
samples = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
r = d["run"]
ms = lambda a: datetime.fromisoformat(a).timestamp() * 1000
secs = lambda a, b: (ms(b) - ms(a)) / 1000
def peak(a, b):
    v = [kb for t, kb in samples if ms(a) <= t <= ms(b)]
    return f"{max(v) / 1024:7.1f} MB" if v else "      - MB"
print(f"{r['run_id']}: run {secs(r['started_at'], r['ended_at']):.2f} s, peak RSS {peak(r['started_at'], r['ended_at'])}")
for t in d["tasks"]:
    t = t["task"]
    m = t.get("metrics") or {}
    print(f"  {t['task_id']:16} {secs(t['started_at'], t['ended_at']):7.2f} s  peak RSS {peak(t['started_at'], t['ended_at'])}"
          f"  rows in {m.get('rows_in')}, out {m.get('rows_out')}")
EOF
done

row() { # measurement nightjar baseline ratio target met
    printf '| %s | %s | %s | %s | %s | %s |\n' "$@"
}
yes_no() { awk "BEGIN {print ($1) ? \"yes\" : \"NO\"}"; }
SPEEDUP=$(awk -v a="$PD_WALL" -v b="$NJ_WALL" 'BEGIN {printf "%.1fx", a / b}')
RSS_RATIO=$(awk -v a="$NJ_RSS" -v b="$PD_RSS" 'BEGIN {printf "%.2fx", a / b}')
PARSE_RATIO=$(awk -v a="$CSV_MBS" -v b="$EX_MBS" 'BEGIN {printf "%.1fx slower", a / b}')
TYPED_RATIO=$(awk -v a="$CSV_MBS" -v b="$TYPED_MBS" 'BEGIN {printf "%.1fx slower", a / b}')

echo
echo "Data plane: $NFILES files, $(printf "%'d" "$CSV_BYTES") bytes; orders $(echo "$ROWS" | cut -d' ' -f1), cancelled $(echo "$ROWS" | cut -d' ' -f2) rows in both"
echo "nproc $(nproc), $(date -u '+%Y-%m-%d %H:%M UTC'), pandas $PANDAS_VERSION, median of $REPS runs (peak RSS: max)"
echo "load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
row "measurement" "nightjar" "baseline" "ratio" "target" "met?"
row "---" "---" "---" "---" "---" "---"
row "year end to end, wall (s)" "$NJ_WALL" "$PD_WALL (pandas)" "$SPEEDUP faster" ">= 10x faster" \
    "$(yes_no "$PD_WALL / $NJ_WALL >= 10")"
row "year end to end, peak RSS (MB)" "$NJ_RSS" "$PD_RSS (pandas)" "$RSS_RATIO" "< 400 MB" "$(yes_no "$NJ_RSS < 400")"
row "parse throughput (MB/s)" "$EX_MBS (extract task, ${EX_SECS} s)" "$CSV_MBS (csv ByteRecord)" "$PARSE_RATIO" \
    "within 3x" "$(yes_no "$CSV_MBS / $EX_MBS <= 3")"
row "parse + typing only, one thread (MB/s)" "$TYPED_MBS (CsvSource + BatchBuilder)" "$CSV_MBS (csv ByteRecord)" \
    "$TYPED_RATIO" "within 3x" \
    "$(yes_no "$CSV_MBS / $TYPED_MBS <= 3")"
if [[ $BIG != 0 ]]; then
    row "$(awk -v b="$BIG_BYTES" 'BEGIN {printf "%.2f", b / 1e9}') GB stream -> parquet, peak RSS (MB)" "$ST_RSS" "-" "-" "< 500 MB" \
        "$(yes_no "$ST_RSS < 500")"
    row "$(awk -v b="$BIG_BYTES" 'BEGIN {printf "%.2f", b / 1e9}') GB stream -> parquet, wall (s)" "$ST_WALL" \
        "$CSV_BIG_SECS (csv crate, read only)" "$(awk -v a="$ST_WALL" -v b="$CSV_BIG_SECS" 'BEGIN {printf "%.1fx", a / b}')" "-" "-"
fi

# One-line figures for benches/all.sh.
summary() { local IFS='|'; echo "summary: $*"; }
summary "year extract -> clean -> load.sqlite, wall (s)" "$NJ_WALL" "$PD_WALL (pandas)" "$SPEEDUP faster" ">= 10x faster" "$(yes_no "$PD_WALL / $NJ_WALL >= 10")"
summary "year, peak RSS (MB)" "$NJ_RSS" "$PD_RSS (pandas)" "$RSS_RATIO" "< 400 MB" "$(yes_no "$NJ_RSS < 400")"
summary "parse throughput (MB/s)" "$EX_MBS" "$CSV_MBS (csv crate)" "$PARSE_RATIO" "within 3x" "$(yes_no "$CSV_MBS / $EX_MBS <= 3")"
summary "parse + typing only, one thread (MB/s)" "$TYPED_MBS" "$CSV_MBS (csv crate)" "$TYPED_RATIO" "within 3x" "$(yes_no "$CSV_MBS / $TYPED_MBS <= 3")"
if [[ $BIG != 0 ]]; then
    summary "2 GB stream -> parquet, peak RSS (MB)" "$ST_RSS" "-" "-" "< 500 MB" "$(yes_no "$ST_RSS < 500")"
fi
