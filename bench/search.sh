#!/bin/bash
# bench/search.sh: search efficiency of tc-sample's proposal methods. Accelerator search for
# BERT-Tiny in training mode on the GeLU accelerator space (7,425,000 points), objectives latency,
# energy and area, 5 seeds: the hypervolume of the evaluated set against the number of
# evaluations for boshcode, nsga2 and random. Every method starts the same way (its first
# proposals) and is run by the same loop: propose, simulate, append.
#
# Hypervolume is taken on log10 of each objective (they span orders of magnitude), with one
# reference point for every run: the largest value seen in any run plus 10% of the range. It is
# printed as a fraction of the hypervolume of everything every run evaluated (the best front known).
#
#   SEEDS="1 2 3 4 5" BO_BUDGET=50 BUDGET=200 bash bench/search.sh
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
export TC_SHARE="$top/share"
bin="$top/$BUILD/bin"
SEEDS=${SEEDS:-1 2 3 4 5}
BUDGET=${BUDGET:-200}       # random and nsga2
BO_BUDGET=${BO_BUDGET:-50}  # boshcode
tmp=${KEEP:-$(mktemp -d)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
space="$top/share/space/acceltran-gelu.json"
obj=sim.latency_s,sim.energy_j,sim.area_mm2

# run METHOD SEED BUDGET BATCH: the history of one search in $tmp/METHOD-SEED.jsonl
run() {
	local h="$tmp/$1-$2.jsonl" n=0 k
	: > "$h"
	while [ "$n" -lt "$3" ]; do
		k=$4
		[ $((n + k)) -le "$3" ] || k=$(($3 - n))
		"$bin/tc-sample" --propose "$1" --history "$h" -n "$k" --seed "$2" --preset bert-tiny \
			--space-file "$space" --objectives "$obj" 2>/dev/null |
			"$bin/tc-sim" --mode training --brief >> "$h"
		n=$(wc -l < "$h")
	done
}

logs() { jq -c 'select(.sim.feasible) | {id, l: {lat: (.sim.latency_s | log10), en: (.sim.energy_j | log10), ar: (.sim.area_mm2 | log10)}}'; }

for s in $SEEDS; do
	t0=$(date +%s.%N)
	run random "$s" "$BUDGET" 20
	t1=$(date +%s.%N)
	run nsga2 "$s" "$BUDGET" 8
	t2=$(date +%s.%N)
	run boshcode "$s" "$BO_BUDGET" 4
	t3=$(date +%s.%N)
	echo "seed $s: random $(echo "$t0 $t1" | awk '{printf "%.0f", $2 - $1}') s, nsga2 $(echo "$t1 $t2" | awk '{printf "%.0f", $2 - $1}') s, boshcode $(echo "$t2 $t3" | awk '{printf "%.0f", $2 - $1}') s" >&2
done

cat "$tmp"/*-*.jsonl | logs > "$tmp/all.log"
ref=$(jq -rs '[.[].l] as $v | ["lat", "en", "ar"] | map(. as $k | ($v | map(.[$k])) as $c | ($c | max) + 0.1 * (($c | max) - ($c | min))) | map(tostring) | join(",")' "$tmp/all.log")
lobj=l.lat,l.en,l.ar
hv() { "$bin/tc-pareto" --objectives "$lobj" --hypervolume --ref "$ref" --summary "$tmp/sum.json" -o /dev/null "$@" && jq .hypervolume "$tmp/sum.json"; }
best=$(hv "$tmp/all.log")
echo "hypervolume on log10(latency s, energy J, area mm2), reference ($ref); 1.0 = all runs' union: $best"

# hypervolume fraction of the first N evaluations of a run
frac() { head -n "$3" "$tmp/$1-$2.jsonl" | logs > "$tmp/part.log"; echo "$(hv "$tmp/part.log") $best" | awk '{printf "%.4f", $1 / $2}'; }

printf '%-10s' evaluations
for n in 10 20 30 40 50 75 100 150 200; do printf ' %7d' $n; done
echo
for m in random nsga2 boshcode; do
	printf '%-10s' "$m"
	for n in 10 20 30 40 50 75 100 150 200; do
		lim=$BUDGET
		[ "$m" != boshcode ] || lim=$BO_BUDGET
		if [ "$n" -gt "$lim" ]; then printf ' %7s' -; continue; fi
		sum=0
		for s in $SEEDS; do sum=$(echo "$sum $(frac "$m" "$s" "$n")" | awk '{print $1 + $2}'); done
		printf ' %7.4f' "$(echo "$sum $(echo $SEEDS | wc -w)" | awk '{print $1 / $2}')"
	done
	echo
done
echo "per seed: boshcode at $BO_BUDGET evaluations against random at $BUDGET"
wins=0
for s in $SEEDS; do
	b=$(frac boshcode "$s" "$BO_BUDGET")
	r=$(frac random "$s" "$BUDGET")
	n=$(frac nsga2 "$s" "$BUDGET")
	w=$(echo "$b $r" | awk '{print ($1 >= $2)}')
	wins=$((wins + w))
	echo "  seed $s: boshcode@$BO_BUDGET $b, random@$BUDGET $r, nsga2@$BUDGET $n$([ "$w" = 1 ] && echo "  (reached)")"
done
echo "boshcode reached random's $BUDGET-evaluation hypervolume within $BO_BUDGET evaluations on $wins of $(echo $SEEDS | wc -w) seeds"
