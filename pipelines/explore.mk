# pipelines/explore.mk: a transformer-accelerator exploration as file targets, each stage one tool,
# so that make reruns only the stages whose inputs changed and -j runs training in parallel.
#
#   make -f pipelines/explore.mk -j2                        N pairs from the tiny space, default budgets
#   make -f pipelines/explore.mk -j2 N=32 TRAIN='--time 60' OUT=runs/big
#
#   pairs.jsonl      tc-sample: N pairs (model x accelerator) of SPACE, seed SEED (PRESET: a
#                    tc-sample --preset fixing a side)
#   trained.jsonl    tc-train, one record per job through GNU parallel (JOBS at a time; each job
#                    gets THREADS threads), checkpoints in OUT/ckpt
#   pruned.jsonl     tc-prune calibrate (CALIBRATE: its options): the thresholds for 50% activation
#                    and 90% gradient sparsity, measured on each checkpoint
#   simulated.jsonl  tc-sim in MODE (training or inference), with the measured sparsity
#   scored.jsonl     tc-score: the co-design performance
#   front.jsonl      tc-pareto: the pairs no other beats on score and energy, plotted in front.png
#
# Tools are found on PATH, else in the source tree's build/bin. Every file is written whole or not
# at all (each tool's -o, or a temporary file renamed), so an interrupted make leaves no stage half
# done and the next make picks up from the last complete one.

top := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
export PATH := $(PATH):$(top)/build/bin
export TC_SHARE ?= $(top)/share

N      ?= 8
SEED   ?= 1
SPACE  ?= $(top)/share/space/tiny.json
PRESET ?=
TRAIN  ?= --steps 300 --seq 64
CALIBRATE ?= --batches 8
TASK   ?= wordnet-lex
MODE   ?= training
JOBS   ?= 2
THREADS ?= 1
OUT    ?= runs/explore
OBJECTIVES ?= score.performance:max,sim.energy_j:min

.PHONY: all clean
.DELETE_ON_ERROR:

all: $(OUT)/front.jsonl

$(OUT)/pairs.jsonl: $(MAKEFILE_LIST)
	@mkdir -p $(OUT)
	tc-sample --space pair --space-file $(SPACE) $(if $(PRESET),--preset $(PRESET)) -n $(N) --seed $(SEED) -o $@

$(OUT)/trained.jsonl: $(OUT)/pairs.jsonl
	parallel --pipe -N1 -j$(JOBS) --keep-order --halt now,fail=1 \
		tc-train -q --task $(TASK) --threads $(THREADS) --checkpoint-dir $(OUT)/ckpt $(TRAIN) \
		< $< > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

$(OUT)/pruned.jsonl: $(OUT)/trained.jsonl
	tc-prune calibrate -q --threads $(THREADS) $(CALIBRATE) -o $@ $<

$(OUT)/simulated.jsonl: $(OUT)/pruned.jsonl
	tc-sim --mode $(MODE) -o $@ $<

$(OUT)/scored.jsonl: $(OUT)/simulated.jsonl
	tc-score -q -o $@ $<

$(OUT)/front.jsonl: $(OUT)/scored.jsonl
	tc-pareto --objectives '$(OBJECTIVES)' --plot $(OUT)/front.png -o $@ $<

clean:
	rm -rf $(OUT)
