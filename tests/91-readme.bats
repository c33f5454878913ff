#!/usr/bin/env bats
# Documentation that runs, continued from 90-man: every command of README.md's ```sh blocks is run
# here, in order, in an empty directory that stands for the top of the source tree (share/ and
# build/ are links to the tree's share/ and to the build under test), with the tools on PATH and
# TC_DATA=tests/data/task. Each must exit 0 and leave every file it writes non-empty. A command
# that cannot run offline is listed below with its reason; a command too slow for the suite is run
# with a smaller budget through an explicit rewrite. README cannot gain a command that is neither:
# every command of a ```sh block runs unless listed, and a code block of any other kind fails the
# test unless its section is listed as holding no commands.
#
# And every man page with examples is run by 90-man: each page with an EXAMPLES section or a
# runnable example block has its run_examples test there, and each block of an EXAMPLES section
# is a runnable "$ " block or is listed below with its reason.

load helper
bats_require_minimum_version 1.5.0

# README commands not run, exactly as README writes them (without their comment), and why.
not_run=(
	'make codesign' 'the main job: fetches WordNet over the network and co-designs for hours; 96-codesign and 97-kill run the loop on tiny budgets'
	'make test' 'the test suite itself'
)

# README commands run with a smaller budget: sed expressions applied to each command, and why.
rewrites=(
	's/ --time 5m / --steps 5 /' 'five minutes of training: five steps show the command works'
)

# README sections whose code blocks are not commands.
not_commands=(
	'Map of the source' 'a tree of the source files'
)

# Man page example blocks (in an EXAMPLES section, not starting with "$ ") that 90-man does not
# run: the page, the block's first line as the page writes it, and why.
man_not_run=(
	tc-train.1 'make data' 'fetches the data sets over the network'
	tc-train.1 'tc\-sample \-\-space model \-\-space\-file \(dq$TC_SHARE/space/tiny.json\(dq \-n 100 \-\-seed 3 |' 'trains 100 models for a minute each'
	tc-train.1 'tc\-sample \-\-preset bert\-mini > mini.jsonl' 'an hour of pre-training, on files not in the tree (a BERT vocabulary, SST-2)'
	tc-train.1 'from safetensors.torch import load_file' 'Python with PyTorch, not a shell command'
)

# readme_commands: the commands of README's ```sh blocks, one a line: comment lines dropped, a
# trailing " # comment" cut, and lines ending in "|", "&&", "||" or "\" joined to the next.
readme_commands() {
	awk '
		/^```/ { if (fence) fence = 0; else { fence = 1; sh = ($0 == "```sh") } next }
		fence && sh {
			line = $0
			sub(/^[ \t]+/, "", line)
			if (line == "" || line ~ /^#/) next
			sub(/[ \t]+#.*$/, "", line)
			cmd = cmd (cmd == "" ? "" : " ") line
			if (line ~ /(\||&&|\\)$/) { sub(/[ \t]*\\$/, "", cmd); next }
			print cmd
			cmd = ""
		}
		END { if (cmd != "") print cmd }
	' "$top/README.md"
}

# other_blocks: "SECTION<TAB>FENCE" for every code block of README that is not ```sh
other_blocks() {
	awk '
		/^## / { section = substr($0, 4) }
		/^```/ { if (fence) fence = 0; else { fence = 1; if ($0 != "```sh") print section "\t" $0 } }
	' "$top/README.md"
}

# listed NAME TEXT: TEXT is a key of the pairs array NAME
listed() {
	local -n pairs=$1
	local i
	for ((i = 0; i < ${#pairs[@]}; i += 2)); do
		[ "${pairs[i]}" = "$2" ] && return 0
	done
	return 1
}

# rewritten COMMAND: the command after every rewrite
rewritten() {
	local c=$1 i
	for ((i = 0; i < ${#rewrites[@]}; i += 2)); do
		c=$(sed -e "${rewrites[i]}" <<<"$c")
	done
	printf '%s\n' "$c"
}

@test "README: every command of a sh block is run or listed, and every other code block is listed" {
	local cmds i hit c
	cmds=$(readme_commands)
	[ "$(grep -c . <<<"$cmds")" -ge 5 ] || fail "too few commands found in README.md: $cmds"
	for ((i = 0; i < ${#not_run[@]}; i += 2)); do
		grep -qxF -- "${not_run[i]}" <<<"$cmds" || fail "listed as not run but not in README.md: ${not_run[i]}"
	done
	for ((i = 0; i < ${#rewrites[@]}; i += 2)); do
		hit=
		while IFS= read -r c; do
			[ "$(sed -e "${rewrites[i]}" <<<"$c")" = "$c" ] || hit=1
		done <<<"$cmds"
		[ -n "$hit" ] || fail "rewrite ${rewrites[i]} changes no README command"
	done
	while IFS=$'\t' read -r section fence; do
		listed not_commands "$section" || fail "README.md section '$section' has a code block ($fence) that is neither sh nor listed as not commands"
	done < <(other_blocks)
}

@test "README: its commands run" {
	local c out n=0
	ln -s "$top/share" share
	ln -s "$top/$BUILD" build
	export TC_DATA="$top/tests/data/task"
	# one script, so that the first command's export holds for the others; after each command,
	# every file it writes (> FILE, >> FILE, -o FILE, --output FILE, --plot FILE) must be non-empty
	{
		echo 'set -o pipefail'
		while IFS= read -r c; do
			listed not_run "$c" && continue
			c=$(rewritten "$c")
			n=$((n + 1))
			printf 'echo %q >&2\n' "+ $c"
			printf '%s || { echo %q >&2; exit 1; }\n' "$c" "README command failed: $c"
			for out in $(grep -oE '(^| )(>>?|-o|--output|--plot) +[^ |;&<>]+' <<<"$c" | awk '{ print $NF }'); do
				printf '[ -s %q ] || { echo %q >&2; exit 1; }\n' "$out" "README command wrote an empty or no $out: $c"
			done
		done < <(readme_commands)
	} > readme.sh
	[ "$n" -ge 4 ] || fail "only $n README commands to run: $(cat readme.sh)"
	run bash readme.sh
	[ "$status" -eq 0 ] || fail "$output"
	[ -s tiny.jsonl ] && jq -e '.train.steps == 5' tiny.jsonl >/dev/null || fail "tiny.jsonl: $(cat tiny.jsonl)"
}

# example_pages: the man pages with an EXAMPLES section or a runnable ("$ ") example block
example_pages() {
	local m
	for m in "$top"/man/*.[1-9]; do
		if grep -q '^\.SH EXAMPLES' "$m" || awk '/^\.EX/ { getline; if (/^\$ /) f = 1 } END { exit !f }' "$m"; then
			basename "$m"
		fi
	done
}

@test "man: 90-man runs the examples of every page that has them" {
	local p n=0
	for p in $(example_pages); do
		n=$((n + 1))
		grep -qE "^[[:space:]]*run_examples ${p//./\\.}\$" "$top/tests/90-man.bats" ||
			fail "man/$p has examples but tests/90-man.bats has no 'run_examples $p'"
	done
	[ "$n" -ge 9 ] || fail "only $n man pages with examples: $(example_pages)"
}

@test "man: every block of an EXAMPLES section runs in 90-man or is listed here" {
	local m page first i ok
	for m in "$top"/man/*.[1-9]; do
		page=$(basename "$m")
		while IFS= read -r first; do
			ok=
			for ((i = 0; i < ${#man_not_run[@]}; i += 3)); do
				[ "${man_not_run[i]}" = "$page" ] && [ "${man_not_run[i + 1]}" = "$first" ] && ok=1
			done
			[ -n "$ok" ] || fail "man/$page: an EXAMPLES block that does not run (its first line is not a \"\$ \" command) and is not listed: $first"
		done < <(awk '/^\.SH/ { ex = /^\.SH EXAMPLES/ } ex && /^\.EX/ { getline; if (!/^\$ /) print }' "$m")
	done
	# and no listed block is gone
	for ((i = 0; i < ${#man_not_run[@]}; i += 3)); do
		awk '/^\.SH/ { ex = /^\.SH EXAMPLES/ } ex && /^\.EX/ { getline; print }' "$top/man/${man_not_run[i]}" |
			grep -qxF -- "${man_not_run[i + 1]}" || fail "listed but not an EXAMPLES block of man/${man_not_run[i]}: ${man_not_run[i + 1]}"
	done
}
