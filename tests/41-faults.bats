#!/usr/bin/env bats
# Faults outside the input data, for every tool: a full disk (-o /dev/full and > /dev/full), a reader
# that goes away (a closed pipe), an input that cannot be read (a directory, a missing path), and
# SIGKILL while writing -o FILE.
#
# A closed pipe. SIGPIPE keeps its default disposition (STYLE.md), so a tool whose reader has gone
# dies of it at its next write, silently, as `tc-sample | head` should: no message, and the shell
# sees status 141 (128 + SIGPIPE). A parent may ignore SIGPIPE (some job runners do, and children
# inherit it); then the write fails with EPIPE instead, and the tool says "write error: Broken pipe"
# in one line and exits 1 at once, not after computing the rest of its output. Both are tested. The
# `timeout` around them only stops a tool that would run on (tc-sample --grid writes 14.85 million
# records); it measures nothing.
#
# SIGKILL cannot be caught, so no handler can remove a temporary file: -o writes to an unnamed
# temporary file (O_TMPFILE) that gets its name only when it is complete, and a killed tool leaves
# the directory as it was. Tools that stream (tc-sample, tc-sim, tc-train, tc-prune apply) are
# killed once their temporary file holds output; tc-prune calibrate once its temporary file is open;
# the tools that write everything at the end (tc-pareto, tc-score, tc-prune sweep) while they work.

load helper
bats_require_minimum_version 1.5.0

[ -x "$testbin/tensor_tool" ] || { echo "missing $testbin/tensor_tool: run make test first" >&2; exit 1; }

export TC_DATA="$top/tests/data/task"
export XDG_CACHE_HOME="$BATS_TEST_TMPDIR/cache"
T="-q --vocab-size 300 --threads 1"
tiny='{"id":"tiny","model":{"l":1,"o":[["sa_sdp_8","l_dft_8"]],"h":[16],"f":[[32]]}}'

# Inputs for every tool: pairs, their simulations with an accuracy, a trained checkpoint and its
# record, a tensor stream of 2000 frames (over 64 KiB pruned), and a directory.
fixtures() {
	tc-sample -n 300 > pairs.jsonl
	tc-sim pairs.jsonl | jq -c '.train.val_accuracy = 0.5' > sims.jsonl
	echo "$tiny" > in.jsonl
	tc-train $T --steps 2 --checkpoint ck.safetensors in.jsonl > trained.jsonl
	tensor_tool make-stream s.tcs 2000
	mkdir dir
}

# The tools and one ordinary run of each, output on stdout.
runs() {
	cat <<EOF
tc-sample -n 3
tc-sim pairs.jsonl
tc-pareto -O sim.latency_s,sim.area_mm2 sims.jsonl
tc-score -q sims.jsonl
tc-train $T --steps 1 --no-checkpoint in.jsonl
tc-prune apply -q --tau 1 s.tcs
tc-prune sweep --checkpoint ck.safetensors --taus 0 --top-k none --threads 1
tc-prune calibrate --checkpoint ck.safetensors --threads 1 --batches 1
tc-prune calibrate --threads 1 --batches 1 trained.jsonl
EOF
}

@test "a full disk: -o /dev/full and > /dev/full give one line and status 1, for every tool" {
	fixtures
	while read -r cmd; do
		tool=${cmd%% *}
		run -1 --separate-stderr $cmd -o /dev/full
		[ -z "$output" ] || fail "$cmd -o /dev/full: stdout not empty"
		# the file is named where the error shows at the end, not where a record's write fails
		[[ "$stderr" == "$tool: write error"?(" on '/dev/full'")": No space left on device" ]] ||
			fail "$cmd -o /dev/full: $stderr"
		run -1 --separate-stderr sh -c "$cmd > /dev/full"
		if [ "$cmd" != "${cmd#tc-prune apply}" ]; then
			assert_equal "$stderr" "$tool: write error on '<stdout>': No space left on device"
		else
			assert_equal "$stderr" "$tool: write error: No space left on device"
		fi
	done < <(runs)
	# large outputs fail at the first write, not after computing the rest
	run -1 --separate-stderr timeout 20 tc-sample --grid --space accel -o /dev/full
	assert_equal "$stderr" "tc-sample: write error: No space left on device"
	run -1 --separate-stderr timeout 20 sh -c 'tc-sample --grid --space accel --threads 3 > /dev/full'
	assert_equal "$stderr" "tc-sample: write error: No space left on device"
}

@test "a full disk under a side output fails the run and leaves no other output" {
	fixtures
	refuse_full() { # refuse_full COMMAND...: status 1, the /dev/full message, nothing on stdout
		run -1 --separate-stderr "$@"
		[ -z "$output" ] || fail "$*: stdout not empty"
		[[ "$stderr" == "$1: write error"?(" on '/dev/full'")": No space left on device" ]] || fail "$*: $stderr"
	}
	refuse_full tc-pareto -O sim.latency_s --summary /dev/full -o out.jsonl sims.jsonl
	[ ! -e out.jsonl ]
	refuse_full tc-pareto -O sim.latency_s --summary summary.json -o /dev/full sims.jsonl
	[ ! -e summary.json ]
	refuse_full tc-sim --trace /dev/full -o out.jsonl pairs.jsonl
	[ ! -e out.jsonl ]
	refuse_full tc-sim --trace trace.jsonl -o /dev/full pairs.jsonl
	[ ! -e trace.jsonl ]
	refuse_full tc-prune apply -q --tau 1 --report /dev/full -o out.tcs s.tcs
	[ ! -e out.tcs ]
	refuse_full tc-prune apply -q --tau 1 --report report.jsonl -o /dev/full s.tcs
	[ ! -e report.jsonl ]
	run -1 --separate-stderr tc-train $T --steps 1 --checkpoint /dev/full -o out.jsonl in.jsonl
	assert_equal "$stderr" "tc-train: in.jsonl:1: write error on '/dev/full': No space left on device"
	[ ! -e out.jsonl ]
	[ -z "$(ls -A | grep -v -e '^separate-stderr-' -e '^pairs.jsonl$' -e '^sims.jsonl$' -e '^in.jsonl$' \
		-e '^trained.jsonl$' -e '^ck.safetensors$' -e '^s.tcs$' -e '^dir$' -e '^cache$')" ] ||
		fail "left behind: $(ls -A)"
}

# closed_pipe COMMAND...: COMMAND's stdout into `head -c 1`, which leaves after one byte; $status
# and $stderr are COMMAND's.
closed_pipe() {
	{
		local rc=0
		timeout 60 "$@" 2> pipe.err || rc=$?
		echo $rc > pipe.status
	} | head -c 1 > /dev/null
	status=$(cat pipe.status)
	stderr=$(cat pipe.err)
}

# Runs whose output fills a pipe (64 KiB) many times over.
large_runs() {
	# 200 records of 100 kB each: tc-score and tc-prune calibrate output them whole
	jq -c --arg p "$(head -c 100000 /dev/zero | tr '\0' x)" '.pad = $p' trained.jsonl > padded.jsonl
	jq -c --arg p "$(head -c 100000 /dev/zero | tr '\0' x)" '.pad = $p' sims.jsonl | head -n 200 > padsims.jsonl
	cat <<EOF
tc-sample --grid --space accel
tc-sample -n 100000000 --threads 3
tc-sim pairs.jsonl
tc-pareto -O sim.latency_s --rank sims.jsonl
tc-score -q padsims.jsonl
tc-train $T --steps 1 --no-checkpoint padded.jsonl
tc-prune apply -q --tau 1 s.tcs
tc-prune calibrate --threads 1 --batches 1 padded.jsonl
EOF
}

@test "a closed pipe: every tool dies of SIGPIPE at once, without a message" {
	fixtures
	while read -r cmd; do
		closed_pipe env --default-signal=PIPE $cmd
		assert_equal "$status" 141
		[ -z "$stderr" ] || fail "$cmd: $stderr"
	done < <(large_runs)
	# output that fits the pipe is written before the reader leaves: nothing to report
	closed_pipe env --default-signal=PIPE tc-prune sweep --checkpoint ck.safetensors --taus 0,0.1 --top-k none --threads 1
	assert_equal "$status" 0
	[ -z "$stderr" ] || fail "$stderr"
}

@test "a closed pipe with SIGPIPE ignored: one line, status 1, at once" {
	fixtures
	while read -r cmd; do
		tool=${cmd%% *}
		closed_pipe env --ignore-signal=PIPE $cmd
		assert_equal "$status" 1
		if [ "$cmd" != "${cmd#tc-prune apply}" ]; then
			assert_equal "$stderr" "$tool: write error on '<stdout>': Broken pipe"
		else
			assert_equal "$stderr" "$tool: write error: Broken pipe"
		fi
	done < <(large_runs)
}

@test "an unreadable input: a directory or a missing path, named, for every tool" {
	fixtures
	refuse() { # refuse MESSAGE COMMAND...
		local want=$1
		shift
		run -1 --separate-stderr "$@"
		[ -z "$output" ] || fail "$*: stdout not empty"
		assert_equal "$stderr" "$want"
	}
	for tool in tc-sim "tc-pareto -O a" tc-score "tc-train $T --steps 1" "tc-prune calibrate"; do
		refuse "${tool%% *}: dir:1: read error: Is a directory" $tool dir
		refuse "${tool%% *}: <stdin>:1: read error: Is a directory" $tool < dir
		refuse "${tool%% *}: cannot open 'nowhere': No such file or directory" $tool nowhere
	done
	refuse "tc-sample: dir:1: read error: Is a directory" tc-sample --propose random --history dir
	refuse "tc-sample: cannot open 'nowhere': No such file or directory" tc-sample --propose random --history nowhere
	refuse "tc-sample: cannot read './dir': Is a directory" tc-sample --preset ./dir
	run -2 --separate-stderr tc-sample --preset ./nowhere # a preset is named as an option: a usage error
	assert_equal "${stderr%%$'\n'*}" "tc-sample: unknown preset './nowhere' (no file './nowhere')"
	refuse "tc-prune: dir: frame 0: read error: Is a directory" tc-prune apply -q --tau 1 -o out.tcs dir
	refuse "tc-prune: <stdin>: frame 0: read error: Is a directory" tc-prune apply -q --tau 1 -o out.tcs < dir
	refuse "tc-prune: cannot open 'nowhere': No such file or directory" tc-prune apply -q --tau 1 -o out.tcs nowhere
	for sub in sweep calibrate; do
		refuse "tc-prune: dir: read error: Is a directory" tc-prune $sub --checkpoint dir
		refuse "tc-prune: cannot open 'nowhere': No such file or directory" tc-prune $sub --checkpoint nowhere
	done
	refuse "tc-train: in.jsonl:1: dir: read error: Is a directory" tc-train $T --steps 1 --init dir in.jsonl
	refuse "tc-train: in.jsonl:1: cannot open 'nowhere': No such file or directory" tc-train $T --steps 1 --init nowhere in.jsonl
	[ ! -e out.tcs ]
}

# killed WHEN [--feed FILE] COMMAND...: start COMMAND, which writes -o into out/, in the background;
# wait (at most 30 s) until it has a file open in out/, holding output unless WHEN is "open", or for
# half a second if WHEN is "working"; kill it with SIGKILL. With --feed, COMMAND reads FILE through
# the FIFO in.fifo, held open here (fd 8; bats has 3) so that it waits for more instead of ending.
killed() {
	local when=$1 feed= feeder= pid fd n
	shift
	if [ "$1" = --feed ]; then
		feed=$2
		shift 2
		rm -f in.fifo
		mkfifo in.fifo
		exec 8<> in.fifo
		cat "$feed" 8>&- > in.fifo & # without fd 8: holding a reader itself, it would never see one go
		feeder=$!
	fi
	"$@" &
	pid=$!
	for n in $(seq 300); do
		[ "$when" = working ] && [ "$n" -gt 5 ] && break
		for fd in /proc/$pid/fd/*; do
			case $(readlink "$fd" 2>/dev/null) in
			"$PWD/out/"*) [ "$when" = open ] || [ "$(stat -L -c %s "$fd" 2>/dev/null || echo 0)" -gt 0 ] && break 2 ;;
			esac
		done
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	kill -9 $pid 2>/dev/null || n=ended
	wait $pid && n=ended || [ $? -eq 137 ] || n=ended
	if [ -n "$feed" ]; then
		exec 8>&- # the last reader gone, a cat still writing dies of SIGPIPE
		wait $feeder || true
	fi
	[ "$n" != ended ] || fail "$* ended before it was killed"
	[ "$when" = working ] || [ "$n" -lt 300 ] || fail "$* never wrote into out/"
}

# out/ holds exactly the files named, with the contents given: killed left no temporary file and
# no new FILE, and a previous FILE as it was.
out_is() {
	assert_equal "$(cd out && echo $(ls -A))" "$*"
	for f in "$@"; do
		assert_equal "$(cat "out/$f")" "previous $f"
	done
}

@test "SIGKILL while writing -o FILE leaves no FILE, or the previous one, and no temporary file" {
	fixtures
	mkdir out
	killed output tc-sample --grid --space accel -o out/grid.jsonl
	out_is
	echo "previous grid.jsonl" > out/grid.jsonl
	killed output tc-sample --grid --space accel --threads 3 -o out/grid.jsonl
	out_is grid.jsonl

	# streaming tools, fed through a FIFO: they write what they can, then wait for more
	echo "previous sim.jsonl" > out/sim.jsonl
	killed output --feed pairs.jsonl tc-sim -o out/sim.jsonl in.fifo
	out_is grid.jsonl sim.jsonl
	gzip -dc s.tcs | head -c 300000 | gzip > part.tcs
	killed output --feed part.tcs tc-prune apply -q --tau 1 -o out/pruned.tcs in.fifo
	out_is grid.jsonl sim.jsonl

	# tc-train flushes each record: the first is in the temporary file while the second trains
	jq -c --arg t "tsv:$TC_DATA/plain.tsv" '.task = $t' in.jsonl > two.jsonl
	echo '{"id":"wide","model":{"l":4,"o":[["sa_sdp_64","sa_sdp_64","sa_sdp_64","sa_sdp_64"],["sa_sdp_64","sa_sdp_64","sa_sdp_64","sa_sdp_64"],["sa_sdp_64","sa_sdp_64","sa_sdp_64","sa_sdp_64"],["sa_sdp_64","sa_sdp_64","sa_sdp_64","sa_sdp_64"]],"h":[256,256,256,256],"f":[[1024],[1024],[1024],[1024]]}}' >> two.jsonl
	echo "previous train.jsonl" > out/train.jsonl
	killed output tc-train $T --epochs 1 --time 60 --no-checkpoint -o out/train.jsonl two.jsonl
	out_is grid.jsonl sim.jsonl train.jsonl

	# tc-prune calibrate opens its output first, then measures every record
	for i in $(seq 50); do cat trained.jsonl; done > many.jsonl
	killed open tc-prune calibrate --threads 1 --batches 100 -o out/cal.jsonl many.jsonl
	out_is grid.jsonl sim.jsonl train.jsonl

	# the others read everything first and write at the end: killed while they work
	echo "previous front.jsonl" > out/front.jsonl
	killed working --feed sims.jsonl tc-pareto -O sim.latency_s -o out/front.jsonl in.fifo
	killed working --feed sims.jsonl tc-score -o out/scored.jsonl in.fifo
	killed working tc-prune sweep --checkpoint ck.safetensors --top-k none --taus "$(seq -s, 0 0.001 1)" \
		--threads 1 -o out/sweep.jsonl
	out_is front.jsonl grid.jsonl sim.jsonl train.jsonl

	# a plot: gnuplot draws into the tool's unnamed file (a stand-in writes half an image and waits)
	mkdir gp
	printf '%s\n' '#!/bin/sh' 'while read -r a b c; do' \
		'	[ "$a $b" = "set output" ] && eval "echo half an image > $c" && break' 'done' 'sleep 3' > gp/gnuplot
	chmod +x gp/gnuplot
	echo "previous front.png" > out/front.png
	killed output env PATH="$PWD/gp:$PATH" tc-pareto -O sim.latency_s,sim.energy_j -o /dev/null --plot out/front.png sims.jsonl
	out_is front.jsonl front.png grid.jsonl sim.jsonl train.jsonl
}
