#!/usr/bin/env bats
# Bad input, for every tool in one place: malformed JSON, missing and mistyped fields, NaN and Inf,
# values outside a space, empty input, malformed space and preset files. Each case must give one
# line on stderr naming the file, the line or entry and the field, exit status 1, and no output.

load helper
bats_require_minimum_version 1.5.0

# space NAME JQ-FILTER: a copy of an installed space file, edited.
space() {
	jq "$2" "$TC_SHARE/space/$1.json" > "$1.json"
}

# refuse EXPECTED-MESSAGE COMMAND...: status 1, exactly that one line on stderr, nothing on stdout.
refuse() {
	local want=$1
	shift
	run -1 --separate-stderr "$@"
	[ -z "$output" ] || fail "stdout not empty: $output"
	assert_equal "$stderr" "$want"
}

@test "tc-pareto: bad records give one line naming file, line and field; status 1; nothing written" {
	printf '{"x":1,"y":2}\n{"x":1}\n' > missing.jsonl
	run -1 --separate-stderr tc-pareto -O x,y missing.jsonl
	assert_equal "$stderr" "tc-pareto: missing.jsonl:2: missing field 'y'"
	[ -z "$output" ]

	printf '{"x":1,"y":2}\n\n{"x":1,"y":"fast"}\n' > type.jsonl
	run -1 --separate-stderr tc-pareto -O x,y type.jsonl
	assert_equal "$stderr" "tc-pareto: type.jsonl:3: field 'y': expected a number, got string"

	printf '{"sim":{"lat":1}}\n{"sim":[1]}\n' > path.jsonl
	run -1 --separate-stderr tc-pareto -O sim.lat path.jsonl
	assert_equal "$stderr" "tc-pareto: path.jsonl:2: missing field 'sim.lat'"

	printf '{"x":1,"y":2}\n{"x":NaN,"y":2}\n' > nan.jsonl
	run -1 --separate-stderr tc-pareto -O x,y < nan.jsonl
	assert_equal "$stderr" "tc-pareto: <stdin>:2: malformed JSON at column 8: invalid token near 'NaN'"

	printf '{"x":1e999,"y":2}\n' > inf.jsonl
	run -1 --separate-stderr tc-pareto -O x,y inf.jsonl
	[[ "$stderr" == "tc-pareto: inf.jsonl:1: malformed JSON at column "*"real number overflow"* ]] || fail "$stderr"

	printf '{"x":1,"y":2}\n{"x":1,"y":' > truncated.jsonl
	run -1 --separate-stderr tc-pareto -O x,y truncated.jsonl
	[[ "$stderr" == "tc-pareto: truncated.jsonl:2: malformed JSON"* ]] || fail "$stderr"
	[ -z "$output" ]

	printf '[1,2]\n' > array.jsonl
	run -1 --separate-stderr tc-pareto -O x array.jsonl
	assert_equal "$stderr" "tc-pareto: array.jsonl:1: expected a JSON object, got array"

	printf '{"x":1,"x":2}\n' > dup.jsonl
	run -1 --separate-stderr tc-pareto -O x dup.jsonl
	[[ "$stderr" == "tc-pareto: dup.jsonl:1: malformed JSON"*"duplicate object key"* ]] || fail "$stderr"

	: > empty.jsonl
	run -1 --separate-stderr tc-pareto -O x empty.jsonl
	assert_equal "$stderr" "tc-pareto: empty.jsonl: no records"

	run -1 --separate-stderr tc-pareto -O x no-such-file.jsonl
	assert_equal "$stderr" "tc-pareto: cannot open 'no-such-file.jsonl': No such file or directory"
}


@test "tc-sample: malformed model space files name the file and the entry" {
	printf '{"format": "transcode-space/1",\n "kind": "model",\n "name": }\n' > broken.json
	refuse "tc-sample: space file 'broken.json':3: malformed JSON: unexpected token near '}'" \
		tc-sample --space model --space-file broken.json
	space flexibert2 '.params.hidden[2] = "wide"'
	refuse "tc-sample: space file 'flexibert2.json': field 'params.hidden[2]': expected a number, got string" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.params.hidden = [128, 512, 256]'
	refuse "tc-sample: space file 'flexibert2.json': params.hidden: values must be strictly ascending" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 'del(.params.heads)'
	refuse "tc-sample: space file 'flexibert2.json': missing field 'params.heads'" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.params.ops = ["sa_sdp", "rnn"]'
	refuse "tc-sample: space file 'flexibert2.json': params.ops[1]: unknown head op 'rnn'" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.params.hidden = [16, 128] | .params.heads = [2, 32]'
	refuse "tc-sample: space file 'flexibert2.json': params.heads: 32 heads leave no head size for hidden size 16" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.params.layers = [0, 2]'
	refuse "tc-sample: space file 'flexibert2.json': params.layers[0]: expected an integer in [1, 32], got 0" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.params.depth = [1]'
	refuse "tc-sample: space file 'flexibert2.json': params.depth: unknown key" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.format = "transcode-space/2"'
	refuse "tc-sample: space file 'flexibert2.json': field 'format': expected 'transcode-space/1', got 'transcode-space/2'" \
		tc-sample --space model --space-file flexibert2.json
	space flexibert2 '.kind = "chip"'
	refuse "tc-sample: space file 'flexibert2.json': field 'kind': expected 'model' or 'accel', got 'chip'" \
		tc-sample --space model --space-file flexibert2.json
	refuse "tc-sample: cannot read space file 'nowhere.json': unable to open nowhere.json: No such file or directory" \
		tc-sample --space-file nowhere.json
}

@test "tc-sample: malformed accelerator space files name the entry" {
	space acceltran '.params.memory[3] = "sram-1-1-1"'
	refuse "tc-sample: space file 'acceltran.json': params.memory[3]: expected a memory such as 'dram-32-2-1' (rram, dram or hbm - banks - ranks - channels), got 'sram-1-1-1'" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.params.dataflow[0] = "bijj"'
	refuse "tc-sample: space file 'acceltran.json': params.dataflow[0]: expected a loop order, a permutation of 'bijk', got 'bijj'" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.params.tile_b = [1, 8]'
	refuse "tc-sample: space file 'acceltran.json': params.tile_b: every batch tile must fit the smallest batch (4)" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.params.tile_y = [8, 16]'
	refuse "tc-sample: space file 'acceltran.json': params.tile_y: must equal params.tile_x when square_tiles is true" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.fixed.dataflow = "bkji" | .params.dataflow = ["bijk"]'
	refuse "tc-sample: space file 'acceltran.json': fixed.dataflow: not one of the values in params.dataflow" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.params.pes = [64, 1.5]'
	refuse "tc-sample: space file 'acceltran.json': params.pes[1]: expected an integer in [1, 1.04858e+06], got 1.5" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.square_tiles = "yes"'
	refuse "tc-sample: space file 'acceltran.json': field 'square_tiles': expected true or false, got string" \
		tc-sample --space accel --space-file acceltran.json
	space acceltran '.params = []'
	refuse "tc-sample: space file 'acceltran.json': field 'params': expected an object" \
		tc-sample --space accel --space-file acceltran.json
}

@test "tc-sample: bad presets name the file and the field" {
	echo '{"model":{"l":2,"o":[["sa_sdp_64","sa_xyz_64"],["sa_sdp_64","sa_sdp_64"]],"h":[128,128],"f":[[512],[512]]}}' > op.json
	refuse "tc-sample: ./op.json: model.o[0][1]: unknown head op 'sa_xyz_64' (expected sa_sdp, sa_wma, l_dft, l_dct, c_5, c_9 or c_13, then _ and the head size)" \
		tc-sample --preset ./op.json
	echo '{"model":{"l":2,"o":[["sa_sdp_32","sa_sdp_32"],["sa_sdp_64","sa_sdp_64"]],"h":[128,128],"f":[[512],[512]]}}' > d.json
	refuse "tc-sample: ./d.json: model.o[0][0]: head size 32 in 'sa_sdp_32' does not match hidden size 128 over 2 heads (expected 64)" \
		tc-sample --preset ./d.json
	echo '{"model":{"l":2,"o":[["sa_sdp_64","sa_sdp_64"]],"h":[128,128],"f":[[512],[512]]}}' > short.json
	refuse "tc-sample: ./short.json: model.o: expected 2 entries (one per layer), got 1" \
		tc-sample --preset ./short.json
	echo '{"model":{"l":"two","o":[],"h":[],"f":[]}}' > type.json
	refuse "tc-sample: ./type.json: model: field 'l': expected a number, got string" \
		tc-sample --preset ./type.json
	echo '{"model":{"l":2,"o":[["sa_sdp_64","sa_sdp_64"],["sa_sdp_64","sa_sdp_64"]],"h":[128,100],"f":[[512],[512]]}}' > h.json
	refuse "tc-sample: ./h.json: model.o[1][0]: head size 64 in 'sa_sdp_64' does not match hidden size 100 over 2 heads (expected 50)" \
		tc-sample --preset ./h.json
	echo '{"model":{"l":2,"o":[["sa_sdp_50","sa_sdp_50"],["sa_sdp_50","sa_sdp_50"]],"h":[100,100],"f":[[512],[512]]}}' > h2.json
	refuse "tc-sample: ./h2.json: model.h[0]: 100 is not in the space 'flexibert2' (128, 256, 512, 768)" \
		tc-sample --preset ./h2.json
	refuse "tc-sample: $TC_SHARE/preset/bert-base.json: model.l: 12 is not in the space 'tiny' (2, 4)" \
		tc-sample --preset bert-base --space-file "$TC_SHARE/space/tiny.json"
	echo '{"accel":{"tile_b":1,"tile_x":16,"tile_y":16,"activation":"gelu","pes":64,"lanes_per_pe":16,"macs_per_lane":16,"softmax_per_pe":4,"batch":4,"act_buffer_mb":4,"weight_buffer_mb":8,"mask_buffer_mb":1,"memory":"dram-32-2-1","dataflow":"bijk","clock":700}}' > extra.json
	refuse "tc-sample: ./extra.json: accel.clock: unknown key" tc-sample --preset ./extra.json
	jq -c '.accel.pes = 96' extra.json | jq -c 'del(.accel.clock)' > pes.json
	refuse "tc-sample: ./pes.json: accel.pes: 96 is not in the space 'acceltran' (64, 128, 256, 512, 1024)" \
		tc-sample --preset ./pes.json
	jq -c 'del(.accel.clock) | del(.accel.batch)' extra.json > nobatch.json
	refuse "tc-sample: ./nobatch.json: missing field 'accel.batch'" tc-sample --preset ./nobatch.json
	jq -c 'del(.accel.clock) | .accel.tile_x = 8' extra.json > sq.json
	refuse "tc-sample: ./sq.json: accel.tile_y: 16 must equal tile_x 8 in the space 'acceltran'" tc-sample --preset ./sq.json
	jq -c 'del(.accel.clock) | .accel.act_buffer_mb = -4' extra.json > neg.json
	refuse "tc-sample: ./neg.json: field 'accel.act_buffer_mb': expected a size in (0, 1.04858e+06] MB, got -4" \
		tc-sample --preset ./neg.json
	printf '{"model": NaN}' > nan.json
	refuse "tc-sample: ./nan.json:1: malformed JSON: invalid token near 'NaN'" tc-sample --preset ./nan.json
	echo '{"description":"nothing"}' > none.json
	refuse "tc-sample: ./none.json: a preset needs \"model\" or \"accel\"" tc-sample --preset ./none.json
}

@test "tc-sim: bad records name file, line and field" {
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	jq -c '.accel.pes = 100' good.jsonl > pes.jsonl
	refuse "tc-sim: pes.jsonl:1: accel.pes: 100 is not in the space 'acceltran' (64, 128, 256, 512, 1024)" tc-sim pes.jsonl
	jq -c '.accel.memory = "sram-1-1-1"' good.jsonl > mem.jsonl
	refuse "tc-sim: mem.jsonl:1: field 'accel.memory': expected a memory such as 'dram-32-2-1' (rram, dram or hbm - banks - ranks - channels), got 'sram-1-1-1'" tc-sim mem.jsonl
	jq -c '.model.o[1][0] = "sa_xyz_64"' good.jsonl > op.jsonl
	refuse "tc-sim: op.jsonl:1: model.o[1][0]: unknown head op 'sa_xyz_64' (expected sa_sdp, sa_wma, l_dft, l_dct, c_5, c_9 or c_13, then _ and the head size)" tc-sim op.jsonl
	jq -c '.model.o[0] = ["sa_sdp_40", "sa_sdp_40", "sa_sdp_40"]' good.jsonl > heads.jsonl
	refuse "tc-sim: heads.jsonl:1: model.o[0][0]: head size 40 in 'sa_sdp_40' does not match hidden size 128 over 3 heads (expected 42)" tc-sim heads.jsonl
	jq -c 'del(.accel.batch)' good.jsonl > nobatch.jsonl
	refuse "tc-sim: nobatch.jsonl:1: missing field 'accel.batch'" tc-sim nobatch.jsonl
	jq -c 'del(.model)' good.jsonl > nomodel.jsonl
	refuse "tc-sim: nomodel.jsonl:1: missing field 'model'" tc-sim nomodel.jsonl
	jq -c '.model.h[0] = "wide"' good.jsonl > type.jsonl
	refuse "tc-sim: type.jsonl:1: field 'model.h[0]': expected a number, got string" tc-sim type.jsonl
	jq -c '.train = {sparsity: {activation: 1.5}}' good.jsonl > sp.jsonl
	refuse "tc-sim: sp.jsonl:1: field 'train.sparsity.activation': expected a fraction in [0, 1), got 1.5" tc-sim sp.jsonl
	jq -c '.accel.dataflow = "bikb"' good.jsonl > df.jsonl
	refuse "tc-sim: df.jsonl:1: field 'accel.dataflow': expected a loop order, a permutation of 'bijk', got 'bikb'" tc-sim df.jsonl
	printf '\n{"model": NaN}\n' > nan.jsonl
	refuse "tc-sim: nan.jsonl:2: malformed JSON at column 13: invalid token near 'NaN'" tc-sim nan.jsonl
	: > empty.jsonl
	refuse "tc-sim: empty.jsonl: no records" tc-sim empty.jsonl
	printf '{"model":{"l":2' > cut.jsonl
	refuse "tc-sim: cut.jsonl:1: malformed JSON at column 15: '}' expected near end of file" tc-sim cut.jsonl
}

@test "tc-sim: a bad record after good ones leaves only whole records on stdout" {
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	{ cat good.jsonl good.jsonl; jq -c '.accel.pes = 3' good.jsonl; } > mixed.jsonl
	run -1 --separate-stderr tc-sim --threads 1 mixed.jsonl
	[[ "$stderr" == "tc-sim: mixed.jsonl:3: accel.pes: 3 is not in the space"* ]] || fail "$stderr"
	echo "$output" > out.jsonl
	[ "$(jq -c .sim.cycles out.jsonl | wc -l)" -eq 2 ]
}

@test "tc-sim: negative or absurd options are usage errors" {
	run -2 --separate-stderr tc-sim --batch 0
	[[ "$stderr" == "tc-sim: option '--batch': expected an integer in [1, 4096], got '0'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --seq -5
	[[ "$stderr" == "tc-sim: option '--seq': expected an integer in [1, 65536], got '-5'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --sparsity act=1.5
	[[ "$stderr" == "tc-sim: option '--sparsity': expected a number in [0, 0.999], got '1.5'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --sparsity foo=0.5
	[[ "$stderr" == "tc-sim: option '--sparsity': unknown class 'foo'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --mode learning
	[[ "$stderr" == "tc-sim: option '--mode': expected inference or training, got 'learning'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --fidelity exact
	run -2 --separate-stderr tc-sim --top 3
	[[ "$stderr" == "tc-sim: option '--top' needs --sweep"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sim --sweep --fidelity cycle
	run -2 --separate-stderr tc-sim --weights 1,2
	[[ "$stderr" == "tc-sim: option '--weights': expected three numbers L,E,A"* ]] || fail "$stderr"
	tc-sample --preset bert-tiny --preset acceltran-edge | jq -c '.accel.tile_b = 4' > b4.jsonl
	refuse "tc-sim: b4.jsonl:1: option '--batch': 1 is smaller than the batch tile 4" tc-sim --batch 1 b4.jsonl
}

@test "tc-sim: a malformed hardware profile names the file and the entry" {
	jq '.modules.pre_sparsity.area_um2 = "big"' "$TC_SHARE/hw/acceltran-14nm.json" > hw.json
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	refuse "tc-sim: hardware profile 'hw.json': modules.pre_sparsity: field 'area_um2': expected a number, got string" tc-sim --hw hw.json good.jsonl
	jq 'del(.memories."dram-32-2-1")' "$TC_SHARE/hw/acceltran-14nm.json" > hw2.json
	refuse "tc-sim: good.jsonl:1: profile 'acceltran-14nm' has no main memory 'dram-32-2-1'" tc-sim --hw hw2.json good.jsonl
	jq '.clock_mhz = -700' "$TC_SHARE/hw/acceltran-14nm.json" > hw3.json
	refuse "tc-sim: hardware profile 'hw3.json': field 'clock_mhz': expected a positive number, got -700" tc-sim --hw hw3.json good.jsonl
	jq '.modules.warp_drive = {area_um2: 1, dynamic_mw: 1, leakage_mw: 1}' "$TC_SHARE/hw/acceltran-14nm.json" > hw4.json
	run -1 --separate-stderr tc-sim --hw hw4.json good.jsonl
	[[ "$stderr" == "tc-sim: hardware profile 'hw4.json': modules.warp_drive: unknown module"* ]] || fail "$stderr"
}
