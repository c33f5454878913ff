#!/usr/bin/env bats
# pipelines/explore.mk: every tool in one Make-driven exploration (sample, train, calibrate pruning,
# simulate, score, front), on the committed task subset; make reruns only what changed, and a
# failing stage leaves no file behind.

load helper
bats_require_minimum_version 1.5.0

export TC_DATA="$top/tests/data/task"
# accelerators for the smallest model of the tiny space, so each training is quick
mk() {
	echo '{"model":{"l":2,"o":[["sa_sdp_32","l_dft_32"],["c_5_32","sa_wma_32"]],"h":[64,64],"f":[[128],[128]]}}' > tiny.json
	make -s -f "$top/pipelines/explore.mk" N=3 PRESET=tiny.json TRAIN='--steps 20 --vocab-size 300 --batch 8 --seq 32' \
		CALIBRATE='--batches 1' OUT=ex "$@"
}

@test "explore.mk: each stage a file of every pair, the front of the scored ones" {
	run -0 mk -j2
	for f in pairs trained pruned simulated scored; do
		[ "$(wc -l < ex/$f.jsonl)" -eq 3 ] || fail "ex/$f.jsonl: $(wc -l < ex/$f.jsonl) records"
	done
	[ -s ex/front.png ] && [ "$(wc -l < ex/front.jsonl)" -ge 1 ]
	jq -se 'all(.[]; .train.checkpoint != null and .prune.rule == "target"
		and .sim.sparsity.from.activation == "prune" and .score.feasible != null)' ex/scored.jsonl >/dev/null
	# the same ids through every stage, in order
	assert_equal "$(jq -r .id ex/pairs.jsonl)" "$(jq -r .id ex/scored.jsonl)"
}

@test "explore.mk: nothing to redo after a run; a changed stage reruns only what follows it" {
	run -0 mk -j2
	run -0 mk -q
	touch ex/pruned.jsonl
	run -0 mk -n
	[[ "$output" == *tc-sim* && "$output" == *tc-score* && "$output" == *tc-pareto* ]] || fail "$output"
	[[ "$output" != *tc-train* && "$output" != *tc-prune* ]] || fail "$output"
}

@test "explore.mk: a failing stage fails make and leaves no file of it" {
	run -0 mk ex/pairs.jsonl
	run -2 mk TASK=tsv:nosuch.tsv
	[ ! -e ex/trained.jsonl ] && [ ! -e ex/trained.jsonl.tmp ]
	[ -s ex/pairs.jsonl ]
}
