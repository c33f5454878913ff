/*
 * sweep.c: exhaustive accelerator search for one model. The grid is cut into chunks that threads
 * take in turn; each thread keeps its own non-dominated archive (merged with every chunk through
 * the divide-and-conquer ranking of pareto.c, so it never grows quadratically) or its own K best;
 * the archives merge at the end. The result does not depend on the number of threads.
 *
 * Workloads depend on the batch only, so each thread builds one per batch it meets and reuses it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "jsonl.h"
#include "pareto.h"
#include "sweep.h"

#define SWEEP_CHUNK 16384
#define MAX_BATCHES 16

struct point {
	unsigned long long idx;
	double obj[3];
};

struct archive {
	struct point *p;
	size_t n, cap;
};

/* Keep only the non-dominated points of a (ties kept); -1 on allocation failure. */
static int
archive_reduce(struct archive *a)
{
	double *v;
	int *rank;
	size_t k = 0;

	if (a->n < 2)
		return 0;
	v = malloc(sizeof *v * a->n * 3);
	rank = malloc(sizeof *rank * a->n);
	if (!v || !rank || a->n > 100000000) {
		free(v);
		free(rank);
		return -1;
	}
	for (size_t i = 0; i < a->n; i++)
		memcpy(v + 3 * i, a->p[i].obj, sizeof a->p[i].obj);
	if (pareto_rank(rank, v, a->n, 3) < 0) {
		free(v);
		free(rank);
		return -1;
	}
	for (size_t i = 0; i < a->n; i++)
		if (rank[i] == 0)
			a->p[k++] = a->p[i];
	a->n = k;
	free(v);
	free(rank);
	return 0;
}

static double
score(const struct point *p, const double *w)
{
	return w[0] * log(p->obj[0]) + w[1] * log(p->obj[1]) + w[2] * log(p->obj[2]);
}

static const double *sort_w;

static int
by_score(const void *a, const void *b)
{
	const struct point *x = a, *y = b;
	double sx = score(x, sort_w), sy = score(y, sort_w);

	if (sx != sy)
		return sx < sy ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static int
by_index(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Keep the K best of a by score, ties to the lower index. */
static void
archive_top(struct archive *a, long k, const double *w)
{
	sort_w = w;
	qsort(a->p, a->n, sizeof *a->p, by_score);
	if (a->n > (size_t)k)
		a->n = (size_t)k;
}

struct wcache {
	long batch[MAX_BATCHES];
	struct workload w[MAX_BATCHES];
	int n;
};

static const struct workload *
workload_for(struct wcache *wc, const struct model *m, long batch, const struct simrec_options *o,
             struct tc_error *err)
{
	struct wl_options wo;

	for (int i = 0; i < wc->n; i++)
		if (wc->batch[i] == batch)
			return &wc->w[i];
	if (wc->n == MAX_BATCHES)
		return tc_error_set(err, "more than %d batch sizes in the space", MAX_BATCHES), NULL;
	wo = (struct wl_options){
	    batch, o->seq, o->vocab, o->classes, o->training, o->prof->opt_state, o->prof->opt_ops, 0};
	if (workload_build(&wc->w[wc->n], m, &wo, err) < 0)
		return NULL;
	wc->batch[wc->n] = batch;
	return &wc->w[wc->n++];
}

/*
 * What a thread reuses between accelerators of the grid: the plan (per-operation costs) while the
 * compute configuration stays, and a memory plan per workload and buffer sizes (there are 375 in
 * the AccelTran space: 3 batches x 125 buffer combinations); each accelerator then costs one
 * timing pass over the plans.
 */
#define MCACHE_SLOTS 1024

struct mentry {
	const struct workload *w;
	double buf[BUF_COUNT];
	struct sim_mplan *mp;
	struct mentry *next;
};

#define TCACHE 4

struct reuse {
	const struct workload *w;
	struct sim_plan *plan;
	unsigned gen; /* bumped with every new plan */
	struct mentry *slot[MCACHE_SLOTS], *last;
	/* timings are the same for memories of equal bandwidth: only their energy differs */
	struct {
		unsigned gen;
		const struct sim_mplan *mp;
		double bw;
		struct sim_result r;
	} t[TCACHE];
	int tnext;
};

static struct sim_mplan *
mplan_for(struct reuse *ru, const struct workload *w, const struct hw_config *c, const struct sim_options *so,
          struct tc_error *err)
{
	uint64_t h = tc_hash_bytes(TC_HASH_INIT, &w, sizeof w);
	struct mentry *e;

	if (ru->last && ru->last->w == w && sim_mplan_fits(ru->last->mp, c))
		return ru->last->mp;
	h = tc_hash_final(tc_hash_bytes(h, c->buf_bits, sizeof c->buf_bits)) % MCACHE_SLOTS;
	for (e = ru->slot[h]; e; e = e->next)
		if (e->w == w && sim_mplan_fits(e->mp, c))
			return (ru->last = e)->mp;
	e = emalloc(sizeof *e);
	e->w = w;
	memcpy(e->buf, c->buf_bits, sizeof e->buf);
	if (!(e->mp = sim_mplan_new(w, c, so, err))) {
		free(e);
		return NULL;
	}
	e->next = ru->slot[h];
	ru->slot[h] = e;
	return (ru->last = e)->mp;
}

static void
reuse_release(struct reuse *ru)
{
	sim_plan_free(ru->plan);
	for (int h = 0; h < MCACHE_SLOTS; h++)
		for (struct mentry *e = ru->slot[h], *n; e; e = n) {
			n = e->next;
			sim_mplan_free(e->mp);
			free(e);
		}
}

static int
evaluate(struct reuse *ru, struct sim_result *r, const struct workload *w, const struct hw_config *c,
         const struct sim_options *so, struct tc_error *err)
{
	struct sim_mplan *mp;

	if (!ru->plan || ru->w != w || !sim_plan_fits(ru->plan, c)) {
		sim_plan_free(ru->plan);
		if (!(ru->plan = sim_plan_new(w, c, so, err)))
			return -1;
		ru->w = w;
		ru->gen++;
	}
	if (!(mp = mplan_for(ru, w, c, so, err)))
		return -1;
	for (int k = 0; k < TCACHE; k++)
		if (ru->t[k].gen == ru->gen && ru->t[k].mp == mp && ru->t[k].bw == c->mem_bits_per_cycle) {
			*r = ru->t[k].r;
			sim_energy(r, c);
			return 0;
		}
	if (sim_time(r, ru->plan, mp, c, err) < 0)
		return -1;
	ru->t[ru->tnext].gen = ru->gen;
	ru->t[ru->tnext].mp = mp;
	ru->t[ru->tnext].bw = c->mem_bits_per_cycle;
	ru->t[ru->tnext].r = *r;
	ru->tnext = (ru->tnext + 1) % TCACHE;
	return 0;
}

int
sweep_model(const json_t *rec, const struct simrec_options *o, const struct sweep_options *so,
            unsigned long long **kept, size_t *nkept, struct sweep_stats *st, struct tc_error *err)
{
	unsigned long long total = accel_space_size(o->aspace),
	                   nchunks = (total + SWEEP_CHUNK - 1) / SWEEP_CHUNK;
	struct archive *arch;
	struct model m;
	double sp[3];
	int src[3], nth = so->threads > 0 ? so->threads : 1, failed = 0;
	struct tc_error terr = {{0}};
	double feasible = 0;

	memset(st, 0, sizeof *st);
	if (model_from_json(&m, json_object_get(rec, "model"), o->mspace, err) < 0 ||
	    simrec_sparsity(sp, src, rec, o, err) < 0)
		return -1;
	arch = ecalloc((size_t)nth, sizeof *arch);
#pragma omp parallel num_threads(nth) reduction(+ : feasible)
	{
		struct wcache wc = {{0}, {{0}}, 0};
		struct reuse ru;
		int tid = 0;
#ifdef _OPENMP
		tid = omp_get_thread_num();
#endif
		struct archive *a = &arch[tid];
		memset(&ru, 0, sizeof ru);
#pragma omp for schedule(dynamic, 1)
		for (unsigned long long ch = 0; ch < nchunks; ch++) {
			unsigned long long lo = ch * SWEEP_CHUNK,
			                   hi = lo + SWEEP_CHUNK < total ? lo + SWEEP_CHUNK : total;
			struct tc_error e;
			int bad;
#pragma omp atomic read
			bad = failed;
			if (bad)
				continue;
			for (unsigned long long i = lo; i < hi; i++) {
				struct accel acc;
				struct hw_config c;
				struct sim_options sopt;
				struct sim_result r;
				const struct workload *w;
				accel_grid_point(&acc, o->aspace, i);
				if (hw_config_init(&c, o->prof, &acc, o->training, &e) < 0 ||
				    !(w = workload_for(&wc, &m, o->batch > 0 ? o->batch : acc.batch, o,
				                       &e))) {
#pragma omp critical
					{
						failed = 1;
						terr = e;
					}
					break;
				}
				sopt.fidelity = SIM_FAST;
				memcpy(sopt.sparsity, sp, sizeof sp);
				snprintf(sopt.dataflow, sizeof sopt.dataflow, "%s", acc.dataflow);
				sopt.trace = NULL;
				sopt.trace_ctx = NULL;
				if (evaluate(&ru, &r, w, &c, &sopt, &e) < 0) {
#pragma omp critical
					{
						failed = 1;
						terr = e;
					}
					break;
				}
				if (!r.feasible)
					continue;
				feasible += 1;
				a->p = egrow(a->p, &a->cap, a->n + 1, sizeof *a->p);
				a->p[a->n++] = (struct point){i, {r.latency_s, r.energy_j, c.area.total}};
			}
			if (so->top > 0)
				archive_top(a, so->top, so->weights);
			else if (archive_reduce(a) < 0) {
#pragma omp critical
				{
					failed = 1;
					tc_error_set(&terr, "out of memory in the Pareto archive");
				}
			}
		}
		reuse_release(&ru);
		for (int i = 0; i < wc.n; i++)
			workload_release(&wc.w[i]);
	}
	if (failed) {
		for (int t = 0; t < nth; t++)
			free(arch[t].p);
		free(arch);
		*err = terr;
		return -1;
	}
	for (int t = 1; t < nth; t++) {
		arch[0].p = egrow(arch[0].p, &arch[0].cap, arch[0].n + arch[t].n, sizeof *arch[0].p);
		if (arch[t].n)
			memcpy(arch[0].p + arch[0].n, arch[t].p, sizeof *arch[t].p * arch[t].n);
		arch[0].n += arch[t].n;
		free(arch[t].p);
	}
	if (so->top > 0) {
		archive_top(&arch[0], so->top, so->weights);
	} else {
		if (archive_reduce(&arch[0]) < 0) {
			free(arch[0].p);
			free(arch);
			return tc_error_set(err, "out of memory in the Pareto archive");
		}
		qsort(arch[0].p, arch[0].n, sizeof *arch[0].p, by_index);
	}
	*nkept = arch[0].n;
	*kept = emalloc(sizeof **kept * (arch[0].n + 1));
	for (size_t i = 0; i < arch[0].n; i++)
		(*kept)[i] = arch[0].p[i].idx;
	st->evaluated = (double)total;
	st->feasible = feasible;
	st->kept = (double)arch[0].n;
	free(arch[0].p);
	free(arch);
	return 0;
}
