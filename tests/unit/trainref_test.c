/*
 * trainref_test.c: lib/flexibert.c against the independent PyTorch implementation of
 * tests/reference/flexibert.py, through the fixtures it wrote (tests/data/train-ref/NAME.safetensors;
 * the contract is tests/reference/README.md). For each case the C model takes the fixture's initial
 * parameters and batch, and must reproduce:
 *   - the logits, within 1e-4 of the largest logit (all rows for classification, the labelled rows
 *     for masked LM);
 *   - the loss, within 1e-5 relative;
 *   - every parameter's gradient, within 1e-4 relative: max |c - r| <= 1e-4 max |r| per tensor, with
 *     a floor of 1e-4 of the largest gradient of the whole model for tensors whose exact gradient is
 *     zero (the key biases: softmax ignores a shift common to every key, so torch's values are
 *     rounding noise of about 1e-10);
 *   - the loss at each of 10 steps of clipping + AdamW + the warm-up/decay schedule, within 1e-4
 *     relative (fp32 drift over 10 steps stays well under that).
 * Runs from the top of the tree or with TC_TOP set. Prints TAP; exits 1 on any mismatch.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flexibert.h"
#include "tap.h"
#include "tensor.h"
#include "util.h"

static const char *cases[] = {"cls-mixed", "mlm-mixed", "cls-narrow", "cls-hot"};

/*
 * The model dict, read as tests/reference/README.md has it: the head size is the number in each op
 * string. model_from_json would also insist on d = floor(h / n), the space's rule, which cls-narrow
 * breaks on purpose (A = n d differs from h) to cover the general shapes.
 */
static int
model_lenient(struct model *m, const json_t *v)
{
	const json_t *o = json_object_get(v, "o"), *h = json_object_get(v, "h"), *f = json_object_get(v, "f");

	memset(m, 0, sizeof *m);
	m->l = (int)json_integer_value(json_object_get(v, "l"));
	if (m->l < 1 || m->l > MODEL_MAX_LAYERS)
		return -1;
	for (int l = 0; l < m->l; l++) {
		struct model_layer *L = &m->layer[l];
		const json_t *ol = json_array_get(o, (size_t)l), *fl = json_array_get(f, (size_t)l);
		L->h = (int)json_integer_value(json_array_get(h, (size_t)l));
		L->n = (int)json_array_size(ol);
		L->nff = (int)json_array_size(fl);
		if (L->n < 1 || L->n > MODEL_MAX_HEADS || L->nff < 1 || L->nff > MODEL_MAX_FF)
			return -1;
		for (int i = 0; i < L->nff; i++)
			L->ff[i] = (int)json_integer_value(json_array_get(fl, (size_t)i));
		for (int j = 0; j < L->n; j++) {
			const char *s = json_string_value(json_array_get(ol, (size_t)j)),
			           *u = s ? strrchr(s, '_') : NULL;
			int op = OP_COUNT;
			for (int k = 0; u && k < OP_COUNT; k++)
				if (strlen(head_op_names[k]) == (size_t)(u - s) &&
				    !strncmp(s, head_op_names[k], (size_t)(u - s)))
					op = k;
			if (op == OP_COUNT)
				return -1;
			L->op[j] = (unsigned char)op;
			L->d = atoi(u + 1);
		}
	}
	return 0;
}

static const struct tensor *
need(const struct tensor_set *s, const char *name, enum tensor_dtype dt)
{
	const struct tensor *t = tensor_set_find(s, name);

	if (!t || t->dtype != dt) {
		fprintf(stderr, "fixture lacks %s\n", name);
		exit(1);
	}
	return t;
}

static double
maxabs(const float *x, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)x[i]));
	return m;
}

static void
run(const char *top, const char *name)
{
	char path[4096];
	struct tensor_set s;
	struct tc_error err;
	struct fb_config cfg = {0};
	struct flexibert fb;
	json_t *mj, *cj;
	json_error_t je;

	snprintf(path, sizeof path, "%s/tests/data/train-ref/%s.safetensors", top, name);
	tensor_set_init(&s);
	if (tensor_file_load(&s, path, &err) < 0) {
		check(0, "%s: load: %s", name, err.msg);
		return;
	}
	mj = json_loads(tensor_set_get_meta(&s, "model"), 0, &je);
	cj = json_loads(tensor_set_get_meta(&s, "config"), 0, &je);
	if (!mj || !cj || model_lenient(&cfg.m, mj) < 0) {
		check(0, "%s: model or config metadata", name);
		return;
	}
	cfg.vocab = (int)json_integer_value(json_object_get(cj, "vocab"));
	cfg.labels = (int)json_integer_value(json_object_get(cj, "labels"));
	cfg.max_pos = (int)json_integer_value(json_object_get(cj, "max_pos"));
	cfg.objective = strcmp(json_string_value(json_object_get(cj, "objective")), "mlm") ? FB_CLS : FB_MLM;
	cfg.dropout = 0;
	double lr = json_number_value(json_object_get(cj, "lr")),
	       wd = json_number_value(json_object_get(cj, "weight_decay")),
	       maxn = json_number_value(json_object_get(cj, "max_norm"));
	long warm = (long)json_integer_value(json_object_get(cj, "warmup")),
	     S = (long)json_integer_value(json_object_get(cj, "steps"));

	if (flexibert_init(&fb, &cfg, 1, &err) < 0) {
		check(0, "%s: init: %s", name, err.msg);
		return;
	}
	if (flexibert_import(&fb, &s, "param.", fb.params, &err) < 0) {
		check(0, "%s: import: %s", name, err.msg);
		return;
	}

	const struct tensor *ti = need(&s, "input.ids", TENSOR_I64), *tm = need(&s, "input.mask", TENSOR_I64),
	                    *tl = need(&s, "input.labels", TENSOR_I64);
	int B = (int)ti->shape[0], T = (int)ti->shape[1], nl = (int)tensor_numel(tl);
	int32_t *ids = emalloc(sizeof *ids * (size_t)(B * T)), *lab = emalloc(sizeof *lab * (size_t)nl);
	const int64_t *i64 = ti->data, *m64 = tm->data, *l64 = tl->data;
	int maskok = 1;
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)i64[i];
		maskok &= (m64[i] != 0) == (ids[i] != 0);
	}
	for (int i = 0; i < nl; i++)
		lab[i] = (int32_t)l64[i];
	check(maskok, "%s: the fixture's mask is ids != 0 ([PAD] is what id 0 means)", name);

	/* logits and loss */
	double loss = flexibert_forward(&fb, ids, lab, B, T, 0, 0);
	double rloss = *(const float *)need(&s, "out.loss", TENSOR_F32)->data;
	check(fabs(loss - rloss) <= 1e-5 * fabs(rloss), "%s: loss %.7g vs torch %.7g", name, loss, rloss);

	const struct tensor *tlog = need(&s, "out.logits", TENSOR_F32);
	const float *rl = tlog->data;
	int C = (int)tlog->shape[tlog->ndim - 1], row = 0;
	double lerr = 0, lmax = maxabs(rl, (size_t)tensor_numel(tlog));
	for (int r = 0; r < (cfg.objective == FB_CLS ? B : B * T); r++) {
		if (cfg.objective == FB_MLM && lab[r] == -100)
			continue;
		for (int c = 0; c < C; c++)
			lerr =
			    fmax(lerr, fabs((double)fb.logits[(size_t)row * C + c] - rl[(size_t)r * C + c]));
		row++;
	}
	check(row == fb.nlogit_rows && lerr <= 1e-4 * lmax, "%s: logits (%d rows) max error %.3g of %.3g",
	      name, row, lerr, lmax);

	/* gradients */
	flexibert_zero_grad(&fb);
	flexibert_forward(&fb, ids, lab, B, T, 0, 0);
	flexibert_backward(&fb);
	double gall = 0, worst = 0;
	const char *worstname = "";
	for (int i = 0; i < fb.np; i++) {
		char g[128];
		snprintf(g, sizeof g, "grad.%s", fb.p[i].name);
		gall = fmax(gall, maxabs(need(&s, g, TENSOR_F32)->data, fb.p[i].n));
	}
	int gok = 1, ng = 0;
	for (int i = 0; i < fb.np; i++) {
		char g[128];
		snprintf(g, sizeof g, "grad.%s", fb.p[i].name);
		const struct tensor *t = need(&s, g, TENSOR_F32);
		const float *r = t->data, *c = fb.grads + fb.p[i].off;
		double e = 0, rm = maxabs(r, fb.p[i].n), tol = 1e-4 * fmax(rm, 1e-4 * gall);
		if ((size_t)tensor_numel(t) != fb.p[i].n) {
			gok = 0;
			continue;
		}
		for (size_t k = 0; k < fb.p[i].n; k++)
			e = fmax(e, fabs((double)c[k] - r[k]));
		if (e / tol > worst)
			worst = e / tol, worstname = fb.p[i].name;
		if (e > tol) {
			gok = 0;
			fprintf(stderr, "# %s: %s: error %.3g, max |grad| %.3g\n", name, fb.p[i].name, e, rm);
		}
		ng++;
	}
	check(gok && ng == fb.np, "%s: all %d gradients within 1e-4 relative (worst %s at %.2f of tolerance)",
	      name, ng, worstname, worst);

	/* ten optimizer steps */
	const struct tensor *ts = need(&s, "steps.loss", TENSOR_F32);
	const float *rs = ts->data;
	int sok = (long)tensor_numel(ts) == S;
	double serr = 0;
	for (long st = 0; st < S && sok; st++) {
		flexibert_zero_grad(&fb);
		double l = flexibert_forward(&fb, ids, lab, B, T, 0, 0);
		serr = fmax(serr, fabs(l - rs[st]) / fabs((double)rs[st]));
		flexibert_backward(&fb);
		flexibert_clip(&fb, maxn);
		flexibert_adamw(&fb, flexibert_lr(lr, st, warm, S), wd);
	}
	check(sok && serr <= 1e-4, "%s: %ld step losses within 1e-4 relative (worst %.2g; %.5g -> %.5g)",
	      name, S, serr, (double)rs[0], (double)rs[S - 1]);

	free(ids);
	free(lab);
	json_decref(mj);
	json_decref(cj);
	flexibert_release(&fb);
	tensor_set_release(&s);
}

int
main(void)
{
	const char *top = getenv("TC_TOP");

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		run(top ? top : ".", cases[i]);
	return tap_done();
}
