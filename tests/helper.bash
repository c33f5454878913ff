# helper.bash: loaded by every bats file. Puts the tools of the build under test first on PATH,
# points TC_SHARE at the source tree, and runs each test in its own empty directory.

top=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BUILD=${BUILD:-build}
bin="$top/$BUILD/bin"
testbin="$top/$BUILD/test"
export PATH="$bin:$testbin:$PATH"
export TC_SHARE="$top/share"
export LC_ALL=C

# A missing tool is a failure, never a skip.
for t in tc-sample tc-pareto tc-sim tc-train tc-prune tc-score; do
	[ -x "$bin/$t" ] || { echo "missing $bin/$t: run make first" >&2; exit 1; }
done

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
}

# fail MESSAGE: end a test with a message.
fail() {
	echo "$*" >&2
	return 1
}

# assert_equal ACTUAL EXPECTED
assert_equal() {
	[ "$1" = "$2" ] || fail "expected '$2', got '$1'"
}

# assert_output_has TEXT: $output contains TEXT.
assert_output_has() {
	case "$output" in
	*"$1"*) return 0 ;;
	esac
	fail "output does not contain '$1': $output"
}

# assert_one_line: $output (stderr of a failing tool) is exactly one line.
assert_one_line() {
	[ "${#lines[@]}" -eq 1 ] || fail "expected one line, got ${#lines[@]}: $output"
}

# order.tsv: label 1 when "red" comes before "blue" in the sentence, 0 when after; the other words
# carry nothing. Only a model that relates two positions can learn it.
order_task() {
	awk 'BEGIN { srand(9); split("the a cat dog sat ran on under big small old new house tree", w, " ");
		print "sentence\tlabel";
		for (i = 0; i < 1000; i++) {
			l = i % 2; n = 4 + int(rand() * 6); p = int(rand() * n); q = p;
			while (q == p) q = int(rand() * n);
			a = ((p < q) == l) ? "red" : "blue"; b = (a == "red") ? "blue" : "red"; s = "";
			for (j = 0; j < n; j++) s = s (j == p ? a : j == q ? b : w[1 + int(rand() * 14)]) " ";
			print s "\t" l } }' > order.tsv
}
