#!/usr/bin/env bats
# tc-train: training on the committed task fixtures (tests/data/task), learning tasks that need
# attention and positions, determinism, exact resumption, checkpoints, NaN, objectives, baselines,
# and bad input.

load helper
bats_require_minimum_version 1.5.0

export TC_DATA="$top/tests/data/task"
export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/cache"

# the measured fields, which vary from run to run
strip='del(.train.tokens_per_s, .train.step_ms, .train.wall_s, .train.peak_rss_mb, .train.checkpoint, .train.curve[].train_s)'
tiny='{"id":"tiny","model":{"l":1,"o":[["sa_sdp_8","l_dft_8"]],"h":[16],"f":[[32]]}}'
mixed='{"id":"mixed","model":{"l":2,"o":[["sa_sdp_8","sa_wma_8"],["c_5_8","l_dct_8"]],"h":[16,16],"f":[[32],[32]]}}'
T="-q --vocab-size 300 --threads 1"

stderr_one_line() {
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "expected one line on stderr: $stderr"
}

@test "a record gains train with every field; other fields pass through" {
	echo "$tiny" | jq -c '.extra = {"keep": [1, 2]}' > in.jsonl
	tc-train $T --steps 20 --no-checkpoint in.jsonl > out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 1 ]
	jq -e '.extra.keep == [1, 2] and .id == "tiny"' out.jsonl >/dev/null
	for f in val_accuracy test_accuracy loss best_loss train_loss steps tokens tokens_per_s step_ms wall_s \
		peak_rss_mb params flops_per_step checkpoint seed vocab labels curve; do
		jq -e --arg f "$f" '.train | has($f)' out.jsonl >/dev/null || fail "no train.$f"
	done
	jq -e '.train | .steps == 20 and .labels == 45 and .vocab == 300 and .task == "wordnet-lex"
		and .val_accuracy >= 0 and .val_accuracy <= 1 and .tokens > 0 and .params > 10000
		and (.curve | length) == 1 and .checkpoint == null' out.jsonl >/dev/null || fail "$(cat out.jsonl)"
}

@test "it learns: which of two words comes first, with every head type" {
	order_task
	echo "$mixed" | tc-train $T --task tsv:order.tsv --vocab-size 100 --steps 400 --lr 3e-3 --no-checkpoint > out.jsonl
	jq -e '.train.test_accuracy >= 0.95 and .train.train_loss < 0.2' out.jsonl >/dev/null || fail "$(jq -c .train out.jsonl)"
}

@test "an untrained model (lr 0) stays at chance on the same task" {
	order_task
	echo "$mixed" | tc-train $T --task tsv:order.tsv --vocab-size 100 --steps 50 --lr 0 --no-checkpoint > out.jsonl
	jq -e '.train.test_accuracy < 0.7' out.jsonl >/dev/null || fail "$(jq -c .train out.jsonl)"
}

@test "same seed and threads: identical records; another seed differs" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 30 --no-checkpoint in.jsonl | jq -cS "$strip" > a.json
	tc-train $T --steps 30 --no-checkpoint in.jsonl | jq -cS "$strip" > b.json
	tc-train $T --steps 30 --no-checkpoint --seed 2 in.jsonl | jq -cS "$strip" > c.json
	cmp a.json b.json
	! cmp -s a.json c.json
	# with more threads than cores too: every reduction adds in a fixed order for a thread count
	tc-train $T --threads 3 --steps 30 --no-checkpoint in.jsonl | jq -cS "$strip" > d.json
	tc-train $T --threads 3 --steps 30 --no-checkpoint in.jsonl | jq -cS "$strip" > e.json
	cmp d.json e.json
}

@test "--label-smoothing: 0 is the default, bit for bit; 0.1 trains on the smoothed loss" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 20 --no-checkpoint in.jsonl | jq -cS "$strip" > a.json
	tc-train $T --steps 20 --no-checkpoint --label-smoothing 0 in.jsonl | jq -cS "$strip" > b.json
	tc-train $T --steps 20 --no-checkpoint --label-smoothing 0.1 in.jsonl | jq -cS "$strip" > c.json
	cmp a.json b.json
	# on the same first step (same weights, same batch) the loss itself differs, not only the
	# training that follows
	tc-train $T --steps 1 --no-checkpoint in.jsonl | jq .train.train_loss > a1
	tc-train $T --steps 1 --no-checkpoint --label-smoothing 0.1 in.jsonl | jq .train.train_loss > c1
	jq -en --argjson a "$(cat a1)" --argjson c "$(cat c1)" '$c != $a' >/dev/null || fail "$(cat a1 c1)"
	! cmp -s a.json c.json
}

@test "a paused run resumed twice ends exactly where an uninterrupted one does" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 40 --no-checkpoint in.jsonl | jq -cS "$strip" > straight.json
	run -1 tc-train $T --steps 40 --checkpoint ck.safetensors --pause-after 15 in.jsonl
	[ -z "$output" ] && [ -s ck.safetensors ]
	run -1 tc-train $T --steps 40 --checkpoint ck.safetensors --resume --pause-after 10 in.jsonl
	run -0 --separate-stderr tc-train --vocab-size 300 --threads 1 --progress none --steps 40 \
		--checkpoint ck.safetensors --resume in.jsonl
	assert_equal "$stderr" "tc-train: mixed: resumed at step 25"
	echo "$output" | jq -cS "$strip" > resumed.json
	cmp straight.json resumed.json
	# a finished run resumed again trains no more and gives the same record
	tc-train $T --steps 40 --checkpoint ck.safetensors --resume in.jsonl | jq -cS "$strip" > again.json
	cmp straight.json again.json
}

@test "--average: one snapshot is the last weights; two, their mean; the record says what it bought" {
	echo "$tiny" > in.jsonl
	w=bert.encoder.layer.0.attention.self.query.weight
	tc-train $T --steps 10 --checkpoint last.safetensors in.jsonl | jq -cS "$strip" > last.json
	# one snapshot, at step 10: the average is the last weights, bit for bit
	tc-train $T --steps 10 --average 0.1 --average-every 10 --checkpoint one.safetensors in.jsonl > one.jsonl
	jq -e '.train.average == {"fraction": 0.1, "every": 10, "snapshots": 1,
		"last_val_accuracy": .train.val_accuracy, "last_test_accuracy": .train.test_accuracy}' one.jsonl >/dev/null ||
		fail "$(jq -c .train.average one.jsonl)"
	jq -cS "$strip | del(.train.average)" one.jsonl | cmp - last.json
	tensor_tool values last.safetensors $w > last.txt
	tensor_tool values one.safetensors $w | cmp - last.txt
	# two, after steps 9 and 10: their mean, where step 9's weights are those of a run paused there
	run -1 tc-train $T --steps 10 --checkpoint nine.safetensors --pause-after 9 in.jsonl
	tensor_tool values nine.safetensors $w > nine.txt
	tc-train $T --steps 10 --average 0.2 --average-every 1 --checkpoint two.safetensors in.jsonl > two.jsonl
	jq -e '.train.average.snapshots == 2 and .train.average.last_test_accuracy == '"$(jq .train.test_accuracy last.json)" two.jsonl >/dev/null ||
		fail "$(jq -c .train.average two.jsonl)"
	tensor_tool values two.safetensors $w > two.txt
	paste nine.txt last.txt two.txt | awk '{ m = ($1 + $2) / 2; d = $3 - m; if (d < 0) d = -d
		if (d > 1e-6 * (1 + (m < 0 ? -m : m))) { print "element " NR ": " $0; bad = 1 }
		if ($1 != $2) moved = 1 } END { exit bad || !moved }'
	! cmp -s two.txt last.txt
}

@test "--average: a run paused inside the window resumes exactly, the mean so far included" {
	echo "$mixed" > in.jsonl
	A="--steps 40 --average 0.5 --average-every 3"
	tc-train $T $A --no-checkpoint in.jsonl | jq -cS "$strip" > straight.json
	jq -e '.train.average.snapshots == 7' straight.json >/dev/null || fail "$(jq -c .train.average straight.json)"
	run -1 tc-train $T $A --checkpoint ck.safetensors --pause-after 27 in.jsonl
	tensor_tool check ck.safetensors | grep -q '^average.classifier.weight '
	tc-train $T $A --checkpoint ck.safetensors --resume in.jsonl | jq -cS "$strip" > resumed.json
	cmp straight.json resumed.json
	# the finished checkpoint holds the mean as its weights, and resumed gives the same record
	! tensor_tool check ck.safetensors | grep -q '^average\.'
	tc-train $T $A --checkpoint ck.safetensors --resume in.jsonl | jq -cS "$strip" > again.json
	cmp straight.json again.json
	# another --average is another run: its checkpoint is refused
	run -1 --separate-stderr tc-train $T --steps 40 --checkpoint ck.safetensors --resume in.jsonl
	[[ "$stderr" == *"trained with other options"* ]] || fail "$stderr"
}

@test "the checkpoint holds weights under plain names, AdamW moments, the vocabulary and the state" {
	echo "$tiny" | tc-train $T --steps 5 --checkpoint ck.safetensors > /dev/null
	tensor_tool check ck.safetensors > list.txt
	grep -q 'bert.embeddings.word_embeddings.weight' list.txt
	grep -q 'adam.m.classifier.weight' list.txt
	grep -q 'adam.v.bert.encoder.layer.0.attention.self.query.weight' list.txt
	grep -q 'tokenizer.vocab_txt' list.txt
	# the header's metadata: the model, the options and the step
	head -c 4096 ck.safetensors | tr -d '\0' | grep -q '"step\\":5'
}

@test "resuming with other options or another model is refused" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 5 --checkpoint ck.safetensors in.jsonl > /dev/null
	run -1 --separate-stderr tc-train $T --steps 5 --lr 0.01 --checkpoint ck.safetensors --resume in.jsonl
	[[ "$stderr" == "tc-train: in.jsonl:1: ck.safetensors: trained with other options"* ]] || fail "$stderr"
	echo "$mixed" > other.jsonl
	run -1 --separate-stderr tc-train $T --steps 5 --checkpoint ck.safetensors --resume other.jsonl
	[[ "$stderr" == "tc-train: other.jsonl:1: ck.safetensors: a checkpoint of another model"* ]] || fail "$stderr"
}

@test "--checkpoint-dir names each record's checkpoint by model and options; the default is the cache" {
	{ echo "$tiny"; echo "$mixed"; } > in.jsonl
	tc-train $T --steps 3 --checkpoint-dir cks in.jsonl > out.jsonl
	[ "$(ls cks | wc -l)" -eq 2 ]
	jq -r .train.checkpoint out.jsonl | while read -r f; do [ -s "$f" ] || exit 1; done
	echo "$tiny" | tc-train $T --steps 3 > /dev/null
	[ "$(ls "$XDG_CACHE_HOME/transcode/train" | wc -l)" -eq 1 ]
}

@test "a NaN loss stops with one line and leaves the last checkpoint as it was" {
	echo "$tiny" > in.jsonl
	# lr 10 with weight decay 1 multiplies the weights by -9 each step: they overflow within 40 steps
	run -1 tc-train $T --steps 200 --lr 10 --weight-decay 1 --checkpoint ck.safetensors --pause-after 5 in.jsonl
	sum=$(md5sum < ck.safetensors)
	run -1 --separate-stderr tc-train $T --steps 200 --lr 10 --weight-decay 1 --checkpoint ck.safetensors --resume in.jsonl
	[ -z "$output" ]
	[[ "$stderr" =~ ^tc-train:\ in.jsonl:1:\ step\ [0-9]+:\ the\ loss\ is\ (NaN|infinite) ]] || fail "$stderr"
	stderr_one_line
	assert_equal "$(md5sum < ck.safetensors)" "$sum"
}

@test "SIGINT checkpoints and stops with status 1; the run resumes from there" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 100000000 --checkpoint ck.safetensors in.jsonl > out.jsonl 2> err.txt &
	pid=$!
	sleep 1
	kill -INT "$pid"
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" 1
	[ ! -s out.jsonl ]
	grep -q "tiny: Interrupt at step [0-9]*; checkpoint ck.safetensors; run again with --resume" err.txt || fail "$(cat err.txt)"
	tensor_tool check ck.safetensors | grep -q classifier.weight
	n=$(sed -n 's/.*at step \([0-9]*\);.*/\1/p' err.txt)
	run -1 --separate-stderr tc-train $T --steps 100000000 --checkpoint ck.safetensors --resume --pause-after 1 in.jsonl
	[[ "$stderr" == "tc-train: tiny: paused at step $((n + 1));"* ]] || fail "$stderr"
}

@test "masked-LM pretraining, then fine-tuning from its encoder and vocabulary" {
	echo "$tiny" > in.jsonl
	tc-train $T --objective mlm --steps 20 --checkpoint mlm.safetensors in.jsonl > mlm.jsonl
	jq -e '.train.objective == "mlm" and .train.val_accuracy >= 0 and .train.loss > 0' mlm.jsonl >/dev/null
	tc-train -q --threads 1 --init mlm.safetensors --steps 10 --no-checkpoint in.jsonl > ft.jsonl
	jq -e '.train.objective == "cls" and .train.vocab == 300 and .train.labels == 45' ft.jsonl >/dev/null
	# fine-tuning really starts from the pretrained encoder: its first loss differs from a fresh start's
	tc-train $T --steps 1 --dropout 0 --no-checkpoint in.jsonl | jq .train.train_loss > fresh.txt
	tc-train -q --threads 1 --init mlm.safetensors --steps 1 --dropout 0 --no-checkpoint in.jsonl | jq .train.train_loss > init.txt
	! cmp -s fresh.txt init.txt
}

@test "the other tasks: spam, tsv, jsonl; a record's own task wins" {
	echo "$tiny" | tc-train $T --task spam --steps 3 --no-checkpoint | jq -e '.train.labels == 2 and .train.task == "spam"' >/dev/null
	printf '{"text":"good film","label":"pos"}\n{"text":"bad film","label":"neg"}\n{"text":"fine","label":"pos"}\n' > s.jsonl
	echo "$tiny" | jq -c '.task = "jsonl:s.jsonl"' | tc-train $T --vocab-size 40 --steps 3 --no-checkpoint |
		jq -e '.train.labels == 2 and .train.task == "jsonl:s.jsonl"' >/dev/null
	echo "$tiny" | tc-train $T --task "tsv:$TC_DATA/sst.tsv" --steps 3 --no-checkpoint | jq -e '.train.labels == 2' >/dev/null
}

@test "--vocab loads a vocab.txt; --baseline bow trains bag-of-words on the same split" {
	printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\na\nof\n' > vocab.txt
	echo "$tiny" | tc-train -q --threads 1 --vocab vocab.txt --steps 2 --no-checkpoint | jq -e '.train.vocab == 8' >/dev/null
	echo "$tiny" | tc-train -q --threads 1 --baseline bow > bow.jsonl
	jq -e '.train.baseline == "bow" and .train.test_accuracy > 0.2 and .train.features > 100' bow.jsonl >/dev/null ||
		fail "$(jq -c .train bow.jsonl)"
}

@test "progress: one JSON line per interval when stderr is not a terminal" {
	echo "$tiny" | tc-train --vocab-size 300 --threads 1 --steps 30 --progress json --progress-every 0.001 --no-checkpoint \
		> out.jsonl 2> progress.jsonl
	[ "$(wc -l < progress.jsonl)" -ge 2 ]
	jq -e '.progress | .label == "tiny" and .step > 0 and .tokens_per_s > 0' progress.jsonl >/dev/null
}

@test "bad input: one line naming file, line and field; status 1; nothing written" {
	echo "$tiny" > good.jsonl
	printf '%s\n{"id":"x"}\n' "$tiny" > nomodel.jsonl
	run -1 --separate-stderr tc-train $T --steps 1 nomodel.jsonl
	[ -z "$output" ] && assert_equal "$stderr" "tc-train: nomodel.jsonl:2: missing field 'model'"
	echo '{"model":{"l":1,"o":[["sa_sdp_8"]],"h":["16"],"f":[[32]]}}' > type.jsonl
	run -1 --separate-stderr tc-train $T --steps 1 type.jsonl
	[ -z "$output" ] && assert_equal "$stderr" "tc-train: type.jsonl:1: field 'model.h[0]': expected a number, got string"
	echo "$tiny" | jq -c '.task = 3' > task.jsonl
	run -1 --separate-stderr tc-train $T --steps 1 task.jsonl
	[ -z "$output" ] && assert_equal "$stderr" "tc-train: task.jsonl:1: field 'task': expected a string, got number"
	printf '%s\n{"model": \n' "$tiny" > broken.jsonl
	run -1 --separate-stderr tc-train $T --steps 1 broken.jsonl
	[ -z "$output" ] && [[ "$stderr" == "tc-train: broken.jsonl:2: "* ]] && stderr_one_line
	run -1 --separate-stderr tc-train $T --steps 1 < /dev/null
	[ -z "$output" ] && assert_equal "$stderr" "tc-train: <stdin>: no records"
	run -1 --separate-stderr tc-train $T --steps 1 --task nosuch good.jsonl
	[ -z "$output" ] && [[ "$stderr" == "tc-train: good.jsonl:1: "*nosuch* ]] && stderr_one_line
	run -1 --separate-stderr env TC_DATA=/nonexistent tc-train $T --data /nonexistent --steps 1 --task spam good.jsonl
	[ -z "$output" ] && [[ "$stderr" == *"make data"* ]] && stderr_one_line
	{ echo "$tiny"; echo "$tiny"; } > two.jsonl
	run -1 --separate-stderr tc-train $T --steps 1 --checkpoint c.st two.jsonl
	[ -z "$output" ] && assert_equal "$stderr" "tc-train: two.jsonl:2: --checkpoint names the file of one record; use --checkpoint-dir for more"
}

@test "DynaProp: train.sparsity per class, layer and point, thresholds, near its targets, deterministic" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 250 --dynaprop --no-checkpoint in.jsonl > a.jsonl
	# (the points' shares move with the run's draws: over seeds 1-10 qkv 0.58-0.69, ff 0.38-0.75,
	# out 0.12-0.28 and all together 0.37-0.44 against targets of 0.7, 0.7 and 0.25)
	jq -e '.train | (.sparsity | .activation > 0.3 and .activation < 0.7 and .gradient >= 0.9
		and .gradient < 1 and .weight_gradient > 0 and .weight_gradient < 1 and (.layers | length) == 2
		and all(.layers[]; .activation > 0 and .gradient > 0)
		and (.points | keys) == ["ctx", "ff", "out", "prob", "qkv", "score"]
		and .points.qkv.activation > 0.5 and .points.ff.activation > 0.3 and .points.out.activation > 0.1
		and all(.points[]; .gradient > 0.8))
		and .dynaprop.target_at == {"qkv": 0.7, "score": 0, "prob": 0.5, "ctx": 0.25, "ff": 0.7, "out": 0.25}
		and .dynaprop.target_act == 0 and .dynaprop.target_grad == 0.9
		and ([.dynaprop.tau_act[]] | length == 6 and all(. >= 0) and any(. > 0))
		and ([.dynaprop.tau_grad[]] | length == 6 and all(. >= 0))
		and .dynaprop.tau_weight == 0' a.jsonl >/dev/null || fail "$(jq -c .train a.jsonl)"
	tc-train $T --steps 250 --dynaprop --no-checkpoint in.jsonl > b.jsonl
	cmp <(jq -cS "$strip" a.jsonl) <(jq -cS "$strip" b.jsonl)
	# a fixed threshold prunes more as it grows
	tc-train $T --steps 30 --tau-act 0.05 --no-checkpoint in.jsonl > lo.jsonl
	tc-train $T --steps 30 --tau-act 0.5 --no-checkpoint in.jsonl > hi.jsonl
	jq -se '.[0].train.sparsity.activation < .[1].train.sparsity.activation
		and all(.[1].train.dynaprop.tau_act[]; . == 0.5) and .[1].train.dynaprop.target_act == null' lo.jsonl hi.jsonl >/dev/null
	# a gradient target of one's own calibrates the weight gradients' threshold to it too
	tc-train $T --steps 30 --target-act 0.5 --target-grad 0.9 --no-checkpoint in.jsonl > w.jsonl
	jq -e '.train | .dynaprop.tau_weight > 0 and .sparsity.weight_gradient >= 0.85' w.jsonl >/dev/null ||
		fail "$(jq -c '.train | {sparsity, dynaprop}' w.jsonl)"
}

@test "DynaProp --target-at and --target-grad-at: one point's own target, the others unpruned" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 60 --target-at ff=0.6 --target-grad-at out=0.8 --no-checkpoint in.jsonl > a.jsonl
	jq -e '.train | .sparsity.points.ff.activation > 0.45 and .sparsity.points.qkv.activation < 0.05
		and .sparsity.points.out.activation < 0.05 and .sparsity.points.out.gradient > 0.7
		and .dynaprop.target_at == {"ff": 0.6} and .dynaprop.target_grad_at == {"out": 0.8}
		and .dynaprop.tau_act.qkv == 0 and .dynaprop.tau_act.ff > 0 and .dynaprop.tau_grad.ff == 0' a.jsonl >/dev/null ||
		fail "$(jq -c '.train | {sparsity, dynaprop}' a.jsonl)"
	run -2 --separate-stderr tc-train $T --target-at attn=0.5 in.jsonl
	[[ "$stderr" == *"'--target-at': expected POINT=S"* ]] || fail "$stderr"
	run -2 tc-train $T --target-grad-at qkv=1.5 in.jsonl
	run -2 tc-train $T --target-at qkv=0.5 --tau-act 0.1 in.jsonl
}

@test "DynaProp with zero thresholds trains as dense training does (up to the order of sums)" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 30 --no-checkpoint in.jsonl > dense.jsonl
	tc-train $T --steps 30 --tau-act 0 --tau-grad 0 --no-checkpoint in.jsonl > dp.jsonl
	# the sparse kernels add in another order than sgemm: the same training, to rounding
	jq -se '(.[0].train.loss - .[1].train.loss | fabs) < 1e-3 * .[0].train.loss
		and (.[0].train.train_loss - .[1].train.train_loss | fabs) < 1e-3 * .[0].train.train_loss
		and (.[0].train.val_accuracy - .[1].train.val_accuracy | fabs) < 0.02' dense.jsonl dp.jsonl >/dev/null ||
		fail "$(jq -c '.train | [.loss, .train_loss, .val_accuracy]' dense.jsonl dp.jsonl)"
	jq -e '.train.sparsity.activation < 0.1' dp.jsonl >/dev/null
}

@test "DynaProp: a paused run resumes exactly, thresholds and counts included" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 230 --dynaprop --no-checkpoint in.jsonl | jq -cS "$strip" > straight.json
	run -1 tc-train $T --steps 230 --dynaprop --checkpoint ck.safetensors --pause-after 150 in.jsonl
	tc-train $T --steps 230 --dynaprop --checkpoint ck.safetensors --resume in.jsonl | jq -cS "$strip" > resumed.json
	cmp straight.json resumed.json
	# a dense checkpoint is not a DynaProp one
	run -1 --separate-stderr tc-train $T --steps 230 --checkpoint ck.safetensors --resume in.jsonl
	[[ "$stderr" == *"trained with other options"* ]] || fail "$stderr"
}

# bats test_tags=plain_only
@test "DynaProp --prune-start: dense first, then calibrated; a pause across the start resumes exactly" {
	echo "$mixed" > in.jsonl
	tc-train $T --steps 200 --dynaprop --no-checkpoint in.jsonl > from0.jsonl
	tc-train $T --steps 200 --dynaprop --prune-start 0.5 --no-checkpoint in.jsonl | jq -cS "$strip" > straight.json
	# half the run with thresholds 0: less sparsity over the run, the targets reached after
	jq -se '.[0].train.sparsity.activation > .[1].train.sparsity.activation + 0.05
		and .[1].train.sparsity.activation > 0.15 and .[1].train.dynaprop.prune_start == 0.5
		and any(.[1].train.dynaprop.tau_act[]; . > 0)' from0.jsonl straight.json >/dev/null ||
		fail "$(jq -c '.train | [.sparsity.activation, .dynaprop]' from0.jsonl straight.json)"
	# paused before the start (step 100), then after it
	run -1 tc-train $T --steps 200 --dynaprop --prune-start 0.5 --checkpoint ck.safetensors --pause-after 80 in.jsonl
	run -1 tc-train $T --steps 200 --dynaprop --prune-start 0.5 --checkpoint ck.safetensors --resume --pause-after 40 in.jsonl
	tc-train $T --steps 200 --dynaprop --prune-start 0.5 --checkpoint ck.safetensors --resume in.jsonl | jq -cS "$strip" > resumed.json
	cmp straight.json resumed.json
}

@test "tc-train --dynaprop | tc-sim: the simulator takes the measured sparsity" {
	echo "$tiny" | jq -c --argjson a "$(tc-sample --preset acceltran-edge | jq -c .accel)" '.accel = $a' > in.jsonl
	tc-train $T --steps 120 --dynaprop --no-checkpoint in.jsonl | tc-sim --mode training > out.jsonl
	jq -e '.sim.sparsity.from.activation == "train" and .sim.sparsity.from.gradient == "train"
		and .sim.sparsity.activation == (.train.sparsity.activation * 1e6 | round / 1e6)' out.jsonl >/dev/null ||
		fail "$(jq -c '{t: .train.sparsity, s: .sim.sparsity}' out.jsonl)"
}

@test "bad options are usage errors naming the option" {
	for args in "--steps 0" "--objective foo" "--time 5x" "--batch -1" "--lr nan" "--baseline svm" \
		"--progress loud" "--checkpoint a --checkpoint-dir b" "--no-checkpoint --resume" \
		"--no-checkpoint --pause-after 3" "--tau-act -1" "--target-act 1" "--target-grad nan" \
		"--tau-act 0.1 --target-act 0.5" "--tau-grad 0 --target-grad 0.5" "--dynaprop --baseline bow" \
		"--prune-start 1" "--prune-start -0.1" "--label-smoothing 1" "--label-smoothing -0.1" \
		"--average -0.1" "--average 1.5" "--average nan" "--average-every 0"; do
		run -2 --separate-stderr tc-train $args
		[ -z "$output" ] || fail "$args: wrote $output"
		[[ "$stderr" == tc-train:* ]] || fail "$args: $stderr"
	done
}
