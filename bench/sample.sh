#!/bin/bash
# bench/sample.sh: tc-sample --grid throughput over the whole AccelTran space (14,850,000
# records), on one thread and on two, and jq re-serialising a million of the same records as a
# reference JSON tool in the same run.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export TC_SHARE="$top/share"
bin="$top/$BUILD/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
rate() { echo "$1 $2 $3" | awk '{ printf "%.0f", $1 / ($3 - $2) }'; }

n=14850000
for t in 1 2; do
	t0=$(now)
	"$bin/tc-sample" --space accel --grid --threads $t > /dev/null
	t1=$(now)
	r=$(rate $n "$t0" "$t1")
	echo "tc-sample --grid, $t thread(s): $n records in $(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}') s, $r records/s"
	eval "rate$t=$r"
done
"$bin/tc-sample" --space accel --grid --threads 2 | head -n 1000000 > "$tmp/grid.jsonl" || true
t0=$(now)
jq -c . "$tmp/grid.jsonl" > /dev/null
t1=$(now)
rj=$(rate 1000000 "$t0" "$t1")
echo "reference: jq -c . on 1,000,000 of the same records: $rj records/s"
echo "ratio: tc-sample --grid is $(echo "$rate1 $rj" | awk '{printf "%.1f", $1 / $2}')x jq on one thread, $(echo "$rate2 $rj" | awk '{printf "%.1f", $1 / $2}')x on two"
