#!/usr/bin/env bats
# tc-sample: determinism, golden output, validity of every sampled point, designs, presets, grid.

load helper
bats_require_minimum_version 1.5.0

@test "the same seed gives byte-identical output; another seed differs" {
	tc-sample --space pair -n 5 --seed 1 > a.jsonl
	tc-sample --space pair -n 5 --seed 1 > b.jsonl
	tc-sample --space pair -n 5 --seed 2 > c.jsonl
	cmp a.jsonl b.jsonl
	! cmp -s a.jsonl c.jsonl
	[ "$(wc -l < a.jsonl)" -eq 5 ]
}

@test "five random pairs match the golden file" {
	tc-sample --space pair -n 5 --seed 1 > out.jsonl
	diff -u "$top/tests/data/sample-pair-5-seed1.jsonl" out.jsonl
}

@test "the presets and their encodings match the golden file" {
	tc-sample --preset bert-tiny --preset bert-base --preset acceltran-edge --preset acceltran-server \
		--emit-embedding > out.jsonl
	diff -u "$top/tests/data/sample-presets.jsonl" out.jsonl
	# 2 models x 2 accelerators, models outermost
	[ "$(jq -c '.sample.preset' out.jsonl | tr '\n' ' ')" = '["bert-tiny","acceltran-edge"] ["bert-tiny","acceltran-server"] ["bert-base","acceltran-edge"] ["bert-base","acceltran-server"] ' ]
	# BERT-Base: depth index 5, then (hidden 768, FF [3072], 12 sa_sdp heads) = (3, 4, 28+210+3003) per layer
	jq -e -s '.[2].embedding.model == [5] + [range(12) | 3, 4, 3241]' out.jsonl >/dev/null
	jq -e -s '.[0].embedding.model == [0, 0, 1, 0, 0, 1, 0] + [range(30) | 0]' out.jsonl >/dev/null
}

@test "the output is the same on one thread and on two" {
	tc-sample --space pair -n 9000 --seed 3 --threads 1 > one.jsonl
	tc-sample --space pair -n 9000 --seed 3 --threads 2 > two.jsonl
	cmp one.jsonl two.jsonl
	[ "$(wc -l < one.jsonl)" -eq 9000 ]
}

@test "every sampled model is valid: one entry per layer, head size floor(h/n), values in the space" {
	tc-sample --space model -n 400 --seed 9 > m.jsonl
	jq -e -s --slurpfile sp "$TC_SHARE/space/flexibert2.json" '
		($sp[0].params) as $p |
		all(.[]; .model as $m |
			($m.o | length) == $m.l and ($m.h | length) == $m.l and ($m.f | length) == $m.l and
			($p.layers | index($m.l)) != null and
			all(range($m.l); . as $i |
				($p.hidden | index($m.h[$i])) != null and
				($p.heads | index($m.o[$i] | length)) != null and
				($p.ff_depth | index($m.f[$i] | length)) != null and
				all($m.f[$i][]; . as $w | $p.ff_width | index($w) != null) and
				all($m.o[$i][]; test("^(sa_sdp|sa_wma|l_dft|l_dct|c_5|c_9|c_13)_" +
					(($m.h[$i] / ($m.o[$i] | length)) | floor | tostring) + "$"))))' m.jsonl
}

@test "every sampled accelerator is in the space, with square tiles and the fixed dataflow" {
	tc-sample --space accel -n 400 --seed 9 > a.jsonl
	jq -e -s --slurpfile sp "$TC_SHARE/space/acceltran.json" '
		($sp[0].params) as $p |
		all(.[]; .accel as $a |
			all($p | keys[]; . as $k | ($p[$k] | index($a[$k])) != null) and
			$a.tile_x == $a.tile_y and $a.dataflow == "bijk" and ($a | keys | length) == 14)' a.jsonl
}

@test "random sampling reaches every value of every accelerator parameter" {
	tc-sample --space accel -n 3000 --seed 5 > a.jsonl
	for k in tile_b tile_x activation pes lanes_per_pe macs_per_lane softmax_per_pe batch act_buffer_mb \
		weight_buffer_mb mask_buffer_mb memory; do
		want=$(jq ".params.$k | length" "$TC_SHARE/space/acceltran.json")
		got=$(jq -r ".accel.$k" a.jsonl | sort -u | wc -l)
		assert_equal "$got" "$want"
	done
}

@test "a Latin hypercube of 60 accelerators takes each of the 5 PE counts exactly 12 times" {
	tc-sample --space accel -n 60 --method lhs --seed 4 > a.jsonl
	run -0 sh -c "jq -r .accel.pes a.jsonl | sort -n | uniq -c | awk '{print \$1}' | sort -u"
	assert_equal "$output" 12
	run -0 sh -c "jq -r .accel.memory a.jsonl | sort | uniq -c | awk '{print \$1}' | sort -u | tr '\n' ' '"
	assert_equal "$output" "5 6 "
	jq -e -s 'all(.[]; .sample.method == "lhs" and .sample.seed == 4)' a.jsonl >/dev/null
}

@test "random model sampling covers depths, widths, head counts and all seven head ops" {
	tc-sample --space model --space-file "$TC_SHARE/space/tiny.json" -n 500 --seed 2 > m.jsonl
	assert_equal "$(jq -r '.model.l' m.jsonl | sort -u | tr '\n' ' ')" "2 4 "
	assert_equal "$(jq -r '.model.h[]' m.jsonl | sort -n -u | tr '\n' ' ')" "64 128 256 "
	assert_equal "$(jq -r '.model.o[] | length' m.jsonl | sort -u | tr '\n' ' ')" "2 4 "
	assert_equal "$(jq -r '.model.o[][] | sub("_[0-9]+$"; "")' m.jsonl | sort -u | wc -l)" 7
	assert_equal "$(jq -r '.model.f[] | length' m.jsonl | sort -u | tr '\n' ' ')" "1 2 "
}

@test "ids are distinct for distinct candidates and ignore the order of heads" {
	tc-sample --space pair -n 3000 --seed 8 > p.jsonl
	assert_equal "$(jq -r .id p.jsonl | sort -u | wc -l)" 3000
	jq -e -s 'all(.[]; .id | test("^[0-9a-f]{16}$"))' p.jsonl >/dev/null
	echo '{"model":{"l":2,"o":[["c_9_64","sa_sdp_64"],["l_dft_64","sa_wma_64"]],"h":[128,128],"f":[[512],[256]]}}' > x.json
	echo '{"model":{"l":2,"o":[["sa_sdp_64","c_9_64"],["sa_wma_64","l_dft_64"]],"h":[128,128],"f":[[512],[256]]}}' > y.json
	assert_equal "$(tc-sample --preset ./x.json | jq -r .id)" "$(tc-sample --preset ./y.json | jq -r .id)"
	# The encoding is the same too, and the record keeps the order it was given.
	assert_equal "$(tc-sample -e --preset ./x.json | jq -c .embedding)" "$(tc-sample -e --preset ./y.json | jq -c .embedding)"
	assert_equal "$(tc-sample --preset ./x.json | jq -c .model.o[0])" '["c_9_64","sa_sdp_64"]'
}

@test "a preset fixes its side and the other is sampled on the same points" {
	tc-sample --preset bert-tiny --preset bert-mini --space pair -n 3 --seed 6 > p.jsonl
	[ "$(wc -l < p.jsonl)" -eq 6 ]
	assert_equal "$(jq -r '.sample.preset[0]' p.jsonl | uniq -c | awk '{print $1}' | tr '\n' ' ')" "3 3 "
	assert_equal "$(jq -c .accel p.jsonl | head -n 3)" "$(jq -c .accel p.jsonl | tail -n 3)"
	assert_equal "$(jq -c .accel p.jsonl | head -n 3)" "$(tc-sample --space accel -n 3 --seed 6 | jq -c .accel)"
}

@test "the grid enumerates a space in order, the memory fastest, every point once" {
	jq '.params.pes = [64, 128] | .params.lanes_per_pe = [8] | .params.softmax_per_pe = [2, 4] |
		.params.act_buffer_mb = [4] | .params.weight_buffer_mb = [8, 16] | .params.mask_buffer_mb = [1] |
		.params.batch = [4] | .fixed.activation = "gelu" | .name = "small"' \
		"$TC_SHARE/space/acceltran.json" > small.json
	tc-sample --space accel --grid --space-file small.json > g.jsonl
	# tile_b 2 x tile 3 x pes 2 x macs 2 x softmax 2 x weight 2 x memory 11
	[ "$(wc -l < g.jsonl)" -eq 1056 ]
	assert_equal "$(jq -r .id g.jsonl | sort -u | wc -l)" 1056
	jq -e -s 'to_entries | all(.[]; .value.sample.index == .key and .value.sample.method == "grid")' g.jsonl >/dev/null
	assert_equal "$(jq -r .accel.memory g.jsonl | head -n 2 | tr '\n' ' ')" "rram-16-2-2 rram-8-2-4 "
	assert_equal "$(head -n 1 g.jsonl | jq -c '[.accel.tile_b, .accel.tile_x, .accel.pes]')" "[1,8,64]"
	assert_equal "$(tail -n 1 g.jsonl | jq -c '[.accel.tile_b, .accel.tile_x, .accel.tile_y, .accel.memory]')" '[4,32,32,"hbm-32-1-4"]'
}

@test "the full grid starts where expected, and --size counts 14,850,000 accelerators" {
	tc-sample --space accel --grid --threads 1 | head -n 1100 > g.jsonl || true
	[ "$(wc -l < g.jsonl)" -eq 1100 ]
	assert_equal "$(jq -r .accel.memory g.jsonl | sort -u | wc -l)" 11
	run -0 tc-sample --size
	assert_equal "$(echo "$output" | jq -c '[.accel.size, .accel.encoding, .model.encoding, .model.space]')" '[14850000,12,37,"flexibert2"]'
	echo "$output" | jq -e '.model.size > 1.68e88 and .model.size < 1.70e88' >/dev/null
	run -0 tc-sample --size --space-file "$TC_SHARE/space/acceltran-gelu.json"
	assert_equal "$(echo "$output" | jq .accel.size)" 7425000
}

@test "a model preset paired with the whole grid" {
	jq '.params.pes = [64] | .params.lanes_per_pe = [8] | .params.softmax_per_pe = [2] | .params.batch = [4] |
		.params.act_buffer_mb = [4] | .params.weight_buffer_mb = [8] | .params.mask_buffer_mb = [1] |
		.params.memory = ["dram-32-2-1"] | .params.tile_b = [1]' "$TC_SHARE/space/acceltran.json" > s.json
	tc-sample --preset bert-tiny --space pair --grid --space-file s.json > g.jsonl
	# tile 3 x activation 2 x macs 2
	[ "$(wc -l < g.jsonl)" -eq 12 ]
	jq -e -s 'all(.[]; .model.l == 2 and .sample.preset == ["bert-tiny"])' g.jsonl >/dev/null
}

@test "--emit-embedding gives 37 + 12 integers, 13 in the tiny space, all within the bounds" {
	tc-sample -n 50 --seed 3 -e > p.jsonl
	jq -e -s 'all(.[]; (.embedding.model | length) == 37 and (.embedding.accel | length) == 12 and
		.embedding.model[0] <= 5 and all(.embedding.model[]; . >= 0 and . <= 21804) and
		.embedding.accel[11] <= 10)' p.jsonl >/dev/null
	tc-sample --space model --space-file "$TC_SHARE/space/tiny.json" -n 5 -e > t.jsonl
	jq -e -s 'all(.[]; (.embedding.model | length) == 13 and (has("accel") | not))' t.jsonl >/dev/null
}

@test "conflicting or impossible requests are usage errors" {
	run -2 --separate-stderr tc-sample --grid --space model
	[[ "$stderr" == "tc-sample: --grid enumerates accelerators"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --grid -n 4 --space accel
	[[ "$stderr" == "tc-sample: --grid and --count exclude each other"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --preset bert-tiny --space model -n 3
	[[ "$stderr" == "tc-sample: nothing to sample"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --space accel --grid --method lhs
	run -2 --separate-stderr tc-sample --space bogus
	[[ "$stderr" == "tc-sample: option '--space': expected model, accel or pair, got 'bogus'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --preset bert-huge
	[[ "$stderr" == "tc-sample: unknown preset 'bert-huge'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample extra-argument
}

@test "-n 0 writes nothing and succeeds" {
	run -0 tc-sample -n 0
	assert_equal "$output" ""
}

@test "--propose: new candidates only, none in the history nor twice; each round fresh; deterministic" {
	: > history.jsonl
	tc-sample --propose random --history history.jsonl -n 20 --space-file "$top/share/space/tiny.json" > p1.jsonl
	[ "$(wc -l < p1.jsonl)" -eq 20 ]
	[ "$(jq -r .id p1.jsonl | sort -u | wc -l)" -eq 20 ]
	jq -e '.sample.method == "random" and .sample.history == 0 and .model and .accel' p1.jsonl >/dev/null
	tc-sample --propose random --history history.jsonl -n 20 --space-file "$top/share/space/tiny.json" | cmp - p1.jsonl
	cat p1.jsonl >> history.jsonl
	tc-sample --propose lhs --history history.jsonl -n 20 --space-file "$top/share/space/tiny.json" > p2.jsonl
	[ "$(wc -l < p2.jsonl)" -eq 20 ]
	[ -z "$(comm -12 <(jq -r .id p1.jsonl | sort) <(jq -r .id p2.jsonl | sort))" ]
	jq -e '.sample.method == "lhs" and .sample.history == 20' p2.jsonl >/dev/null
	# a fixed side: transformer search on one accelerator
	tc-sample --propose random --history history.jsonl -n 5 --preset acceltran-edge > p3.jsonl
	[ "$(jq -c .accel p3.jsonl | sort -u | wc -l)" -eq 1 ] && [ "$(jq -r .id p3.jsonl | sort -u | wc -l)" -eq 5 ]
	# the same from a record: --fix-accel takes the first record's accelerator
	tc-sample --preset bert-tiny --preset acceltran-edge > ref.jsonl
	tc-sample --propose random --history history.jsonl -n 5 --fix-accel ref.jsonl | jq -c .accel | sort -u > a1
	jq -c .accel p3.jsonl | sort -u | cmp - a1
	tc-sample --fix-model ref.jsonl --space pair -n 3 | jq -e '.model.h == [128, 128]' >/dev/null
	echo '{"id":"0123456789abcdef"}' > noaccel.jsonl
	run -1 --separate-stderr tc-sample --fix-accel noaccel.jsonl
	[[ "$stderr" == "tc-sample: noaccel.jsonl:1: missing field 'accel'" ]] || fail "$stderr"
}

# A history of accelerators for BERT-Tiny with simulated results: 12 records, one round of 4
# proposals by METHOD with the objectives OBJ on top of it.
guided_round() {
	tc-sample --space-file "$top/share/space/acceltran-gelu.json" --preset bert-tiny -n 12 --seed 3 |
		tc-sim --mode training --brief > h.jsonl
	tc-sample --propose "$1" --history h.jsonl -n 4 --seed 5 --preset bert-tiny --epochs 30 --pool 200 \
		--space-file "$top/share/space/acceltran-gelu.json" --objectives "$2" "${@:3}"
}

@test "--propose boshcode and nsga2: new candidates, deterministic, on one objective and on several" {
	for m in boshcode nsga2; do
		for obj in sim.latency_s sim.latency_s,sim.energy_j,sim.area_mm2; do
			guided_round $m $obj > p1.jsonl
			guided_round $m $obj | cmp - p1.jsonl
			[ "$(wc -l < p1.jsonl)" -eq 4 ] || fail "$m $obj: $(wc -l < p1.jsonl) proposals"
			[ "$(jq -r .id p1.jsonl | sort -u | wc -l)" -eq 4 ]
			[ -z "$(comm -12 <(jq -r .id h.jsonl | sort) <(jq -r .id p1.jsonl | sort))" ]
			jq -e --arg m $m '.sample.method == $m and .sample.history == 12 and .model.l == 2 and .accel.activation == "gelu"' \
				p1.jsonl >/dev/null
		done
	done
	guided_round boshcode sim.latency_s > p.jsonl
	jq -e '.sample.predicted | (.loss | length) == 1 and .epistemic[0] > 0 and .aleatoric[0] > 0
		and (.via | test("gobi|pool"))' p.jsonl >/dev/null
	guided_round boshcode sim.latency_s --seed 6 | cmp -s - p.jsonl && fail "another seed gave the same proposals"
	true
}

@test "--propose boshcode: the proposals' simulated latency beats the history's median" {
	guided_round boshcode sim.latency_s > p.jsonl
	med=$(jq -s 'map(.sim.latency_s) | sort | .[length / 2 | floor]' h.jsonl)
	tc-sim --mode training --brief < p.jsonl > ps.jsonl
	jq -se --argjson med "$med" 'map(.sim.latency_s) | min < $med' ps.jsonl >/dev/null ||
		fail "median $med, proposals $(jq -c .sim.latency_s ps.jsonl | tr '\n' ' ')"
}

@test "--propose boshcode: few usable records start with Latin hypercube points; failures are left out" {
	tc-sample --space-file "$top/share/space/acceltran-gelu.json" --preset bert-tiny -n 3 |
		tc-sim --mode training --brief > h.jsonl
	run -0 --separate-stderr tc-sample --propose boshcode --history h.jsonl -n 2 --preset bert-tiny \
		--objectives sim.latency_s --space-file "$top/share/space/acceltran-gelu.json"
	[[ "$stderr" == *"fewer than --init 8: Latin hypercube"* ]] || fail "$stderr"
	[ "$(printf '%s\n' "$output" | jq -r .sample.method | sort -u)" = lhs ]
	# a record with "error" and no sim is failed, not malformed
	jq -c 'del(.sim) | .error = "x"' h.jsonl | head -n 1 >> h.jsonl
	run -0 --separate-stderr tc-sample --propose boshcode --history h.jsonl -n 2 --preset bert-tiny --init 2 \
		--objectives sim.latency_s --space-file "$top/share/space/acceltran-gelu.json" --epochs 5
	[ "$(printf '%s\n' "$output" | jq -r .sample.method | sort -u)" = boshcode ]
	# a record that lacks the objective without having failed is an error naming its line
	jq -c 'del(.sim)' h.jsonl | head -n 1 > bad.jsonl
	cat h.jsonl >> bad.jsonl
	run -1 --separate-stderr tc-sample --propose nsga2 --history bad.jsonl -n 2 --preset bert-tiny \
		--objectives sim.latency_s --space-file "$top/share/space/acceltran-gelu.json"
	[[ "$stderr" == "tc-sample: bad.jsonl:1: missing field 'sim.latency_s'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --propose boshcode --history h.jsonl --uncertainty 0.7 --diversity 0.5
	[[ "$stderr" == tc-sample:* ]] || fail "$stderr"
}

@test "--propose: a history with a bad record fails naming file, line and field; bad options" {
	printf '%s\n' '{"id":"0123456789abcdef"}' '{"x":1}' > h.jsonl
	run -1 --separate-stderr tc-sample --propose random --history h.jsonl
	[[ "$stderr" == "tc-sample: h.jsonl:2: "*"'id'"* ]] || fail "$stderr"
	printf '%s\n' '{"id":"xyz"}' > h2.jsonl
	run -1 --separate-stderr tc-sample --propose random --history h2.jsonl
	[[ "$stderr" == "tc-sample: h2.jsonl:1: field 'id'"* ]] || fail "$stderr"
	run -1 tc-sample --propose random --history nosuch.jsonl
	for args in "--propose random" "--history h.jsonl" "--propose annealing --history h.jsonl" \
		"--propose random --history h.jsonl --grid --space accel"; do
		run -2 --separate-stderr tc-sample $args
		[[ "$stderr" == tc-sample:* ]] || fail "$args: $stderr"
	done
}
