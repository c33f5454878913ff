#!/usr/bin/env bats
# pipelines/codesign: the co-design loop on the committed task subset with tiny budgets: its
# output folder, resumption without evaluating anything twice, kill -9 at a random moment, failed
# evaluations scored rather than fatal, and bad options.

load helper
bats_require_minimum_version 1.5.0

export TC_DATA="$top/tests/data/task"
# a search over accelerators for the smallest model of the tiny space, so each evaluation is quick
tiny='{"model":{"l":2,"o":[["sa_sdp_32","l_dft_32"],["c_5_32","sa_wma_32"]],"h":[64,64],"f":[[128],[128]]}}'
args="-q --budget 5 --init 3 --per-round 2 --jobs 2 --fix-model tiny.json --calibrate --batches=1"
cd_run() {
	echo "$tiny" > tiny.json
	"$top/pipelines/codesign" $args --train '--steps 8 --vocab-size 300 --batch 8 --seq 32' "$@"
}
digest() { jq -c '[.id, .codesign.round, .score.performance, .train.val_accuracy, .sim.energy_j]' "$1/history.jsonl"; }

@test "codesign: history, best pair, front, plots and report; a rerun evaluates nothing again" {
	run -0 cd_run --out a
	[ "$(wc -l < a/history.jsonl)" -eq 5 ]
	[ "$(jq -r .id a/history.jsonl | sort -u | wc -l)" -eq 5 ]
	[ -s a/best.json ] && [ -s a/front.jsonl ] && [ -s a/front.png ] && [ -s a/convergence.png ] && [ -s a/report.md ]
	jq -se 'all(.[]; .train and .prune and .sim and .sim_training.mode == "training"
		and .sim.mode == "inference" and .score.performance != null)' a/history.jsonl >/dev/null
	assert_equal "$(jq -c .score.performance a/best.json)" "$(jq -s 'map(.score.performance) | max' a/history.jsonl)"
	# the reference pair (the fixed model on AccelTran-Edge), scored with the same maxima
	jq -e '.accel.pes == 64 and .accel.memory == "dram-32-2-1" and .score.performance > 0' a/reference.json >/dev/null
	grep -q '^| inference latency (s) |' a/report.md || fail "$(cat a/report.md)"
	grep -q '^lat=.*,area=.*,dyn=.*,leak=' a/maxima
	digest a > before
	ls a/eval > evals
	run -0 cd_run --out a
	digest a | cmp - before
	ls a/eval | cmp - evals
}

@test "codesign: killed with SIGKILL at a random moment and run again, it ends as an uninterrupted run" {
	cd_run --out straight
	echo "$tiny" > tiny.json
	"$top/pipelines/codesign" $args --train '--steps 8 --vocab-size 300 --batch 8 --seq 32' --out killed &
	pid=$!
	sleep "$(awk 'BEGIN { srand(); printf "%.1f", 0.3 + rand() * 2.5 }')"
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	pkill -KILL -f "killed/evaluate" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	run -0 cd_run --out killed
	digest straight > s
	digest killed > k
	cmp s k || fail "$(diff s k)"
}

@test "codesign: --sshloginfile evaluates on other machines (an ssh stand-in here) with the same results" {
	mkdir remote
	cat > standin <<EOF
#!/bin/sh
# ssh stand-in: options and the host dropped, the command run in the "remote" home
echo "\$*" >> "$PWD/ssh.log"
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
shift
[ "\${1:-}" = -- ] && shift
cd "$PWD/remote" && HOME="$PWD/remote" exec sh -c "\$*"
EOF
	chmod +x standin
	echo "2/standin-host" > logins
	cd_run --out here --reference none
	# without SHELL, as under cron or a CI runner, where GNU parallel's ssh jobs did nothing
	PARALLEL_SSH="$PWD/standin" run env -u SHELL "$top/pipelines/codesign" $args \
		--train '--steps 8 --vocab-size 300 --batch 8 --seq 32' --out there --reference none --sshloginfile logins
	[ "$status" -eq 0 ] || fail "exit $status: $output"
	digest here > h
	digest there > t
	cmp h t || fail "$(diff h t)"
	[ "$(grep -c 'rsync --server --sender.*jsonl' ssh.log)" -eq 5 ] || fail "results not returned through the stand-in: $(grep rsync ssh.log)"
	# jobs work in their own directories, not under ~/.parallel/tmp, whose cleanup raced the next job
	! grep -q '\.parallel/tmp' ssh.log || fail "a job worked under ~/.parallel/tmp: $(grep -m1 '\.parallel/tmp' ssh.log)"
	[ -z "$(ls -A remote)" ] || fail "left on the remote: $(ls -A remote)"
}

@test "codesign: --slurm-array evaluates each round as a job array (an sbatch stand-in here)" {
	mkdir bin
	cat > bin/sbatch <<'EOF'
#!/bin/sh
# sbatch stand-in: --wait --array=0-N [options] SCRIPT ARGS, every task run here, in turn
echo "sbatch $*" >> "$SBATCH_LOG"
n=
while [ $# -gt 0 ]; do case $1 in --array=*) n=${1#--array=0-}; shift ;; -*) shift ;; *) break ;; esac; done
i=0
while [ "$i" -le "$n" ]; do SLURM_ARRAY_TASK_ID=$i "$@" || exit 1; i=$((i + 1)); done
EOF
	chmod +x bin/sbatch
	cd_run --out here --reference none
	SBATCH_LOG="$PWD/sbatch.log" PATH="$PWD/bin:$PATH" run -0 cd_run --out there --reference none --slurm-array '--time=10'
	digest here > h
	digest there > t
	cmp h t || fail "$(diff h t)"
	[ "$(grep -c -- '--wait --array=0-' sbatch.log)" -ge 2 ] && grep -q -- '--time=10' sbatch.log || fail "$(cat sbatch.log)"
}

@test "codesign: a failing evaluation is scored -1 and the loop goes on" {
	run -0 cd_run --out f --task tsv:nosuch.tsv --budget 3 --init 3 --reference none
	[ "$(wc -l < f/history.jsonl)" -eq 3 ]
	jq -se 'all(.[]; .score.performance == -1 and .score.failed and (.error | test("nosuch")))' f/history.jsonl >/dev/null ||
		fail "$(jq -c '{error, score}' f/history.jsonl)"
}

@test "codesign: bad options are usage errors" {
	for args in "--budget x" "--budget 0" "--propose annealing" "--no-such" "--fix-accel a --fix-model b" "--out"; do
		run -2 --separate-stderr "$top/pipelines/codesign" $args
		[[ "$stderr" == codesign:* ]] || fail "$args: $stderr"
	done
}
