#!/usr/bin/env bats
# Bad input, for every tool in one place: malformed JSON, missing and mistyped fields, NaN and Inf,
# values outside a space, empty input, malformed space and preset files, truncated and corrupted
# tensor streams and checkpoints, oversized values (huge integers, 1e308, a model of 10^9 layers or
# of 3e11 parameters) and very long lines. Each case must give one line on stderr naming the file,
# the line or entry and the field, exit status 1, and no output.

load helper
bats_require_minimum_version 1.5.0

export TC_DATA="$top/tests/data/task"
export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/cache"
T="-q --vocab-size 300 --threads 1"
tiny='{"id":"tiny","model":{"l":1,"o":[["sa_sdp_8","l_dft_8"]],"h":[16],"f":[[32]]}}'

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

# refuse_like PATTERN COMMAND...: the same, the line matching a shell pattern (for a column number
# or a machine's memory size).
refuse_like() {
	local want=$1
	shift
	run -1 --separate-stderr "$@"
	[ -z "$output" ] || fail "stdout not empty: $output"
	[[ "$stderr" == $want ]] || fail "expected '$want', got '$stderr'"
}

# st HEADER [DATA]: one safetensors frame: the header's length as 8 bytes little-endian (under
# 64 KiB here), the header, then DATA (printf escapes).
st() {
	local n=${#1}
	printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)) 0 0 0 0 0 0)"
	printf '%s' "$1"
	printf "${2-}"
}

# poison CHECKPOINT OUT BYTES: a copy of a tc-train checkpoint whose first LayerNorm weight has the
# 4 bytes BYTES (printf escapes): '\377\377\377\377' a NaN, '\0\0\200\177' +Inf.
poison() {
	local hlen off
	hlen=$(od -An -tu8 -N8 "$1" | tr -d ' ')
	off=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen" | jq '."bert.embeddings.LayerNorm.weight".data_offsets[0]')
	cp "$1" "$2"
	printf "$3" | dd of="$2" bs=1 seek=$((8 + hlen + off)) conv=notrunc status=none
}

# pad N: N letters x and no newline, for lines several megabytes long.
pad() {
	head -c "$1" /dev/zero | tr '\0' x
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

@test "tc-pareto: huge integers, 1e308, an infinite reference point and very long lines" {
	printf '{"x":1,"y":99999999999999999999}\n' > big.jsonl
	refuse "tc-pareto: big.jsonl:1: malformed JSON at column 31: too big integer near '99999999999999999999'" \
		tc-pareto -O x,y big.jsonl
	printf '{"x":1,"y":2}\n{"x":9007199254740993,"y":1}\n' > beyond.jsonl
	refuse "tc-pareto: beyond.jsonl:2: field 'x': 9007199254740993 is beyond 2^53" tc-pareto -O x,y beyond.jsonl
	printf '{"x":true,"y":1}\n' > bool.jsonl
	refuse "tc-pareto: bool.jsonl:1: field 'x': expected a number, got true" tc-pareto -O x,y bool.jsonl
	printf '{"x":-Infinity,"y":1}\n' > inf.jsonl
	refuse "tc-pareto: inf.jsonl:1: malformed JSON at column 6: invalid token near '-'" tc-pareto -O x,y inf.jsonl
	# finite values whose range is not: the default reference point would be infinite
	printf '{"x":1e308,"y":-1e308}\n{"x":-1e308,"y":1e308}\n' > wide.jsonl
	refuse "tc-pareto: objective 'x': the default reference point is not finite (the values span more than a double holds); give --ref" \
		tc-pareto -O x,y -H -o out.jsonl wide.jsonl
	[ ! -e out.jsonl ]
	printf '{"x":1.7e308,"y":1}\n{"x":1e308,"y":1e308}\n' > hv.jsonl
	refuse "tc-pareto: the hypervolume is not finite (the front spans more than a double holds); give a nearer --ref or rescale the objectives" \
		tc-pareto -O x:max,y -H --ref -1.7e308,1.7e308 hv.jsonl
	# a record of 4 MB passes through whole; a malformed one of 4 MB is named in one short line
	{ printf '{"x":1,"y":2,"pad":"'; pad 4000000; printf '"}\n'; } > long.jsonl
	run -0 tc-pareto -O x,y -o out.jsonl long.jsonl
	cmp out.jsonl long.jsonl
	{ printf '{"x":1,"y":2}\n{"x":1,"pad":"'; pad 4000000; printf '\n'; } > longbad.jsonl
	refuse "tc-pareto: longbad.jsonl:2: malformed JSON at column 4000014: premature end of input" \
		tc-pareto -O x,y longbad.jsonl
}

@test "a line longer than 64 MiB is refused at the limit, not read whole" {
	{ printf '{"a":1}\n{"a":"'; pad $((64 << 20)); printf '"}\n'; } > huge.jsonl
	refuse "tc-pareto: huge.jsonl:2: line longer than 67108864 bytes" tc-pareto -O a huge.jsonl
}

@test "tc-sample: bad --history and --fix-accel/--fix-model records name file, line and field" {
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	printf '{"id":"437d8ea117dcd78c"}\n{"id":' > cut.jsonl
	refuse "tc-sample: cut.jsonl:2: malformed JSON at column 6: unexpected token near end of file" \
		tc-sample --propose random --history cut.jsonl -n 1
	printf '{"id":"437d8ea117dcd78c"}\n{"x":1}\n' > noid.jsonl
	refuse "tc-sample: noid.jsonl:2: missing field 'id'" tc-sample --propose random --history noid.jsonl -n 1
	printf '{"id":437}\n' > numid.jsonl
	refuse "tc-sample: numid.jsonl:1: field 'id': expected a string, got number" \
		tc-sample --propose random --history numid.jsonl -n 1
	printf '{"id":"437d8ea117dcd78cc"}\n' > longid.jsonl
	refuse "tc-sample: longid.jsonl:1: field 'id': expected 16 hexadecimal digits, got '437d8ea117dcd78cc'" \
		tc-sample --propose random --history longid.jsonl -n 1
	printf '{"id":"437d8ea117dcd78c","score":{"performance":1e999}}\n' > inf.jsonl
	refuse "tc-sample: inf.jsonl:1: malformed JSON at column 53: real number overflow near '1e999'" \
		tc-sample --propose random --history inf.jsonl -n 1
	printf '{"id":"437d8ea117dcd78c","score":{"performance":NaN}}\n' > nan.jsonl
	refuse "tc-sample: nan.jsonl:1: malformed JSON at column 51: invalid token near 'NaN'" \
		tc-sample --propose random --history nan.jsonl -n 1
	jq -c '.accel.pes = 1e308' good.jsonl > pes.jsonl
	refuse "tc-sample: pes.jsonl:1: field 'accel.pes': 1e+308 is outside [1, 1048576]" \
		tc-sample --fix-accel pes.jsonl -n 1
	jq -c '.accel.pes = 96' good.jsonl > space.jsonl
	refuse "tc-sample: space.jsonl:1: accel.pes: 96 is not in the space 'acceltran' (64, 128, 256, 512, 1024)" \
		tc-sample --fix-accel space.jsonl -n 1
	jq -c '.model.l = 1000000000' good.jsonl > deep.jsonl
	refuse "tc-sample: deep.jsonl:1: model: field 'l': 1000000000 is outside [1, 32]" \
		tc-sample --fix-model deep.jsonl -n 1
	jq -c 'del(.model)' good.jsonl > nomodel.jsonl
	refuse "tc-sample: nomodel.jsonl:1: missing field 'model'" tc-sample --fix-model nomodel.jsonl -n 1
	: > empty.jsonl
	refuse "tc-sample: empty.jsonl: no records" tc-sample --fix-model empty.jsonl -n 1
	{ printf '{"pad":"'; pad 4000000; printf '\n'; } > longbad.jsonl
	refuse "tc-sample: longbad.jsonl:1: malformed JSON at column 4000008: premature end of input" \
		tc-sample --fix-accel longbad.jsonl -n 1
	# an empty history is the first round of a search, not an error
	run -0 tc-sample --propose random --history empty.jsonl -n 2 -o out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 2 ]
}

@test "tc-sample: a directory or a missing file in place of a space, a preset or a history" {
	mkdir dir
	refuse "tc-sample: cannot read 'dir': Is a directory" tc-sample --space-file dir
	refuse "tc-sample: cannot read './dir': Is a directory" tc-sample --preset ./dir
	refuse "tc-sample: dir:1: read error: Is a directory" tc-sample --propose random --history dir
	refuse "tc-sample: dir:1: read error: Is a directory" tc-sample --fix-accel dir
	refuse "tc-sample: cannot open 'nowhere.jsonl': No such file or directory" \
		tc-sample --propose random --history nowhere.jsonl
}

@test "tc-sim: NaN, Inf, huge integers, 1e308, 10^9 layers and very long lines" {
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	sed 's/"pes":64/"pes":NaN/' good.jsonl > nan.jsonl
	refuse "tc-sim: nan.jsonl:1: malformed JSON at column 204: invalid token near 'NaN'" tc-sim nan.jsonl
	sed 's/"pes":64/"pes":Infinity/' good.jsonl > inf.jsonl
	refuse "tc-sim: inf.jsonl:1: malformed JSON at column 209: invalid token near 'Infinity'" tc-sim inf.jsonl
	sed 's/"pes":64/"pes":1e999/' good.jsonl > over.jsonl
	refuse "tc-sim: over.jsonl:1: malformed JSON at column 206: real number overflow near '1e999'" tc-sim over.jsonl
	sed 's/"pes":64/"pes":99999999999999999999/' good.jsonl > big.jsonl
	refuse "tc-sim: big.jsonl:1: malformed JSON at column 221: too big integer near '99999999999999999999'" tc-sim big.jsonl
	sed 's/"pes":64/"pes":9007199254740993/' good.jsonl > beyond.jsonl
	refuse "tc-sim: beyond.jsonl:1: field 'accel.pes': 9007199254740993 is beyond 2^53" tc-sim beyond.jsonl
	jq -c '.accel.act_buffer_mb = 1e308' good.jsonl > buf.jsonl
	refuse "tc-sim: buf.jsonl:1: field 'accel.act_buffer_mb': expected a size in (0, 1.04858e+06] MB, got 1e+308" tc-sim buf.jsonl
	jq -c '.model.h[1] = 1e308' good.jsonl > h.jsonl
	refuse "tc-sim: h.jsonl:1: field 'model.h[1]': 1e+308 is outside [1, 65536]" tc-sim h.jsonl
	jq -c '.model.l = 1000000000' good.jsonl > deep.jsonl
	refuse "tc-sim: deep.jsonl:1: model: field 'l': 1000000000 is outside [1, 32]" tc-sim deep.jsonl
	jq -c '.accel.pes = 128.5' good.jsonl > frac.jsonl
	refuse "tc-sim: frac.jsonl:1: field 'accel.pes': expected an integer, got 128.5" tc-sim frac.jsonl
	jq -c '.accel = "edge"' good.jsonl > str.jsonl
	refuse "tc-sim: str.jsonl:1: field 'accel': expected an object, got string" tc-sim str.jsonl
	# a record of 4 MB is simulated and passes through whole; a malformed one is named in one line
	{ printf '{"pad":"'; pad 4000000; printf '",'; tail -c +2 good.jsonl; } > long.jsonl
	run -0 tc-sim --threads 1 -o out.jsonl long.jsonl
	assert_equal "$(jq -c 'del(.sim)' out.jsonl)" "$(cat long.jsonl)"
	{ cat good.jsonl; printf '{"pad":"'; pad 4000000; printf '\n'; } > longbad.jsonl
	refuse "tc-sim: longbad.jsonl:2: malformed JSON at column 4000008: premature end of input" \
		tc-sim -o out2.jsonl longbad.jsonl
	[ ! -e out2.jsonl ]
}

@test "tc-train: malformed, mistyped, NaN, oversized and outside-the-space records; empty input; long lines" {
	echo "$tiny" > good.jsonl
	sed 's/"h":\[16\]/"h":[NaN]/' good.jsonl > nan.jsonl
	refuse "tc-train: nan.jsonl:1: malformed JSON at column 65: invalid token near 'NaN'" \
		tc-train $T --steps 1 --no-checkpoint nan.jsonl
	sed 's/"h":\[16\]/"h":[-Infinity]/' good.jsonl > inf.jsonl
	refuse "tc-train: inf.jsonl:1: malformed JSON at column 63: invalid token near '-'" \
		tc-train $T --steps 1 --no-checkpoint inf.jsonl
	sed 's/"h":\[16\]/"h":[1e308]/' good.jsonl > h.jsonl
	refuse "tc-train: h.jsonl:1: field 'model.h[0]': 1e+308 is outside [1, 65536]" \
		tc-train $T --steps 1 --no-checkpoint h.jsonl
	sed 's/"h":\[16\]/"h":[99999999999999999999]/' good.jsonl > big.jsonl
	refuse "tc-train: big.jsonl:1: malformed JSON at column 82: too big integer near '99999999999999999999'" \
		tc-train $T --steps 1 --no-checkpoint big.jsonl
	sed 's/"h":\[16\]/"h":[16.5]/' good.jsonl > frac.jsonl
	refuse "tc-train: frac.jsonl:1: field 'model.h[0]': expected an integer, got 16.5" \
		tc-train $T --steps 1 --no-checkpoint frac.jsonl
	sed 's/"l":1/"l":1000000000/' good.jsonl > deep.jsonl
	refuse "tc-train: deep.jsonl:1: model: field 'l': 1000000000 is outside [1, 32]" \
		tc-train $T --steps 1 --no-checkpoint deep.jsonl
	sed 's/sa_sdp_8/sa_sdp_9/' good.jsonl > op.jsonl
	refuse "tc-train: op.jsonl:1: model.o[0][0]: head size 9 in 'sa_sdp_9' does not match hidden size 16 over 2 heads (expected 8)" \
		tc-train $T --steps 1 --no-checkpoint op.jsonl
	jq -c 'del(.model.f)' good.jsonl > nof.jsonl
	refuse "tc-train: nof.jsonl:1: missing field 'model.f'" tc-train $T --steps 1 --no-checkpoint nof.jsonl
	echo '{"model":[]}' > arr.jsonl
	refuse "tc-train: arr.jsonl:1: field 'model': expected an object, got array" \
		tc-train $T --steps 1 --no-checkpoint arr.jsonl
	# within every bound, yet 3e11 parameters: refused before anything is allocated or trained
	echo '{"model":{"l":2,"o":[["sa_sdp_32768","sa_sdp_32768"],["sa_sdp_32768","sa_sdp_32768"]],"h":[65536,65536],"f":[[1048576],[1048576]]}}' > huge.jsonl
	refuse_like "tc-train: huge.jsonl:1: model: 3.14e+11 parameters need 5.02e+03 GB for weights, gradients and AdamW moments, more than the * GB of memory here" \
		tc-train $T --steps 1 --no-checkpoint -o out.jsonl huge.jsonl
	[ ! -e out.jsonl ]
	printf '\n \n' > blank.jsonl
	refuse "tc-train: blank.jsonl: no records" tc-train $T --steps 1 --no-checkpoint blank.jsonl
	{ printf '%s\n{"pad":"' "$tiny"; pad 4000000; printf '\n'; } > longbad.jsonl
	refuse "tc-train: longbad.jsonl:2: malformed JSON at column 4000008: premature end of input" \
		tc-train $T --steps 1 --no-checkpoint longbad.jsonl
	{ printf '{"pad":"'; pad 4000000; printf '",'; echo "${tiny#\{}"; } > long.jsonl
	run -0 tc-train $T --steps 1 --no-checkpoint -o out.jsonl long.jsonl
	jq -e --slurpfile in long.jsonl 'del(.train) == $in[0] and .train.steps == 1' out.jsonl > /dev/null
}

@test "tc-train: truncated, corrupted and foreign checkpoints for --init and --resume" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 2 --checkpoint ck.safetensors in.jsonl > /dev/null
	size=$(stat -c %s ck.safetensors)
	hlen=$(od -An -tu8 -N8 ck.safetensors | tr -d ' ')
	# cut: nothing, inside the length, inside the header, inside the data
	head -c 0 ck.safetensors > cut0.st
	head -c 5 ck.safetensors > cut5.st
	head -c 100 ck.safetensors > cut100.st
	head -c $((size - 4)) ck.safetensors > cutend.st
	for opt in --init --resume; do
		run_ck() { # the checkpoint given to --init, or copied to resume from
			if [ "$opt" = --init ]; then
				refuse "$1" tc-train $T --steps 2 --no-checkpoint --init "$2" in.jsonl
			else
				cp "$2" r.st
				refuse "${1//$2/r.st}" tc-train $T --steps 2 --checkpoint r.st --resume in.jsonl
			fi
		}
		run_ck "tc-train: in.jsonl:1: cut0.st: empty file (a safetensors file starts with an 8-byte header length)" cut0.st
		run_ck "tc-train: in.jsonl:1: cut5.st: truncated (expected 8 header-length bytes, got 5)" cut5.st
		run_ck "tc-train: in.jsonl:1: cut100.st: header length $hlen is larger than the rest of the file (92 bytes)" cut100.st
		run_ck "tc-train: in.jsonl:1: cutend.st: tensor 'tokenizer.vocab_txt': data_offsets [$((size - 8 - hlen - 1313)), $((size - 8 - hlen))] out of range (the data section has $((size - 8 - hlen - 4)) bytes)" cutend.st
	done
	# corrupted: a byte of the length, of the header's JSON, NaN weights
	cp ck.safetensors len.st
	printf '\377' | dd of=len.st bs=1 seek=7 conv=notrunc status=none
	refuse "tc-train: in.jsonl:1: len.st: header length $(printf %u $((hlen | 255 << 56))) exceeds the limit of 100000000 bytes" \
		tc-train $T --steps 2 --no-checkpoint --init len.st in.jsonl
	cp ck.safetensors json.st
	printf '\377' | dd of=json.st bs=1 seek=30 conv=notrunc status=none
	refuse_like "tc-train: in.jsonl:1: json.st: header is not valid JSON: unable to decode byte 0xff near * (byte 22)" \
		tc-train $T --steps 2 --no-checkpoint --init json.st in.jsonl
	refuse_like "tc-train: in.jsonl:1: json.st: header is not valid JSON: unable to decode byte 0xff near * (byte 22)" \
		tc-train $T --steps 2 --checkpoint json.st --resume in.jsonl
	# NaN and Inf weights: named, not trained into a NaN loss blamed on the learning rate
	poison ck.safetensors nan.st '\377\377\377\377'
	refuse "tc-train: in.jsonl:1: nan.st: tensor 'bert.embeddings.LayerNorm.weight': element 0 is nan (a checkpoint holds finite numbers)" \
		tc-train $T --steps 2 --no-checkpoint --init nan.st in.jsonl
	poison ck.safetensors inf.st '\0\0\200\177'
	refuse "tc-train: in.jsonl:1: inf.st: tensor 'bert.embeddings.LayerNorm.weight': element 0 is inf (a checkpoint holds finite numbers)" \
		tc-train $T --steps 4 --checkpoint inf.st --resume in.jsonl
	# a safetensors file that tc-train did not write
	tensor_tool make other.st 0
	refuse "tc-train: in.jsonl:1: other.st: no tensor 'tokenizer.vocab_txt'" \
		tc-train $T --steps 2 --no-checkpoint --init other.st in.jsonl
	refuse "tc-train: in.jsonl:1: other.st: a checkpoint of another model (none)" \
		tc-train $T --steps 2 --checkpoint other.st --resume in.jsonl
	mkdir dir
	refuse "tc-train: in.jsonl:1: dir: read error: Is a directory" tc-train $T --steps 2 --no-checkpoint --init dir in.jsonl
	refuse "tc-train: in.jsonl:1: cannot open 'nowhere.st': No such file or directory" \
		tc-train $T --steps 2 --no-checkpoint --init nowhere.st in.jsonl
}

@test "tc-prune apply: truncated, corrupted, malformed, NaN, oversized and empty streams; no -o file left" {
	x='{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
	one='\0\0\200\77\0\0\0\100' # 1.0f, 2.0f
	{ st "$x" "$one"; st "$x" "$one"; } | gzip -n > in.tcs
	size=$(stat -c %s in.tcs)
	prune() { # prune EXPECTED STREAM [RULE...]: refused, and neither the -o file nor a temporary left
		local want=$1 in=$2
		shift 2
		refuse "$want" tc-prune apply -q ${@:---tau 1} -o out.tcs "$in"
		[ ! -e out.tcs ] && [ -z "$(ls -A | grep -v -e '\.tcs$' -e '^separate-stderr-' -e '^dir$')" ] || fail "left behind: $(ls -A)"
	}
	head -c 5 in.tcs > cut.tcs
	prune "tc-prune: cut.tcs: frame 0: truncated gzip stream (unexpected end of file)" cut.tcs
	head -c $((size - 4)) in.tcs > cut.tcs
	prune "tc-prune: cut.tcs: frame 2: truncated gzip stream (unexpected end of file)" cut.tcs
	{ st "$x" "$one"; st "$x" '\0\0\200\77\0\0'; } | gzip -n > short.tcs
	prune "tc-prune: short.tcs: frame 1: truncated (expected 8 data bytes, got 6)" short.tcs
	cp in.tcs bad.tcs
	printf '\377' | dd of=bad.tcs bs=1 seek=3 conv=notrunc status=none
	prune "tc-prune: bad.tcs: frame 0: corrupted gzip stream (unknown header flags set)" bad.tcs
	cp in.tcs bad.tcs
	printf '\377' | dd of=bad.tcs bs=1 seek=$((size - 6)) conv=notrunc status=none
	prune "tc-prune: bad.tcs: frame 1: corrupted gzip stream (incorrect data check)" bad.tcs
	st '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]' "$one" | gzip -n > json.tcs
	prune "tc-prune: json.tcs: frame 0: header is not valid JSON: '}' expected near end of file (byte 52)" json.tcs
	st '{"x":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}' "$one" | gzip -n > dtype.tcs
	prune "tc-prune: dtype.tcs: frame 0: tensor 'x': \"dtype\" is not a string" dtype.tcs
	st '{"x":{"dtype":"F32","shape":[2]}}' "$one" | gzip -n > nooff.tcs
	prune "tc-prune: nooff.tcs: frame 0: tensor 'x': missing \"data_offsets\"" nooff.tcs
	st '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' '\0\0\300\177\0\0\0\100' | gzip -n > nan.tcs
	prune "tc-prune: nan.tcs: frame 0: tensor 'x': element 0 is nan (pruning needs finite values)" nan.tcs --top-k 1
	st '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' '\0\0\200\377\0\0\0\100' | gzip -n > inf.tcs
	prune "tc-prune: inf.tcs: frame 0: tensor 'x': element 0 is -inf (pruning needs finite values)" inf.tcs --target 0.5
	# oversized: a shape of 2^53 + 1 elements, a dimension of 1e308, a header length of 2^64 - 1,
	# a data section of 4 GB that is not there
	st '{"x":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}}' | gzip -n > big.tcs
	prune "tc-prune: big.tcs: frame 0: tensor 'x': data_offsets [0, 8] do not match shape [9007199254740993] of F32 (36028797018963972 bytes)" big.tcs
	st '{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}' '\0\0\200\77' | gzip -n > dims.tcs
	prune "tc-prune: dims.tcs: frame 0: tensor 'x': shape has 9 dimensions (at most 8 are supported)" dims.tcs
	st '{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}' "$one" | gzip -n > neg.tcs
	prune "tc-prune: neg.tcs: frame 0: tensor 'x': shape [-2] has a negative dimension" neg.tcs
	st '{"x":{"dtype":"F32","shape":[1e308],"data_offsets":[0,8]}}' | gzip -n > real.tcs
	prune "tc-prune: real.tcs: frame 0: tensor 'x': shape[0] is not an integer" real.tcs
	printf '\377\377\377\377\377\377\377\377{}' | gzip -n > hlen.tcs
	prune "tc-prune: hlen.tcs: frame 0: header length 18446744073709551615 exceeds the limit of 100000000 bytes" hlen.tcs
	st '{"x":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}' "$one" | gzip -n > gb.tcs
	prune "tc-prune: gb.tcs: frame 0: truncated (expected 4294967296 data bytes, got 8)" gb.tcs
	: > empty.tcs
	prune "tc-prune: empty.tcs: empty input (not even a gzip header)" empty.tcs
	printf '' | gzip -n > nothing.tcs
	prune "tc-prune: nothing.tcs: empty stream (no frames)" nothing.tcs
	mkdir dir
	prune "tc-prune: dir: frame 0: read error: Is a directory" dir
}

@test "tc-prune sweep and calibrate: truncated and corrupted checkpoints; bad, empty and long records" {
	echo "$tiny" > in.jsonl
	tc-train $T --steps 2 --checkpoint ck.safetensors in.jsonl > trained.jsonl
	hlen=$(od -An -tu8 -N8 ck.safetensors | tr -d ' ')
	C="--threads 1 --batches 1"
	head -c 100 ck.safetensors > cut.st
	refuse "tc-prune: cut.st: header length $hlen is larger than the rest of the file (92 bytes)" \
		tc-prune sweep --checkpoint cut.st --threads 1 --taus 0 --top-k none
	refuse "tc-prune: cut.st: header length $hlen is larger than the rest of the file (92 bytes)" \
		tc-prune calibrate --checkpoint cut.st $C
	jq -c '.train.checkpoint = "cut.st"' trained.jsonl > cut.jsonl
	refuse "tc-prune: cut.jsonl:1: cut.st: header length $hlen is larger than the rest of the file (92 bytes)" \
		tc-prune calibrate $C -o out.jsonl cut.jsonl
	[ ! -e out.jsonl ]
	cp ck.safetensors bad.st
	printf '\377' | dd of=bad.st bs=1 seek=7 conv=notrunc status=none
	refuse "tc-prune: bad.st: header length $(printf %u $((hlen | 255 << 56))) exceeds the limit of 100000000 bytes" \
		tc-prune sweep --checkpoint bad.st --threads 1 --taus 0 --top-k none
	cp ck.safetensors json.st
	printf '\377' | dd of=json.st bs=1 seek=30 conv=notrunc status=none
	refuse_like "tc-prune: json.st: header is not valid JSON: unable to decode byte 0xff near * (byte 22)" \
		tc-prune calibrate --checkpoint json.st $C
	tensor_tool make other.st 0
	refuse "tc-prune: other.st: not a tc-train checkpoint (metadata 'model' or 'config' missing)" \
		tc-prune calibrate --checkpoint other.st $C
	# NaN and Inf weights would evaluate to accuracies and thresholds that look valid
	poison ck.safetensors nan.st '\377\377\377\377'
	refuse "tc-prune: nan.st: tensor 'bert.embeddings.LayerNorm.weight': element 0 is nan (a checkpoint holds finite numbers)" \
		tc-prune sweep --checkpoint nan.st --threads 1 --taus 0 --top-k none
	poison ck.safetensors inf.st '\0\0\200\177'
	jq -c '.train.checkpoint = "inf.st"' trained.jsonl > inf.jsonl
	refuse "tc-prune: inf.jsonl:1: inf.st: tensor 'bert.embeddings.LayerNorm.weight': element 0 is inf (a checkpoint holds finite numbers)" \
		tc-prune calibrate $C -o out.jsonl inf.jsonl
	[ ! -e out.jsonl ]
	# records
	jq -c '.train.checkpoint = 5' trained.jsonl > type.jsonl
	refuse "tc-prune: type.jsonl:1: field 'train.checkpoint': expected a string, got number" tc-prune calibrate $C type.jsonl
	jq -c '.train = [1]' trained.jsonl > arr.jsonl
	refuse "tc-prune: arr.jsonl:1: missing field 'train.checkpoint'" tc-prune calibrate $C arr.jsonl
	sed 's/"val_accuracy":[^,]*/"val_accuracy":NaN/' trained.jsonl > nan.jsonl
	refuse_like "tc-prune: nan.jsonl:1: malformed JSON at column * invalid token near 'NaN'" tc-prune calibrate $C nan.jsonl
	sed 's/"val_accuracy":[^,]*/"val_accuracy":-Infinity/' trained.jsonl > inf2.jsonl
	refuse_like "tc-prune: inf2.jsonl:1: malformed JSON at column * invalid token near '-'" tc-prune calibrate $C inf2.jsonl
	sed 's/"steps":2/"steps":99999999999999999999/' trained.jsonl > big.jsonl
	refuse_like "tc-prune: big.jsonl:1: malformed JSON at column * too big integer near '99999999999999999999'" \
		tc-prune calibrate $C big.jsonl
	{ cat trained.jsonl; printf '{"train":'; } > cut2.jsonl
	refuse "tc-prune: cut2.jsonl:2: malformed JSON at column 9: unexpected token near end of file" \
		tc-prune calibrate $C -o out.jsonl cut2.jsonl
	[ ! -e out.jsonl ]
	: > empty.jsonl
	refuse "tc-prune: empty.jsonl: no records" tc-prune calibrate $C -o out.jsonl empty.jsonl
	[ ! -e out.jsonl ]
	refuse "tc-prune: <stdin>: no records" tc-prune calibrate $C < /dev/null
	{ printf '{"pad":"'; pad 4000000; printf '",'; tail -c +2 trained.jsonl; } > long.jsonl
	run -0 tc-prune calibrate $C -o out.jsonl long.jsonl
	jq -e --slurpfile in long.jsonl 'del(.prune) == $in[0] and .prune.batches == 1' out.jsonl > /dev/null
}

@test "tc-score: NaN, Inf, huge integers, 1e308, negative and mistyped fields, long lines, bad config" {
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim | jq -c '.train.val_accuracy = 0.5' > good.jsonl
	sed 's/"latency_s":[^,]*/"latency_s":NaN/' good.jsonl > nan.jsonl
	refuse_like "tc-score: nan.jsonl:1: malformed JSON at column * invalid token near 'NaN'" tc-score nan.jsonl
	sed 's/"latency_s":[^,]*/"latency_s":Infinity/' good.jsonl > inf.jsonl
	refuse_like "tc-score: inf.jsonl:1: malformed JSON at column * invalid token near 'Infinity'" tc-score inf.jsonl
	sed 's/"latency_s":[^,]*/"latency_s":99999999999999999999/' good.jsonl > big.jsonl
	refuse_like "tc-score: big.jsonl:1: malformed JSON at column * too big integer near '99999999999999999999'" tc-score big.jsonl
	jq -c '.sim.energy_breakdown_j.dynamic.mac_lanes = 1e308 | .sim.energy_breakdown_j.dynamic.softmax = 1e308' good.jsonl > sum.jsonl
	refuse "tc-score: sum.jsonl:1: field 'sim.energy_breakdown_j.dynamic': the sum of its values is not finite" tc-score sum.jsonl
	jq -c 'del(.sim.area_mm2)' good.jsonl > missing.jsonl
	refuse "tc-score: missing.jsonl:1: missing field 'sim.area_mm2'" tc-score missing.jsonl
	printf '\n\n' > empty.jsonl
	refuse "tc-score: empty.jsonl: no records" tc-score empty.jsonl
	jq -c '.sim.latency_s = -1' good.jsonl > neg.jsonl
	refuse "tc-score: neg.jsonl:1: field 'sim.latency_s': -1 is negative" tc-score neg.jsonl
	jq -c '.sim.area_mm2 = "small"' good.jsonl > type.jsonl
	refuse "tc-score: type.jsonl:1: field 'sim.area_mm2': expected a number, got string" tc-score type.jsonl
	jq -c '.train.val_accuracy = 1e308' good.jsonl > acc.jsonl
	refuse "tc-score: acc.jsonl:1: field 'train.val_accuracy': 1e308 is outside [0, 1]" tc-score acc.jsonl
	{ cat good.jsonl; printf '{"pad":"'; pad 4000000; printf '\n'; } > longbad.jsonl
	refuse "tc-score: longbad.jsonl:2: malformed JSON at column 4000008: premature end of input" \
		tc-score -o out.jsonl longbad.jsonl
	[ ! -e out.jsonl ]
	{ printf '{"pad":"'; pad 4000000; printf '",'; tail -c +2 good.jsonl; } > long.jsonl
	run -0 tc-score -q -o out.jsonl long.jsonl
	jq -e --slurpfile in long.jsonl 'del(.score) == $in[0] and .score.feasible' out.jsonl > /dev/null
	echo '{"weights":{"acc":NaN}}' > nan.json
	refuse "tc-score: nan.json:1: malformed JSON at column 21: invalid token near 'NaN'" tc-score --config nan.json good.jsonl
	echo '{"maxima":{"lat":1e-320}}' > tiny.json
	refuse "tc-score: good.jsonl:1: field 'sim.latency_s': term 'lat' is not finite (0.000232931429 over the maximum 9.99988867e-321)" \
		tc-score --config tiny.json good.jsonl
	mkdir dir
	refuse "tc-score: cannot read 'dir': Is a directory" tc-score --config dir good.jsonl
}

@test "tc-sim: a directory or a missing file in place of records, a hardware profile or a space" {
	tc-sample --preset bert-tiny --preset acceltran-edge > good.jsonl
	mkdir dir
	refuse "tc-sim: dir:1: read error: Is a directory" tc-sim dir
	refuse "tc-sim: cannot read 'dir': Is a directory" tc-sim --hw dir good.jsonl
	refuse "tc-sim: cannot read 'dir': Is a directory" tc-sim --space-file dir good.jsonl
	refuse "tc-sim: cannot read hardware profile 'nowhere.json': unable to open nowhere.json: No such file or directory" \
		tc-sim --hw nowhere.json good.jsonl
}

# edit_st IN OUT JQ-FILTER [BYTES]: the safetensors file IN with its header passed through jq, then
# BYTES (printf escapes) appended to the data section.
edit_st() {
	local n
	n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
	head -c $((8 + n)) "$1" | tail -c "$n" | jq -c "$3" > "$2.hdr"
	n=$(wc -c < "$2.hdr")
	{
		printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) 0 0 0 0 0)"
		cat "$2.hdr"
		tail -c +$((9 + $(od -An -tu8 -N8 "$1" | tr -d ' '))) "$1"
		printf "${4-}"
	} > "$2"
}

# Sizes in a checkpoint's metadata that its tensors do not back (found while writing
# tests/fuzz/checkpoint_fuzz.c): a vocabulary larger than the embeddings (tokenizer.vocab_txt is the
# last tensor, so its tokens are appended to the file) read memory beyond them, positions beyond
# max_pos likewise, and a model larger than the file was allocated before its tensors were checked.
@test "tc-prune: a checkpoint whose metadata states sizes its tensors do not back" {
	echo '{"id":"t","model":{"l":1,"o":[["sa_sdp_8","l_dft_8"]],"h":[16],"f":[[32]]}}' > in.jsonl
	TC_DATA="$top/tests/data/task" tc-train -q --vocab-size 300 --threads 1 --steps 1 \
		--checkpoint ck.safetensors in.jsonl > trained.jsonl
	edit_st ck.safetensors vocab.st '.["tokenizer.vocab_txt"] |= (.shape[0] += 6 | .data_offsets[1] += 6)' 'extra\n'
	vocab=$(jq -r '.__metadata__.config | fromjson | .vocab' vocab.st.hdr)
	refuse "tc-prune: vocab.st: tensor 'tokenizer.vocab_txt' has $((vocab + 1)) tokens, metadata 'config' says vocab $vocab" \
		tc-prune sweep --checkpoint vocab.st --threads 1 --taus 0 --top-k none
	edit_st ck.safetensors seq.st '.__metadata__.config |= (fromjson | .seq = 513 | tojson)'
	refuse "tc-prune: seq.st: metadata 'config': field 'seq': 513 is outside [2, 512]" \
		tc-prune sweep --checkpoint seq.st --threads 1 --taus 0 --top-k none
	edit_st ck.safetensors labels.st '.__metadata__.config |= (fromjson | .labels = 16777216 | tojson)'
	run -1 --separate-stderr tc-prune calibrate --checkpoint labels.st --threads 1 --batches 1
	[ -z "$output" ] || fail "stdout not empty: $output"
	[[ "$stderr" == "tc-prune: labels.st: metadata 'model' and 'config' describe "*" parameters, but the file holds "*" F32 values" ]] ||
		fail "$stderr"
}
