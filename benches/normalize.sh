#!/usr/bin/env bash
# Normalize benchmark (docs/benchmarks.md, "Normalize"). Not a timed test:
# every figure is a ratio against a baseline measured side by side, in this
# one invocation, on this machine.
#
#   bash benches/normalize.sh
#
# Settings (environment): NIGHTJAR_RETAIL_DIR (the by-day folder),
# NIGHTJAR_BENCH_WORK (scratch, wiped; default /tmp/nightjar-normalize),
# NIGHTJAR_BENCH_REPS (default 3), NIGHTJAR_BIN (use this binary, no build),
# PYTHON (default python3).
#
# 1. installs the baselines (pandas, pyarrow, desbordante) and builds
#    nightjar (release);
# 2. FD discovery on the Online Retail year (one CSV, 541,909 rows x 8
#    columns): `nightjar normalize infer` vs desbordante's default exact
#    algorithm (HyFD) on the same file; both times include reading the CSV;
#    the FD sets must be equal;
# 3. the normalize step: benches/normalize/dags/normalize_year.toml runs
#    extract -> clean -> normalize (jobs/retail/normalize.toml) over the
#    year; the normalize task (Parquet in, four Parquet tables out) is timed
#    from its recorded start/end, re-run with --force --task; pandas does the
#    same split (benches/normalize_pandas.py: drop_duplicates + merge, same
#    policies) on the same Parquet input, timed from its read_parquet to its
#    last to_parquet (the task's own span: Parquet in, Parquet out; the
#    split without the read is printed too); the table sizes must be equal;
# 4. prints one table (medians of NIGHTJAR_BENCH_REPS runs, default 3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${NIGHTJAR_RETAIL_DIR:-}
if [[ -z $DATA ]]; then
    for d in /work/shared/data/online-retail/by-day "$ROOT/../shared/data/online-retail/by-day"; do
        [[ -d $d ]] && DATA=$d && break
    done
fi
[[ -d ${DATA:-} ]] || { echo "normalize bench: no by-day folder; set NIGHTJAR_RETAIL_DIR" >&2; exit 2; }
DATA=$(cd "$DATA" && pwd)
WORK=${NIGHTJAR_BENCH_WORK:-/tmp/nightjar-normalize}
REPS=${NIGHTJAR_BENCH_REPS:-3}
PYTHON=${PYTHON:-python3}
DATE=2011-12-09
say() { printf '\n== %s\n' "$*" >&2; }
die() { printf '\nnormalize bench: FAILED: %s\n' "$*" >&2; exit 1; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
now() { date +%s.%N; }

say "installing baselines (pandas, pyarrow, desbordante)"
"$PYTHON" -m pip install -q pandas pyarrow desbordante 2>&1 | grep -vi "running pip as the 'root' user" >&2 || true
rm -rf "$WORK" && mkdir -p "$WORK/bin"
if [[ -n ${NIGHTJAR_BIN:-} ]]; then # a binary built elsewhere (skips the build)
    cp "$NIGHTJAR_BIN" "$WORK/bin/nightjar"
else
    say "building (release)"
    (cd "$ROOT" && cargo build --release --bin nightjar) >&2
    cp "$ROOT/target/release/nightjar" "$WORK/bin/nightjar"
fi
BIN=$WORK/bin/nightjar
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------ 2. FD discovery
say "the year as one CSV"
YEAR=$WORK/retail_year.csv
# (a glob, not `ls | head`: under pipefail the SIGPIPE of ls ended the script)
days=("$DATA"/*.csv)
{ head -1 "${days[0]}"; for f in "${days[@]}"; do tail -n +2 "$f"; done; } >"$YEAR"
: >"$WORK/infer.s"; : >"$WORK/desb.s"
for i in $(seq "$REPS"); do
    say "FD discovery $i/$REPS"
    t0=$(now)
    "$BIN" normalize infer "$YEAR" --json >"$WORK/infer.json" 2>/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc >>"$WORK/infer.s"
    "$PYTHON" "$ROOT/benches/normalize_desbordante.py" "$YEAR" >"$WORK/desb.json"
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/desb.json" >>"$WORK/desb.s"
done
SAME_FDS=$("$PYTHON" - "$WORK/infer.json" "$WORK/desb.json" <<'PY'
import json, sys
ours = sorted([l, r] for l, r, rows in json.load(open(sys.argv[1]))["fds"])
ref = json.load(open(sys.argv[2]))["fds"]
print("yes (%d FDs)" % len(ours) if ours == ref else "NO: nightjar %s vs desbordante %s" % (ours, ref))
PY
)
[[ $SAME_FDS == yes* ]] || die "FD sets differ: $SAME_FDS"

# ------------------------------------------------------ 3. normalize step
say "the year through extract -> clean -> normalize"
P=$WORK/proj
mkdir -p "$P/jobs"
cp -r "$ROOT/benches/normalize/dags" "$P/dags"
cp -r "$ROOT/benches/jobs/retail_year" "$ROOT/jobs/retail" "$P/jobs/"
(cd "$P" && "$BIN" run normalize_year --date "$DATE" --var "input=$DATA" >"$WORK/run1.log" 2>&1) || die "run failed: $WORK/run1.log"
for i in $(seq 2 "$REPS"); do
    (cd "$P" && "$BIN" run normalize_year --date "$DATE" --var "input=$DATA" --force --task normalize >>"$WORK/run.log" 2>&1) ||
        die "re-run failed: $WORK/run.log"
done
: >"$WORK/nj.s"
for i in $(seq "$REPS"); do
    run="normalize_year@$DATE"; [[ $i -gt 1 ]] && run="$run.$i"
    (cd "$P" && "$BIN" show "$run" --json) >"$WORK/show$i.json"
    "$PYTHON" - "$WORK/show$i.json" >>"$WORK/nj.s" <<'PY'
import json, sys
from datetime import datetime
t = next(t["task"] for t in json.load(open(sys.argv[1]))["tasks"] if t["task"]["task_id"] == "normalize")
p = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
print((p(t["ended_at"]) - p(t["started_at"])).total_seconds())
PY
done
INPUT=$P/.nightjar/artifacts/normalize_year/normalize_year@$DATE/clean/default.parquet
[[ -f $INPUT ]] || die "no clean artifact at $INPUT"
: >"$WORK/pd.s"; : >"$WORK/pd_split.s"
for i in $(seq "$REPS"); do
    say "pandas split $i/$REPS"
    mkdir -p "$WORK/pd$i"
    "$PYTHON" "$ROOT/benches/normalize_pandas.py" "$INPUT" "$WORK/pd$i" >"$WORK/pd$i.json"
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/pd$i.json" >>"$WORK/pd.s"
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["split_seconds"])' "$WORK/pd$i.json" >>"$WORK/pd_split.s"
done
COUNTS=$("$PYTHON" - "$WORK/show1.json" "$WORK/pd1.json" <<'PY'
import json, sys
t = next(t["task"] for t in json.load(open(sys.argv[1]))["tasks"] if t["task"]["task_id"] == "normalize")
m = t["metrics"]; pd = json.load(open(sys.argv[2]))
rows = []
ok = True
for name in ["customers", "products", "invoices", "invoice_lines"]:
    n = m["extra"]["entities"][name]["rows"]
    ok &= n == pd[name]
    rows.append("| %s | %d | %d |" % (name, n, pd[name]))
v = m["extra"]["violations"]["products"]
ok &= v["keys"] == pd["products_violating_keys"]
rows.append("| StockCode -> Description: violating keys (rows) | %d (%d rows, %d overridden) | %d |" % (v["keys"], v["rows"], v["rows_overridden"], pd["products_violating_keys"]))
print(("same" if ok else "DIFFERENT") + "\n" + "\n".join(rows))
PY
)
[[ $COUNTS == same* ]] || die "tables differ: $COUNTS"

INFER=$(median <"$WORK/infer.s"); DESB=$(median <"$WORK/desb.s")
NJ=$(median <"$WORK/nj.s"); PD=$(median <"$WORK/pd.s"); PD_SPLIT=$(median <"$WORK/pd_split.s")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
cat <<TABLE

Normalize benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average at start $LOAD_START, median of $REPS
| what | nightjar | baseline | ratio | target |
| --- | --- | --- | --- | --- |
| FD discovery, Online Retail year CSV (541,909 x 8), read + discover | ${INFER} s | desbordante HyFD ${DESB} s | $(ratio "$INFER" "$DESB")x its time | <= 2x |
| normalize step, year (Parquet in, 4 tables out) | ${NJ} s | pandas read_parquet + drop_duplicates + merge + to_parquet ${PD} s | $(ratio "$PD" "$NJ")x faster | >= 10x |
| (the same, pandas without its read_parquet) | ${NJ} s | ${PD_SPLIT} s | $(ratio "$PD_SPLIT" "$NJ")x faster | - |

Same FD set as desbordante: $SAME_FDS
| table | nightjar | pandas |
| --- | --- | --- |
$(echo "$COUNTS" | tail -n +2)
TABLE

# One-line figures for benches/all.sh.
echo "summary: FD discovery, year, read + discover (s) | $INFER | $DESB (desbordante) | $(ratio "$INFER" "$DESB")x its time | <= 2x, same FDs ($SAME_FDS) | $(awk -v a="$INFER" -v b="$DESB" 'BEGIN {print (a / b <= 2) ? "yes" : "NO"}')"
echo "summary: normalize step, year (s) | $NJ | $PD (pandas) | $(ratio "$PD" "$NJ")x faster | >= 10x | $(awk -v a="$PD" -v b="$NJ" 'BEGIN {print (a / b >= 10) ? "yes" : "NO"}')"
echo "summary: normalize step, year, pandas timed without its read (s) | $NJ | $PD_SPLIT (pandas) | $(ratio "$PD_SPLIT" "$NJ")x faster | - | -"
