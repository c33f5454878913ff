/*
 * vocab_fuzz.c: vocab.txt files (lib/wordpiece), as tc-train --vocab reads them from a path and as
 * a checkpoint's copy is read from memory. Both readers must agree. A vocabulary that loads must
 * map every id to its token and back, write a vocab.txt that loads to the same vocabulary, and
 * encode text: the input itself, which is arbitrary bytes, and a few fixed strings. Every id
 * encoded must be in range. A disagreement aborts.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wordpiece.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, "vocab_fuzz: %s\n", what);
	abort();
}

static void
same_vocab(const struct wordpiece *a, const struct wordpiece *b)
{
	if (wordpiece_size(a) != wordpiece_size(b) || wordpiece_unk(a) != wordpiece_unk(b) ||
	    wordpiece_pad(a) != wordpiece_pad(b) || wordpiece_cls(a) != wordpiece_cls(b) ||
	    wordpiece_sep(a) != wordpiece_sep(b) || wordpiece_mask(a) != wordpiece_mask(b))
		fail("two loads of the same vocabulary differ");
	for (int i = 0; i < wordpiece_size(a); i++)
		if (strcmp(wordpiece_token(a, i), wordpiece_token(b, i)) != 0)
			fail("two loads of the same vocabulary differ in a token");
}

static void
encode(const struct wordpiece *wp, const char *text)
{
	int32_t ids[64];
	int n;

	for (int max = 0; max <= 64; max += 7) {
		n = wordpiece_encode(wp, text, ids, max);
		if (n < 0 || n > max)
			fail("wordpiece_encode wrote more ids than it was given room for");
		for (int i = 0; i < n; i++)
			if (ids[i] < 0 || ids[i] >= wordpiece_size(wp))
				fail("wordpiece_encode gave an id out of range");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	static const char *const texts[] = {"", "hello world", "[UNK] [CLS]", "Ünïcödé ﬁ 中文 ##a ##",
	                                    "a\xff\xfe b\xc3"};
	struct wordpiece *a, *b, *c;
	struct tc_error err;
	char *text, *words, *vt;
	size_t len;

	if (!path)
		path = fuzz_path("vocab.txt");
	fuzz_write(path, data, size);
	a = wordpiece_load(path, &err);
	b = wordpiece_load_mem(data, size, "mem", &err);
	if (!a != !b)
		fail("wordpiece_load and wordpiece_load_mem disagree");
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	words = wordpiece_split(text);
	free(words);
	if (a) {
		same_vocab(a, b);
		for (int i = 0; i < wordpiece_size(a); i++)
			if (wordpiece_id(a, wordpiece_token(a, i)) != i)
				fail("a token does not map back to its id");
		vt = wordpiece_text(a, &len);
		if (!(c = wordpiece_load_mem(vt, len, "text", &err)))
			fail("wordpiece_text does not load");
		same_vocab(a, c);
		wordpiece_free(c);
		free(vt);
		encode(a, text);
		for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
			encode(a, texts[i]);
	}
	free(text);
	wordpiece_free(a);
	wordpiece_free(b);
	return 0;
}
