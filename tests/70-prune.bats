#!/usr/bin/env bats
# tc-prune(1): DynaTran pruning of tensor streams, checked against a naive reference written here in Perl
# (perl-base, which every Debian system has): streams are built from text, pruned, taken apart again
# and compared value by value with what the rule says, in every floating-point dtype.

load helper
bats_require_minimum_version 1.5.0

[ -x "$bin/tc-prune" ] || { echo "missing $bin/tc-prune: run make first" >&2; exit 1; }
[ -x "$testbin/tensor_tool" ] || { echo "missing $testbin/tensor_tool: run make test first" >&2; exit 1; }

setup_file() {
	# tens.pl make: text to safetensors frames (stdout, uncompressed); one item per line:
	#   frame                        start a frame
	#   meta KEY VALUE               a metadata entry of the current frame
	#   tensor NAME DTYPE SHAPE V... a tensor; SHAPE "2,3", "-" for a scalar; V a number, -0, nan, inf, -inf
	#   random NAME DTYPE SHAPE SEED multiples of 1/64 in [-4, 4], many ties, a tenth zeros (some -0)
	#   distinct NAME F32 SHAPE      distinct non-zero magnitudes, signs alternating
	# tens.pl dump: frames on stdin to text: "frame I", "meta K V" (sorted), "tensor NAME DTYPE SHAPE V..."
	# with every value printed exactly (%.17g of its double; -0 as -0).
	# tens.pl ref RULE PARAM [GLOB...]: a dump on stdin pruned by the rule (tau, target, top-k) as the
	# naive reference does it, without the metadata lines: what tc-prune's output must dump to.
	cat > "$BATS_FILE_TMPDIR/tens.pl" <<'EOF'
use strict;
use warnings;
no warnings 'portable';

my %size = (F64 => 8, F32 => 4, F16 => 2, BF16 => 2, I64 => 8, I32 => 4, I16 => 2, I8 => 1, U8 => 1, BOOL => 1);
my %float = map { $_ => 1 } qw(F64 F32 F16 BF16);
my %special = (
	F32 => {nan => pack('V', 0x7fc00000), inf => pack('V', 0x7f800000), '-inf' => pack('V', 0xff800000), '-0' => pack('V', 0x80000000)},
	F64 => {nan => pack('Q<', 0x7ff8000000000000), inf => pack('Q<', 0x7ff0000000000000), '-inf' => pack('Q<', 0xfff0000000000000), '-0' => pack('Q<', 0x8000000000000000)},
	F16 => {nan => pack('v', 0x7e00), inf => pack('v', 0x7c00), '-inf' => pack('v', 0xfc00), '-0' => pack('v', 0x8000)},
	BF16 => {nan => pack('v', 0x7fc0), inf => pack('v', 0x7f80), '-inf' => pack('v', 0xff80), '-0' => pack('v', 0x8000)},
);

sub f16_bits {
	my ($v) = @_;
	my $s = $v < 0 ? 0x8000 : 0;
	my $a = abs($v);
	return $s if $a == 0;
	my $e = 0;
	$e++ while $a >= 2**($e + 1);
	$e-- while $a < 2**$e;
	my ($bits, $m);
	if ($e < -14) {
		$m = $a / 2**-24;
		$bits = $m;
	} else {
		$m = ($a / 2**$e - 1) * 1024;
		$bits = (($e + 15) << 10) | $m;
	}
	die "tens.pl: $v is not exact in F16\n" if $m != int($m) || $e > 15;
	return $s | $bits;
}

sub f16_value {
	my ($h) = @_;
	my ($e, $m) = (($h >> 10) & 0x1f, $h & 0x3ff);
	my $v = $e == 31 ? ($m ? 'nan' : 9**9**9) : $e == 0 ? $m * 2**-24 : ($m + 1024) * 2**($e - 25);
	return $v eq 'nan' ? 'nan' : $h & 0x8000 ? -$v : $v;
}

sub encode {
	my ($dtype, $tok) = @_;
	return $special{$dtype}{$tok} if $float{$dtype} && exists $special{$dtype}{$tok};
	my $v = $tok + 0;
	if ($dtype eq 'F32') {
		my $b = pack('f<', $v);
		die "tens.pl: $tok is not exact in F32\n" if unpack('f<', $b) != $v;
		return $b;
	}
	return pack('d<', $v) if $dtype eq 'F64';
	return pack('v', f16_bits($v)) if $dtype eq 'F16';
	if ($dtype eq 'BF16') {
		my $u = unpack('V', pack('f<', $v));
		die "tens.pl: $tok is not exact in BF16\n" if $u & 0xffff;
		return pack('v', $u >> 16);
	}
	return pack({I64 => 'q<', I32 => 'l<', I16 => 's<', I8 => 'c', U8 => 'C', BOOL => 'C'}->{$dtype}, $v);
}

sub decode {
	my ($dtype, $b) = @_;
	my $v;
	if ($dtype eq 'F32') { $v = unpack('f<', $b) }
	elsif ($dtype eq 'F64') { $v = unpack('d<', $b) }
	elsif ($dtype eq 'F16') { $v = f16_value(unpack('v', $b)) }
	elsif ($dtype eq 'BF16') { $v = unpack('f<', pack('V', unpack('v', $b) << 16)) }
	else { return unpack({I64 => 'q<', I32 => 'l<', I16 => 's<', I8 => 'c', U8 => 'C', BOOL => 'C'}->{$dtype}, $b) }
	return sprintf('%.17g', $v);
}

sub numel {
	my ($shape) = @_;
	my $n = 1;
	$n *= $_ for ($shape eq '-' ? () : split(/,/, $shape));
	return $n;
}

my @frames;

sub add_tensor {
	my ($name, $dtype, $shape, @tok) = @_;
	die "tens.pl: $name: " . scalar(@tok) . " values for shape $shape\n" if @tok != numel($shape);
	push @{$frames[-1]{t}}, [$name, $dtype, $shape, join('', map { encode($dtype, $_) } @tok)];
}

sub make {
	while (my $line = <STDIN>) {
		my @w = split ' ', $line;
		next unless @w;
		my $what = shift @w;
		if ($what eq 'frame') { push @frames, {meta => {}, t => []} }
		elsif ($what eq 'meta') { $frames[-1]{meta}{$w[0]} = $w[1] }
		elsif ($what eq 'tensor') { add_tensor(@w) }
		elsif ($what eq 'random') {
			my ($name, $dtype, $shape, $x) = @w;
			my @tok;
			for (1 .. numel($shape)) {
				$x = (1103515245 * $x + 12345) % 2147483648;
				my $r = $x >> 8;
				push @tok, $r % 10 == 0 ? ($r % 20 == 0 ? '-0' : '0') : sprintf('%.17g', (($r >> 4) % 513 - 256) / 64);
			}
			add_tensor($name, $dtype, $shape, @tok);
		} elsif ($what eq 'distinct') {
			my ($name, $dtype, $shape) = @w;
			my $n = numel($shape);
			add_tensor($name, $dtype, $shape, map { sprintf('%.17g', ($_ % 2 ? -1 : 1) * (($_ * 7919) % $n + 1) / 1024) } 0 .. $n - 1);
		} else { die "tens.pl: unknown item '$what'\n" }
	}
	for my $f (@frames) {
		my ($data, $off, @h) = ('', 0);
		my $m = $f->{meta};
		push @h, '"__metadata__":{' . join(',', map { "\"$_\":\"$m->{$_}\"" } sort keys %$m) . '}' if %$m;
		for my $t (@{$f->{t}}) {
			my ($name, $dtype, $shape, $bytes) = @$t;
			my $end = $off + length $bytes;
			push @h, "\"$name\":{\"dtype\":\"$dtype\",\"shape\":[" . ($shape eq '-' ? '' : $shape) . "],\"data_offsets\":[$off,$end]}";
			$data .= $bytes;
			$off = $end;
		}
		my $h = '{' . join(',', @h) . '}';
		$h .= ' ' x ((8 - (8 + length $h) % 8) % 8);
		print pack('Q<', length $h), $h, $data;
	}
}

sub dump_frames {
	binmode STDIN;
	local $/;
	my $all = <STDIN>;
	my ($pos, $i) = (0, 0);
	while ($pos < length $all) {
		my $n = unpack('Q<', substr($all, $pos, 8));
		my $h = substr($all, $pos + 8, $n);
		my $base = $pos + 8 + $n;
		my $end = 0;
		print "frame $i\n";
		if ($h =~ /"__metadata__":\{([^{}]*)\}/) {
			my %m = $1 =~ /"([^"]*)":"([^"]*)"/g;
			print "meta $_ $m{$_}\n" for sort keys %m;
		}
		my @t;
		while ($h =~ /"([^"]*)":\{"dtype":"(\w+)","shape":\[([\d,]*)\],"data_offsets":\[(\d+),(\d+)\]\}/g) {
			push @t, [$1, $2, $3 eq '' ? '-' : $3, $4, $5];
		}
		for my $t (sort { $a->[3] <=> $b->[3] || $a->[4] <=> $b->[4] } @t) {
			my ($name, $dtype, $shape, $b, $e) = @$t;
			my $s = $size{$dtype};
			my @v = map { decode($dtype, substr($all, $base + $b + $_ * $s, $s)) } 0 .. ($e - $b) / $s - 1;
			print join(' ', 'tensor', $name, $dtype, $shape, @v), "\n";
			$end = $e if $e > $end;
		}
		$pos = $base + $end;
		$i++;
	}
}

sub glob_re {
	my ($g) = @_;
	my $re = join '', map { $_ eq '*' ? '.*' : $_ eq '?' ? '.' : quotemeta } split //, $g;
	return qr/^$re$/;
}

# The naive reference: tau by definition, target by a full sort, top-k by sorting every row.
sub reference {
	my ($rule, $param, @globs) = @_;
	my @re = map { glob_re($_) } @globs;
	while (my $line = <STDIN>) {
		next if $line =~ /^meta /;
		my ($what, $name, $dtype, $shape, @v) = split ' ', $line;
		if ($what ne 'tensor' || !$float{$dtype} || (@re && !grep { $name =~ $_ } @re)) {
			print $line;
			next;
		}
		my $n = @v;
		my @keep = (1) x $n;
		if ($rule eq 'tau' || $rule eq 'target') {
			my $tau = $param;
			if ($rule eq 'target') {
				my @sorted = sort { $a <=> $b } map { abs } @v;
				my $m = 0;
				$m++ while $m < $n && $m / $n < $param;
				$tau = $m ? $sorted[$m - 1] : 0;
			}
			@keep = map { abs($_) > $tau } @v;
		} else {
			my $c = $shape eq '-' ? 1 : (split /,/, $shape)[-1];
			for (my $r = 0; $c && $r < $n / $c; $r++) {
				my @idx = sort { abs($v[$r * $c + $b]) <=> abs($v[$r * $c + $a]) || $a <=> $b } 0 .. $c - 1;
				$keep[$r * $c + $idx[$_]] = $_ < $param for 0 .. $c - 1;
			}
		}
		print join(' ', 'tensor', $name, $dtype, $shape, map { $keep[$_] || $v[$_] == 0 ? $v[$_] : 0 } 0 .. $n - 1), "\n";
	}
}

my $cmd = shift @ARGV;
binmode STDOUT;
if ($cmd eq 'make') { make() }
elsif ($cmd eq 'dump') { dump_frames() }
elsif ($cmd eq 'ref') { reference(@ARGV) }
else { die "usage: tens.pl make|dump|ref\n" }
EOF
}

# stream OUT: the frames described on stdin (tens.pl make) as a gzip stream.
stream() {
	perl "$BATS_FILE_TMPDIR/tens.pl" make > "$1.bin" && gzip -n -c "$1.bin" > "$1" && rm "$1.bin"
}

# dump STREAM: the stream as text (tens.pl dump).
dump() {
	zcat "$1" | perl "$BATS_FILE_TMPDIR/tens.pl" dump
}

# reference STREAM RULE PARAM [GLOB...]: what tc-prune must make of STREAM, as text without metadata.
reference() {
	local s=$1
	shift
	dump "$s" | perl "$BATS_FILE_TMPDIR/tens.pl" ref "$@"
}

# values: the frames of the usual input: every dtype, ties, zeros of both signs, a scalar, an empty
# tensor, metadata of its own.
values() {
	cat <<-'EOF'
	frame
	meta format transcode-tensor/1
	meta frame 0
	meta run acts-1
	random attn.scores F32 4,16 1
	random attn.probs F64 3,8 2
	random ffn.in F16 2,12 3
	random ffn.out BF16 5,4 4
	tensor step I64 - 7
	tensor ids I32 2,2 1 -2 3 0
	tensor mask BOOL 4 1 0 1 1
	tensor one F32 - -0.75
	tensor none F32 0
	tensor signs F32 2,4 -0 0 0.5 -0.5 0.25 -0.25 -0 1
	frame
	meta format transcode-tensor/1
	meta frame 1
	random attn.scores F32 4,16 11
	random attn.probs F64 3,8 12
	random ffn.in F16 2,12 13
	random ffn.out BF16 5,4 14
	tensor step I64 - 8
	tensor ids I32 2,2 5 6 7 8
	tensor mask BOOL 4 0 0 1 1
	tensor one F32 - 2
	tensor none F32 0
	tensor signs F32 2,4 1 2 -3 4 0.5 0.5 0.5 0.5
	EOF
}

# tensors FILE: the dump without metadata lines.
tensors() {
	grep -v '^meta ' "$1"
}

@test "tc-prune: --help, --version, usage errors" {
	run -0 --separate-stderr tc-prune --help
	[[ "${lines[0]}" == "Usage: tc-prune apply "* ]] || fail "${lines[0]}"
	[ -z "$stderr" ]
	help=$output
	run -0 tc-prune apply --help
	assert_equal "$output" "$help"
	run -0 tc-prune --version
	[[ "$output" =~ ^tc-prune\ \(transcode\)\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "$output"
	run -2 --separate-stderr tc-prune
	assert_equal "${stderr%%$'\n'*}" "tc-prune: missing subcommand (expected apply, sweep or calibrate)"
	run -2 --separate-stderr tc-prune prune --tau 1
	assert_equal "${stderr%%$'\n'*}" "tc-prune: unknown subcommand 'prune' (expected apply, sweep or calibrate)"
	run -2 --separate-stderr tc-prune --tau 1
	[[ "$stderr" == *"unrecognized option '--tau'"* ]] || fail "$stderr"
	run -2 --separate-stderr tc-prune apply --no-such-option
	[[ "$stderr" == *"unrecognized option"* ]] || fail "$stderr"
	[ -z "$output" ]
	run -2 --separate-stderr tc-prune apply
	assert_equal "${stderr%%$'\n'*}" "tc-prune: apply: expected one of --tau, --target, --top-k"
	run -2 --separate-stderr tc-prune apply --tau 1 --top-k 2
	assert_equal "${stderr%%$'\n'*}" "tc-prune: apply: --tau, --target and --top-k exclude each other"
	run -2 --separate-stderr tc-prune apply --tau 1 a.tcs b.tcs
	assert_equal "${stderr%%$'\n'*}" "tc-prune: apply: expected at most one FILE, got 2"
}

@test "tc-prune: numbers out of range are usage errors naming the option and the range" {
	for bad in -1 -0.5 nan inf abc ''; do
		run -2 --separate-stderr tc-prune apply --tau "$bad" -o out.tcs run.tcs
		assert_equal "${stderr%%$'\n'*}" "tc-prune: option '--tau': expected a number >= 0, got '$bad'"
	done
	for bad in 1 1.5 -0.1 nan; do
		run -2 --separate-stderr tc-prune apply --target "$bad" -o out.tcs run.tcs
		assert_equal "${stderr%%$'\n'*}" "tc-prune: option '--target': expected a number in [0, 1), got '$bad'"
	done
	for bad in 0 -3 1.5; do
		run -2 --separate-stderr tc-prune apply --top-k "$bad" -o out.tcs run.tcs
		[[ "${stderr%%$'\n'*}" == "tc-prune: option '--top-k': expected an integer in [1, "*"], got '$bad'" ]] || fail "$stderr"
	done
	[ ! -e out.tcs ]
}

@test "tc-prune: the SYNOPSIS of the man page is the usage" {
	usage=$(tc-prune --help | sed -n '/^Usage:/,/^[^ U]/p' | sed '$d' | sed 's/^Usage: //' | tr -s ' \n' ' ')
	synopsis=$(MANWIDTH=300 man -l "$top/man/tc-prune.1" 2>/dev/null |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s ' \n' ' ')
	synopsis=${synopsis# }
	usage=${usage% }
	[ -n "$usage" ]
	assert_equal "${synopsis% }" "${usage# }"
}

@test "tc-prune apply --tau: every float tensor as the definition says, the rest unchanged" {
	values | stream in.tcs
	for tau in 0.5 1.25 0.015625 100; do
		run -0 tc-prune apply -q --tau $tau -o out.tcs in.tcs
		reference in.tcs tau $tau > want
		dump out.tcs > got
		tensors got | diff want - || fail "tau $tau differs from the reference"
	done
	# and the rule did something: the last run zeroed every float element
	[ "$(grep -c '^tensor attn.scores F32 4,16 \(-\?0 \)*-\?0$' got)" -eq 2 ]
	grep -qx 'tensor ids I32 2,2 1 -2 3 0' got
}

@test "tc-prune apply --tau 0 changes no tensor byte, -0 included" {
	values | stream in.tcs
	run -0 tc-prune apply -q --tau 0 --report r.jsonl -o out.tcs in.tcs
	dump in.tcs > a
	dump out.tcs > b
	diff <(tensors a) <(tensors b)
	grep -q '^tensor signs F32 2,4 -0 0 0.5 -0.5 0.25 -0.25 -0 1$' b
	jq -e -s 'length == 14 and all(.[]; .zeros_after == .zeros_before)' r.jsonl >/dev/null
	# the data sections are the same bytes: only the headers (metadata) differ
	tc-prune apply -q --tau 0 in.tcs > again.tcs
	cmp out.tcs again.tcs
}

@test "tc-prune apply --target: the least threshold reaching the sparsity, ties included" {
	values | stream in.tcs
	for s in 0 0.3 0.5 0.9 0.99; do
		run -0 tc-prune apply -q --target $s --report r.jsonl -o out.tcs in.tcs
		reference in.tcs target $s > want
		dump out.tcs > got
		tensors got | diff want - || fail "target $s differs from the reference"
		jq -e -s --argjson s $s 'length == 14 and all(.[] | select(.elements > 0); .sparsity >= $s and .sparsity == .zeros_after / .elements)' r.jsonl >/dev/null ||
			fail "target $s not reached: $(cat r.jsonl)"
	done
	# ties at the threshold are all pruned: 2 of 8 asked, 4 zero (-0, 0, -0 and the two 0.25s)
	run -0 tc-prune apply -q --target 0.25 --only signs --report r.jsonl -o out.tcs in.tcs
	assert_equal "$(jq -c 'select(.frame == 0) | [.tau, .zeros_after]' r.jsonl)" "[0,3]"
	run -0 tc-prune apply -q --target 0.4 --only signs --report r.jsonl -o out.tcs in.tcs
	assert_equal "$(jq -c 'select(.frame == 0) | [.tau, .zeros_after, .sparsity]' r.jsonl)" "[0.25,5,0.625]"
	assert_equal "$(jq -c 'select(.frame == 1) | [.tau, .zeros_after, .sparsity]' r.jsonl)" "[0.5,4,0.5]"
}

@test "tc-prune apply --top-k: the K largest magnitudes of each row, ties to the lower index" {
	values | stream in.tcs
	for k in 1 3 4 8 16 100; do
		run -0 tc-prune apply -q --top-k $k -o out.tcs in.tcs
		reference in.tcs top-k $k > want
		dump out.tcs > got
		tensors got | diff want - || fail "top-k $k differs from the reference"
	done
	# 100 is more than any row: nothing changes
	diff <(tensors got) <(dump in.tcs | tensors /dev/stdin)
	# by hand: zeros stay as they were; of 0.25 and -0.25, and of four 0.5s, the lower indices are kept
	run -0 tc-prune apply -q --top-k 2 --only signs -o out.tcs in.tcs
	dump out.tcs > got
	grep -x 'tensor signs F32 2,4 -0 0 0.5 -0.5 0.25 0 -0 1' got
	grep -x 'tensor signs F32 2,4 0 0 -3 4 0.5 0.5 0 0' got
}

@test "tc-prune apply --top-k keeps exactly K elements of every row" {
	printf 'frame\ndistinct acts F32 12,50\ndistinct wide F32 3,200\n' | stream in.tcs
	for k in 1 7 49 50; do
		tc-prune apply -q --top-k $k -o out.tcs in.tcs
		dump out.tcs | perl -ane '
			next unless $F[0] eq "tensor";
			my ($c, @v) = ((split /,/, $F[3])[-1], @F[4 .. $#F]);
			for (my $r = 0; $r < @v / $c; $r++) {
				my $nz = grep { $_ != 0 } @v[$r * $c .. $r * $c + $c - 1];
				die "$F[1] row $r: $nz kept, not '"$k"'\n" if $nz != '"$k"';
			}' || fail "k $k"
	done
}

@test "tc-prune apply --only: only matching tensors are pruned" {
	values | stream in.tcs
	run -0 tc-prune apply -q --tau 1 --only 'attn.*' --only one -o out.tcs in.tcs
	reference in.tcs tau 1 'attn.*' one > want
	dump out.tcs > got
	tensors got | diff want -
	# what was not selected is as it was
	diff <(grep -e '^tensor ffn' -e '^tensor signs' got) <(dump in.tcs | grep -e '^tensor ffn' -e '^tensor signs')
	assert_equal "$(grep -c '^meta prune.sparsity' got)" 6
	run -0 --separate-stderr tc-prune apply --tau 1 --only 'nothing*' -o out.tcs in.tcs
	[[ "$stderr" == *"tc-prune: warning: no floating-point tensor matched --only"* ]] || fail "$stderr"
}

@test "tc-prune apply keeps every metadata key and adds its own under prune." {
	values | sed 's/^meta run acts-1$/meta run acts-1\nmeta prune.sparsity.gone 0.5\nmeta prune.tau 7/' | stream in.tcs
	tc-prune apply -q --tau 0.5 --only attn.scores --only signs -o out.tcs in.tcs
	dump out.tcs > got
	grep -A 9 -x 'frame 0' got | grep '^meta' > meta0
	cat > want <<-'EOF'
	meta format transcode-tensor/1
	meta frame 0
	meta prune.rule tau
	meta prune.sparsity.attn.scores 0.265625
	meta prune.sparsity.signs 0.875
	meta prune.tau 0.5
	meta prune.threshold.attn.scores 0.5
	meta prune.threshold.signs 0.5
	meta run acts-1
	EOF
	diff want meta0
	# the sparsity recorded is the one in the data: 17 of 64, 7 of 8
	zeros=$(grep '^tensor attn.scores' got | head -n 1 | tr ' ' '\n' | tail -n +5 | grep -c '^-\?0$')
	assert_equal "$zeros" 17
	zeros=$(grep '^tensor signs' got | head -n 1 | tr ' ' '\n' | tail -n +5 | grep -c '^-\?0$')
	assert_equal "$zeros" 7
	tc-prune apply -q --top-k 3 -o out.tcs in.tcs
	dump out.tcs | grep -q '^meta prune.k 3$'
	dump out.tcs | grep -q '^meta prune.threshold' && fail "a threshold for top-k"
	tc-prune apply -q --target 0.5 -o out.tcs in.tcs
	dump out.tcs | grep -q '^meta prune.target 0.5$'
}

@test "tc-prune apply --report: one record per frame and pruned tensor, counts that match the data" {
	values | stream in.tcs
	run -0 tc-prune apply -q --tau 1 --report r.jsonl -o out.tcs in.tcs
	assert_equal "$(wc -l < r.jsonl)" 14
	assert_equal "$(head -n 1 r.jsonl)" '{"frame":0,"tensor":"attn.scores","rule":"tau","tau":1,"elements":64,"zeros_before":8,"zeros_after":26,"sparsity":0.40625}'
	jq -e -s 'map(.tensor) | unique == ["attn.probs","attn.scores","ffn.in","ffn.out","none","one","signs"]' r.jsonl >/dev/null
	# zeros before and after, counted in the dumps
	dump in.tcs > a
	dump out.tcs > b
	count() { awk -v f="$2" -v t="$3" '$1 == "frame" { fr = $2 } $1 == "tensor" && fr == f && $2 == t {
		n = 0; for (i = 5; i <= NF; i++) n += ($i == 0); print n }' "$1"; }
	while read -r f t before after; do
		assert_equal "$(count a "$f" "$t")" "$before"
		assert_equal "$(count b "$f" "$t")" "$after"
	done < <(jq -r '[.frame, .tensor, .zeros_before, .zeros_after] | @tsv' r.jsonl)
	run -0 tc-prune apply -q --top-k 2 --report r.jsonl -o out.tcs in.tcs
	jq -e -s 'map(select(.tensor == "signs") | .rule == "top-k" and .k == 2 and has("tau") == false) == [true, true]' r.jsonl >/dev/null
	run -0 tc-prune apply -q --target 0.5 --report r.jsonl -o out.tcs in.tcs
	jq -e -s 'map(select(.tensor == "one")) | map([.rule, .target, .tau, .sparsity]) == [["target", 0.5, 0.75, 1], ["target", 0.5, 2, 1]]' r.jsonl >/dev/null
}

@test "tc-prune apply: same input and options, byte-identical stream and report" {
	values | stream in.tcs
	for rule in "--tau 0.5" "--target 0.7" "--top-k 3"; do
		tc-prune apply -q $rule --report r1.jsonl -o o1.tcs in.tcs
		tc-prune apply -q $rule --report r2.jsonl < in.tcs > o2.tcs
		cmp o1.tcs o2.tcs
		cmp r1.jsonl r2.jsonl
	done
	tc-prune apply -q --tau 0.75 -o o3.tcs in.tcs
	! cmp -s o1.tcs o3.tcs
	# pruning is idempotent: the pruned stream pruned again has the same tensors
	tc-prune apply -q --tau 0.5 -o o1.tcs in.tcs
	tc-prune apply -q --tau 0.5 -o o4.tcs o1.tcs
	diff <(dump o1.tcs) <(dump o4.tcs)
	run -0 tensor_tool stream-check o4.tcs
	assert_equal "${lines[1]}" "frame 1: 10 tensors"
}

@test "tc-prune apply: a line per frame and a summary on stderr, nothing with -q" {
	values | stream in.tcs
	run -0 --separate-stderr tc-prune apply --tau 1 --report r.jsonl -o out.tcs in.tcs
	[ -z "$output" ]
	assert_equal "$stderr" "tc-prune: in.tcs: frame 0: 7 tensors pruned, 3 passed: 57 of 141 zero (0.4043), 20 before
tc-prune: in.tcs: frame 1: 7 tensors pruned, 3 passed: 47 of 141 zero (0.3333), 13 before
tc-prune: in.tcs: 2 frames, 14 tensors pruned, 6 passed: 104 of 282 zero (0.3688), 33 before"
	# the same sums as the report's
	assert_equal "$(jq -s -c '[map(select(.frame == 0)) | (map(.zeros_after), map(.elements), map(.zeros_before)) | add]' r.jsonl)" "[57,141,20]"
	assert_equal "$(jq -s -c '[(map(.zeros_after), map(.elements), map(.zeros_before)) | add]' r.jsonl)" "[104,282,33]"
	run -0 --separate-stderr sh -c 'tc-prune apply --tau 1 < in.tcs > out.tcs'
	[[ "$stderr" == "tc-prune: <stdin>: frame 0: "* ]] || fail "$stderr"
	run -0 --separate-stderr tc-prune apply -q --tau 1 -o out.tcs in.tcs
	[ -z "$stderr" ]
}

# refuse PATTERN ARGS...: tc-prune apply -q ARGS fails with status 1 and one line on stderr matching
# PATTERN, and leaves no out.tcs, no r.jsonl and no temporary file behind. (Without -q the lines of the
# frames pruned before the error come first.)
refuse() {
	local want=$1
	shift
	rm -f out.tcs r.jsonl
	run -1 --separate-stderr tc-prune apply -q "$@" --report r.jsonl -o out.tcs
	[[ "$stderr" == $want ]] || fail "expected '$want', got '$stderr'"
	[ "${#stderr}" -gt 0 ] && [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail "not one line: $stderr"
	[ ! -e out.tcs ] && [ ! -e r.jsonl ] || fail "output left behind"
	[ -z "$(ls -A | grep -v -e '\.tcs$' -e '^separate-stderr-')" ] || fail "left behind: $(ls -A)"
}

@test "tc-prune apply: bad input fails with one line naming the file, frame and tensor; no output left" {
	values | stream in.tcs
	: > empty.tcs
	refuse "tc-prune: empty.tcs: empty input (not even a gzip header)" --tau 1 empty.tcs
	printf '' | gzip -n > nothing.tcs
	refuse "tc-prune: nothing.tcs: empty stream (no frames)" --tau 1 nothing.tcs
	size=$(stat -c %s in.tcs)
	for cut in 5 40 $((size / 2)) $((size - 4)); do
		head -c $cut in.tcs > cut.tcs
		refuse "tc-prune: cut.tcs: *truncated*" --tau 1 cut.tcs
	done
	for at in 30 $((size / 2)) $((size - 6)); do
		cp in.tcs bad.tcs
		printf '\377' | dd of=bad.tcs bs=1 seek=$at conv=notrunc status=none
		refuse "tc-prune: bad.tcs: *" --tau 1 bad.tcs
	done
	refuse "tc-prune: cannot open 'missing.tcs': No such file or directory" --tau 1 missing.tcs
	values | sed '/^tensor one F32 - 2$/s/2$/nan/' | stream nan.tcs
	for rule in "--tau 1" "--target 0.5" "--top-k 1"; do
		refuse "tc-prune: nan.tcs: frame 1: tensor 'one': element 0 is nan (pruning needs finite values)" $rule nan.tcs
	done
	values | sed '/^tensor signs F32 2,4 1 2/s/ 4 / -inf /' | stream inf.tcs
	refuse "tc-prune: inf.tcs: frame 1: tensor 'signs': element 3 is -inf (pruning needs finite values)" --tau 1 inf.tcs
	refuse "tc-prune: <stdin>: frame 1: tensor 'signs': element 3 is -inf (pruning needs finite values)" --tau 1 - < inf.tcs
	# a NaN in a tensor that is not pruned passes through
	run -0 tc-prune apply -q --tau 1 --only 'attn.*' -o out.tcs nan.tcs
	dump out.tcs | grep -qx 'tensor one F32 - NaN'
}

@test "tc-prune apply: a failing run leaves an old output file as it was" {
	values | stream in.tcs
	values | sed '/^tensor one F32 - 2$/s/2$/inf/' | stream inf.tcs
	echo old > out.tcs
	echo old > r.jsonl
	run -1 tc-prune apply --tau 1 --report r.jsonl -o out.tcs inf.tcs
	assert_equal "$(cat out.tcs)" old
	assert_equal "$(cat r.jsonl)" old
	run -1 --separate-stderr tc-prune apply -q --tau 1 -o /dev/full in.tcs
	[[ "$stderr" == "tc-prune: write error on '/dev/full': No space left on device"* ]] || fail "$stderr"
	run -1 --separate-stderr sh -c 'tc-prune apply -q --tau 1 in.tcs > /dev/full'
	assert_equal "$stderr" "tc-prune: write error on '<stdout>': No space left on device"
	run -1 --separate-stderr tc-prune apply -q --tau 1 --report /dev/full -o out.tcs in.tcs
	[[ "$stderr" == "tc-prune: "*"/dev/full"*"No space left on device" ]] || fail "$stderr"
	assert_equal "$(cat out.tcs)" old
}

@test "tc-prune apply: streams through pipes, and reads what tensor_tool writes" {
	run -0 sh -c 'tensor_tool make-stream - 3 | tc-prune apply -q --top-k 1 | tensor_tool stream-check -'
	assert_equal "${lines[2]}" "frame 2: 10 tensors"
	tensor_tool make-stream run.tcs 3
	tc-prune apply -q --tau 1 -o out.tcs run.tcs
	reference run.tcs tau 1 > want
	dump out.tcs | tensors /dev/stdin | diff want -
}

# sweep and calibrate: a small model trained on a task that needs attention (order.tsv, helper.bash)
trained() {
	order_task
	echo '{"id":"t","model":{"l":2,"o":[["sa_sdp_8","sa_wma_8"],["c_5_8","l_dct_8"]],"h":[16,16],"f":[[32],[32]]}}' > in.jsonl
	tc-train -q --task tsv:order.tsv --vocab-size 100 --threads 1 --steps 300 --lr 3e-3 --checkpoint ck.safetensors \
		in.jsonl > trained.jsonl
}

@test "tc-prune sweep: one record per threshold and k; threshold 0 and k >= T keep the trained accuracy" {
	trained
	tc-prune sweep --checkpoint ck.safetensors --taus 0,0.05,0.2,1 --top-k 1000,4,1 --threads 1 --plot sweep.png > sweep.jsonl
	[ "$(wc -l < sweep.jsonl)" -eq 7 ] && [ -s sweep.png ]
	acc=$(jq .train.test_accuracy trained.jsonl)
	jq -se --argjson acc "$acc" '
		(map(select(.prune.rule == "tau")) | map(.prune.sparsity.activation) | . == sort)
		and (map(select(.prune.rule == "top-k")) | map(.prune.sparsity.activation) | . == sort)
		and .[0].prune.tau == 0 and .[0].prune.test_accuracy == $acc and $acc > 0.9
		and .[4].prune.k == 1000 and .[4].prune.test_accuracy == $acc
		and .[3].prune.sparsity.activation > 0.8 and .[3].prune.test_accuracy < 0.7
		and all(.[]; .checkpoint == "ck.safetensors" and .prune.val_accuracy >= 0)' sweep.jsonl >/dev/null ||
		fail "$(jq -c .prune sweep.jsonl)"
	# the same again: byte-identical
	tc-prune sweep --checkpoint ck.safetensors --taus 0,0.05,0.2,1 --top-k 1000,4,1 --threads 1 | cmp - sweep.jsonl
}

@test "tc-prune calibrate: thresholds that reach the targets, added to records or for a checkpoint" {
	trained
	tc-prune calibrate --threads 1 --target-act 0.4 --target-grad 0.95 trained.jsonl > cal.jsonl
	jq -e '.id == "t" and .train.checkpoint == "ck.safetensors" and .prune.rule == "target"
		and (.prune.sparsity.activation - 0.4 | fabs) < 0.03 and (.prune.sparsity.gradient - 0.95 | fabs) < 0.03
		and .prune.tau_act > 0 and .prune.target_act == 0.4' cal.jsonl >/dev/null || fail "$(cat cal.jsonl)"
	tc-prune calibrate --threads 1 --target-act 0.4 --target-grad 0.95 --checkpoint ck.safetensors > one.jsonl
	assert_equal "$(jq -c .prune one.jsonl)" "$(jq -c .prune cal.jsonl)"
	# into the simulator: activation and gradient sparsity from prune
	jq -c --argjson a "$(tc-sample --preset acceltran-edge | jq -c .accel)" '.accel = $a' cal.jsonl |
		tc-sim --mode training | jq -e '.sim.sparsity.from.activation == "prune" and .sim.sparsity.from.gradient == "prune"
			and .sim.sparsity.activation == .prune.sparsity.activation' >/dev/null
}

@test "tc-prune calibrate and sweep: bad records and options" {
	trained
	echo '{"id":"x"}' > none.jsonl
	run -1 --separate-stderr tc-prune calibrate -o out.jsonl none.jsonl
	[[ "$stderr" == "tc-prune: none.jsonl:1: "*"train.checkpoint"* ]] || fail "$stderr"
	[ ! -e out.jsonl ]
	jq -c '.prune = {}' trained.jsonl > twice.jsonl
	run -1 --separate-stderr tc-prune calibrate twice.jsonl
	[[ "$stderr" == *"twice.jsonl:1: field 'prune'"* ]] || fail "$stderr"
	run -1 --separate-stderr tc-prune sweep --checkpoint nosuch.safetensors
	[[ "$stderr" == tc-prune:*nosuch.safetensors* ]] || fail "$stderr"
	for args in "sweep" "sweep --checkpoint ck.safetensors --taus -1" "sweep --checkpoint ck.safetensors --top-k 0" \
		"sweep --checkpoint ck.safetensors --top-k 1.5" "sweep --checkpoint ck.safetensors --plot x.pdf" \
		"calibrate --target-act 1" "calibrate --batches 0" "calibrate --checkpoint ck.safetensors x.jsonl"; do
		run -2 --separate-stderr tc-prune $args
		[[ "$stderr" == tc-prune:* ]] || fail "$args: $stderr"
	done
}
