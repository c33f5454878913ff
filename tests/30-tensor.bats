#!/usr/bin/env bats
# tc-tensor(5) from outside: files that standard tools can take apart, streams that zcat and a
# split turn into plain files, and one-line errors for truncated or corrupted input.

load helper
bats_require_minimum_version 1.5.0

# header FILE: the JSON header of a safetensors file, read with od and dd only.
header() {
	n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=8 count="$n" status=none
}

@test "a tensor file is safetensors: 8-byte length, JSON header, aligned data" {
	tensor_tool make f.safetensors 0
	header f.safetensors | jq -e '."enc.0.weight" == {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}' >/dev/null
	header f.safetensors | jq -e '."__metadata__".format == "transcode-tensor/1"' >/dev/null
	n=$(od -An -t u8 -N 8 f.safetensors | tr -d ' ')
	[ $(( (8 + n) % 8 )) -eq 0 ]
	end=$(header f.safetensors | jq '[.[] | .data_offsets? | .[1]] | max')
	[ "$(stat -c %s f.safetensors)" -eq $((8 + n + end)) ]
	run -0 tensor_tool check f.safetensors
	assert_equal "${lines[0]}" "enc.0.weight F32 [2, 3]"
}

@test "the same tensors give the same bytes" {
	tensor_tool make a.safetensors 2
	tensor_tool make b.safetensors 2
	cmp a.safetensors b.safetensors
	tensor_tool make-stream a.tsz 4
	tensor_tool make-stream b.tsz 4
	cmp a.tsz b.tsz
}

@test "zcat of a stream is its frames back to back, each a plain safetensors file" {
	tensor_tool make-stream s.tsz 3
	for i in 0 1 2; do tensor_tool make "f$i.safetensors" $i; done
	zcat s.tsz > all
	cat f0.safetensors f1.safetensors f2.safetensors | cmp - all
	# split off the first frame by its own length and check it like any file
	n=$(od -An -t u8 -N 8 all | tr -d ' ')
	size=$(stat -c %s f0.safetensors)
	head -c "$size" all > first.safetensors
	run -0 tensor_tool check first.safetensors
	[ "${#lines[@]}" -eq 10 ]
}

@test "streams travel through pipes" {
	run -0 sh -c 'tensor_tool make-stream - 5 | tensor_tool stream-check -'
	[ "${#lines[@]}" -eq 5 ]
	assert_equal "${lines[4]}" "frame 4: 10 tensors"
}

@test "a truncated stream is an error at every cut, never a short read" {
	tensor_tool make-stream s.tsz 3
	size=$(stat -c %s s.tsz)
	for cut in 1 10 20 $((size / 2)) $((size - 9)) $((size - 1)); do
		head -c $cut s.tsz > cut.tsz
		run -1 --separate-stderr tensor_tool stream-check cut.tsz
		[[ "$stderr" == "tensor_tool: cut.tsz: "*"truncated"* ]] || fail "cut at $cut: $stderr"
		[ "$(echo "$stderr" | wc -l)" -eq 1 ] || fail "cut at $cut: more than one line: $stderr"
	done
}

@test "a corrupted stream is an error" {
	tensor_tool make-stream s.tsz 3
	size=$(stat -c %s s.tsz)
	for at in 30 $((size / 2)) $((size - 6)); do
		cp s.tsz bad.tsz
		printf '\377' | dd of=bad.tsz bs=1 seek=$at conv=notrunc status=none
		run -1 --separate-stderr tensor_tool stream-check bad.tsz
		[[ "$stderr" == "tensor_tool: bad.tsz: "* ]] || fail "byte $at: $stderr"
	done
}

@test "an empty stream and a plain file given as a stream are errors" {
	: > empty.tsz
	run -1 --separate-stderr tensor_tool stream-check empty.tsz
	assert_equal "$stderr" "tensor_tool: empty.tsz: empty input (not even a gzip header)"
	printf '' | gzip > nothing.tsz
	run -1 --separate-stderr tensor_tool stream-check nothing.tsz
	assert_equal "$stderr" "tensor_tool: nothing.tsz: empty stream"
	tensor_tool make f.safetensors
	run -1 --separate-stderr tensor_tool stream-check f.safetensors
	[[ "$stderr" == "tensor_tool: f.safetensors: "* ]] || fail "$stderr"
}

@test "a truncated or corrupted tensor file is refused with the reason" {
	tensor_tool make f.safetensors
	head -c 100 f.safetensors > short.safetensors
	run -1 --separate-stderr tensor_tool check short.safetensors
	[[ "$stderr" == "tensor_tool: short.safetensors: "* ]] || fail "$stderr"
	head -c 4 f.safetensors > tiny.safetensors
	run -1 --separate-stderr tensor_tool check tiny.safetensors
	[[ "$stderr" == "tensor_tool: tiny.safetensors: "* ]] || fail "$stderr"
	{ cat f.safetensors; printf 'junk'; } > long.safetensors
	run -1 --separate-stderr tensor_tool check long.safetensors
	[[ "$stderr" == *"long.safetensors"* ]] || fail "$stderr"
	# a header length far beyond the file
	{ printf '\377\377\377\377\000\000\000\000'; tail -c +9 f.safetensors; } > huge.safetensors
	run -1 --separate-stderr tensor_tool check huge.safetensors
	[[ "$stderr" == *"huge.safetensors"* ]] || fail "$stderr"
	# a header that is not JSON
	cp f.safetensors nojson.safetensors
	printf 'X' | dd of=nojson.safetensors bs=1 seek=8 conv=notrunc status=none
	run -1 --separate-stderr tensor_tool check nojson.safetensors
	[[ "$stderr" == *"nojson.safetensors"* ]] || fail "$stderr"
	[ "$(echo "$stderr" | wc -l)" -eq 1 ]
}
