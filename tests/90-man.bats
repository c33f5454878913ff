#!/usr/bin/env bats
# Documentation that runs: every example block of every man page (an .EX block whose first line is
# a "$ " command) is run as a shell script, in an empty directory holding a tensor stream and file
# for the tc-tensor(5) examples, and must succeed.

load helper
bats_require_minimum_version 1.5.0

# examples PAGE: the runnable example blocks of a man page as one script, roff escapes undone.
examples() {
	awk '
		/^\.EX/ { inblock = 1; first = 1; next }
		/^\.EE/ { if (inblock && run) print "# end of block"; inblock = 0; run = 0; next }
		inblock && first { first = 0; run = /^\$ / }
		inblock && run { sub(/^\$ /, ""); print }
	' "$1" | sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\(ti/~/g' -e 's/\\(ha/^/g' \
		-e 's/\\&//g' -e 's/\\e/\\/g'
}

run_examples() {
	tensor_tool make-stream run.tcs 3
	tensor_tool make w.safetensors
	examples "$top/man/$1" > examples.sh
	[ -s examples.sh ] || fail "no runnable examples in $1"
	run -0 bash -e examples.sh
}

@test "transcode(7) examples run" {
	run_examples transcode.7
}

@test "tc-records(5) examples run" {
	run_examples tc-records.5
}

@test "tc-tensor(5) examples run" {
	run_examples tc-tensor.5
	[ -f frame2.safetensors ] && [ ! -f frame3.safetensors ]
}

@test "tc-sample(1) examples run" {
	run_examples tc-sample.1
	[ "$(wc -l < tiny-on-100.jsonl)" -eq 100 ]
}

@test "tc-pareto(1) examples run" {
	run_examples tc-pareto.1
	[ -s front.jsonl ] && [ -s front.png ] && jq -e .hypervolume hv.json >/dev/null
}

@test "every man page renders without warnings" {
	for m in "$top"/man/*.[157]; do
		run -0 --separate-stderr groff -man -ww -z "$m"
		[ -z "$stderr" ] || fail "$m: $stderr"
	done
}

@test "tc-sim(1) examples run" {
	run_examples tc-sim.1
	[ -s trace.jsonl ] && [ -s util.png ] && [ "$(wc -l < front.jsonl)" -ge 1 ]
}

@test "tc-prune(1) examples run" {
	export TC_DATA="$top/tests/data/task"
	run_examples tc-prune.1
	[ "$(wc -l < sweep.jsonl)" -eq 5 ]
	[ -s pruned.tcs ] && [ -s report.jsonl ] && [ -s top2.tcs ]
}

@test "tc-train(1) examples run" {
	export TC_DATA="$top/tests/data/task"
	run_examples tc-train.1
	jq -e '.train.steps == 20 and .train.checkpoint == null' trained.jsonl >/dev/null
	m='.train | del(.tokens_per_s, .step_ms, .wall_s, .peak_rss_mb, .curve[].train_s, .checkpoint)'
	[ ! -s part.jsonl ]
	[ -s run.safetensors ]
	assert_equal "$(jq -c "$m" resumed.jsonl)" "$(jq -c "$m" trained.jsonl)"
	assert_equal "$(head -n 1 vocab.txt)" "[PAD]"
	assert_equal "$(wc -l < vocab.txt)" "$(jq .train.vocab pre.jsonl)"
	jq -e '.train.objective == "cls" and (.train.curve | length) == 2' fine.jsonl >/dev/null
	jq -e '.train.task == "tsv:films.tsv" and .train.labels == 2' films.jsonl >/dev/null
	[ "$(jq -r .train.checkpoint tasks.jsonl | grep -c '^ckpt/[0-9a-f]\{16\}\.safetensors$')" -eq 2 ]
	assert_equal "$(jq -r '.train | select(.baseline == "bow") | .task' bow.jsonl | tr '\n' ' ')" "tsv:films.tsv spam "
}

@test "tc-score(1) examples run" {
	run_examples tc-score.1
	[ "$(wc -l < scored.jsonl)" -eq 40 ]
	jq -e -s 'any(.[]; .score.performance == -1) and any(.[]; .score.violation > 0) and any(.[]; .score.feasible)' scored.jsonl >/dev/null
	[ -s front.jsonl ] && jq -e -s 'all(.[]; .score.feasible)' front.jsonl >/dev/null
	jq -e -s 'map(select(.score.feasible)) | length > 0 and all(.[]; .score.terms.area == 0)' released.jsonl >/dev/null
	run -1 cmp -s custom.jsonl scored.jsonl
}
