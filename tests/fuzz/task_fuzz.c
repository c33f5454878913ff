/*
 * task_fuzz.c: the task loaders (lib/task) on one file each. The first input byte chooses the
 * loader and the file the rest of the input becomes:
 *   0  wordnet-lex: one of data.noun, data.verb, data.adj, data.adv (byte / 4 % 4), the other
 *      three holding one valid synset line each;
 *   1  spam: one message file, in spam-1 or easy-ham-1 (byte / 4 % 2);
 *   2  tsv:PATH;
 *   3  jsonl:PATH.
 * A task that loads must have every label in range, every split one of the three and a text for
 * every example; a broken invariant aborts.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "task.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const wnfile[4] = {"data.noun", "data.verb", "data.adj", "data.adv"};
static const char *const wnline[4] = {
    "00233980 04 n 01 honorable_discharge 0 001 @ 00216174 n 0000 | a discharge from the armed forces\n",
    "00109540 29 v 01 lather 1 001 @ 00109389 v 0000 01 + 01 00 | exude sweat or lather\n",
    "00115094 00 s 01 hot_under_the_collar(p) 0 002 & 00113818 a 0000 ;u 07075172 n 0000 | very angry\n",
    "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment\n",
};
static char *wndir, *spamdir, *wnpath[4], *spampath[2], *tsvspec, *jsonlspec;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char rel[64];

	(void)argc, (void)argv;
	tc_setprogname("task_fuzz");
	task_wordnet_sysdir = NULL;
	wndir = fuzz_path("wn");
	spamdir = fuzz_path("sp");
	for (int i = 0; i < 4; i++) {
		snprintf(rel, sizeof rel, "wn/wordnet/%s", wnfile[i]);
		wnpath[i] = fuzz_path(rel);
	}
	spampath[0] = fuzz_path("sp/spam/spam-1/00001.7c53336b37003a9286aba55d2945844c.json");
	spampath[1] = fuzz_path("sp/spam/easy-ham-1/00001.7c53336b37003a9286aba55d2945844c.json");
	tsvspec = esprintf("tsv:%s/task.tsv", fuzz_tmpdir());
	jsonlspec = esprintf("jsonl:%s/task.jsonl", fuzz_tmpdir());
	return 0;
}

static void
check(const struct task *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct example *e = &t->ex[i];
		if (!e->text || e->label < 0 || e->label >= t->nlabels || e->split < TASK_TRAIN ||
		    e->split > TASK_TEST) {
			fprintf(stderr, "task_fuzz: example %zu of task '%s' is malformed\n", i, t->name);
			abort();
		}
		task_split_name(e->split);
	}
	for (int k = 0; k < t->nlabels; k++)
		if (!t->labels[k])
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct task t;
	struct tc_error err;
	const char *dirs[2] = {NULL, NULL};
	const char *spec;
	int sel;

	if (size == 0)
		return 0;
	sel = data[0];
	data++, size--;
	switch (sel % 4) {
	case 0:
		for (int i = 0; i < 4; i++) {
			if (i == sel / 4 % 4)
				fuzz_write(wnpath[i], data, size);
			else
				fuzz_write(wnpath[i], wnline[i], strlen(wnline[i]));
		}
		dirs[0] = wndir;
		spec = "wordnet-lex";
		break;
	case 1:
		remove(spampath[!(sel / 4 % 2)]);
		fuzz_write(spampath[sel / 4 % 2], data, size);
		dirs[0] = spamdir;
		spec = "spam";
		break;
	case 2:
		fuzz_write(tsvspec + 4, data, size);
		spec = tsvspec;
		break;
	default:
		fuzz_write(jsonlspec + 6, data, size);
		spec = jsonlspec;
		break;
	}
	if (task_load(&t, spec, dirs, &err) == 0)
		check(&t);
	task_release(&t);
	return 0;
}
