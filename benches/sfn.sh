#!/usr/bin/env bash
# Step Functions dispatch: compile time and definition size of 1,000-task
# DAGs, and the end-to-end overhead per task of a run through Step Functions
# on moto (SQS task tokens, `nightjar worker` processes, S3 artifacts)
# against the local dispatcher, side by side, on the same DAG.
#
#   bash benches/sfn.sh [BINARY]        (default: target/release/nightjar, else target/debug/nightjar)
#
# Needs the moto server at $NIGHTJAR_TEST_AWS (moto >= 5.2.5; see
# scripts/services.sh) and python3 with boto3 (moto's dependency) to create
# the bucket and queue.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
if [ -z "$BIN" ]; then
    if [ -x target/release/nightjar ]; then BIN=target/release/nightjar; else BIN=target/debug/nightjar; fi
fi
BIN=$(realpath "$BIN")
ENDPOINT=${NIGHTJAR_TEST_AWS:?set NIGHTJAR_TEST_AWS to the moto endpoint (bash scripts/services.sh; set -a; . target/services.env)}
TASKS=${SFN_BENCH_TASKS:-24}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# --- compile: 1,000 tasks ------------------------------------------------------
gen() { # gen NAME SHAPE N
    python3 - "$1" "$2" "$3" >"$WORK/c/dags/$1.toml" <<'EOF'
import random, sys
name, shape, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print(f'name = "{name}"\n[defaults]\nretries = 2\nretry_delay = "30s"\ntimeout = "20m"')
rng = random.Random(7)
for i in range(n):
    if shape == "layered":      # 1-3 needs in the layer before: not series-parallel
        w = 25; layer = i // w
        needs = sorted({f"t{(layer-1)*w + rng.randrange(w)}" for _ in range(rng.randint(1, 3))}) if layer else []
    else:                       # 40 parallel chains of 25 between a source and a sink
        if i == 0: needs = []
        elif i == n - 1: needs = [f"t{j}" for j in range(1, n - 1) if j % 25 == 0 or j == n - 2]
        else: needs = ["t0"] if (i - 1) % 25 == 0 else [f"t{i-1}"]
    print(f'[[task]]\nid = "t{i}"\nkind = "noop"\nneeds = {needs!r}'.replace("'", '"'))
EOF
}
mkdir -p "$WORK/c/dags"
gen layered layered 1000
gen chains chains 1000
compile_row() {
    local err
    err=$( { /usr/bin/time -f "%e" "$BIN" --project "$WORK/c" sfn compile "$1" >/dev/null; } 2>&1 )
    local bytes ms lost
    bytes=$(grep -o '[0-9]* bytes' <<<"$err" | head -1 | cut -d' ' -f1)
    ms=$(grep -o 'compiled in [0-9.]* ms' <<<"$err" | grep -o '[0-9.]*')
    lost=$(grep -o '[0-9]* task(s) lost' <<<"$err" | cut -d' ' -f1 || true)
    [ -n "$bytes" ] || { echo "compile failed: $err" >&2; return 1; }
    printf "| %-28s | %8s | %10s | %7s | %6s |\n" "$1 (1,000 tasks)" "$ms" "$bytes" "$(python3 -c "print(f'{$bytes/1048576*100:.1f}%')")" "${lost:-0}"
}

echo "binary: $BIN"
echo
echo "| DAG                          | compile ms | bytes | of 1 MB | tasks that lost concurrency |"
echo "| --- | ---: | ---: | ---: | ---: |"
compile_row chains
compile_row layered

# --- end to end: moto vs local ---------------------------------------------------
read -r BUCKET QUEUE < <(python3 - "$ENDPOINT" <<'EOF'
import boto3, sys, time, json, urllib.request
e = sys.argv[1]
urllib.request.urlopen(urllib.request.Request(e + "/moto-api/config", method="POST",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    headers={"Content-Type": "application/json"}))
kw = dict(endpoint_url=e, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
tag = f"nj-bench-{int(time.time()*1000)}"
boto3.client("s3", **kw).create_bucket(Bucket=tag)
print(tag, boto3.client("sqs", **kw).create_queue(QueueName=tag)["QueueUrl"])
EOF
)
P="$WORK/e"
mkdir -p "$P/dags"
cat >"$P/nightjar.toml" <<EOF
default_env = "local"
[env.local]
[env.aws]
dispatch = "stepfunctions"
artifacts = "s3://$BUCKET/art/"
sfn = { resource = "sqs", queue = "$QUEUE", role_arn = "arn:aws:iam::123456789012:role/nightjar", name_prefix = "$BUCKET-", region = "us-east-1", endpoint_url = "$ENDPOINT", poll = "200ms" }
EOF
python3 - "$TASKS" >"$P/dags/bench.toml" <<'EOF'
import sys
n = int(sys.argv[1])
print('name = "bench"')
# A source, n-2 independent middle tasks, a sink: 4 levels of work, each a noop.
for i in range(n):
    needs = [] if i == 0 else (["t0"] if i < n - 1 else [f"t{j}" for j in range(1, n - 1)])
    print(f'[[task]]\nid = "t{i}"\nkind = "noop"\nneeds = {needs!r}'.replace("'", '"'))
EOF
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
for w in 1 2 3 4; do
    (cd "$P" && exec "$BIN" worker --queue "$QUEUE" --env aws --concurrency 4 2>/dev/null) &
done
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.2f}')"; }
LOCAL=$(cd "$P" && secs "$BIN" run bench --date 2010-12-01 --env local)
SFN=$(cd "$P" && secs "$BIN" run bench --date 2010-12-02 --env aws)
echo
echo "| $TASKS noop tasks (source, $((TASKS-2)) parallel, sink) | wall s | per task ms | overhead per task vs local (ms) |"
echo "| --- | ---: | ---: | ---: |"
python3 - "$TASKS" "$LOCAL" "$SFN" <<'EOF'
import sys
n, local, sfn = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"| local dispatcher | {local:.2f} | {local/n*1000:.0f} | - |")
print(f"| Step Functions on moto (4 workers x 4) | {sfn:.2f} | {sfn/n*1000:.0f} | {(sfn-local)/n*1000:.0f} |")
print(f"| ratio Step Functions / local | {sfn/local:.1f}x | | |")
EOF

# One-line figures for benches/all.sh.
python3 - "$TASKS" "$LOCAL" "$SFN" <<'EOF2'
import sys
n, local, sfn = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"summary: {n} noop tasks, Step Functions on moto vs local dispatcher (s) | {sfn:.2f} | {local:.2f} (local) | {sfn/local:.1f}x | - | -")
EOF2
