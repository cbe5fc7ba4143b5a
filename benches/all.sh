#!/usr/bin/env bash
# Every benchmark of the project, one after the other, with one release
# build, then ONE table of the headline figures (docs/benchmarks.md has the
# details of each). Not a timed test: each figure is a ratio against a
# baseline measured side by side in the same invocation, on this machine.
#
#   bash benches/all.sh                 # everything (about 15-25 min on 2 cores)
#   bash benches/all.sh pii schedule    # only these parts
#
# Parts: data_plane (issue 3), pii (4), normalize (5), extract (6),
# load_postgres (7), schedule (8), backfill_year (8, 12: the year as 374
# nightly runs vs one run), sfn (9), report (10), core (engine overhead),
# ui (11). Each part prints its own table; lines starting with
# `summary:` (figure | nightjar | baseline | ratio | target | met) are
# collected into the final table. Full outputs: target/bench/<part>.txt.
#
# Needs the services for extract, load_postgres, sfn and report
# (bash scripts/services.sh; this script starts them) and the Online Retail
# data set at ../shared/data/online-retail/by-day (NIGHTJAR_RETAIL_DIR).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/bench
mkdir -p "$OUT"

bash scripts/services.sh >&2 || { echo "all.sh: the services did not start" >&2; exit 1; }
set -a; . target/services.env; set +a
# The Python baselines (pandas scripts, desbordante for FD discovery).
python3 -m pip install -q pandas pyarrow desbordante 2>&1 | grep -vi "running pip as the .root. user" || true

echo "== building (release)" >&2
# Bins and benches together: one feature set (dev-dependencies unify
# features), so the cargo bench parts below do not rebuild everything.
cargo build --release --locked --bins --benches >&2 || exit 1
export NIGHTJAR_BIN=$ROOT/target/release/nightjar

ALL=(data_plane pii normalize extract load_postgres schedule backfill_year sfn report core ui)
PARTS=("$@")
[[ ${#PARTS[@]} -eq 0 ]] && PARTS=("${ALL[@]}")

run_part() {
    case $1 in
        data_plane) bash benches/data_plane.sh ;;
        backfill_year) bash benches/backfill_year.sh ;;
        pii) bash benches/pii.sh ;;
        normalize) bash benches/normalize.sh ;;
        extract) bash benches/extract.sh ;;
        sfn) bash benches/sfn.sh "$NIGHTJAR_BIN" ;;
        load_postgres | schedule | report | core) cargo bench --locked --bench "$1" ;;
        ui) cargo bench --locked --bench ui_grid ;;
        *) echo "unknown part $1 (one of: ${ALL[*]})" >&2; return 2 ;;
    esac
}

declare -A STATUS
for part in "${PARTS[@]}"; do
    echo "== $part ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if run_part "$part" >"$OUT/$part.txt" 2>"$OUT/$part.err"; then
        STATUS[$part]=ok
    else
        STATUS[$part]="FAILED (see $OUT/$part.err)"
    fi
    cat "$OUT/$part.txt"
done

echo
echo "# nightjar benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| part | figure | nightjar | baseline | ratio | target | met? |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for part in "${PARTS[@]}"; do
    if [[ ${STATUS[$part]} != ok ]]; then
        echo "| $part | ${STATUS[$part]} | | | | | |"
        continue
    fi
    grep '^summary:' "$OUT/$part.txt" | sed -e 's/^summary: */| '"$part"' | /' -e 's/$/ |/'
done
