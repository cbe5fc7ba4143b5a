#!/usr/bin/env bash
# PII benchmark (docs/benchmarks.md, "PII"): pseudonymize CustomerID + mask
# InvoiceNo + redact_text Description over the whole Online Retail year, in
# nightjar (benches/pii.rs, release, one thread) and in pandas
# (benches/pii_pandas.py: hmac/hashlib + re with the same validators), one
# after the other in this invocation; prints both and the ratios.
#
#   bash benches/pii.sh [BY_DAY_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-${NIGHTJAR_RETAIL_DIR:-$ROOT/../shared/data/online-retail/by-day}}
PY=${PYTHON:-python3}
cd "$ROOT"
rust=$(cargo bench --quiet --bench pii -- "$DIR")
# Unset OpenBLAS overrides for this process only (they slow a current numpy).
py=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" benches/pii_pandas.py "$DIR")
get() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
if [ "$(get "$rust" first_pseudonym)" != "$(get "$py" first_pseudonym)" ] || [ "$(get "$rust" redact_spans)" != "$(get "$py" redact_spans)" ]; then
  echo "nightjar and pandas disagree:"; echo "$rust"; echo "$py"; exit 1
fi
printf '%-28s %12s %12s %8s\n' measure nightjar pandas ratio
for k in pseudonymize_s mask_s redact_text_s; do
  r=$(get "$rust" $k); p=$(get "$py" $k)
  printf '%-28s %12s %12s %7.1fx\n' "$k" "$r" "$p" "$(echo "$p / $r" | bc -l)"
done
for k in column_actions_mb_s all_three_mb_s; do
  r=$(get "$rust" $k); p=$(get "$py" $k)
  printf '%-28s %12s %12s %7.1fx\n' "$k" "$r" "$p" "$(echo "$r / $p" | bc -l)"
done
printf '%-28s %12s\n' pseudonymize_no_memo_s "$(get "$rust" pseudonymize_no_memo_s)"
echo "input: $(get "$rust" input_mb) MB, $(get "$rust" rows) rows; same first pseudonym and span count on both sides"

# One-line figures for benches/all.sh.
r=$(get "$rust" column_actions_mb_s); p=$(get "$py" column_actions_mb_s)
echo "summary: pseudonymize + mask, one core (MB/s) | $r | $p (pandas) | $(printf '%.1f' "$(echo "$r / $p" | bc -l)")x | >= 100 MB/s, >= 10x | $(awk -v r="$r" -v p="$p" 'BEGIN {print (r >= 100 && r / p >= 10) ? "yes" : "NO"}')"
r=$(get "$rust" all_three_mb_s); p=$(get "$py" all_three_mb_s)
echo "summary: + redact_text Description (MB/s) | $r | $p (pandas) | $(printf '%.1f' "$(echo "$r / $p" | bc -l)")x | >= 10x | $(awk -v r="$r" -v p="$p" 'BEGIN {print (r / p >= 10) ? "yes" : "NO"}')"
