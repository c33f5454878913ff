#!/usr/bin/env bats
# tc-score(1): the co-design performance, checked against the formula computed here with jq (and
# one value by hand), on hand-made records and on tc-sim's; the defined scores of failed,
# infeasible and constrained records and their order; byte pass-through; determinism; and every
# kind of bad input and bad option.

load helper
bats_require_minimum_version 1.5.0

# The defaults, as the man page gives them: weights, and maxima (latency 4e9 cycles at 700 MHz).
W='{"acc":0.5,"lat":0.1,"area":0.1,"dyn":0.2,"leak":0.1}'
M='{"lat":5.714285714285714,"area":30000,"dyn":90,"leak":20}'

# rec ID LAT AREA DYN1 DYN2 LEAK1 LEAK2 ACC: a record with a feasible sim object whose energies
# come in two parts each, and a test accuracy the score must not use.
rec() {
	printf '{"id":"%s","sim":{"feasible":true,"latency_s":%s,"area_mm2":%s,"energy_breakdown_j":{"dynamic":{"mac_lanes":%s,"main_memory":%s},"leakage":{"weight_buffer":%s,"mask_buffer":%s}}},"train":{"val_accuracy":%s,"test_accuracy":0.999}}\n' "$@"
}

# hand.jsonl: five feasible records, figures from tiny to beyond the maxima (negative terms).
hand() {
	{
		rec a 0.5 3000 9 0.5 2 0 0.8
		rec b 0.000232931429 54.0641802 0.0006 0.00005 0.0007 0.00001 0.79
		rec c 5.714285714285714 30000 45 45 10 10 1
		rec d 12 45000 100 80 0 30 0
		rec e 0 0 0 0 0 0 0.5
	} > hand.jsonl
}

# expected WEIGHTS MAXIMA FILE: the performance of each record of FILE by the formula, one a line.
expected() {
	jq -r --argjson w "$1" --argjson m "$2" '
		.sim as $s
		| ($s.energy_breakdown_j.dynamic | [.[]] | add) as $d
		| ($s.energy_breakdown_j.leakage | [.[]] | add) as $l
		| [$w.acc * .train.val_accuracy, $w.lat * (1 - $s.latency_s / $m.lat),
		   $w.area * (1 - $s.area_mm2 / $m.area), $w.dyn * (1 - $d / $m.dyn),
		   $w.leak * (1 - $l / $m.leak)] | add' "$3"
}

# agree FILE-A FILE-B: two columns of numbers agree line by line within 1e-12 (relative above 1).
agree() {
	[ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ] || fail "$(wc -l < "$1") against $(wc -l < "$2") lines"
	paste "$1" "$2" | awk '{ d = $1 - $2; d = d < 0 ? -d : d; s = $2 < 0 ? -$2 : $2; s = s > 1 ? s : 1
		if (!($2 != "") || d > 1e-12 * s) { print "line " NR ": " $1 " against " $2; bad = 1 } }
		END { exit bad }' >&2 || fail "performance differs from the formula"
}

# refuse FILE-LINE-MESSAGE ARGS...: tc-score ARGS -o out.jsonl fails with status 1 and exactly that
# line on stderr, and leaves the old out.jsonl and no temporary file.
refuse() {
	local want=$1
	shift
	echo old > out.jsonl
	run -1 --separate-stderr tc-score -q -o out.jsonl "$@"
	[ -z "$output" ] || fail "stdout not empty: $output"
	assert_equal "$stderr" "tc-score: $want"
	assert_equal "$(cat out.jsonl)" old
	[ -z "$(ls -A | grep '^\.out\.jsonl')" ] || fail "temporary file left: $(ls -A)"
}

# badopt MESSAGE ARGS...: status 2, nothing on stdout, MESSAGE on the first line of stderr.
badopt() {
	local want=$1
	shift
	run -2 --separate-stderr tc-score "$@" hand.jsonl
	[ -z "$output" ] || fail "stdout not empty: $output"
	assert_equal "${stderr%%$'\n'*}" "tc-score: $want"
}

@test "tc-score: the default formula, with the area term, against jq and a value worked by hand" {
	hand
	run -0 --separate-stderr tc-score hand.jsonl
	printf '%s\n' "$output" > out.jsonl
	jq -r .score.performance out.jsonl > got
	expected "$W" "$M" hand.jsonl > want
	agree got want
	# a: 0.5*0.8 + 0.1*(1 - 0.5/(4e9/7e8)) + 0.1*(1 - 3000/30000) + 0.2*(1 - 9.5/90) + 0.1*(1 - 2/20)
	awk 'BEGIN { printf "%.17g\n", 0.4 + 0.1 * (1 - 0.5 / (4e9 / 7e8)) + 0.09 + 0.2 * (1 - 9.5 / 90) + 0.09 }' > want
	assert_equal "$(cut -c1-14 want)" 0.850138888888
	head -n 1 got > got1
	agree got1 want
	# every figure at its maximum leaves the accuracy term alone; beyond them terms go negative
	assert_equal "$(jq -c 'select(.id == "c") | .score' out.jsonl)" \
		'{"performance":0.5,"feasible":true,"terms":{"acc":0.5,"lat":0,"area":0,"dyn":0,"leak":0}}'
	assert_equal "$(jq -c 'select(.id == "d") | .score.terms | .lat < 0 and .area < 0 and .dyn < 0 and .leak < 0' out.jsonl)" true
	assert_equal "$(jq -c 'select(.id == "e") | .score' out.jsonl)" \
		'{"performance":0.7499999999999999,"feasible":true,"terms":{"acc":0.25,"lat":0.1,"area":0.1,"dyn":0.2,"leak":0.1}}'
	# the summary names the best record's position
	assert_equal "$stderr" "tc-score: 5 records: 5 scored (best 0.894811 at hand.jsonl:2), 0 infeasible, 0 over a limit, 0 failed"
}

@test "tc-score: records from tc-sim, scored by the formula; the terms add up to the performance" {
	tc-sample --preset bert-tiny --space pair -n 12 --seed 5 | tc-sim |
		jq -c '.train = {val_accuracy: (0.6 + .accel.pes / 4096)}' > sims.jsonl
	run -0 tc-score -q -o out.jsonl sims.jsonl
	[ -z "$output" ] || fail "stdout: $output"
	[ "$(wc -l < out.jsonl)" -eq 12 ]
	jq -r .score.performance out.jsonl > got
	expected "$W" "$M" sims.jsonl > want
	agree got want
	# summed in the order written, the terms give the performance exactly
	run -0 jq -r '.score | (.terms | [.acc, .lat, .area, .dyn, .leak] | add) == .performance' out.jsonl
	[ "$(grep -c true <<< "$output")" -eq 12 ] || fail "$output"
	jq -e -s 'all(.[]; .score.feasible == true and (.score | keys) == ["feasible", "performance", "terms"])' out.jsonl >/dev/null
}

@test "tc-score: --weights and --maxima change only the keys given; the released formula drops area" {
	hand
	tc-score -q --weights acc=0.3,area=0.3 --maxima lat=0.001,dyn=0.5 hand.jsonl > out.jsonl
	jq -r .score.performance out.jsonl > got
	expected '{"acc":0.3,"lat":0.1,"area":0.3,"dyn":0.2,"leak":0.1}' \
		'{"lat":0.001,"area":30000,"dyn":0.5,"leak":20}' hand.jsonl > want
	agree got want
	# the same with the keys one at a time, in another order
	tc-score -q --maxima dyn=0.5 --weights area=0.3 --maxima lat=0.001 --weights acc=0.3 hand.jsonl > again.jsonl
	cmp out.jsonl again.jsonl
	# the released script: no area term, weights summing to 0.9, and a warning saying so
	run -0 --separate-stderr tc-score --weights area=0 -o released.jsonl hand.jsonl
	[[ "$stderr" == "tc-score: warning: the weights sum to 0.9, not 1: "*$'\n'"tc-score: 5 records"* ]] || fail "$stderr"
	jq -e -s 'all(.[]; .score.terms.area == 0)' released.jsonl >/dev/null
	jq -r .score.performance released.jsonl > got
	expected '{"acc":0.5,"lat":0.1,"area":0,"dyn":0.2,"leak":0.1}' "$M" hand.jsonl > want
	agree got want
	run -0 --separate-stderr tc-score -q --weights area=0 hand.jsonl
	[ -z "$stderr" ] || fail "-q wrote: $stderr"
}

@test "tc-score: --config sets weights, maxima and constraints; options after it override it" {
	hand
	echo '{"weights":{"acc":0.3,"area":0.3},"maxima":{"lat":0.001,"dyn":0.5},"constraints":{"max_area":40000}}' > c.json
	tc-score -q --config c.json hand.jsonl > conf.jsonl
	tc-score -q --weights acc=0.3,area=0.3 --maxima lat=0.001,dyn=0.5 --max-area 40000 hand.jsonl > flags.jsonl
	cmp conf.jsonl flags.jsonl
	assert_equal "$(jq -c 'select(.id == "d") | .score.violation == 0.125' conf.jsonl)" true
	# after: the option wins; before: the file wins
	tc-score -q --config c.json --weights acc=0.5 --max-area 50000 hand.jsonl > after.jsonl
	jq -r .score.performance after.jsonl > got
	expected '{"acc":0.5,"lat":0.1,"area":0.3,"dyn":0.2,"leak":0.1}' \
		'{"lat":0.001,"area":30000,"dyn":0.5,"leak":20}' hand.jsonl > want
	agree got want
	tc-score -q --weights acc=0.5 --max-area 50000 --config c.json hand.jsonl > before.jsonl
	cmp before.jsonl conf.jsonl
	# an empty object changes nothing
	echo '{}' > empty.json
	tc-score -q --config empty.json hand.jsonl > e.jsonl
	tc-score -q hand.jsonl > d.jsonl
	cmp e.jsonl d.jsonl
}

@test "tc-score: failed, infeasible and constrained records get defined scores, in that order" {
	{
		rec ok 0.001 100 0.5 0.5 0.1 0.1 0.8
		echo '{"id":"fail","error":"tc-train: loss is nan","sim":{"feasible":true}}'
		echo '{"id":"inf","sim":{"feasible":false,"reason":"the embedding table does not fit","area_mm2":54}}'
		echo '{"id":"noreason","sim":{"feasible":false}}'
		rec area 0.001 3000 0.5 0.5 0.1 0.1 0.8
		rec two 0.5 3000 0.5 0.5 0.1 0.1 0.8
		rec energy 0.001 100 1 1 1 1 0.8
		rec edge 0.25 2000 0.5 0.5 0.5 0.5 0.8
		echo '{"id":"untrained","sim":{"latency_s":1,"area_mm2":5000,"energy_breakdown_j":{"dynamic":{},"leakage":{}}}}'
	} > mixed.jsonl
	run -0 --separate-stderr tc-score --max-area 2000 --max-latency 0.25 --max-energy 2 -o out.jsonl mixed.jsonl
	assert_equal "$stderr" "tc-score: 9 records: 2 scored (best 0.896427 at mixed.jsonl:1), 2 infeasible, 4 over a limit, 1 failed"
	s() { jq -c --arg id "$1" 'select(.id == $id) | .score' out.jsonl; }
	assert_equal "$(s fail)" '{"performance":-1,"feasible":false,"failed":true,"reason":"tc-train: loss is nan"}'
	assert_equal "$(s inf)" '{"performance":-1,"feasible":false,"reason":"the embedding table does not fit"}'
	assert_equal "$(s noreason)" '{"performance":-1,"feasible":false,"reason":"the simulation is infeasible"}'
	assert_equal "$(s area)" '{"performance":-1.5,"feasible":false,"reason":"area 3000 mm2 exceeds the limit of 2000 mm2","violation":0.5}'
	assert_equal "$(s two)" '{"performance":-2.5,"feasible":false,"reason":"area 3000 mm2 exceeds the limit of 2000 mm2; latency 0.5 s exceeds the limit of 0.25 s","violation":1.5}'
	assert_equal "$(s energy)" '{"performance":-2,"feasible":false,"reason":"energy 4 J exceeds the limit of 2 J","violation":1}'
	# a figure equal to its limit meets it
	assert_equal "$(jq -c 'select(.id == "edge") | .score.feasible == true' out.jsonl)" true
	# over a limit, the accuracy is not needed; every broken limit counts
	assert_equal "$(s untrained | jq -c '[.performance, .violation]')" '[-5.5,4.5]'
	# ranking: feasible, then -1 (failed or infeasible), then the less violating first
	assert_equal "$(jq -s -r 'sort_by(-.score.performance) | map(.id) | join(" ")' out.jsonl)" \
		"ok edge fail inf noreason area energy two untrained"
	# tc-pareto leaves every score that is not feasible out
	tc-pareto -O score.performance:max out.jsonl > best.jsonl
	assert_equal "$(jq -r .id best.jsonl)" ok
	# without limits the records over them score by the formula, and then need an accuracy
	head -n 8 mixed.jsonl > trained.jsonl
	assert_equal "$(tc-score -q trained.jsonl | jq -s -c 'map(select(.score.feasible) | .id)')" '["ok","area","two","energy","edge"]'
	refuse "mixed.jsonl:9: missing field 'train.val_accuracy' (run tc-train first, or name the accuracy with --accuracy)" mixed.jsonl
}

@test "tc-score: --sim and --accuracy name other objects; the test accuracy is never read" {
	hand
	jq -c '{id, sims: {inference: .sim}, surrogate: {glue: .train.val_accuracy}}' hand.jsonl > moved.jsonl
	tc-score -q hand.jsonl | jq -c .score > a
	tc-score -q --sim sims.inference --accuracy surrogate.glue moved.jsonl | jq -c .score > b
	cmp a b
	# training and inference simulations under two keys, each scored on its own
	tc-sample --preset bert-tiny --preset acceltran-edge | tc-sim --mode training |
		jq -c '.sim_training = .sim | del(.sim) | .train = {val_accuracy: 0.7}' | tc-sim > both.jsonl
	tc-score -q --sim sim_training both.jsonl > t.jsonl
	tc-score -q both.jsonl > i.jsonl
	jq -c '.sim = .sim_training' both.jsonl | tc-score -q | jq .score > want
	assert_equal "$(jq .score t.jsonl)" "$(cat want)"
	[ "$(jq .score.performance t.jsonl)" != "$(jq .score.performance i.jsonl)" ] || fail "both scored the same simulation"
	# an accuracy term of 0.5 * val_accuracy, whatever the test accuracy says
	jq -e -s 'all(.[]; .score.terms.acc == 0.5 * .train.val_accuracy)' t.jsonl >/dev/null
	rec x 0 0 0 0 0 0 0.2 > one.jsonl
	assert_equal "$(tc-score -q one.jsonl | jq .score.terms.acc)" 0.1
	assert_equal "$(tc-score -q --accuracy train.test_accuracy one.jsonl | jq .score.terms.acc)" 0.4995
}

@test "tc-score: every other byte of a record passes through; blank lines are skipped" {
	printf '%s\n' \
		'{ "z" : 1.0 , "x":[0.1,1e2,-0.0,"\u00e9\n"],"sim":{"latency_s":1E-3,"area_mm2":1,"energy_breakdown_j":{"dynamic":{"a":1},"leakage":{"b":0.5}}},"train":{"val_accuracy":0.5}  }  ' \
		'' \
		'   ' \
		'{"error":"boom","n":1.5e300}' > odd.jsonl
	tc-score -q odd.jsonl > out.jsonl
	[ "$(wc -l < out.jsonl)" -eq 2 ]
	in1='{ "z" : 1.0 , "x":[0.1,1e2,-0.0,"\u00e9\n"],"sim":{"latency_s":1E-3,"area_mm2":1,"energy_breakdown_j":{"dynamic":{"a":1},"leakage":{"b":0.5}}},"train":{"val_accuracy":0.5}  '
	out1=$(sed -n 1p out.jsonl)
	assert_equal "${out1%%,\"score\":*}" "$in1"
	[[ "$out1" == *',"score":{"performance":'*'}}' ]] || fail "$out1"
	assert_equal "$(sed -n 2p out.jsonl)" '{"error":"boom","n":1.5e300,"score":{"performance":-1,"feasible":false,"failed":true,"reason":"boom"}}'
	echo '{"error":"é"}' > utf.jsonl
	assert_equal "$(tc-score -q utf.jsonl)" '{"error":"é","score":{"performance":-1,"feasible":false,"failed":true,"reason":"é"}}'
}

@test "tc-score: the same input and options give the same bytes, however jansson hashes" {
	hand
	# a sum whose value depends on its order: the record's, 1 + 1 + 1e16 = 1e16 + 2
	echo '{"sim":{"latency_s":1,"area_mm2":1,"energy_breakdown_j":{"dynamic":{"z":1,"y":1,"a":1e16},"leakage":{"m":1,"b":1,"q":1e16}}},"train":{"val_accuracy":0.5}}' >> hand.jsonl
	tc-score -q --max-energy 1e20 hand.jsonl > first.jsonl
	for i in 1 2 3 4 5 6 7 8; do
		tc-score -q --max-energy 1e20 < hand.jsonl > again.jsonl
		cmp first.jsonl again.jsonl
	done
	assert_equal "$(tail -n 1 first.jsonl | jq .score.terms.dyn)" "$(jq -n '0.2 * (1 - 10000000000000002 / 90)')"
	# several files are one stream
	head -n 2 hand.jsonl > p1.jsonl
	tail -n +3 hand.jsonl > p2.jsonl
	tc-score -q --max-energy 1e20 p1.jsonl - < p2.jsonl > parts.jsonl
	cmp first.jsonl parts.jsonl
}

@test "tc-score: bad records fail with one line naming file, line and field, and write nothing" {
	ok=$(rec ok 0.1 10 1 1 1 1 0.5)
	sim='"latency_s":0.1,"area_mm2":10'
	bd='"energy_breakdown_j":{"dynamic":{"a":1},"leakage":{"b":1}}'
	check() { # LINE2 MESSAGE [ARGS]: a file of a good record and LINE2 is refused with MESSAGE at line 2
		local line=$1 msg=$2
		shift 2
		printf '%s\n%s\n' "$ok" "$line" > bad.jsonl
		refuse "bad.jsonl:2: $msg" "$@" bad.jsonl
	}
	check '{"sim":' "malformed JSON at column 7: unexpected token near end of file"
	check '{"sim":{"latency_s":NaN}}' "malformed JSON at column 23: invalid token near 'NaN'"
	check '{"sim":{"latency_s":Infinity}}' "malformed JSON at column 28: invalid token near 'Infinity'"
	check '{"sim":{"latency_s":1e999}}' "malformed JSON at column 25: real number overflow near '1e999'"
	check '[1]' "expected a JSON object, got array"
	check '{"a":1,"a":2}' "malformed JSON at column 10: duplicate object key near '\"a\"'"
	check '{"id":"x"}' "missing field 'sim' (run tc-sim first, or name its object with --sim)"
	check '{"sim":[1]}' "field 'sim': expected an object, got array"
	check '{"sim":{"feasible":"yes"}}' "field 'sim.feasible': expected true or false, got string"
	check '{"sim":{"feasible":false,"reason":5}}' "field 'sim.reason': expected a string, got number"
	check '{"sim":{"area_mm2":1}}' "missing field 'sim.latency_s'"
	check '{"sim":{"latency_s":"fast"}}' "field 'sim.latency_s': expected a number, got string"
	check '{"sim":{"latency_s":-0.5}}' "field 'sim.latency_s': -0.5 is negative"
	check '{"sim":{"latency_s":1}}' "missing field 'sim.area_mm2'"
	check '{"sim":{"latency_s":1,"area_mm2":-3}}' "field 'sim.area_mm2': -3 is negative"
	check "{\"sim\":{$sim,\"energy_j\":2}}" "missing field 'sim.energy_breakdown_j': the score needs dynamic and leakage energy (run tc-sim without --brief)"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":7}}" "field 'sim.energy_breakdown_j': expected an object, got number"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":{\"leakage\":{}}}}" "missing field 'sim.energy_breakdown_j.dynamic'"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":{\"dynamic\":[1],\"leakage\":{}}}}" "field 'sim.energy_breakdown_j.dynamic': expected an object, got array"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":{\"dynamic\":{\"a\":1,\"b\":null},\"leakage\":{}}}}" "field 'sim.energy_breakdown_j.dynamic.b': expected a number, got null"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":{\"dynamic\":{},\"leakage\":{\"b\":-1e-9}}}}" "field 'sim.energy_breakdown_j.leakage.b': -1e-9 is negative"
	check "{\"sim\":{$sim,\"energy_breakdown_j\":{\"dynamic\":{\"a\":1e308,\"b\":1e308},\"leakage\":{}}}}" "field 'sim.energy_breakdown_j.dynamic': the sum of its values is not finite"
	check "{\"sim\":{$sim,$bd}}" "missing field 'train.val_accuracy' (run tc-train first, or name the accuracy with --accuracy)"
	check "{\"sim\":{$sim,$bd},\"train\":{\"val_accuracy\":\"0.5\"}}" "field 'train.val_accuracy': expected a number, got string"
	check "{\"sim\":{$sim,$bd},\"train\":{\"val_accuracy\":1.5}}" "field 'train.val_accuracy': 1.5 is outside [0, 1] (an accuracy is a fraction, not a percentage)"
	check "{\"sim\":{$sim,$bd},\"train\":{\"val_accuracy\":-0.1}}" "field 'train.val_accuracy': -0.1 is outside [0, 1]"
	check "{\"sim\":{$sim,$bd},\"train\":{\"val_accuracy\":101}}" "field 'train.val_accuracy': 101 is outside [0, 1]"
	check "{\"sim\":{$sim,$bd},\"train\":{\"val_accuracy\":0.5},\"score\":{\"performance\":1}}" "field 'score': the record has one already (remove it to score again: jq -c 'del(.score)')"
	check '{"error":"x","score":null}' "field 'score': the record has one already (remove it to score again: jq -c 'del(.score)')"
	check '{"error":{"stage":"train"}}' "field 'error': expected a string, got object"
	check "{\"sim\":{\"latency_s\":1e10,\"area_mm2\":10,$bd},\"train\":{\"val_accuracy\":0.5}}" \
		"field 'sim.latency_s': term 'lat' is not finite (10000000000 over the maximum 1e-300)" --maxima lat=1e-300
	printf '{"sims":{"x":{"latency_s":0}}}\n{"sims":{"x":{"latency_s":-1}}}\n' > bad.jsonl
	refuse "bad.jsonl:1: missing field 'sims.x.area_mm2'" --sim sims.x bad.jsonl
	printf '{"sims":{"x":{"feasible":false}}}\n{"sims":{"x":{"latency_s":-1}}}\n' > bad.jsonl
	refuse "bad.jsonl:2: field 'sims.x.latency_s': -1 is negative" --sim sims.x bad.jsonl
	printf '{"sim":{%s,%s},"v":[0.5,0.7]}\n{"sim":{%s,%s},"v":[0.5]}\n' "$sim" "$bd" "$sim" "$bd" > bad.jsonl
	refuse "bad.jsonl:2: missing field 'v.1' (run tc-train first, or name the accuracy with --accuracy)" --accuracy v.1 bad.jsonl
	check "{\"sim\":{\"latency_s\":1e300,\"area_mm2\":10,$bd}}" \
		"field 'sim.latency_s': the violation of the latency limit is not finite" --max-latency 1e-300

	# a record is refused before the stage that failed it is looked at
	check '{"error":"x","score":{}}' "field 'score': the record has one already (remove it to score again: jq -c 'del(.score)')"
	# the position counts blank lines, and the second file is named
	printf '%s\n\n\n{"sim":1}\n' "$ok" > blank.jsonl
	refuse "blank.jsonl:4: field 'sim': expected an object, got number" blank.jsonl
	printf '%s\n' "$ok" > good.jsonl
	printf '{"sim":1}\n' > tail.jsonl
	refuse "<stdin>:1: field 'sim': expected an object, got number" good.jsonl - < tail.jsonl
	refuse "tail.jsonl:1: field 'sim': expected an object, got number" good.jsonl tail.jsonl
	: > empty.jsonl
	refuse "empty.jsonl: no records" empty.jsonl
	printf '\n\n' > blanks.jsonl
	refuse "<stdin>: no records" < blanks.jsonl
	refuse "cannot open 'nope.jsonl': No such file or directory" nope.jsonl
}

@test "tc-score: a bad --config file is an error naming the file and the entry" {
	hand
	cfg() { # CONTENT MESSAGE
		printf '%s' "$1" > c.json
		refuse "$2" --config c.json hand.jsonl
	}
	cfg '{"weights":{"acc":-1}}' "c.json: field 'weights.acc': expected a number >= 0, got -1"
	cfg '{"weights":{"acc":"high"}}' "c.json: field 'weights.acc': expected a number, got string"
	cfg '{"weights":{"speed":1}}' "c.json: field 'weights.speed': unknown key (expected acc, lat, area, dyn, leak)"
	cfg '{"maxima":{"acc":1}}' "c.json: field 'maxima.acc': unknown key (expected lat, area, dyn, leak)"
	cfg '{"maxima":{"lat":0}}' "c.json: field 'maxima.lat': expected a number > 0, got 0"
	cfg '{"constraints":{"area":5}}' "c.json: field 'constraints.area': unknown key (expected max_area, max_latency, max_energy)"
	cfg '{"constraints":{"max_energy":-2}}' "c.json: field 'constraints.max_energy': expected a number > 0, got -2"
	cfg '{"weights":[0.5]}' "c.json: field 'weights': expected an object, got array"
	cfg '{"weight":{}}' "c.json: field 'weight': unknown key (expected weights, maxima or constraints)"
	cfg '[]' "c.json: expected a JSON object, got array"
	cfg '{"weights":{"acc":0.5,"acc":0.4}}' "c.json:1: malformed JSON at column 27: duplicate object key near '\"acc\"'"
	cfg '{"weights":' "c.json:1: malformed JSON at column 11: unexpected token near end of file"
	refuse "cannot open 'none.json': No such file or directory" --config none.json hand.jsonl
}

@test "tc-score: bad options are usage errors with status 2" {
	hand
	badopt "option '--weights': acc: expected a number >= 0, got '-1'" --weights acc=-1
	badopt "option '--weights': acc: expected a number >= 0, got 'x'" --weights acc=x
	badopt "option '--weights': acc: expected a number >= 0, got 'nan'" --weights acc=nan
	badopt "option '--weights': unknown key 'speed' (expected acc, lat, area, dyn or leak)" --weights speed=1
	badopt "option '--weights': expected KEY=VALUE, got 'acc'" --weights acc
	badopt "option '--weights': key 'acc' given twice" --weights acc=0.5,acc=0.4
	badopt "option '--weights': expected KEY=VALUE,... with KEY acc, lat, area, dyn or leak" --weights ''
	badopt "option '--maxima': unknown key 'acc' (expected lat, area, dyn or leak)" --maxima acc=1
	badopt "option '--maxima': lat: expected a number > 0, got '0'" --maxima lat=0
	badopt "option '--maxima': dyn: expected a number > 0, got 'inf'" --maxima dyn=inf
	badopt "option '--max-area': expected a number > 0, got '0'" --max-area 0
	badopt "option '--max-latency': expected a number > 0, got '-1'" --max-latency -1
	badopt "option '--max-energy': expected a number > 0, got '1J'" --max-energy 1J
	badopt "option '--sim': expected a dotted path such as sim or sims.training, got ''" --sim ''
	badopt "option '--sim': expected a dotted path such as sim or sims.training, got 'a..b'" --sim a..b
	badopt "option '--accuracy': expected a dotted path such as sim or sims.training, got 'train.'" --accuracy train.
	run -2 --separate-stderr tc-score --bogus hand.jsonl
	[[ "$stderr" == *"unrecognized option '--bogus'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-score --weights
	[[ "$stderr" == *"requires an argument"* ]] || fail "$stderr"
}

@test "tc-score: -o writes atomically; a write error fails" {
	hand
	run -0 tc-score -q -o out.jsonl hand.jsonl
	[ -z "$output" ]
	tc-score -q hand.jsonl > stdout.jsonl
	cmp out.jsonl stdout.jsonl
	[ -z "$(ls -A | grep -v -e '^out.jsonl$' -e '^hand.jsonl$' -e '^stdout.jsonl$')" ] || fail "left behind: $(ls -A)"
	run -1 --separate-stderr tc-score -q -o /dev/full hand.jsonl
	[[ "$stderr" == "tc-score: write error"*"No space left on device" ]] || fail "$stderr"
	run -1 --separate-stderr sh -c 'tc-score -q hand.jsonl > /dev/full'
	assert_equal "$stderr" "tc-score: write error: No space left on device"
	run -1 --separate-stderr tc-score -q -o nodir/out.jsonl hand.jsonl
	[[ "$stderr" == "tc-score: cannot create 'nodir/out.jsonl': No such file or directory" ]] || fail "$stderr"
}
