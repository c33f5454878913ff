#!/usr/bin/env bats
# tc-sim: golden outputs of the reference pairs, area, the properties a simulator of this kind must
# have (more units never slower, more zeros never more energy, training costs more than
# inference), agreement of the two fidelities, sweeps against brute force, traces and plots.

load helper
bats_require_minimum_version 1.5.0

presets() {
	tc-sample --preset bert-tiny --preset bert-base --preset acceltran-edge --preset acceltran-server
}

@test "golden: BERT-Tiny and BERT-Base on AccelTran-Edge and -Server, both modes, both fidelities" {
	presets > pairs.jsonl
	for m in inference training; do
		for f in fast cycle; do
			tc-sim --mode $m --fidelity $f pairs.jsonl
		done
	done > out.jsonl
	diff -u "$top/tests/data/sim-golden.jsonl" out.jsonl
}

@test "area: AccelTran-Edge 54.06 mm2 and AccelTran-Server 1829.70 mm2, exactly the module sums" {
	tc-sample --preset acceltran-edge --preset acceltran-server --preset bert-tiny | tc-sim > a.jsonl
	# (16 lanes x (9418.67 + 484.38 + 6216.90 + 1181.20) + 4 x 87573 + 81104 + 75946.98 + 144.64) x 64 PEs
	# + 4 x 303305.83 + 8 x 294100.83 + 1 x 302565 um2
	jq -e -s '.[0].sim.area_mm2 == 54.0641802 and .[1].sim.area_mm2 == 1829.69099' a.jsonl >/dev/null
	jq -e -s '(.[0].sim.area_mm2 - 54.06 | fabs) / 54.06 < 0.005 and (.[1].sim.area_mm2 - 1829.70 | fabs) / 1829.70 < 0.005' a.jsonl >/dev/null
	# training adds a stochastic-rounding unit per lane: 79.04 um2 x 1024 lanes
	tc-sample --preset acceltran-edge --preset bert-tiny | tc-sim --mode training > t.jsonl
	jq -e '(.sim.area_mm2 - 54.0641802 - 0.08093696 | fabs) < 1e-6' t.jsonl >/dev/null
	jq -e '.sim.area_breakdown_mm2 | (.mac_lanes + .fifo + .sparsity + .stochastic_rounding + .softmax + .layernorm + .dataflow + .dma + .activation_buffer + .weight_buffer + .mask_buffer) - 54.1451172 | fabs < 1e-5' t.jsonl >/dev/null
}

@test "an accelerator whose weight buffer cannot hold the embedding table is infeasible, with a reason" {
	tc-sample --preset bert-base --preset acceltran-edge | tc-sim > o.jsonl
	jq -e '.sim.feasible == false and (.sim.reason | test("embedding table")) and .sim.area_mm2 > 54 and (.sim | has("latency_s") | not)' o.jsonl >/dev/null
}

# The cycle fidelity takes about a thousand times the fast one's time, so its properties are checked
# on the first 12 of the pairs (sanitized, the 40 took two minutes of the suite).
# bats test_tags=plain_only
@test "more PEs are never slower (fast), and at most 2% slower (cycle: the first 12 pairs)" {
	tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 40 --seed 31 > p.jsonl
	for pes in 64 128 256 512 1024; do jq -c ".accel.pes = $pes" p.jsonl > p$pes.jsonl; done
	for f in fast cycle; do
		for m in inference training; do
			for pes in 64 128 256 512 1024; do
				n=40
				[ $f = cycle ] && n=12
				head -n $n p$pes.jsonl | tc-sim --fidelity $f --mode $m | jq -r '.sim.latency_s // 0' > l$pes
			done
			limit=1
			[ $f = cycle ] && limit=1.02
			run -0 sh -c "paste l64 l128 l256 l512 l1024 | awk -v lim=$limit '{for (i = 2; i <= NF; i++) if (\$i > 0 && \$i > \$(i-1) * lim) bad++} END {print bad + 0}'"
			assert_equal "$output" 0
		done
	done
}

# bats test_tags=plain_only
@test "more zeros never cost more energy or time, in both fidelities (cycle: the first 10 pairs)" {
	tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 30 --seed 32 > p.jsonl
	for f in fast cycle; do
		n=30
		[ $f = cycle ] && n=10
		for s in 0.1 0.3 0.5 0.7 0.9; do
			head -n $n p.jsonl | tc-sim --fidelity $f --mode training --sparsity act=$s,weight=$s,grad=$s |
				jq -r '"\(.sim.energy_j // 0) \(.sim.latency_s // 0)"' > e$s
		done
		# (a record infeasible at low sparsity, its embedding table too big, may become feasible)
		run -0 sh -c "paste e0.1 e0.3 e0.5 e0.7 e0.9 | awk '{for (i = 3; i <= NF; i += 2) if (\$(i-2) > 0 && (\$i > \$(i-2) || \$(i+1) > \$(i-1))) bad++} END {print bad + 0}'"
		assert_equal "$output" 0
	done
}

@test "training costs more time and energy than inference" {
	tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 40 --seed 33 > p.jsonl
	tc-sim --mode inference p.jsonl | jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' > inf
	tc-sim --mode training p.jsonl | jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' > tr
	run -0 sh -c "paste inf tr | awk '\$1 > 0 && (\$3 <= \$1 || \$4 <= \$2) {bad++} END {print bad + 0}'"
	assert_equal "$output" 0
}

@test "fast agrees with cycle: median error under 5%, worst under 15%, on 30 random pairs" {
	tc-sample --space pair --space-file "$TC_SHARE/space/tiny.json" -n 30 --seed 34 > p.jsonl
	tc-sim p.jsonl | jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' > fast
	tc-sim --fidelity cycle p.jsonl | jq -r '"\(.sim.latency_s // 0) \(.sim.energy_j // 0)"' > cycle
	paste fast cycle | awk '$1 > 0 {l = ($1 - $3) / $3; e = ($2 - $4) / $4; print (l < 0 ? -l : l), (e < 0 ? -e : e)}' > err
	[ "$(wc -l < err)" -gt 15 ]
	run -0 sh -c "sort -g -k1 err | awk '{a[NR] = \$1} END {print (a[int((NR + 1) / 2)] < 0.05 && a[NR] < 0.15)}'"
	assert_equal "$output" 1
	run -0 sh -c "sort -g -k2 err | awk '{a[NR] = \$2} END {print (a[int((NR + 1) / 2)] < 0.05 && a[NR] < 0.15)}'"
	assert_equal "$output" 1
}

@test "every one of the 24 loop orders runs, and the order changes the buffer traffic" {
	tc-sample --preset bert-tiny --preset acceltran-edge > p.jsonl
	for o in bijk bikj bjik bjki bkij bkji ibjk ibkj ijbk ijkb ikbj ikjb jbik jbki jibk jikb jkbi jkib kbij kbji kibj kijb kjbi kjib; do
		jq -c ".accel.dataflow = \"$o\"" p.jsonl
	done > orders.jsonl
	tc-sim --fidelity cycle orders.jsonl > o.jsonl
	[ "$(jq -r .sim.dataflow o.jsonl | sort -u | wc -l)" -eq 24 ]
	# output-stationary b-i-j-k reads more operands but writes no partial sums; k-outer orders write them
	jq -e -s '(.[0].sim.traffic_mb.buffer_write < .[23].sim.traffic_mb.buffer_write) and
		(map(.sim.traffic_mb.buffer_read) | unique | length) > 2' o.jsonl >/dev/null
}

@test "measured sparsity in the record wins over options and the profile" {
	tc-sample --preset bert-tiny --preset acceltran-edge | jq -c '.train = {sparsity: {activation: 0.7, gradient: 0.95}} | .prune = {sparsity: {weight: 0.8}}' > p.jsonl
	tc-sim --mode training --sparsity act=0.1,weight=0.1,grad=0.1 p.jsonl > o.jsonl
	jq -e '.sim.sparsity == {activation: 0.7, weight: 0.8, gradient: 0.95, from: {activation: "train", weight: "prune", gradient: "train"}}' o.jsonl >/dev/null
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim --sparsity act=0.3 > o2.jsonl
	jq -e '.sim.sparsity == {activation: 0.3, weight: 0.5, gradient: 0.9, from: {activation: "option", weight: "profile", gradient: "profile"}}' o2.jsonl >/dev/null
}

@test "--batch and --seq change the workload; larger work takes longer" {
	tc-sample --preset bert-tiny --preset acceltran-server > p.jsonl
	a=$(tc-sim p.jsonl | jq .sim.cycles)
	b=$(tc-sim --batch 32 p.jsonl | jq .sim.cycles)
	c=$(tc-sim --seq 512 p.jsonl | jq .sim.cycles)
	[ "$b" -gt "$a" ] && [ "$c" -gt "$a" ]
	assert_equal "$(tc-sim --batch 32 p.jsonl | jq .sim.batch)" 32
}

@test "other fields pass through unchanged and output is the same on one thread and two" {
	tc-sample --space pair -n 150 --seed 3 | jq -c '. + {note: "kept", x: [1, 2.5]}' > p.jsonl
	tc-sim --threads 1 p.jsonl > one.jsonl
	tc-sim --threads 2 p.jsonl > two.jsonl
	cmp one.jsonl two.jsonl
	diff <(jq -c 'del(.sim)' one.jsonl) <(jq -c . p.jsonl)
}

@test "--sweep keeps exactly the Pareto set that simulating the whole grid gives" {
	jq '.params.pes = [64, 256] | .params.lanes_per_pe = [8, 32] | .params.softmax_per_pe = [4] |
		.params.batch = [4] | .params.act_buffer_mb = [4, 16] | .params.weight_buffer_mb = [8, 32] |
		.params.mask_buffer_mb = [1, 4] | .params.memory = ["rram-16-2-2", "dram-32-2-1", "hbm-32-1-4"] |
		.name = "small"' "$TC_SHARE/space/acceltran.json" > small.json
	tc-sample --preset bert-tiny > m.jsonl
	tc-sim --sweep --mode training --space-file small.json m.jsonl > sweep.jsonl
	tc-sample --preset bert-tiny --space pair --grid --space-file small.json | tc-sim --mode training --space-file small.json |
		tc-pareto -O sim.latency_s,sim.energy_j,sim.area_mm2 > brute.jsonl
	assert_equal "$(jq -c .accel sweep.jsonl | sort)" "$(jq -c .accel brute.jsonl | sort)"
	jq -e -s 'all(.[]; .sweep.evaluated == 2304 and .sweep.selection == "pareto" and .sim.fidelity == "fast")' sweep.jsonl >/dev/null
	# the sims the sweep writes are the sims a direct run gives
	assert_equal "$(jq -c '[.accel, .sim.latency_s, .sim.energy_j]' sweep.jsonl | sort)" \
		"$(jq -c '[.accel, .sim.latency_s, .sim.energy_j]' brute.jsonl | sort)"
}

@test "--sweep --top K keeps the K lowest weighted products" {
	jq '.params.pes = [64, 256] | .params.lanes_per_pe = [8, 32] | .params.batch = [4] |
		.params.memory = ["dram-32-2-1", "hbm-32-1-4"] | .params.act_buffer_mb = [4] |
		.params.weight_buffer_mb = [8] | .params.mask_buffer_mb = [1]' "$TC_SHARE/space/acceltran.json" > s.json
	tc-sample --preset bert-tiny > m.jsonl
	tc-sim --sweep --top 5 --weights 1,1,0 --space-file s.json m.jsonl > top.jsonl
	[ "$(wc -l < top.jsonl)" -eq 5 ]
	tc-sample --preset bert-tiny --space pair --grid --space-file s.json | tc-sim --space-file s.json |
		jq -r '.sim.latency_s * .sim.energy_j' | sort -g | head -n 5 > want
	# (accelerators that differ only in units the workload does not wait for tie; compare the scores)
	assert_equal "$(jq -r '.sim.latency_s * .sim.energy_j' top.jsonl)" "$(cat want)"
	jq -e -s 'map(.sim.latency_s * .sim.energy_j) | . == sort' top.jsonl >/dev/null
}

@test "--trace lists every op and transfer; --plot draws utilisation" {
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim --fidelity cycle --trace t.jsonl --plot u.png > o.jsonl
	[ "$(jq -r 'select(.kind | test("matmul|conv|elementwise|softmax|layernorm|update")) | .name' t.jsonl | wc -l)" -eq "$(jq .sim.ops o.jsonl)" ]
	jq -e -s 'all(.[]; .end_cycle >= .start_cycle and .record == "437d8ea117dcd78c")' t.jsonl >/dev/null
	jq -e -s '[.[] | select(.kind == "load")] | length > 0' t.jsonl >/dev/null
	[ "$(head -c 8 u.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
	# total MAC busy cycles in the trace match the utilisation
	busy=$(jq -s 'map(select(.kind == "matmul" or .kind == "conv" or .kind == "elementwise" or .kind == "update") | .busy_unit_cycles) | add' t.jsonl)
	jq -e --argjson b "$busy" '(.sim.utilisation.mac_lanes * .sim.units.mac_lanes * .sim.cycles - $b | fabs) / $b < 1e-6' o.jsonl >/dev/null
}

@test "the cycle fidelity simulates BERT-Tiny on AccelTran-Edge tile by tile" {
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim --fidelity cycle > o.jsonl
	# 62,000-odd tiles, as in the released simulator's count (62,005)
	jq -e '.sim.tiles > 60000 and .sim.tiles < 70000 and .sim.cycles > 100000' o.jsonl >/dev/null
}

@test "tc-sim | tc-pareto just works, infeasible candidates left out" {
	tc-sample --space pair -n 60 --seed 8 | tc-sim > s.jsonl
	tc-pareto -O sim.latency_s,sim.energy_j,sim.area_mm2 --summary sum.json s.jsonl > f.jsonl
	jq -e --argjson n "$(jq -s 'map(select(.sim.feasible == false)) | length' s.jsonl)" '.infeasible == $n and .infeasible > 0' sum.json >/dev/null
	jq -e -s 'all(.[]; .sim.feasible)' f.jsonl >/dev/null
	tc-pareto --rank -O sim.latency_s,sim.energy_j s.jsonl > r.jsonl
	jq -e -s 'all(.[]; (.sim.feasible == false) == (.pareto.rank == null))' r.jsonl >/dev/null
}

@test "--brief writes the headline figures only, equal to the full run's" {
	tc-sample --space pair -n 20 --seed 4 > p.jsonl
	tc-sim --brief p.jsonl > b.jsonl
	tc-sim p.jsonl > f.jsonl
	jq -e -s 'all(.[]; .sim | has("energy_breakdown_j") | not)' b.jsonl >/dev/null
	assert_equal "$(jq -c '.sim | [.feasible, .cycles, .latency_s, .energy_j, .area_mm2]' b.jsonl)" \
		"$(jq -c '.sim | [.feasible, .cycles, .latency_s, .energy_j, .area_mm2]' f.jsonl)"
}
