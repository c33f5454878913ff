/*
 * checkpoint_fuzz.c: tc-train checkpoints (safetensors files with metadata "model", "config",
 * "state" and the tensors of lib/flexibert, AdamW's moments and the vocabulary) read the three
 * ways lib/train reads them. The first input byte chooses the way; the rest is the file:
 *   0  tc-prune's: train_prune_eval, which takes the model, the configuration and the
 *      vocabulary from the file alone and evaluates it, at a threshold and at top-k;
 *   1  tc-train --init: train_run starting from the file's encoder and vocabulary, one step;
 *   2  tc-train --checkpoint --resume: train_run resuming from the file, up to step 2.
 * The model of 1 and 2 is a small heterogeneous one (two layers of widths 2 and 8, SA, WMA, DCT
 * and convolution heads), the task wordnet-lex on twelve synsets, so a step takes about a
 * millisecond. tests/fuzz/corpus/checkpoint holds one checkpoint of each kind, made by the same
 * calls (tests/fuzz/README.md).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "space.h"
#include "task.h"
#include "train.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A WordNet of twelve synsets, one in validation and two in test: the task, wordnet-lex, is then
 * named in a checkpoint's configuration without a path, so the corpus's checkpoints match it
 * wherever the harness runs. */
static const char *const wordnet[4][2] = {
    {"data.noun", "00749491 04 n 01 jag 0 001 @ 00747671 n 0000 | a bout of drinking or drug taking\n"
                  "01176115 04 n 02 battering 0 banging 0 001 @ 01170962 n 0000 | the act of subjecting to "
                  "strong attack\n"
                  "03221643 06 n 01 doodlebug 1 001 @ 03791235 n 0000 | a small motor vehicle\n"},
    {"data.verb", "00159553 30 v 01 run_up 0 001 @ 02305000 v 0000 01 + 08 00 | pile up (debts or scores)\n"
                  "00194079 30 v 01 strip 1 001 @ 00194170 v 0000 01 + 08 00 | draw the last milk (of cows)\n"
                  "00285231 30 v 01 aurify 0 001 @ 00283911 v 0000 02 + 08 00 + 11 00 | turn golden\n"},
    {"data.adj", "00115094 00 s 01 hot_under_the_collar(p) 0 002 & 00113818 a 0000 ;u 07075172 n 0000 | "
                 "very angry\n"
                 "00179815 00 s 03 unaccredited 0 unlicensed 0 unlicenced 0 001 & 00179486 a 0000 | lacking "
                 "official approval\n"
                 "00202772 00 s 01 retracted 0 001 & 00201354 a 0000 | drawn back and in\n"},
    {"data.adv", "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment\n"
                 "00005343 02 r 01 arguably 0 001 \\ 00602117 a 0101 | as can be shown by argument\n"
                 "00032803 02 r 01 much 3 000 | very; \"he was much annoyed\"\n"},
};

static const char model_text[] =
    "{\"l\": 2, \"o\": [[\"sa_sdp_1\", \"c_5_1\"], [\"sa_wma_4\", \"l_dct_4\"]], "
    "\"h\": [2, 8], \"f\": [[8], [8, 4]]}";

static struct model model;
static char *ckpt;
static const char *dirs[2];

/* The options of every way: small batches, a trained vocabulary of 40 tokens, no dropout. */
static void
fuzz_checkpoint_options(struct train_options *o)
{
	train_options_default(o);
	o->data_dirs = dirs;
	o->batch = 4;
	o->bucket = 1;
	o->seq = 16;
	o->vocab_size = 40;
	o->dropout = 0;
	o->checkpoint_every = 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tc_error err;
	json_t *j = json_loads(model_text, 0, NULL);
	char *path;

	(void)argc, (void)argv;
	tc_setprogname("checkpoint_fuzz");
	setenv("OMP_NUM_THREADS", "1", 0);
	if (!j || model_from_json(&model, j, NULL, &err) < 0)
		die("the harness's model: %s", j ? err.msg : "not JSON");
	json_decref(j);
	for (int i = 0; i < 4; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "data/wordnet/%s", wordnet[i][0]);
		path = fuzz_path(rel);
		fuzz_write(path, wordnet[i][1], strlen(wordnet[i][1]));
		free(path);
	}
	task_wordnet_sysdir = NULL;
	dirs[0] = fuzz_path("data");
	ckpt = fuzz_path("ckpt.safetensors");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct train_options o;
	struct train_result r;
	struct train_prune_point pts[2] = {{.tau = 0.01}, {.topk = 2}};
	struct tc_error err;
	int way;

	if (size == 0)
		return 0;
	way = data[0] % 3;
	fuzz_write(ckpt, data + 1, size - 1);
	fuzz_checkpoint_options(&o);
	switch (way) {
	case 0:
		train_prune_eval(ckpt, &o, pts, 2, &err);
		break;
	case 1:
		o.init_path = ckpt;
		o.steps = 1;
		if (train_run(&model, &o, &r, &err) == 0)
			train_result_release(&r);
		break;
	default:
		o.checkpoint = ckpt;
		o.resume = 1;
		o.steps = 2;
		if (train_run(&model, &o, &r, &err) == 0)
			train_result_release(&r);
		break;
	}
	return 0;
}
