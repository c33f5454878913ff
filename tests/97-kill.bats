#!/usr/bin/env bats
# pipelines/codesign killed with SIGKILL at 20 moments spread over a whole run, from the first
# proposals to the final report. Two uninterrupted runs first, which must agree (the first is the
# reference), and the second run again once finished; then each trial starts the same run in a
# session of its own, freezes and kills every process of that session (the script,
# GNU parallel, whose jobs have process groups of their own, the evaluate scripts and the tools),
# checks what the kill left (history.jsonl whole records, none twice, each an evaluation of the
# run's proposals; no half-written file), runs the same command again and compares the results
# with the reference.
#
# Trial N kills after T * (N - 1 + U) / 20 seconds, T the longer time of two uninterrupted runs
# and U uniform in [0, 1) from awk's srand(N), so trials cover the run evenly and each is
# reproducible: bats -f 'trial 7$' tests/97-kill.bats. Each trial prints its delay and what was
# running; if the run had already ended, it starts over with the delay cut by a tenth.
#
# The configuration is the cheapest that still passes every stage: the maxima, Latin hypercube
# then BOSHCODE proposals, training, calibration, both simulations, scoring, the history, the
# stopping rule (--patience 1: the reference stops after a round without a better score, so a
# resumed run must count stale rounds as the uninterrupted one did) and the report.

load helper
bats_require_minimum_version 1.5.0

export TC_DATA="$top/tests/data/task"
tiny='{"model":{"l":2,"o":[["sa_sdp_32","l_dft_32"],["c_5_32","sa_wma_32"]],"h":[64,64],"f":[[128],[128]]}}'
cd_args=(-q --budget 5 --init 3 --per-round 1 --patience 1 --jobs 2 --fix-model tiny.json --reference none
	--calibrate --batches=1 --train '--steps 8 --vocab-size 300 --batch 8 --seq 32')
# (under the sanitizers, tests/run leaves out the trials tagged plain_only: 7 of the 20 moments,
# spread over the run as every third one, are tried there)
trials=20

cd_run() {
	echo "$tiny" > tiny.json
	"$top/pipelines/codesign" "${cd_args[@]}" "$@"
}

# digest DIR: the history's ids, rounds, scores, accuracies and energies, in order (as 96-codesign)
digest() {
	jq -c '[.id, .codesign.round, .score.performance, .train.val_accuracy, .sim.energy_j, .sim_training.energy_j]' \
		"$1/history.jsonl"
}

# best DIR: best.json without what differs between two runs: times, memory, and paths in the folder
best() {
	jq -c 'del(.train.tokens_per_s, .train.step_ms, .train.wall_s, .train.peak_rss_mb, .train.curve[]?.train_s)
		| .train.checkpoint |= (. // "" | sub(".*/"; "")) | .sample.preset |= (. // [] | map(sub(".*/"; "")))' "$1/best.json"
}

# results DIR: what an uninterrupted run and a resumed one must agree on, byte for byte
results() {
	digest "$1" > "$1.digest"
	best "$1" > "$1.best"
	jq -r .id "$1/front.jsonl" > "$1.front"
	cp "$1/report.md" "$1.report"
}

# timed_run DIR: an uninterrupted run into DIR; its time in seconds in DIR.seconds
timed_run() {
	local start end
	start=$(date +%s%N)
	cd_run --out "$1" || fail "the uninterrupted run into $1 failed"
	end=$(date +%s%N)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", (e - s) / 1e9 }' > "$1.seconds"
}

setup_file() {
	cd "$BATS_FILE_TMPDIR" || return 1
	timed_run ref
	# the run the trials interrupt: two rounds at least (LHS, then BOSHCODE), and every output
	jq -se 'length >= 4 and (map(.codesign.round) | max) >= 1 and all(.[]; .score.performance | type == "number")' \
		ref/history.jsonl >/dev/null || fail "reference history: $(digest ref)"
	[ -s ref/best.json ] && [ -s ref/front.jsonl ] && [ -s ref/front.png ] && [ -s ref/convergence.png ] &&
		[ -s ref/report.md ] || fail "reference outputs missing: $(ls ref)"
	results ref
	# a second uninterrupted run: the same results, or the trials would compare noise; the longer
	# time of the two sets the kill moments, so that the last ones reach the end of a run (a kill
	# that finds the run ended is tried again sooner)
	timed_run again
	results again
	for f in digest best front report; do
		cmp -s again.$f ref.$f || fail "two uninterrupted runs differ in $f: $(diff again.$f ref.$f)"
	done
	sort -n again.seconds ref.seconds | tail -n 1 > span
	echo "# uninterrupted runs: $(cat ref.seconds) s and $(cat again.seconds) s; $(head -n 1 ref/report.md)" >&3
}

# session SID: "PID STATE NAME" of each live process of session SID, from /proc
session() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v sid="$1" '{
		name = $0; sub(/^[^(]*\(/, "", name); sub(/\) [^)]*$/, "", name)
		rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
		if (f[4] == sid && f[1] != "Z" && f[1] != "X") print $1, f[1], name
	}'
}

# kill_session SID: stop every process of the session until none runs, note in $running what was
# running, and kill them all. A stopped process cannot fork, so the kill catches the whole tree at
# one moment.
kill_session() {
	local pids pid state name i
	for ((i = 0; i < 1000; i++)); do
		pids=$(session "$1" | awk '$2 != "T" { print $1 }')
		[ -n "$pids" ] || break
		kill -STOP $pids 2>/dev/null || true
	done
	running=$(session "$1" | while read -r pid state name; do
		# the tools run again as /proc/self/exe: their name is then argv[0]'s
		[ "$name" != exe ] || name=$(tr '\0' '\n' < "/proc/$pid/cmdline" | head -n 1)
		echo "${name##*/}"
	done | sort | uniq -c | awk '{ printf "%s%s%s", (NR > 1 ? ", " : ""), $2, ($1 > 1 ? " x" $1 : "") }')
	for ((i = 0; i < 1000; i++)); do
		pids=$(session "$1" | awk '{ print $1 }')
		[ -n "$pids" ] || return 0
		kill -KILL $pids 2>/dev/null || true
	done
	fail "session $1 outlived SIGKILL: $(session "$1")"
}

# check_killed DIR: what the kill left, before the run is resumed
check_killed() {
	local d=$1 h=$1/history.jsonl f r rec id dup
	[ -e "$h" ] || { [ -z "$(ls "$d/eval")" ] || fail "evaluations but no history: $(ls "$d/eval")"; return 0; }
	# the proposals of each round, as "ROUND ID" lines; each round file whole
	: > proposals
	for f in "$d"/rounds/[0-9][0-9][0-9].jsonl; do
		[ -e "$f" ] || continue
		r=$((10#$(basename "$f" .jsonl)))
		jq -r --arg r "$r" '"\($r) \(.id)"' "$f" >> proposals || fail "$f: not whole JSON Lines"
	done
	# the history: whole records, each once, each a scored evaluation of a proposal of its round,
	# identical to the evaluation cached for it, and the reference's history up to there
	if [ -s "$h" ]; then
		[ -z "$(tail -c 1 "$h")" ] || fail "history.jsonl ends inside a record: ...$(tail -c 120 "$h")"
		jq -R -e -s 'split("\n")[:-1] | all(fromjson | type == "object" and (.score.performance | type) == "number")' \
			"$h" >/dev/null || fail "history.jsonl holds a record that is not whole JSON with a score"
	fi
	dup=$(jq -r .id "$h" | sort | uniq -d)
	[ -z "$dup" ] || fail "in history.jsonl twice: $dup"
	r=$(jq -r '"\(.codesign.round) \(.id)"' "$h" | grep -vxFf proposals || true)
	[ -z "$r" ] || fail "in history.jsonl but not proposed in that round: $r"
	while IFS= read -r rec; do
		id=$(jq -r .id <<<"$rec")
		cmp -s <(jq -c 'del(.codesign)' <<<"$rec") <(jq -c . "$d/eval/$id.jsonl") ||
			fail "history record $id differs from eval/$id.jsonl"
	done < "$h"
	cmp -s <(digest "$d") <(head -n "$(wc -l < "$h")" ref.digest) ||
		fail "history is not the reference's up to its length: $(diff <(digest "$d") ref.digest)"
	# every cached evaluation: one whole scored record of a proposal, named by its id
	for f in "$d"/eval/*.jsonl; do
		[ -e "$f" ] || continue
		id=$(basename "$f" .jsonl)
		[ "$(wc -l < "$f")" -eq 1 ] && jq -e --arg id "$id" '.id == $id and (.score.performance | type) == "number"' \
			"$f" >/dev/null || fail "$f: not one whole evaluation of $id"
		grep -q " $id\$" proposals || fail "$f: $id was never proposed"
	done
	# files of the final stage, if this run got so far, whole and as the reference's
	[ ! -e "$d/maxima" ] || cmp -s "$d/maxima" ref/maxima || fail "maxima: $(cat "$d/maxima")"
	[ ! -e "$d/best.json" ] || cmp -s <(best "$d") ref.best || fail "best.json half-written or different"
	[ ! -e "$d/front.jsonl" ] || cmp -s <(jq -r .id "$d/front.jsonl") ref.front || fail "front.jsonl half-written or different"
	[ ! -e "$d/report.md" ] || cmp -s "$d/report.md" ref.report || fail "report.md: $(diff "$d/report.md" ref.report)"
}

# stamps: name, inode and modification time of the evaluations listed in the file evals
stamps() {
	(cd k/eval 2>/dev/null || exit 0; xargs -r stat -c '%n %i %y' --) < evals
}

# trial N: kill the run at its moment, check, resume, compare with the reference
trial() {
	local n=$1 tref delay pid r attempt running i
	cp "$BATS_FILE_TMPDIR"/ref.* . && ln -s "$BATS_FILE_TMPDIR/ref" ref
	tref=$(cat "$BATS_FILE_TMPDIR/span")
	delay=$(awk -v i="$n" -v t="$tref" -v n="$trials" 'BEGIN { srand(i); printf "%.3f", t * (i - 1 + rand()) / n }')
	echo "$tiny" > tiny.json
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		rm -rf k sid
		# (in a subshell that waits for it, so that bash does not report the kill)
		(setsid sh -c 'echo $$ > sid; exec "$@"' sh "$top/pipelines/codesign" "${cd_args[@]}" --out k > killed.log 2>&1 3>&-
			true) 2>/dev/null 3>&- &
		pid=$!
		sleep "$delay"
		for ((i = 0; i < 500; i++)); do [ ! -s sid ] || break; sleep 0.01; done
		[ -s sid ] || fail "the run did not start: $(cat killed.log)"
		kill_session "$(cat sid)"
		wait "$pid" || true
		echo "# trial $n: SIGKILL after $delay s ($(awk -v d="$delay" -v t="$tref" 'BEGIN { printf "%.2f", d / t }') of a run's $tref s), running: ${running:-nothing, the run had ended: again, sooner}" >&3
		[ -z "$running" ] || break
		delay=$(awk -v d="$delay" 'BEGIN { printf "%.3f", d * 0.8 }')
	done
	[ -n "$running" ] || fail "the run had ended before each of 10 kills"
	if [ -d k ]; then # unless killed before it made its folder
		check_killed k
	fi
	# the evaluations complete at the kill, by inode and time: each in the history in the end, and
	# none done again
	ls k/eval 2>/dev/null | grep '\.jsonl$' > evals || true
	stamps > stamps.before
	run cd_run --out k
	[ "$status" -eq 0 ] || fail "the resumed run failed (exit status $status): $output"
	stamps > stamps.after
	cmp -s stamps.before stamps.after || fail "evaluated again after the kill: $(diff stamps.before stamps.after)"
	r=$(sed 's/\.jsonl$//' evals | grep -vxFf <(jq -r .id k/history.jsonl) || true)
	[ -z "$r" ] || fail "evaluated before the kill but not in the history: $r"
	results k
	cmp -s k.digest ref.digest || fail "history differs from the reference: $(diff k.digest ref.digest)"
	cmp -s k.best ref.best || fail "best.json differs from the reference: $(diff k.best ref.best)"
	cmp -s k.front ref.front || fail "front.jsonl differs from the reference: $(diff k.front ref.front)"
	cmp -s k.report ref.report || fail "report.md differs from the reference: $(diff k.report ref.report)"
}

@test "kill: a finished run, run again, evaluates nothing again and ends with the same results" {
	cd "$BATS_FILE_TMPDIR"
	(cd again/eval && stat -c '%n %i %y' -- *) > stamps.before
	run cd_run --out again
	[ "$status" -eq 0 ] || fail "$output"
	(cd again/eval && stat -c '%n %i %y' -- *) | cmp -s - stamps.before || fail "evaluated again: $(ls -l again/eval)"
	results again
	for f in digest best front report; do
		cmp -s again.$f ref.$f || fail "the rerun changed $f: $(diff again.$f ref.$f)"
	done
}

@test "kill: trial 1" { trial 1; }
# bats test_tags=plain_only
@test "kill: trial 2" { trial 2; }
# bats test_tags=plain_only
@test "kill: trial 3" { trial 3; }
@test "kill: trial 4" { trial 4; }
# bats test_tags=plain_only
@test "kill: trial 5" { trial 5; }
# bats test_tags=plain_only
@test "kill: trial 6" { trial 6; }
@test "kill: trial 7" { trial 7; }
# bats test_tags=plain_only
@test "kill: trial 8" { trial 8; }
# bats test_tags=plain_only
@test "kill: trial 9" { trial 9; }
@test "kill: trial 10" { trial 10; }
# bats test_tags=plain_only
@test "kill: trial 11" { trial 11; }
# bats test_tags=plain_only
@test "kill: trial 12" { trial 12; }
@test "kill: trial 13" { trial 13; }
# bats test_tags=plain_only
@test "kill: trial 14" { trial 14; }
# bats test_tags=plain_only
@test "kill: trial 15" { trial 15; }
@test "kill: trial 16" { trial 16; }
# bats test_tags=plain_only
@test "kill: trial 17" { trial 17; }
# bats test_tags=plain_only
@test "kill: trial 18" { trial 18; }
@test "kill: trial 19" { trial 19; }
# bats test_tags=plain_only
@test "kill: trial 20" { trial 20; }
