#!/bin/bash
# bench/sim.sh: the simulator's figures (issue: ELECTOR), each with its reference in the same run.
#   1. cycle fidelity, BERT-Tiny on AccelTran-Edge, inference, batch 4 x 128: wall time, cycles and
#      energy beside the released Python simulator's (anchors.md: 440 s, 79,324 cycles, 1.43 mJ);
#   2. fast against cycle fidelity over 500 random pairs (tiny model space x accelerator space),
#      both modes: median and 95th percentile of the relative error in latency and energy, and
#      the time per record of each fidelity;
#   3. fast throughput through a JSON pipe, and inside --sweep;
#   4. --sweep over all 7,425,000 GeLU accelerators for BERT-Tiny in training mode.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export TC_SHARE="$top/share"
export PATH="$top/$BUILD/bin:$PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
secs() { echo "$1 $2" | awk '{printf "%.3f", $2 - $1}'; }

echo "1. cycle fidelity, BERT-Tiny on AccelTran-Edge, inference, batch 4 x 128"
tc-sample --preset bert-tiny --preset acceltran-edge > "$tmp/ref.jsonl"
best=999
for i in 1 2 3 4 5; do
	t0=$(now); tc-sim --fidelity cycle "$tmp/ref.jsonl" > "$tmp/ref.out"; t1=$(now)
	best=$(echo "$best $(secs "$t0" "$t1")" | awk '{print ($2 < $1 ? $2 : $1)}')
done
jq -r --arg t "$best" '.sim | "   tc-sim: \($t) s (best of 5) for \(.tiles) tiles: \(.cycles) cycles (\(.latency_s * 1e3) ms), \(.energy_j * 1e3) mJ (dynamic \([.energy_breakdown_j.dynamic[]] | add * 1e3), leakage \([.energy_breakdown_j.leakage[]] | add * 1e3))"' "$tmp/ref.out"
echo "   released Python simulator (anchors.md): 440 s for 62,005 tiled ops: 79,324 cycles, 1.247 + 0.179 = 1.426 mJ"
echo "   speed-up: $(echo "$best" | awk '{printf "%.0f", 440 / $1}')x"

echo "2. fast against cycle, 500 random pairs (tiny model space x AccelTran space)"
tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 500 --seed 11 > "$tmp/pairs.jsonl"
for mode in inference training; do
	t0=$(now); tc-sim --mode $mode --threads 1 "$tmp/pairs.jsonl" > "$tmp/fast.jsonl"; t1=$(now)
	tc-sim --mode $mode --fidelity cycle --threads 1 "$tmp/pairs.jsonl" > "$tmp/cycle.jsonl"; t2=$(now)
	paste -d' ' <(jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' "$tmp/fast.jsonl") \
		<(jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' "$tmp/cycle.jsonl") |
		awk '$1 > 0 {l = ($1 - $3) / $3; e = ($2 - $4) / $4; print (l < 0 ? -l : l), (e < 0 ? -e : e)}' > "$tmp/err"
	n=$(wc -l < "$tmp/err")
	lat=$(sort -g -k1 "$tmp/err" | awk '{a[NR] = $1} END {printf "median %.2f%%, p95 %.2f%%, max %.2f%%", 100 * a[int((NR + 1) / 2)], 100 * a[int(NR * 0.95 + 0.5)], 100 * a[NR]}')
	en=$(sort -g -k2 "$tmp/err" | awk '{a[NR] = $2} END {printf "median %.2f%%, p95 %.2f%%, max %.2f%%", 100 * a[int((NR + 1) / 2)], 100 * a[int(NR * 0.95 + 0.5)], 100 * a[NR]}')
	echo "   $mode, $n feasible pairs: latency error $lat; energy error $en"
	echo "   $mode, time per record on one thread: fast $(echo "$t0 $t1" | awk '{printf "%.2f", ($2 - $1) / 500 * 1e3}') ms, cycle $(echo "$t1 $t2" | awk '{printf "%.1f", ($2 - $1) / 500 * 1e3}') ms ($(echo "$t0 $t1 $t2" | awk '{printf "%.0f", ($3 - $2) / ($2 - $1)}')x)"
done

echo "3. fast throughput"
tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 20000 --seed 12 > "$tmp/many.jsonl"
for mode in inference training; do
	for th in 1 2; do
		for out in full brief; do
			flag=; [ $out = brief ] && flag=--brief
			t0=$(now); tc-sim --mode $mode --threads $th $flag "$tmp/many.jsonl" | cat > /dev/null; t1=$(now)
			echo "   JSON pipe, $mode, $th thread(s), $out sim: $(echo "$t0 $t1" | awk '{printf "%.0f", 20000 / ($2 - $1)}') records/s"
		done
	done
done
t0=$(now); jq -c . "$tmp/many.jsonl" > /dev/null; t1=$(now)
echo "   reference: jq -c . on the same records: $(echo "$t0 $t1" | awk '{printf "%.0f", 20000 / ($2 - $1)}') records/s"

echo "4. --sweep, BERT-Tiny, all 7,425,000 GeLU accelerators"
tc-sample --preset bert-tiny > "$tmp/tiny.jsonl"
for mode in training inference; do
	for th in 1 2; do
		t0=$(now)
		tc-sim --sweep --mode $mode --threads $th --space-file "$TC_SHARE/space/acceltran-gelu.json" "$tmp/tiny.jsonl" > "$tmp/front.jsonl"
		t1=$(now)
		s=$(secs "$t0" "$t1")
		echo "   $mode, $th thread(s): $s s, $(echo "$s $th" | awk '{printf "%.0f", 7425000 / $1 / $2}') evaluations/s per core, $(wc -l < "$tmp/front.jsonl") on the Pareto front"
	done
done
