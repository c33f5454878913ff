#!/usr/bin/env bats
# Conventions every tool keeps: --help, --version, usage errors, a SYNOPSIS that matches usage(),
# installation under a prefix.

load helper
bats_require_minimum_version 1.5.0

TOOLS="tc-sample tc-pareto tc-sim tc-train tc-prune tc-score"

@test "every tool prints usage on stdout for --help and exits 0" {
	for t in $TOOLS; do
		run -0 --separate-stderr "$t" --help
		[[ "${lines[0]}" == "Usage: $t "* ]] || fail "$t --help: ${lines[0]}"
		[ -z "$stderr" ] || fail "$t --help wrote to stderr: $stderr"
	done
}

@test "every tool prints its version" {
	for t in $TOOLS; do
		run -0 "$t" --version
		[[ "$output" =~ ^$t\ \(transcode\)\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "$t --version: $output"
	done
}

@test "an unknown option is a usage error: status 2, message on stderr, nothing on stdout" {
	for t in $TOOLS; do
		run -2 --separate-stderr "$t" --no-such-option
		[ -z "$output" ] || fail "$t wrote to stdout: $output"
		[[ "$stderr" == *"unrecognized option"* ]] || fail "$t: $stderr"
	done
}

@test "a number out of range names the option and the range" {
	run -2 --separate-stderr tc-sample -n -3
	assert_equal "${stderr%%$'\n'*}" "tc-sample: option '--count': expected an integer in [0, 9007199254740992], got '-3'"
	run -2 --separate-stderr tc-sample --seed abc
	[[ "$stderr" == *"option '--seed'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-sample --threads 0
	[[ "$stderr" == *"option '--threads'"* ]] || fail "$stderr"
}

@test "the SYNOPSIS of each man page is the tool's usage" {
	for t in $TOOLS; do
		usage=$("$t" --help | sed -n '/^Usage:/,/^[^ U]/p' | sed '$d' | sed 's/^Usage: //' | tr -s ' \n' ' ')
		synopsis=$(MANWIDTH=300 man -l "$top/man/$t.1" 2>/dev/null |
			sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' ' ')
		synopsis=${synopsis# }
		usage=${usage% }
		assert_equal "${synopsis% }" "${usage# }"
	done
}

@test "make install puts tools, data and man pages under DESTDIR and PREFIX, and they run from there" {
	make -C "$top" -s install BUILD="$BUILD" DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/opt/tc >/dev/null
	root=$BATS_TEST_TMPDIR/root/opt/tc
	[ -x "$root/bin/tc-sample" ] && [ -x "$root/bin/tc-pareto" ]
	[ -f "$root/share/transcode/space/flexibert2.json" ]
	[ -f "$root/share/man/man7/transcode.7" ] && [ -f "$root/share/man/man5/tc-records.5" ]
	# Installed tools find their data relative to themselves, without TC_SHARE.
	run -0 env -u TC_SHARE "$root/bin/tc-sample" --preset bert-tiny
	[[ "$output" == *'"id":"'* ]]
	make -C "$top" -s uninstall BUILD="$BUILD" DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/opt/tc >/dev/null
	[ ! -e "$root/bin/tc-sample" ] && [ ! -e "$root/share/transcode" ] && [ ! -e "$root/share/man/man7/transcode.7" ]
}

@test "TC_SHARE points tools at another data directory" {
	mkdir -p share/space share/preset
	cp "$top"/share/space/*.json share/space/
	echo '{"model":{"l":2,"o":[["l_dft_64","c_9_64"],["sa_wma_64","sa_wma_64"]],"h":[128,128],"f":[[256],[256]]}}' > share/preset/mine.json
	TC_SHARE=$PWD/share run -0 tc-sample --preset mine
	[[ "$output" == *'"l_dft_64","c_9_64"'* ]]
	TC_SHARE=$PWD/nowhere run -1 --separate-stderr tc-sample --preset bert-tiny
	[[ "$stderr" == "tc-sample: cannot read space file"* ]] || fail "$stderr"
}

@test "output to a full disk fails with status 1 and a message" {
	run -1 --separate-stderr tc-sample -n 3 -o /dev/full
	[[ "$stderr" == "tc-sample: "* ]] || fail "$stderr"
	run -1 --separate-stderr sh -c 'tc-sample -n 3 > /dev/full'
	assert_equal "$stderr" "tc-sample: write error: No space left on device"
	tc-sample --space accel -n 20 | jq -c '{a: .accel.pes, b: .accel.batch}' > in.jsonl
	run -1 --separate-stderr sh -c 'tc-pareto -O a,b in.jsonl > /dev/full'
	assert_equal "$stderr" "tc-pareto: write error: No space left on device"
}

@test "-o writes atomically: a failing run leaves the old file and no temporary" {
	echo old > out.jsonl
	run -2 tc-sample -n 3 --method nope -o out.jsonl
	assert_equal "$(cat out.jsonl)" old
	printf '{"a":1}\n{"a":\n' > bad.jsonl
	run -1 tc-pareto -O a -o out.jsonl bad.jsonl
	assert_equal "$(cat out.jsonl)" old
	run -0 tc-sample -n 3 -o out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 3 ]
	[ -z "$(ls -A | grep -v -e '^out.jsonl$' -e '^bad.jsonl$')" ] || fail "left behind: $(ls -A)"
}

@test "fields a tool passes through keep their bytes, or every real exactly when re-encoded" {
	x='[0.1,0.30000000000000004,5e-324,1.7976931348623157e308,2.5,1e22,1e23,123456789.123,-7.0,1e-300]'
	tc-sample --preset bert-tiny --preset acceltran-edge | jq -c --argjson x "$x" '.x = $x' > "$BATS_TEST_TMPDIR/in"
	run -0 tc-sim --brief "$BATS_TEST_TMPDIR/in"
	in=$(cat "$BATS_TEST_TMPDIR/in")
	[[ "$output" == "${in%\}},\"sim\":{"* ]] || fail "not passed through byte for byte: $output"
	# a record that has a sim already is re-encoded whole: at one precision, the most any real needs
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/again"
	run -0 tc-sim --brief --mode training "$BATS_TEST_TMPDIR/again"
	[ "$(jq -c .x <<< "$output")" = "$(jq -c .x "$BATS_TEST_TMPDIR/in")" ] || fail "changed: $(jq -c .x <<< "$output")"
	[ "$(jq -r .sim.mode <<< "$output")" = training ] || fail "sim not replaced: $output"
	x='[0.1,2.5,1e22,123456789.123,0.000125375714,3.14159265358979]'
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim --brief | jq -c --argjson x "$x" '.x = $x' > "$BATS_TEST_TMPDIR/in"
	run -0 tc-sim --brief "$BATS_TEST_TMPDIR/in"
	[[ "$output" == *'"x":[0.1,2.5,1e22,123456789.123,0.000125375714,3.14159265358979]'* ]] ||
		fail "short reals printed long: $output"
}
