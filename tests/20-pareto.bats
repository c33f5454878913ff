#!/usr/bin/env bats
# tc-pareto: fronts and ranks against hand-worked sets and a brute-force jq reference, directions,
# hypervolume, summary, plots, pass-through, and errors.

load helper
bats_require_minimum_version 1.5.0

# pts: a small set with a duplicate, a tie on one objective, and a dominated point.
pts() {
	cat > pts.jsonl <<'JSON'
{"id":"a","x":1,"y":5}
{"id":"b","x":2,"y":3}
{"id":"c","x":2,"y":3}
{"id":"d","x":3,"y":3}
{"id":"e","x":4,"y":1}
{"id":"f","x":5,"y":5}
{"id":"g","x":2,"y":4}
JSON
}

@test "the front of a hand-made set: duplicates both kept, ties on one objective dominated" {
	pts
	tc-pareto -O x,y pts.jsonl > front.jsonl
	assert_equal "$(jq -r .id front.jsonl | tr '\n' ' ')" "a b c e "
}

@test "front mode passes records through byte for byte, in input order" {
	printf '{"id": "a",  "x" : 1, "y":2.50}\n{"id":"b","x":0,"y":9,"z":{"deep":[1,2]}}\n{"id":"c","x":5,"y":5}\n' > in.jsonl
	tc-pareto -O x,y in.jsonl > out.jsonl
	diff <(head -n 2 in.jsonl) out.jsonl
}

@test "--rank gives every record its front index" {
	pts
	tc-pareto -O x:min,y:min --rank pts.jsonl > r.jsonl
	assert_equal "$(jq -r '"\(.id)=\(.pareto.rank)"' r.jsonl | tr '\n' ' ')" "a=0 b=0 c=0 d=1 e=0 f=2 g=1 "
	# Everything else is unchanged.
	diff <(jq -c 'del(.pareto)' r.jsonl) <(jq -c . pts.jsonl)
}

@test "--rank keeps each record's bytes and replaces an earlier pareto member" {
	printf '{ "a" : 2 , "z":[1, 2]}\n{"a":1,"pareto":{"rank":9,"old":true}}\n' > in.jsonl
	tc-pareto -O a --rank in.jsonl > out.jsonl
	assert_equal "$(head -n 1 out.jsonl)" '{ "a" : 2 , "z":[1, 2],"pareto":{"rank":1}}'
	assert_equal "$(tail -n 1 out.jsonl)" '{"a":1,"pareto":{"rank":0}}'
}

@test ":max turns an objective around" {
	pts
	tc-pareto -O x:max,y:max pts.jsonl > front.jsonl
	assert_equal "$(jq -r .id front.jsonl | tr '\n' ' ')" "f "
	tc-pareto -O x:max,y:min pts.jsonl > front.jsonl
	assert_equal "$(jq -r .id front.jsonl | tr '\n' ' ')" "e f "
}

# brute: the ids of the non-dominated records, by comparing every pair in jq.
brute_front() {
	jq -r -s '
		def dom($a; $b): ([range($a | length)] | all($a[.] <= $b[.])) and ([range($a | length)] | any($a[.] < $b[.]));
		map([.id, [.o1, .o2, .o3]]) as $p |
		$p[] | . as $q | select([$p[] | select(dom(.[1]; $q[1]))] | length == 0) | .[0]' "$1"
}

# brute ranks: repeated peeling of the non-dominated set.
brute_rank() {
	jq -r -s '
		def dom($a; $b): ([range($a | length)] | all($a[.] <= $b[.])) and ([range($a | length)] | any($a[.] < $b[.]));
		def peel($rest; $r):
			if ($rest | length) == 0 then empty else
			($rest | map(. as $q | select([$rest[] | select(dom(.[1]; $q[1]))] | length == 0))) as $f |
			($f[] | "\(.[0])=\($r)"),
			peel($rest | map(select(. as $q | $f | index([$q]) == null)); $r + 1) end;
		peel(map([.id, [.o1, .o2, .o3]]); 0)' "$1" | sort
}

@test "fronts and ranks match a brute-force reference on random sets with many ties" {
	for seed in 1 2 3 4 5 6; do
		tc-sample --space accel -n 120 --seed $seed |
			jq -c '{id, o1: (.accel.pes / 64 | log2 | floor), o2: (.accel.batch), o3: (.accel.softmax_per_pe)}' > s.jsonl
		tc-pareto -O o1,o2,o3 s.jsonl > f.jsonl
		assert_equal "$(jq -r .id f.jsonl | sort)" "$(brute_front s.jsonl | sort)"
		tc-pareto -O o1,o2,o3 --rank s.jsonl > r.jsonl
		assert_equal "$(jq -r '"\(.id)=\(.pareto.rank)"' r.jsonl | sort)" "$(brute_rank s.jsonl)"
	done
}

@test "hypervolume: hand-worked cases in two and three objectives" {
	printf '{"x":1,"y":3}\n{"x":2,"y":2}\n{"x":3,"y":1}\n{"x":3.5,"y":3.5}\n' > s.jsonl
	tc-pareto -O x,y --ref 4,4 --summary sum.json s.jsonl > /dev/null
	jq -e '.hypervolume == 6 and .ref == [4,4] and .front == 3 and .records == 4 and .fronts == 2' sum.json
	# default reference: worst + 10% of the range, 3.5 + 0.25 on both axes
	tc-pareto -O x,y --hypervolume --summary sum.json s.jsonl > /dev/null
	jq -e '.ref == [3.75, 3.75]' sum.json
	jq -e '(.hypervolume - (0.75 * 1 + 1.75 * 1 + 2.75 * 0.75)) | fabs < 1e-12' sum.json
	printf '{"a":1,"b":1,"c":1}\n' > one.jsonl
	tc-pareto -O a,b,c --ref 2,3,4 --summary sum.json one.jsonl > /dev/null
	jq -e '.hypervolume == 6' sum.json
	# a maximised objective takes its reference in its own direction
	printf '{"acc":0.9,"lat":2}\n{"acc":0.8,"lat":1}\n' > m.jsonl
	tc-pareto -O acc:max,lat:min --ref 0.5,3 --summary sum.json m.jsonl > /dev/null
	jq -e '(.hypervolume - (0.4 * 1 + 0.3 * 1)) | fabs < 1e-12' sum.json
}

@test "--hypervolume alone reports the summary on stderr as one JSON line" {
	pts
	run -0 --separate-stderr tc-pareto -O x,y --hypervolume pts.jsonl
	[ "$(echo "$output" | wc -l)" -eq 4 ]
	echo "$stderr" | jq -e '.objectives == ["x:min","y:min"] and .front == 4 and (.hypervolume > 0)' >/dev/null
}

@test "four objectives: hypervolume of points on a simplex agrees with the grid sum done by hand" {
	printf '{"a":0,"b":1,"c":1,"d":1}\n{"a":1,"b":0,"c":1,"d":1}\n' > s.jsonl
	tc-pareto -O a,b,c,d --ref 2,2,2,2 --summary sum.json s.jsonl > /dev/null
	# two boxes 2x1x1x1, overlapping in 1x1x1x1
	jq -e '.hypervolume == 3' sum.json
}

@test "several input files are read in order" {
	pts
	head -n 3 pts.jsonl > p1.jsonl
	tail -n 4 pts.jsonl > p2.jsonl
	tc-pareto -O x,y p1.jsonl p2.jsonl > f.jsonl
	assert_equal "$(jq -r .id f.jsonl | tr '\n' ' ')" "a b c e "
}

@test "--plot draws a PNG and an SVG with gnuplot" {
	tc-sample --space accel -n 300 --seed 2 |
		jq -c '{id, m: (.accel.pes * .accel.lanes_per_pe), b: (.accel.act_buffer_mb + .accel.weight_buffer_mb), s: .accel.softmax_per_pe}' > a.jsonl
	tc-pareto -O m:max,b:min --plot front.png a.jsonl > /dev/null
	[ "$(head -c 8 front.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
	tc-pareto -O m:max,b:min,s:min --plot front.svg a.jsonl > /dev/null
	grep -q '<svg' front.svg
	run -2 --separate-stderr tc-pareto -O m,b --plot front.gif a.jsonl
	[[ "$stderr" == "tc-pareto: option '--plot': expected a .png or .svg file name"* ]] || fail "$stderr"
	run -2 tc-pareto -O m --plot f.png a.jsonl
}

@test "usage errors: objectives and reference point" {
	pts
	run -2 --separate-stderr tc-pareto pts.jsonl
	[[ "$stderr" == "tc-pareto: missing --objectives"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-pareto -O x:fast pts.jsonl
	[[ "$stderr" == "tc-pareto: option '--objectives': objective 'x': expected ':min' or ':max', got ':fast'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-pareto -O x,y --ref 1 pts.jsonl
	[[ "$stderr" == "tc-pareto: option '--ref': expected 2 values, one per objective"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-pareto -O x,y --ref 1,nan pts.jsonl
	[[ "$stderr" == "tc-pareto: option '--ref': expected a number"* ]] || fail "$stderr"
	[ -z "$output" ]
}
