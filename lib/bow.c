/*
 * bow.c: the bag-of-words baseline of bow.h. The training split's words go into an open-addressing
 * hash with their document frequencies, and the vocabulary is sorted off it; every split is encoded
 * as the sorted distinct feature ids of each document (CSR); preconditioned L-BFGS minimises the
 * regularised softmax loss for each candidate L2 strength, from zero each time, so that a
 * candidate's model depends on its own strength alone (not on the rest of the grid or its order).
 *
 * N = documents of a split, F = features, L = labels, P = F*L + L parameters: W (F, L) row-major,
 * then b (L). r (N, L) = (softmax - one-hot) / N of each training document.
 *
 * Thread-count independence: the forward pass works in blocks of BLOCK_DOCS documents, each adding
 * its documents' losses and bias gradients in document order into a slot of its own, and the slots
 * are added in block order; each row of the weight gradient adds the r of its documents in
 * document order, whichever thread owns the row; dot products add blocks of BLOCK_PARAMS
 * parameters the same way. Threads only decide who computes which block, never what is added to
 * what, so 1, 2 or 7 threads give the same bits.
 *
 * Conditioning: word frequencies span four orders of magnitude, and so do the diagonal entries of
 * the Hessian; plain L-BFGS needed some 200 passes to settle on wordnet-lex. Its initial inverse
 * Hessian here is the inverse of an estimate of that diagonal (precondition), and 30 to 40 passes
 * suffice: further passes change validation accuracy by less than 0.1 point.
 *
 * Measured on wordnet-lex at -O2 (93,748 training glosses, 20,000 features of their 50,848 words,
 * 10.9 features a gloss, 45 labels, 0.9 million parameters): a pass takes about 80 ms on one core
 * of a busy 2-core Xeon, the default run (5 strengths, 40 passes each) 17 s, and about 130 MB
 * besides the task. It picks l2 = 1e-5: validation accuracy 71.3%, test 70.6% (majority class 12.4%).
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bow.h"

#define BLOCK_DOCS   256
#define BLOCK_PARAMS 4096
#define LBFGS_M      5    /* correction pairs kept */
#define GRAD_TOL     1e-5 /* converged when |g| falls to this fraction of |g| at zero */
#define ARMIJO       1e-4 /* sufficient decrease: f(x + t d) <= f(x) + ARMIJO t g.d */

/*
 * The default candidates. In the (1/N) convention of the objective, scikit-learn's C is 1/(l2 N):
 * on wordnet-lex (N = 93,748) l2 = 1e-5 is C = 1.07, and the grid spans C from 0.1 to 10.
 */
static const double default_l2[] = {1e-4, 3e-5, 1e-5, 3e-6, 1e-6};
#define NDEFAULT_L2 ((int)(sizeof default_l2 / sizeof *default_l2))

void
bow_options_default(struct bow_options *o)
{
	o->features = 20000;
	o->l2 = NULL;
	o->nl2 = 0;
	o->epochs = 40;
	o->seed = 0;
	o->threads = 0;
}

/* ---- Words ---- */

struct word {
	size_t off;  /* its bytes in words.text, NUL-terminated */
	size_t df;   /* training documents holding it */
	size_t last; /* the last training document that counted it, plus 1 */
	uint64_t hash;
	int id; /* feature id, or -1 outside the vocabulary */
};

struct words {
	struct word *w;
	size_t n, cap;
	size_t *slot; /* open addressing: index into w plus 1, 0 for empty; nslot a power of two */
	size_t nslot;
	char *text;
	size_t len, tcap;
};

static int
is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The next word of s at or after *pos, lowercased and NUL-terminated into *buf (of *cap bytes,
 * grown as needed). Returns its length, 0 at the end of s; *pos moves past the word. */
static size_t
next_word(const char *s, size_t *pos, char **buf, size_t *cap)
{
	const unsigned char *p = (const unsigned char *)s + *pos;
	size_t n = 0;

	while (*p && !is_word_byte(*p))
		p++;
	for (; is_word_byte(*p); p++) {
		*buf = egrow(*buf, cap, n + 2, 1);
		(*buf)[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	if (n)
		(*buf)[n] = 0;
	*pos = (size_t)(p - (const unsigned char *)s);
	return n;
}

static uint64_t
word_hash(const char *s, size_t n)
{
	return tc_hash_final(tc_hash_bytes(TC_HASH_INIT, s, n));
}

/* The slot of word s (length n, hash h): holding it, or the empty one where it would go. */
static size_t *
words_slot(const struct words *ws, const char *s, size_t n, uint64_t h)
{
	size_t mask = ws->nslot - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct word *w;
		if (!ws->slot[i])
			return &ws->slot[i];
		w = &ws->w[ws->slot[i] - 1];
		if (w->hash == h && strncmp(ws->text + w->off, s, n) == 0 && ws->text[w->off + n] == 0)
			return &ws->slot[i];
	}
}

/* The word s (length n), added with df 0 if new. */
static struct word *
words_add(struct words *ws, const char *s, size_t n)
{
	uint64_t h = word_hash(s, n);
	size_t *slot = words_slot(ws, s, n, h);
	struct word *w;

	if (*slot)
		return &ws->w[*slot - 1];
	if (2 * (ws->n + 1) > ws->nslot) {
		size_t *old = ws->slot, nold = ws->nslot;
		ws->nslot = 2 * nold;
		ws->slot = ecalloc(ws->nslot, sizeof *ws->slot);
		for (size_t i = 0; i < nold; i++)
			if (old[i]) {
				const struct word *o = &ws->w[old[i] - 1];
				*words_slot(ws, ws->text + o->off, strlen(ws->text + o->off), o->hash) =
				    old[i];
			}
		free(old);
		slot = words_slot(ws, s, n, h);
	}
	ws->w = egrow(ws->w, &ws->cap, ws->n + 1, sizeof *ws->w);
	ws->text = egrow(ws->text, &ws->tcap, ws->len + n + 1, 1);
	w = &ws->w[ws->n];
	*w = (struct word){.off = ws->len, .hash = h, .id = -1};
	memcpy(ws->text + ws->len, s, n + 1);
	ws->len += n + 1;
	*slot = ++ws->n;
	return w;
}

/* The feature id of word s (length n), or -1. */
static int
words_id(const struct words *ws, const char *s, size_t n)
{
	size_t *slot = words_slot(ws, s, n, word_hash(s, n));

	return *slot ? ws->w[*slot - 1].id : -1;
}

static void
words_release(struct words *ws)
{
	free(ws->w);
	free(ws->slot);
	free(ws->text);
}

/* A word as the vocabulary ranks it. */
struct rank {
	size_t df;
	const char *s;
	struct word *w;
};

/* For qsort: higher document frequency first, then strcmp order. */
static int
by_rank(const void *a, const void *b)
{
	const struct rank *x = a, *y = b;

	if (x->df != y->df)
		return x->df > y->df ? -1 : 1;
	return strcmp(x->s, y->s);
}

/* Count the words of the training documents into ws, with their document frequencies, and give
 * ids 0..F-1 to the first `features` of them in by_rank order (all, if fewer). Returns F. */
static int
vocab_build(struct words *ws, const struct task *t, int features)
{
	char *buf = NULL;
	size_t cap = 0, d = 0;
	struct rank *rk;
	int F;

	ws->nslot = 1024;
	ws->slot = ecalloc(ws->nslot, sizeof *ws->slot);
	for (size_t i = 0; i < t->n; i++) {
		if (t->ex[i].split != TASK_TRAIN)
			continue;
		d++;
		for (size_t pos = 0, n; (n = next_word(t->ex[i].text, &pos, &buf, &cap)) > 0;) {
			struct word *w = words_add(ws, buf, n);
			if (w->last != d) {
				w->last = d;
				w->df++;
			}
		}
	}
	free(buf);
	rk = emalloc((ws->n ? ws->n : 1) * sizeof *rk);
	for (size_t i = 0; i < ws->n; i++)
		rk[i] = (struct rank){ws->w[i].df, ws->text + ws->w[i].off, &ws->w[i]};
	qsort(rk, ws->n, sizeof *rk, by_rank);
	F = ws->n < (size_t)features ? (int)ws->n : features;
	for (int i = 0; i < F; i++)
		rk[i].w->id = i;
	free(rk);
	return F;
}

/* ---- Documents ---- */

/* The documents of one split: the sorted distinct feature ids of document d are
 * col[ptr[d] .. ptr[d+1]). */
struct docs {
	size_t n;
	size_t *ptr;  /* (n + 1) */
	int32_t *col; /* (ptr[n]) */
	int *label;   /* (n) */
};

static int
by_int32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* Encode the examples of t in split (in task order) as D, keeping the words that ws gives an id. */
static void
docs_encode(struct docs *D, const struct task *t, int split, const struct words *ws)
{
	char *buf = NULL;
	size_t cap = 0, ccap = 0, nnz = 0, d = 0;

	D->n = 0;
	for (size_t i = 0; i < t->n; i++)
		D->n += t->ex[i].split == split;
	D->ptr = emalloc((D->n + 1) * sizeof *D->ptr);
	D->label = emalloc((D->n ? D->n : 1) * sizeof *D->label);
	D->col = NULL;
	D->ptr[0] = 0;
	for (size_t i = 0; i < t->n; i++) {
		size_t start = nnz;
		if (t->ex[i].split != split)
			continue;
		for (size_t pos = 0, n; (n = next_word(t->ex[i].text, &pos, &buf, &cap)) > 0;) {
			int id = words_id(ws, buf, n);
			if (id < 0)
				continue;
			D->col = egrow(D->col, &ccap, nnz + 1, sizeof *D->col);
			D->col[nnz++] = id;
		}
		if (nnz > start) {
			size_t m = start + 1;
			qsort(D->col + start, nnz - start, sizeof *D->col, by_int32);
			for (size_t k = start + 1; k < nnz; k++)
				if (D->col[k] != D->col[m - 1])
					D->col[m++] = D->col[k];
			nnz = m;
		}
		D->label[d] = t->ex[i].label;
		D->ptr[++d] = nnz;
	}
	if (!D->col)
		D->col = emalloc(sizeof *D->col);
	free(buf);
}

static void
docs_release(struct docs *D)
{
	free(D->ptr);
	free(D->col);
	free(D->label);
}

/* fnz[f] = the nonzeros of D in features below f, f = 0..F. */
static size_t *
feature_offsets(const struct docs *D, int F)
{
	size_t nnz = D->ptr[D->n], *fnz = ecalloc((size_t)F + 1, sizeof *fnz);

	for (size_t k = 0; k < nnz; k++)
		fnz[D->col[k] + 1]++;
	for (int f = 0; f < F; f++)
		fnz[f + 1] += fnz[f];
	return fnz;
}

/* ---- The model ---- */

/* Hot loops are compiled for AVX-512, AVX2 and the baseline, chosen at load time (as in nn.c). No
 * version reorders a sum: -std=c11 leaves floating-point contraction off in GCC, and the dot
 * product's eight partial sums are written out. */
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* glibc's libmvec has vector versions of exp, which the softmax calls several lanes at a time. They
 * may differ from the scalar exp in the last bit, but which one runs depends on the machine only. */
#pragma omp declare simd notinbranch
extern double exp(double);

struct lr {
	const struct docs *tr; /* the training split */
	const size_t *fnz;     /* (F + 1) its feature_offsets */
	int F, L, nt;          /* features, labels, threads */
	size_t P;              /* parameters */
	float *r;              /* (N, L) */
	double *part;          /* (N / BLOCK_DOCS + 1, 1 + L) per block of documents: loss, bias gradient */
	double *dpart;         /* (P / BLOCK_PARAMS + 1) per block of parameters: a partial dot product */
	double *z;             /* (nt, L) logits, a row per thread */
};

/* z = b + the rows of W of the n features col: (L) <- (F, L), (L). */
CLONES static void
logits(double *restrict z, const double *restrict W, const double *restrict b, const int32_t *col, size_t n,
       int L)
{
	memcpy(z, b, (size_t)L * sizeof *z);
	for (size_t k = 0; k < n; k++) {
		const double *restrict w = W + (size_t)col[k] * L;
#pragma omp simd
		for (int c = 0; c < L; c++)
			z[c] += w[c];
	}
}

/* The sum of a[i] b[i] (times w[i] unless w is NULL) for i in [lo, hi), as eight interleaved partial
 * sums added in order. */
CLONES static double
dot_run(const double *restrict a, const double *restrict b, const double *restrict w, size_t lo, size_t hi)
{
	double p[8] = {0}, s = 0;
	size_t i = lo;

	if (w) {
		for (; i + 8 <= hi; i += 8)
			for (int j = 0; j < 8; j++)
				p[j] += a[i + j] * b[i + j] * w[i + j];
		for (int j = 0; i < hi; i++, j++)
			p[j] += a[i] * b[i] * w[i];
	} else {
		for (; i + 8 <= hi; i += 8)
			for (int j = 0; j < 8; j++)
				p[j] += a[i + j] * b[i + j];
		for (int j = 0; i < hi; i++, j++)
			p[j] += a[i] * b[i];
	}
	for (int j = 0; j < 8; j++)
		s += p[j];
	return s;
}

/* The sum of a[i] b[i] (times w[i] unless w is NULL) over n elements, in blocks of BLOCK_PARAMS
 * added in order. */
static double
wdot(const struct lr *m, const double *a, const double *b, const double *w, size_t n)
{
	size_t nblk = (n + BLOCK_PARAMS - 1) / BLOCK_PARAMS;
	double s = 0;

#pragma omp parallel for schedule(static) num_threads(m->nt)
	for (size_t k = 0; k < nblk; k++)
		m->dpart[k] = dot_run(a, b, w, k * BLOCK_PARAMS, k + 1 < nblk ? (k + 1) * BLOCK_PARAMS : n);
	for (size_t k = 0; k < nblk; k++)
		s += m->dpart[k];
	return s;
}

static double
dot(const struct lr *m, const double *a, const double *b)
{
	return wdot(m, a, b, NULL, m->P);
}

/* z = a x + b y for i in [lo, hi) (z = a x if y is NULL), or z = a w z if x is NULL; z may be x or y. */
CLONES static void
lin_run(double *z, double a, const double *x, double b, const double *y, const double *w, size_t lo,
        size_t hi)
{
	if (!x) {
#pragma omp simd
		for (size_t i = lo; i < hi; i++)
			z[i] *= a * w[i];
	} else if (!y) {
#pragma omp simd
		for (size_t i = lo; i < hi; i++)
			z[i] = a * x[i];
	} else {
#pragma omp simd
		for (size_t i = lo; i < hi; i++)
			z[i] = a * x[i] + b * y[i];
	}
}

/* z = a x + b y over the P parameters (z = a x if y is NULL); z may be x or y. Elementwise, so any
 * split among threads gives the same bits. */
static void
lin(const struct lr *m, double *z, double a, const double *x, double b, const double *y)
{
	size_t nblk = (m->P + BLOCK_PARAMS - 1) / BLOCK_PARAMS;

#pragma omp parallel for schedule(static) num_threads(m->nt)
	for (size_t k = 0; k < nblk; k++)
		lin_run(z, a, x, b, y, NULL, k * BLOCK_PARAMS, k + 1 < nblk ? (k + 1) * BLOCK_PARAMS : m->P);
}

/* z = a w z elementwise over the P parameters. */
static void
scale(const struct lr *m, double *z, double a, const double *w)
{
	size_t nblk = (m->P + BLOCK_PARAMS - 1) / BLOCK_PARAMS;

#pragma omp parallel for schedule(static) num_threads(m->nt)
	for (size_t k = 0; k < nblk; k++)
		lin_run(z, a, NULL, 0, NULL, w, k * BLOCK_PARAMS,
		        k + 1 < nblk ? (k + 1) * BLOCK_PARAMS : m->P);
}

/*
 * Training documents lo..hi-1 of D: r[d] = (softmax(z_d) - onehot(label_d)) / N for their logits
 * z_d under W and b; part[0] = the sum of their losses -log p(label), part[1 + c] the sum of their
 * r[d][c], both in document order. z is scratch (L).
 */
CLONES static void
forward_block(float *r, double *part, double *z, const struct docs *D, size_t lo, size_t hi, const double *W,
              const double *b, int L, double inv)
{
	memset(part, 0, (size_t)(1 + L) * sizeof *part);
	for (size_t d = lo; d < hi; d++) {
		float *rd = r + d * L;
		double mx, s = 0, zy;
		int y = D->label[d];

		logits(z, W, b, D->col + D->ptr[d], D->ptr[d + 1] - D->ptr[d], L);
		mx = z[0];
		for (int c = 1; c < L; c++)
			mx = z[c] > mx ? z[c] : mx;
		zy = z[y];
#pragma omp simd
		for (int c = 0; c < L; c++)
			z[c] = exp(z[c] - mx);
		for (int c = 0; c < L; c++)
			s += z[c];
		part[0] += log(s) + mx - zy;
		s = inv / s;
#pragma omp simd
		for (int c = 0; c < L; c++) {
			rd[c] = (float)(z[c] * s - (c == y) * inv);
			part[1 + c] += rd[c];
		}
	}
}

/*
 * Rows flo..fhi-1 of the weight gradient: g[f] = l2 W[f] + the sum of r[d] over the training
 * documents d holding f, in document order: (F, L) <- (F, L), (N, L). Every document is scanned and
 * its (sorted) features outside the range skipped: scattering in document order reads r once, in
 * order, where gathering each feature's documents would jump about it.
 */
CLONES static void
grad_rows(double *restrict g, const double *restrict W, const float *restrict r, const struct docs *D,
          int flo, int fhi, int L, double l2)
{
#pragma omp simd
	for (size_t i = (size_t)flo * L; i < (size_t)fhi * L; i++)
		g[i] = l2 * W[i];
	for (size_t d = 0; d < D->n; d++) {
		const float *restrict rd = r + d * L;
		for (size_t k = D->ptr[d]; k < D->ptr[d + 1] && D->col[k] < fhi; k++) {
			double *restrict gf = g + (size_t)D->col[k] * L;
			if (D->col[k] < flo)
				continue;
#pragma omp simd
			for (int c = 0; c < L; c++)
				gf[c] += rd[c];
		}
	}
}

/* The first feature of thread t's share of n of the training nonzeros (F for t = n), so that each
 * thread scatters about as much. */
static int
feature_split(const struct lr *m, int t, int n)
{
	size_t want = m->fnz[m->F] / (size_t)n * (size_t)t;
	int lo = 0, hi = m->F;

	if (t >= n)
		return m->F;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (m->fnz[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The objective at x, (1/N) sum of -log p(label) + (l2/2)|W|^2, and its gradient into g: (P) <- (P). */
static double
lr_eval(struct lr *m, double *g, const double *x, double l2)
{
	const struct docs *D = m->tr;
	int F = m->F, L = m->L;
	const double *W = x, *b = x + (size_t)F * L; /* (F, L), (L) */
	double *gb = g + (size_t)F * L;              /* (L) */
	size_t N = D->n, nblk = (N + BLOCK_DOCS - 1) / BLOCK_DOCS;
	double inv = 1.0 / (double)N, loss = 0;

#pragma omp parallel for schedule(static) num_threads(m->nt)
	for (size_t k = 0; k < nblk; k++)
		forward_block(m->r, m->part + k * (size_t)(1 + L), m->z + (size_t)omp_get_thread_num() * L, D,
		              k * BLOCK_DOCS, k + 1 < nblk ? (k + 1) * BLOCK_DOCS : N, W, b, L, inv);
	memset(gb, 0, (size_t)L * sizeof *gb);
	for (size_t k = 0; k < nblk; k++) {
		const double *part = m->part + k * (size_t)(1 + L);
		loss += part[0];
		for (int c = 0; c < L; c++)
			gb[c] += part[1 + c];
	}
#pragma omp parallel num_threads(m->nt)
	{
		int t = omp_get_thread_num(), n = omp_get_num_threads();
		grad_rows(g, W, m->r, D, feature_split(m, t, n), feature_split(m, t + 1, n), L, l2);
	}
	return loss * inv + 0.5 * l2 * wdot(m, W, W, NULL, (size_t)F * L);
}

/* The fraction of the documents of D that x labels right (the first of equal scores wins), 0 if D
 * is empty. */
static double
lr_accuracy(const struct lr *m, const struct docs *D, const double *x)
{
	int F = m->F, L = m->L;
	const double *W = x, *b = x + (size_t)F * L;
	size_t right = 0;

	if (D->n == 0)
		return 0;
#pragma omp parallel for schedule(static) num_threads(m->nt) reduction(+ : right)
	for (size_t d = 0; d < D->n; d++) {
		double *z = m->z + (size_t)omp_get_thread_num() * L;
		int best = 0;
		logits(z, W, b, D->col + D->ptr[d], D->ptr[d + 1] - D->ptr[d], L);
		for (int c = 1; c < L; c++)
			best = z[c] > z[best] ? c : best;
		right += best == D->label[d];
	}
	return (double)right / (double)D->n;
}

/*
 * The preconditioner pre (P) for l2: the inverse of an estimate of the Hessian's diagonal. For
 * weight (f, c) that diagonal is (1/N) sum over the documents d holding f of p_dc (1 - p_dc), plus
 * l2; taking p_dc (1 - p_dc) as 1/L, about its value at zero, gives df_f / (N L) + l2; for bias c,
 * 1/L.
 */
static void
precondition(double *pre, const struct lr *m, double l2)
{
	int F = m->F, L = m->L;

	for (int f = 0; f < F; f++) {
		double h = (double)(m->fnz[f + 1] - m->fnz[f]) / ((double)m->tr->n * L) + l2;
		for (int c = 0; c < L; c++)
			pre[(size_t)f * L + c] = 1 / h;
	}
	for (int c = 0; c < L; c++)
		pre[(size_t)F * L + c] = L;
}

/* L-BFGS's vectors (P each) and correction pairs. */
struct lbfgs {
	double *x, *g, *d, *xn, *gn;
	double *pre; /* the initial inverse Hessian is gamma diag(pre) */
	double *s[LBFGS_M], *y[LBFGS_M], rho[LBFGS_M], alpha[LBFGS_M];
};

/* d = -H g by the two-loop recursion over the npair pairs before head, H0 = gamma diag(pre) with
 * gamma = s.y / y.pre.y of the newest pair; without pairs, -diag(pre) g scaled to length 1. */
static void
lbfgs_direction(const struct lr *m, struct lbfgs *ls, const double *g, int npair, int head)
{
	double *d = ls->d;

	lin(m, d, -1, g, 0, NULL);
	for (int j = 0; j < npair; j++) {
		int i = (head - 1 - j + 2 * LBFGS_M) % LBFGS_M;
		ls->alpha[i] = ls->rho[i] * dot(m, ls->s[i], d);
		lin(m, d, 1, d, -ls->alpha[i], ls->y[i]);
	}
	if (npair > 0) {
		int i = (head - 1 + LBFGS_M) % LBFGS_M;
		scale(m, d, 1 / (ls->rho[i] * wdot(m, ls->y[i], ls->y[i], ls->pre, m->P)), ls->pre);
	} else {
		scale(m, d, 1, ls->pre);
		lin(m, d, 1 / sqrt(dot(m, d, d)), d, 0, NULL);
	}
	for (int j = npair - 1; j >= 0; j--) {
		int i = (head - 1 - j + 2 * LBFGS_M) % LBFGS_M;
		double beta = ls->rho[i] * dot(m, ls->y[i], d);
		lin(m, d, 1, d, ls->alpha[i] - beta, ls->s[i]);
	}
}

/*
 * Minimise the objective for l2 from zero by L-BFGS with a backtracking Armijo line search from the
 * unit step, in at most passes evaluations; ls->x (P) is the result. It stops early when |g| falls
 * to GRAD_TOL of its value at zero, or when a line search runs out of passes (keeping the last
 * point accepted).
 */
static void
lbfgs_run(struct lr *m, struct lbfgs *ls, double l2, int passes)
{
	double f, gtol, *tmp;
	int used = 1, npair = 0, head = 0; /* head: where the next pair goes */

	memset(ls->x, 0, m->P * sizeof *ls->x);
	precondition(ls->pre, m, l2);
	f = lr_eval(m, ls->g, ls->x, l2);
	gtol = GRAD_TOL * sqrt(dot(m, ls->g, ls->g));
	while (used < passes && sqrt(dot(m, ls->g, ls->g)) > gtol) {
		double gd, t = 1, fn = f, sy, yy;
		int accepted = 0;

		lbfgs_direction(m, ls, ls->g, npair, head);
		gd = dot(m, ls->g, ls->d);
		if (!(gd < 0)) { /* not a descent direction: forget the pairs */
			npair = 0;
			lbfgs_direction(m, ls, ls->g, 0, head);
			gd = dot(m, ls->g, ls->d);
		}
		while (used < passes && !accepted) {
			lin(m, ls->xn, 1, ls->x, t, ls->d);
			fn = lr_eval(m, ls->gn, ls->xn, l2);
			used++;
			accepted = fn <= f + ARMIJO * t * gd;
			t = accepted ? t : t / 2;
		}
		if (!accepted)
			break;
		lin(m, ls->s[head], t, ls->d, 0, NULL);
		lin(m, ls->y[head], 1, ls->gn, -1, ls->g);
		sy = dot(m, ls->s[head], ls->y[head]);
		yy = dot(m, ls->y[head], ls->y[head]);
		if (sy > 1e-12 * yy && yy > 0) { /* curvature as a convex objective has it */
			ls->rho[head] = 1 / sy;
			head = (head + 1) % LBFGS_M;
			npair += npair < LBFGS_M;
		}
		tmp = ls->x, ls->x = ls->xn, ls->xn = tmp;
		tmp = ls->g, ls->g = ls->gn, ls->gn = tmp;
		f = fn;
	}
}

/* ---- The run ---- */

/* 0 if the options are in range and t has at least 2 labels, a training and a validation example,
 * and every example a text, a label in range and a known split; else -1 with the first fault in err. */
static int
check_input(const struct task *t, const struct bow_options *o, struct tc_error *err)
{
	const char *name = t->name ? t->name : "";
	size_t ntrain = 0, nval = 0;

	if (o->features < 1)
		return tc_error_set(err, "option 'features': expected at least 1, got %d", o->features);
	if (o->epochs < 1)
		return tc_error_set(err, "option 'epochs': expected at least 1, got %d", o->epochs);
	if (o->threads < 0)
		return tc_error_set(err, "option 'threads': expected at least 0, got %d", o->threads);
	if (o->l2 && o->nl2 < 1)
		return tc_error_set(err, "option 'nl2': expected at least 1 L2 strength, got %d", o->nl2);
	for (int i = 0; o->l2 && i < o->nl2; i++)
		if (!isfinite(o->l2[i]) || o->l2[i] < 0)
			return tc_error_set(err,
			                    "option 'l2': candidate %d is %g, expected a finite number >= 0",
			                    i + 1, o->l2[i]);
	if (t->nlabels < 2)
		return tc_error_set(err, "task '%s': %d label%s (expected at least 2)", name, t->nlabels,
		                    t->nlabels == 1 ? "" : "s");
	for (size_t i = 0; i < t->n; i++) {
		const struct example *e = &t->ex[i];
		if (!e->text)
			return tc_error_set(err, "task '%s': example %zu: no text", name, i + 1);
		if (e->label < 0 || e->label >= t->nlabels)
			return tc_error_set(err, "task '%s': example %zu: label %d out of range 0..%d", name,
			                    i + 1, e->label, t->nlabels - 1);
		if (e->split != TASK_TRAIN && e->split != TASK_VALID && e->split != TASK_TEST)
			return tc_error_set(err, "task '%s': example %zu: unknown split %d", name, i + 1,
			                    e->split);
		ntrain += e->split == TASK_TRAIN;
		nval += e->split == TASK_VALID;
	}
	if (ntrain == 0)
		return tc_error_set(err, "task '%s': no training examples", name);
	if (nval == 0)
		return tc_error_set(err, "task '%s': no validation examples to choose the L2 strength on",
		                    name);
	return 0;
}

/* For qsort: stronger L2 first. */
static int
by_strength(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y) - (x > y);
}

int
bow_run(const struct task *t, const struct bow_options *o, struct bow_result *r, struct tc_error *err)
{
	struct bow_options def;
	struct words ws = {0};
	struct docs D[3];
	struct lr m;
	struct lbfgs ls;
	double t0 = omp_get_wtime(), *grid;
	int ngrid, L = t->nlabels;

	memset(r, 0, sizeof *r);
	if (!o) {
		bow_options_default(&def);
		o = &def;
	}
	if (check_input(t, o, err) < 0)
		return -1;
	ngrid = o->l2 ? o->nl2 : NDEFAULT_L2;
	grid = emalloc((size_t)ngrid * sizeof *grid);
	memcpy(grid, o->l2 ? o->l2 : default_l2, (size_t)ngrid * sizeof *grid);
	qsort(grid, (size_t)ngrid, sizeof *grid, by_strength);

	m = (struct lr){.tr = &D[TASK_TRAIN], .L = L};
	m.F = vocab_build(&ws, t, o->features);
	for (int s = TASK_TRAIN; s <= TASK_TEST; s++)
		docs_encode(&D[s], t, s, &ws);
	words_release(&ws);
	m.fnz = feature_offsets(&D[TASK_TRAIN], m.F);
	m.nt = o->threads > 0 ? o->threads : omp_get_max_threads();
	m.P = (size_t)m.F * L + L;
	m.r = emalloc(D[TASK_TRAIN].n * L * sizeof *m.r);
	m.part = emalloc((D[TASK_TRAIN].n / BLOCK_DOCS + 1) * (size_t)(1 + L) * sizeof *m.part);
	m.dpart = emalloc((m.P / BLOCK_PARAMS + 1) * sizeof *m.dpart);
	m.z = emalloc((size_t)m.nt * L * sizeof *m.z);
	{
		double **v[] = {&ls.x, &ls.g, &ls.d, &ls.xn, &ls.gn, &ls.pre};
		for (size_t i = 0; i < sizeof v / sizeof *v; i++)
			*v[i] = emalloc(m.P * sizeof(double));
		for (int i = 0; i < LBFGS_M; i++) {
			ls.s[i] = emalloc(m.P * sizeof(double));
			ls.y[i] = emalloc(m.P * sizeof(double));
		}
	}

	/* the figures of the best candidate so far are kept, not its model */
	r->val_accuracy = -1;
	for (int i = 0; i < ngrid; i++) {
		double val;
		if (i > 0 && grid[i] == grid[i - 1])
			continue;
		lbfgs_run(&m, &ls, grid[i], o->epochs);
		val = lr_accuracy(&m, &D[TASK_VALID], ls.x);
		if (val > r->val_accuracy) { /* ties: the earlier, stronger L2 stays */
			r->val_accuracy = val;
			r->test_accuracy = lr_accuracy(&m, &D[TASK_TEST], ls.x);
			r->train_accuracy = lr_accuracy(&m, &D[TASK_TRAIN], ls.x);
			r->l2 = grid[i];
		}
	}
	r->features = m.F;
	r->labels = L;
	r->ntrain = D[TASK_TRAIN].n;
	r->nval = D[TASK_VALID].n;
	r->ntest = D[TASK_TEST].n;

	free(ls.x);
	free(ls.g);
	free(ls.d);
	free(ls.xn);
	free(ls.gn);
	free(ls.pre);
	for (int i = 0; i < LBFGS_M; i++) {
		free(ls.s[i]);
		free(ls.y[i]);
	}
	free(m.r);
	free(m.part);
	free(m.dpart);
	free(m.z);
	free((void *)m.fnz);
	for (int s = TASK_TRAIN; s <= TASK_TEST; s++)
		docs_release(&D[s]);
	free(grid);
	r->wall_s = omp_get_wtime() - t0;
	return 0;
}
