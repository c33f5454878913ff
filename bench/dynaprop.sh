#!/bin/bash
# bench/dynaprop.sh: DynaProp's figures (issue: DynaProp), each against dense training in the same run.
# Needs the data: make data.
#   1. step time and peak memory: BERT-Tiny (tc-sample --preset bert-tiny, the shape of bench/train.sh:
#      vocabulary 8192, B = 32, up to T = 128) on wordnet-lex, dense against --dynaprop at its default
#      operating point (about 50% of activations, 90% of gradients), 1 and 2 threads, STEPS1 steps
#      each, PAIRS pairs of runs and their median ratio: on 1 thread the two runs of a pair go side
#      by side at once, one on each core, so that both meet the same neighbours (one after the
#      other, single ratios moved by a tenth from run to run); on 2 threads one after the other;
#      then the floor: the same pairs with DynaProp's dense layers' backward products skipped
#      (build/bench/floor/tc-train), the least a step could take whatever the sparse kernels;
#      1b. the same on the spam corpus, whose texts fill T = 128;
#   2. accuracy at the same budget (STEPS2 steps, the settings of bench/accuracy.sh), dense against
#      --dynaprop, for each seed of SEEDS: run to run, test accuracy moves by about a point, so it
#      takes eight seeds to tell half a point (the difference's standard error is about 0.2);
#   3. the curve over a sweep of activation targets: the default's per-point targets scaled by each
#      factor of SCALES, gradient target 0.9, weight gradients unpruned as in the default: accuracy,
#      sparsity and step time (STEPS3 steps);
#   4. DynaTran against top-k at inference on the dense model of 2 (tc-prune sweep): activation
#      sparsity of each at equal test accuracy;
#   5. where the accuracy goes (ABLATION=0 skips it): each pruning point alone at activation target
#      0.5, and gradients alone at 0.9, against dense, STEPS3 steps.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export TC_SHARE="$top/share"
export PATH="$top/$BUILD/bin:$PATH"
STEPS1=${STEPS1:-300}
PAIRS=${PAIRS:-3}
STEPS2=${STEPS2:-6000}
STEPS3=${STEPS3:-3000}
SCALES=${SCALES:-0.5 0.75 1 1.2}
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8}
ABLATION=${ABLATION:-1}
ARGS="--task wordnet-lex --seq 64 --dropout 0.05 --bucket 8 --vocab-size 16384 --progress none"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$top/build/data/wordnet/data.noun" ]; then
	echo "   no data: run 'make data' first (WordNet from Debian's wordnet-base, no root needed)"
	exit 0
fi
tc-sample --preset bert-tiny > "$tmp/tiny.jsonl"
row() { jq -r '.train | "\(.step_ms) \(.peak_rss_mb) \(.test_accuracy) \(.sparsity.activation // 0) \(.sparsity.gradient // 0)"' "$1"; }
# the default's activation targets (tc-train(1), DYNAPROP) scaled by $1, each at most 0.95
scaled() { awk -v s="$1" 'BEGIN { n = split("qkv=0.7 prob=0.5 ctx=0.25 ff=0.7 out=0.25", a, " ");
	for (i = 1; i <= n; i++) { split(a[i], p, "="); t = p[2] * s; if (t > 0.95) t = 0.95; printf "--target-at %s=%.4g ", p[1], t } }'; }

# pair TASK THREADS [floor]: PAIRS dense and DynaProp runs of STEPS1 steps; prints each pair and
# the medians. With floor, DynaProp runs build/bench/floor/tc-train (make bench builds it), whose
# dense layers skip their backward products (wrong gradients, for timing only): the step time no
# kernel over the gradients' nonzeros can go below, since those products are all such kernels serve
pair() {
	local task=$1 th=$2 k dp=tc-train what=DynaProp
	if [ "${3:-}" = floor ]; then
		dp="$top/$BUILD/bench/floor/tc-train" what="DynaProp with its dense layers' backward products free:"
		[ -x "$dp" ] || { echo "   (no $dp: make bench builds it)"; return 0; }
	fi
	: > "$tmp/pairs"
	for k in $(seq "$PAIRS"); do
		if [ "$th" = 1 ]; then
			tc-train --task "$task" --seq 128 --steps "$STEPS1" --threads 1 --no-checkpoint -q "$tmp/tiny.jsonl" > "$tmp/d.jsonl" &
			TC_DATA="$top/build/data" "$dp" --task "$task" --seq 128 --steps "$STEPS1" --threads 1 --no-checkpoint -q --dynaprop "$tmp/tiny.jsonl" > "$tmp/p.jsonl" &
			wait
		else
			tc-train --task "$task" --seq 128 --steps "$STEPS1" --threads "$th" --no-checkpoint -q "$tmp/tiny.jsonl" > "$tmp/d.jsonl"
			TC_DATA="$top/build/data" "$dp" --task "$task" --seq 128 --steps "$STEPS1" --threads "$th" --no-checkpoint -q --dynaprop "$tmp/tiny.jsonl" > "$tmp/p.jsonl"
		fi
		read -r dms dmb _ <<< "$(row "$tmp/d.jsonl")"
		read -r pms pmb _ pact pgrad _ <<< "$(row "$tmp/p.jsonl")"
		echo "$dms $dmb $pms $pmb $pact $pgrad" >> "$tmp/pairs"
		echo "   $task, $th thread(s), pair $k$([ "$th" = 1 ] && echo " (side by side)"): dense $dms ms/step, $dmb MB; $what $pms ms/step, $pmb MB (activation sparsity $pact, gradient $pgrad): $(echo "$pms $dms" | awk '{printf "%.2f", $1 / $2}')x"
	done
	awk -v task="$task" -v th="$th" -v floor="${3:-}" '{ t[NR] = $3 / $1; m[NR] = $4 / $2 }
		function median(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
		END { if (floor != "") printf "   %s, %d thread(s): the floor, median %.2fx dense: the step if the kernels over the nonzeros cost nothing (target <= 0.67), over %d pairs\n", task, th, median(t, NR), NR
			else printf "   %s, %d thread(s): median step time %.2fx dense (target <= 0.67), median peak memory %.2fx dense (target <= 0.7), over %d pairs\n", task, th, median(t, NR), median(m, NR), NR }' "$tmp/pairs"
}

echo "1. step time and peak memory, BERT-Tiny, wordnet-lex, --seq 128, $STEPS1 steps, $PAIRS pairs"
pair wordnet-lex 1
pair wordnet-lex 2
pair wordnet-lex 1 floor
pair wordnet-lex 2 floor

# the same on texts long enough to fill T = 128 (the spam corpus, also from make data): the products
# grow with T, the optimizer's pass does not
if [ -d "$top/build/data/spam" ]; then
	echo "1b. the same with full batches (B = 32, T = 128: the spam corpus), $STEPS1 steps, $PAIRS pairs"
	pair spam 1
	pair spam 2
fi

echo "2. accuracy, same budget: $STEPS2 steps, 2 threads ($ARGS), seeds $SEEDS"
for seed in $SEEDS; do
	ck=--no-checkpoint
	[ "$seed" = "${SEEDS%% *}" ] && ck="--checkpoint $tmp/dense.safetensors" # for 4
	tc-train $ARGS --seed "$seed" --steps "$STEPS2" --threads 2 $ck "$tmp/tiny.jsonl" > "$tmp/acc_d$seed.jsonl"
	tc-train $ARGS --seed "$seed" --steps "$STEPS2" --threads 2 --no-checkpoint --dynaprop "$tmp/tiny.jsonl" > "$tmp/acc_p$seed.jsonl"
	read -r dms _ dacc _ <<< "$(row "$tmp/acc_d$seed.jsonl")"
	read -r pms _ pacc pact pgrad <<< "$(row "$tmp/acc_p$seed.jsonl")"
	echo "   seed $seed: dense $dacc ($dms ms/step); DynaProp $pacc ($pms ms/step, activation sparsity $pact, gradient $pgrad): $(echo "$pacc $dacc" | awk '{printf "%+.2f", 100 * ($1 - $2)}') points"
	echo "$dacc $pacc $pact $pgrad" >> "$tmp/acc.txt"
done
awk '{ d += $1; p += $2; a += $3; g += $4; x = 100 * ($2 - $1); s += x; ss += x * x; n++ }
	END { m = s / n; se = n > 1 ? sqrt((ss - n * m * m) / (n - 1) / n) : 0;
	printf "   mean over %d seeds: dense %.2f%%, DynaProp %.2f%% at %.1f%% activation and %.1f%% gradient sparsity: %+.2f points, standard error %.2f (target: within 0.5)\n", n, 100 * d / n, 100 * p / n, 100 * a / n, 100 * g / n, m, se }' "$tmp/acc.txt"

echo "3. the curve over activation targets (the default's scaled; gradient target 0.9, weight gradients unpruned), $STEPS3 steps, 2 threads"
tc-train $ARGS --steps "$STEPS3" --threads 2 --no-checkpoint "$tmp/tiny.jsonl" > "$tmp/c_dense.jsonl"
read -r dms _ dacc _ <<< "$(row "$tmp/c_dense.jsonl")"
echo "   dense: test accuracy $dacc, $dms ms/step"
for s in $SCALES; do
	tc-train $ARGS --steps "$STEPS3" --threads 2 --no-checkpoint $(scaled "$s") --target-grad 0.9 --tau-weight 0 "$tmp/tiny.jsonl" > "$tmp/c_$s.jsonl"
	read -r ms _ acc act grad <<< "$(row "$tmp/c_$s.jsonl")"
	echo "   scale $s ($(scaled "$s")): activation sparsity $act, gradient $grad: test accuracy $acc ($(echo "$acc $dacc" | awk '{printf "%+.2f", 100 * ($1 - $2)}') points), $ms ms/step ($(echo "$ms $dms" | awk '{printf "%.2f", $1 / $2}')x dense)"
done

echo "4. DynaTran against top-k at inference, the dense model of 2 (tc-prune sweep)"
tc-prune sweep --checkpoint "$tmp/dense.safetensors" --taus 0,0.005,0.01,0.02,0.03,0.05,0.075,0.1,0.15,0.2,0.3 \
	--top-k 64,32,16,8,4,2,1 > "$tmp/sweep.jsonl"
jq -r '.prune | "   \(.rule) \(.tau // .k): activation sparsity \(.sparsity.activation), test accuracy \(.test_accuracy)"' "$tmp/sweep.jsonl"
# at each top-k point that prunes anything, DynaTran's sparsity at the same accuracy (linear between
# its points, taken in order of sparsity, on the part of its curve at or above that accuracy)
jq -rs '
	(map(select(.prune.rule == "tau")) | map([.prune.sparsity.activation, .prune.test_accuracy]) | sort) as $d
	| map(select(.prune.rule == "top-k" and .prune.sparsity.activation > $d[0][0] + 0.001))[] | .prune as $t
	| [range(0; ($d | length) - 1) | [$d[.], $d[. + 1]]
	   | select(.[0][1] >= $t.test_accuracy and .[1][1] <= $t.test_accuracy and .[0][1] > .[1][1])
	   | .[0][0] + (.[1][0] - .[0][0]) * (.[0][1] - $t.test_accuracy) / (.[0][1] - .[1][1])] as $x
	| if ($x | length) > 0 then
		"   top-k \($t.k): sparsity \($t.sparsity.activation) at accuracy \($t.test_accuracy); DynaTran \($x | max) at the same accuracy: \(($x | max) / $t.sparsity.activation * 100 | round / 100)x"
	  else "   top-k \($t.k): sparsity \($t.sparsity.activation) at accuracy \($t.test_accuracy); DynaTran stays above that accuracy over the thresholds swept" end' "$tmp/sweep.jsonl"
echo "   anchors: the paper reports DynaTran reaching 1.23x the activation sparsity of top-k (BERT-Base, SST-2)"

[ "$ABLATION" = 1 ] || exit 0
echo "5. where the accuracy goes: each pruning point alone at activation target 0.5, gradients alone at 0.9 ($STEPS3 steps, 2 threads; dense $dacc)"
for p in qkv score prob ctx ff out grad; do
	if [ "$p" = grad ]; then set -- --target-grad 0.9; else set -- --target-at "$p=0.5"; fi
	tc-train $ARGS --steps "$STEPS3" --threads 2 --no-checkpoint "$@" "$tmp/tiny.jsonl" > "$tmp/a_$p.jsonl"
	read -r _ _ acc act grad <<< "$(row "$tmp/a_$p.jsonl")"
	echo "   $p: test accuracy $acc ($(echo "$acc $dacc" | awk '{printf "%+.2f", 100 * ($1 - $2)}') points), activation sparsity $act ($(jq -r --arg p "$p" '.train.sparsity.points[$p].activation // "-"' "$tmp/a_$p.jsonl") at the point), gradient $grad"
done
