/*
 * tensor_fuzz.c: safetensors files (lib/tensor), tc-tensor(5). The input is read three ways: from
 * memory with its size known (tensor_set_decode), through a callback with the size unknown, as
 * from a pipe (tensor_set_read), and from a scratch file (tensor_file_load). The size-known
 * readers must agree; a set that was read must find every tensor by name, encode, and decode from
 * its encoding to the same tensors and metadata. A disagreement aborts.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct memin {
	const uint8_t *p;
	size_t len, pos;
};

static long
mem_read(void *ctx, void *buf, size_t n, struct tc_error *err)
{
	struct memin *m = ctx;
	size_t k = m->len - m->pos < n ? m->len - m->pos : n;

	(void)err;
	memcpy(buf, m->p + m->pos, k);
	m->pos += k;
	return (long)k;
}

static void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, "tensor_fuzz: %s\n", what);
	abort();
}

static int
same_sets(const struct tensor_set *a, const struct tensor_set *b)
{
	if (a->n != b->n || a->nmeta != b->nmeta)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct tensor *x = &a->t[i], *y = &b->t[i];
		if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim ||
		    memcmp(x->shape, y->shape, sizeof x->shape[0] * (size_t)x->ndim) ||
		    x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes))
			return 0;
	}
	for (size_t i = 0; i < a->nmeta; i++)
		if (strcmp(a->meta_key[i], b->meta_key[i]) || strcmp(a->meta_val[i], b->meta_val[i]))
			return 0;
	return 1;
}

static void
use(const struct tensor_set *s)
{
	struct tensor_set back;
	struct tc_error err;
	char shape[TENSOR_SHAPE_STRMAX];
	void *buf;
	size_t len;

	for (size_t i = 0; i < s->n; i++) {
		const struct tensor *t = &s->t[i];
		if (tensor_set_find(s, t->name) != t)
			fail("a tensor read is not found by its name");
		if ((uint64_t)tensor_numel(t) * tensor_dtype_size(t->dtype) != t->nbytes)
			fail("a tensor's byte count does not match its shape");
		tensor_shape_format(shape, sizeof shape, t->ndim, t->shape);
	}
	for (size_t i = 0; i < s->nmeta; i++)
		if (tensor_set_get_meta(s, s->meta_key[i]) != s->meta_val[i])
			fail("a metadata key read is not found");
	if (tensor_set_encode(s, &buf, &len, &err) < 0)
		fail(err.msg);
	tensor_set_init(&back);
	if (tensor_set_decode(&back, buf, len, "encoded", &err) < 0)
		fail(err.msg);
	if (!same_sets(s, &back))
		fail("decode(encode(set)) differs from set");
	tensor_set_release(&back);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	struct tensor_set a, b, c;
	struct memin m = {data, size, 0};
	struct tc_error err;
	int ra, rb, rc;

	if (!path)
		path = fuzz_path("t.safetensors");
	tensor_set_init(&a);
	tensor_set_init(&b);
	tensor_set_init(&c);

	ra = tensor_set_decode(&a, data, size, "mem", &err);
	if (ra == 0)
		use(&a);
	else if (a.n || a.nmeta)
		fail("a failed decode left tensors in the set");

	rb = tensor_set_read(&b, mem_read, &m, UINT64_MAX, "pipe", &err);
	if (ra == 0 && rb != 1)
		fail("bytes read with their size known are refused without it");
	if (rb == 1) {
		use(&b);
		if (ra == 0 && !same_sets(&a, &b))
			fail("the same bytes read with and without their size differ");
	}

	fuzz_write(path, data, size);
	rc = tensor_file_load(&c, path, &err);
	if ((rc == 0) != (ra == 0))
		fail("tensor_file_load and tensor_set_decode disagree");
	if (rc == 0 && !same_sets(&a, &c))
		fail("tensor_file_load and tensor_set_decode read different sets");

	tensor_set_release(&a);
	tensor_set_release(&b);
	tensor_set_release(&c);
	return 0;
}
