/*
 * sim.c: ELECTOR's two fidelities over one cost model and one scheduler.
 *
 * Cost model of a tile (shared). A tile of an operation is its share of the (b, i, j, k) loops:
 * t_b x t_x x t_y x t_x multiply-accumulates for a matrix product (smaller at the edges). On a MAC
 * lane it takes
 *     fetch + compute + write-back cycles, one after the other:
 *     fetch   = bits of the operands it does not reuse from the previous tile of its job (each
 *               operand's nonzero words plus its 1-bit-per-element mask; a partial sum read back
 *               dense) over the lane FIFO's width (32 words a cycle);
 *     compute = effectual products over the lane's multipliers: the pre-compute sparsity module
 *               skips every product with a zero operand, so a matrix product costs
 *               mults x density(A) x density(B) / macs_per_lane;
 *     write   = the result (compressed by the post-compute sparsity module) or a partial sum, when
 *               the job leaves the output tile.
 * Softmax tiles (t_x x t_y) take elements x density cycles of a softmax module, layer-norm tiles
 * t_b x (t_x + t_y) x density cycles of a layer-norm module, elementwise tiles
 * elements x density x operations / macs_per_lane cycles of a MAC lane; all of them fetch and
 * write through the same FIFO width. Energy: every unit is charged its dynamic and leakage power
 * for its compute cycles only (idle units are power-gated); the FIFO for fetch and write cycles;
 * the PE's dataflow and DMA modules one cycle per tile; buffer accesses per 64-element block
 * (0.08 sqrt(MB) nJ and alike), masks in the mask buffer; main memory per 64 words moved; buffer
 * leakage for the whole run, since buffers hold data throughout.
 *
 * Jobs. An operation of T tiles on a class of U units is split into J = min(T, U) jobs, each a
 * contiguous run of the loop nest in the dataflow's order, so the loop order decides which
 * operand consecutive tiles share: b-i-j-k keeps the output in the lane and refetches both
 * operands, b-i-k-j reuses A across j and spills partial sums, and so on for all 24 orders.
 *
 * Schedule (shared). Blocks run in order; the streams of a block (the heads of a layer) run
 * concurrently; an operation starts when its stream reaches it, its inputs are on chip and room
 * for its result is made; its jobs go to free units of its class as they free up. One channel
 * moves tensors between main memory and the buffers (loads of weights and of spilled data,
 * prefetched in program order; spills of evicted data still needed; tensors too large for their
 * buffer streamed through; optimizer state read and written). Eviction picks the tensor whose
 * next use is farthest (the schedule is static, so the compiler knows it).
 *
 * SIM_CYCLE costs every tile of every job exactly (edge tiles, wrap-arounds, job boundaries) and
 * simulates every job. SIM_FAST counts fetches, partial sums and compute in closed form per
 * operation (tile populations by edge class, reuse from the loop order's carry structure) and
 * simulates each operation's jobs as equal: O(operations) instead of O(tiles).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const char *const sim_part_names[E_COUNT] = {
	"mac_lanes", "sparsity", "stochastic_rounding", "fifo", "softmax", "layernorm", "control",
	"activation_buffer", "weight_buffer", "mask_buffer", "main_memory"};

const char *const sim_stall_names[ST_COUNT] = {"buffer_busy",	   "mask_buffer_busy", "buffer_full",
					       "mask_buffer_full", "producer",	       "compute_busy",
					       "data_not_in_buffer"};

int
sim_valid_dataflow(const char *s)
{
	int seen = 0;

	if (strlen(s) != 4)
		return 0;
	for (int i = 0; i < 4; i++) {
		const char *p = strchr("bijk", s[i]);
		if (!s[i] || !p || seen & (1 << (p - "bijk")))
			return 0;
		seen |= 1 << (p - "bijk");
	}
	return 1;
}

/* ---- run constants ---- */

struct run {
	const struct workload *w;
	const struct hw_config *c;
	const struct sim_options *o;
	struct sim_result *r;
	double dens[WL_NCLASS];
	int order[4]; /* dim of each loop level, outermost first */
	double wbits, mbits, fifo, block;
	const double (*size)[BUF_COUNT]; /* bits each tensor occupies in each buffer */
};

static int
home(int cls)
{
	return cls == WL_ACT || cls == WL_GRAD ? BUF_ACT : BUF_WEIGHT;
}

static int
masked(int cls)
{
	return cls != WL_STATE && cls != WL_CONST;
}

/* Bits of e elements of class cls in a buffer or in main memory: nonzero words and mask. */
static double
data_bits(const struct run *x, double e, int cls)
{
	return e * x->dens[cls] * x->wbits;
}

static double
mask_bits(const struct run *x, double e, int cls)
{
	return masked(cls) ? e * x->mbits : 0;
}

/* ---- geometry ---- */

struct geom {
	const struct wl_op *op;
	long ts[4], cnt[4], edge[4];
	int nlev, lev[4];    /* non-trivial loop levels, outermost first */
	long T;
	double taps;         /* convolution taps inside a tile, else 1 */
	int clsA, clsB, clsO;
	double dA, dB, dO;
	unsigned dep[3];     /* A, B, out: dim masks */
	int taps_on[3];      /* the operand has a taps axis */
	unsigned red;        /* reduction dims: loop dims the output does not depend on */
};

static void
geom_init(struct geom *g, const struct run *x, const struct wl_op *op)
{
	const struct hw_config *c = x->c;
	long len[4];

	memset(g, 0, sizeof *g);
	g->op = op;
	len[0] = op->bt, len[1] = op->m, len[2] = op->n, len[3] = op->k_tiled ? op->k : 1;
	g->ts[0] = op->unit == UNIT_SOFTMAX ? 1 : c->tile_b;
	g->ts[1] = c->tile_x, g->ts[2] = c->tile_y, g->ts[3] = c->tile_x;
	if (op->kind == WL_UPDATE)
		g->ts[2] = (long)c->tile_x * c->tile_y;
	g->taps = op->kind == WL_CONV ? (double)op->k : 1;
	g->T = 1;
	for (int d = 0; d < 4; d++) {
		g->cnt[d] = len[d] > 0 ? (len[d] + g->ts[d] - 1) / g->ts[d] : 1;
		g->edge[d] = len[d] - (g->cnt[d] - 1) * g->ts[d];
		if (g->edge[d] < 1)
			g->edge[d] = 1;
		g->T *= g->cnt[d];
	}
	for (int l = 0; l < 4; l++)
		if (g->cnt[x->order[l]] > 1)
			g->lev[g->nlev++] = x->order[l];
	g->clsA = op->a >= 0 ? x->w->t[op->a].cls : WL_ACT;
	g->clsB = op->b >= 0 ? x->w->t[op->b].cls : WL_ACT;
	g->clsO = op->out >= 0 ? x->w->t[op->out].cls : WL_ACT;
	g->dA = x->dens[g->clsA];
	g->dB = op->b >= 0 ? x->dens[g->clsB] : 1;
	g->dO = x->dens[g->clsO];
	g->dep[0] = op->dep_a, g->dep[1] = op->dep_b, g->dep[2] = op->dep_out;
	if (op->kind == WL_CONV)
		for (int i = 0; i < 3; i++)
			g->taps_on[i] = g->dep[i] != (unsigned)op->dep_a;
	g->red = ~(unsigned)op->dep_out & 15u;
	for (int d = 0; d < 4; d++)
		if (g->cnt[d] == 1)
			g->red &= ~(1u << d);
}

/* Elements of an operand (0 A, 1 B, 2 out) in a tile with extents e. */
static double
operand_elems(const struct geom *g, int which, const long *e)
{
	double n = g->taps_on[which] ? g->taps : 1;

	for (int d = 0; d < 4; d++)
		if (g->dep[which] & (1u << d))
			n *= (double)e[d];
	return n;
}

/* ---- accumulators ---- */

struct acc {
	double comp;             /* unit-cycles of compute */
	double fifo;             /* lane FIFO cycles, fetch and write-back */
	double tiles;            /* tiles dispatched: a cycle of the PE's dataflow and DMA modules each */
	double blocks[BUF_COUNT]; /* 64-element block accesses of each buffer */
	double occupied;         /* unit-cycles including fetch and write */
	double buf_r, buf_w, macs;
};

/* Buffer access energy and traffic of moving e elements of class cls (dense partial sums when
 * partial is set), counted n times. */
static void
charge_access(const struct run *x, struct acc *a, double e, int cls, int partial, int write, double n)
{
	double bits, blocks;

	if (partial) {
		bits = e * x->wbits;
		blocks = e / x->block;
		a->blocks[home(cls)] += blocks * n;
	} else {
		bits = data_bits(x, e, cls) + mask_bits(x, e, cls);
		a->blocks[home(cls)] += e * x->dens[cls] / x->block * n;
		if (masked(cls))
			a->blocks[BUF_MASK] += e / x->block * n;
	}
	if (write)
		a->buf_w += bits * n;
	else
		a->buf_r += bits * n;
}

/* Compute cycles of one tile with extents e on its unit, and the MACs it performs. */
static double
tile_compute(const struct run *x, const struct geom *g, const long *e, double *macs)
{
	const struct hw_config *c = x->c;
	const struct wl_op *op = g->op;
	double elems = (double)e[0] * e[1] * e[2], v;

	switch (op->kind) {
	case WL_MATMUL:
	case WL_CONV:
		v = elems * e[3] * g->taps * g->dA * g->dB;
		*macs = v;
		return ceil(v / c->macs - 1e-9);
	case WL_ELEM:
		*macs = elems * g->dA * op->work;
		return ceil(*macs / c->macs - 1e-9);
	case WL_UPDATE:
		*macs = elems * op->work;
		return ceil(*macs / c->macs - 1e-9);
	case WL_SOFTMAX:
		*macs = 0;
		return ceil(elems * g->dA / x->c->prof->softmax_rate - 1e-9);
	default:
		*macs = 0;
		return ceil((double)e[0] * (e[1] + e[2]) * g->dA / x->c->prof->layernorm_rate - 1e-9);
	}
}

/* Count a tile's compute and control activity (n identical tiles). */
static void
charge_compute(const struct run *x, const struct geom *g, struct acc *a, double cycles, double macs, double n)
{
	(void)x;
	(void)g;
	a->comp += cycles * n;
	a->tiles += n;
	a->macs += macs * n;
}

static double
fifo_cycles(const struct run *x, struct acc *a, const struct geom *g, double bits, double n)
{
	double cyc = ceil(bits / x->fifo - 1e-9);

	if (g->op->unit == UNIT_MAC)
		a->fifo += cyc * n;
	return cyc;
}

/* ---- cycle fidelity: one job, tile by tile ---- */

/*
 * Cost of the job covering positions [p0, p1) of g's loop nest: returns the cycles it occupies its
 * unit and adds its energy and traffic to a.
 */
static double
job_cost(const struct run *x, const struct geom *g, long p0, long p1, struct acc *a)
{
	const struct wl_op *op = g->op;
	long dig[4] = {0}, idx[4] = {0}, e[4], pe[4] = {0}, pext[4] = {0}, rem = p0;
	double total = 0;
	int open = 0;

	/* decode p0 (level 0 outermost) */
	for (int l = g->nlev - 1; l >= 0; l--) {
		dig[l] = rem % g->cnt[g->lev[l]];
		rem /= g->cnt[g->lev[l]];
	}
	for (long p = p0; p < p1; p++) {
		unsigned changed = 0;
		double fetch = 0, macs, comp;
		for (int d = 0; d < 4; d++)
			idx[d] = 0;
		for (int l = 0; l < g->nlev; l++)
			idx[g->lev[l]] = dig[l];
		for (int d = 0; d < 4; d++) {
			e[d] = idx[d] == g->cnt[d] - 1 ? g->edge[d] : g->ts[d];
			if (p == p0 || idx[d] != pe[d])
				changed |= 1u << d;
		}
		if (p == p0)
			changed = 15u;
		/* leave the previous output tile */
		if (open && (changed & g->dep[2])) {
			int final = 1;
			for (int d = 0; d < 4; d++)
				if ((g->red & (1u << d)) && pe[d] != g->cnt[d] - 1)
					final = 0;
			total += fifo_cycles(x, a, g, final ? data_bits(x, operand_elems(g, 2, pext), g->clsO) +
								 mask_bits(x, operand_elems(g, 2, pext), g->clsO)
							    : operand_elems(g, 2, pext) * x->wbits,
					     1);
			charge_access(x, a, operand_elems(g, 2, pext), g->clsO, !final, 1, 1);
			open = 0;
		}
		if (!open) {
			int first = 1;
			for (int d = 0; d < 4; d++)
				if ((g->red & (1u << d)) && idx[d] != 0)
					first = 0;
			if (!first) {
				fetch += operand_elems(g, 2, e) * x->wbits;
				charge_access(x, a, operand_elems(g, 2, e), g->clsO, 1, 0, 1);
			}
			open = 1;
		}
		if (op->a >= 0 && (changed & g->dep[0])) {
			double n = operand_elems(g, 0, e);
			fetch += data_bits(x, n, g->clsA) + mask_bits(x, n, g->clsA);
			charge_access(x, a, n, g->clsA, 0, 0, 1);
		}
		if (op->b >= 0 && (changed & g->dep[1])) {
			double n = operand_elems(g, 1, e);
			fetch += data_bits(x, n, g->clsB) + mask_bits(x, n, g->clsB);
			charge_access(x, a, n, g->clsB, 0, 0, 1);
		}
		comp = tile_compute(x, g, e, &macs);
		charge_compute(x, g, a, comp, macs, 1);
		total += fifo_cycles(x, a, g, fetch, 1) + comp;
		memcpy(pe, idx, sizeof pe);
		memcpy(pext, e, sizeof pext);
		/* advance the odometer */
		for (int l = g->nlev - 1; l >= 0; l--) {
			if (++dig[l] < g->cnt[g->lev[l]])
				break;
			dig[l] = 0;
		}
	}
	if (open) {
		int final = 1;
		for (int d = 0; d < 4; d++)
			if ((g->red & (1u << d)) && pe[d] != g->cnt[d] - 1)
				final = 0;
		total += fifo_cycles(x, a, g, final ? data_bits(x, operand_elems(g, 2, pext), g->clsO) +
							 mask_bits(x, operand_elems(g, 2, pext), g->clsO)
						    : operand_elems(g, 2, pext) * x->wbits,
				     1);
		charge_access(x, a, operand_elems(g, 2, pext), g->clsO, !final, 1, 1);
	}
	a->occupied += total;
	return total;
}

/* ---- fast fidelity: one operation in closed form ---- */

/* R: positions between changes of an operand that depends on the dims in mask = the product of
 * the counts of the innermost levels it does not depend on. */
static double
run_length(const struct geom *g, unsigned mask)
{
	double r = 1;

	for (int l = g->nlev - 1; l >= 0 && !(mask & (1u << g->lev[l])); l--)
		r *= (double)g->cnt[g->lev[l]];
	return r;
}

/*
 * Totals of an operation split into J jobs: adds energy and traffic to a and returns the
 * unit-cycles occupied; *longest receives the duration of the longest job.
 */
static double
op_cost_fast(const struct run *x, const struct geom *g, long J, struct acc *a, double *longest)
{
	const struct wl_op *op = g->op;
	double T = (double)g->T, RA = run_length(g, g->dep[0]), RB = run_length(g, g->dep[1]);
	double RO = run_length(g, g->dep[2]), O = 1, splits = (double)(J - 1), sum_e[3] = {0, 0, 0};
	double fetchA, fetchB, visits, finals, partials, comp_total = 0, occ;
	double nA = 0, nB = 0, nboth, bitsA, bitsB, bitsP, bitsF, cyc_fetch;

	/* compute: tile populations by edge class (a dim whose last tile is full has one class) */
	for (int cls = 0; cls < 16; cls++) {
		long e[4];
		double count = 1, macs, comp;
		int skip = 0;
		for (int d = 0; d < 4 && !skip; d++) {
			int is_edge = (cls >> d) & 1, uniform = g->edge[d] == g->ts[d];
			if (uniform) {
				if (is_edge)
					skip = 1;
				count *= (double)g->cnt[d];
				e[d] = g->ts[d];
			} else {
				if (!is_edge && g->cnt[d] == 1)
					skip = 1;
				count *= is_edge ? 1 : (double)(g->cnt[d] - 1);
				e[d] = is_edge ? g->edge[d] : g->ts[d];
			}
		}
		if (skip)
			continue;
		comp = tile_compute(x, g, e, &macs);
		charge_compute(x, g, a, comp, macs, count);
		comp_total += comp * count;
	}
	/* elements summed over all tiles: the operand's dims contribute their lengths, the others
	 * their tile counts */
	for (int w = 0; w < 3; w++) {
		double n = g->taps_on[w] ? g->taps : 1;
		for (int d = 0; d < 4; d++)
			n *= g->dep[w] & (1u << d) ? (double)((g->cnt[d] - 1) * g->ts[d] + g->edge[d]) : (double)g->cnt[d];
		sum_e[w] = n;
	}
	for (int d = 0; d < 4; d++)
		if (g->dep[2] & (1u << d))
			O *= (double)g->cnt[d];
	/* fetches: one every run of positions that keep the operand, one more after a job boundary */
	fetchA = op->a >= 0 ? T / RA + splits * (1 - 1 / RA) : 0;
	fetchB = op->b >= 0 ? T / RB + splits * (1 - 1 / RB) : 0;
	visits = T / RO + splits * (1 - 1 / RO);
	finals = O;
	partials = visits - finals; /* each extra visit writes one partial and reads one back */
	/* average elements per fetch: operand elements over the tiles, weighted alike */
	bitsA = fetchA > 0 ? sum_e[0] / T : 0;
	bitsB = fetchB > 0 ? sum_e[1] / T : 0;
	if (op->a >= 0)
		charge_access(x, a, bitsA, g->clsA, 0, 0, fetchA);
	if (op->b >= 0)
		charge_access(x, a, bitsB, g->clsB, 0, 0, fetchB);
	charge_access(x, a, sum_e[2] / T, g->clsO, 1, 0, partials);
	charge_access(x, a, sum_e[2] / T, g->clsO, 1, 1, partials);
	charge_access(x, a, sum_e[2] / T, g->clsO, 0, 1, finals);
	/* fetch cycles, rounded per tile as the FIFO moves whole cycles: tiles that fetch both operands,
	 * one of them, or a partial sum */
	bitsA = data_bits(x, bitsA, g->clsA) + mask_bits(x, bitsA, g->clsA);
	bitsB = data_bits(x, bitsB, g->clsB) + mask_bits(x, bitsB, g->clsB);
	bitsP = sum_e[2] / T * x->wbits;
	bitsF = data_bits(x, sum_e[2] / T, g->clsO) + mask_bits(x, sum_e[2] / T, g->clsO);
	nboth = fmin(fetchA, fetchB);
	if (op->a >= 0 && op->b >= 0) {
		nA = fetchA - nboth;
		nB = fetchB - nboth;
	} else {
		nboth = 0;
		nA = fetchA;
		nB = fetchB;
	}
	cyc_fetch = 0;
	cyc_fetch += fifo_cycles(x, a, g, bitsA + bitsB, nboth) * nboth;
	cyc_fetch += fifo_cycles(x, a, g, bitsA, nA) * nA;
	cyc_fetch += fifo_cycles(x, a, g, bitsB, nB) * nB;
	cyc_fetch += fifo_cycles(x, a, g, bitsP, partials) * partials * 2;
	cyc_fetch += fifo_cycles(x, a, g, bitsF, finals) * finals;
	occ = comp_total + cyc_fetch;
	a->occupied += occ;
	*longest = occ / (double)J * ceil(T / (double)J) / (T / (double)J);
	return occ;
}

/* Per-operation costs that depend on the workload and the accelerator's compute configuration
 * only: geometry, job count, and at the fast fidelity the job duration and the activity. */
struct op_plan {
	struct geom g;
	long jobs;
	double dur_fast;
	struct acc acc;
};

struct sim_plan {
	const struct workload *w;
	double (*size)[BUF_COUNT];   /* bits each tensor occupies in each buffer */
	int *rd, *rd_start;          /* readers of each tensor, in op order (CSR) */
	struct sim_options o;
	struct hw_config c;          /* the configuration planned for (its compute part is what counts) */
	struct op_plan *op;
};

/* ---- schedule ---- */

enum { T_OUT_OF_CHIP = 0, T_LOADING, T_RESIDENT, T_STREAMED };

struct tstate {
	int state;
	int in_mem;      /* a copy is in main memory */
	int pins;        /* running ops reading or writing it */
	int cursor;      /* index into its reader list of the next read */
	unsigned wanted; /* equal to sched.epoch: an input of an op a stream is waiting on */
	int slot;        /* position in sched.resident while on chip */
	double bits[BUF_COUNT];
};

struct ostate {
	int started, done;
	long jobs, dispatched, running;
	long streamed;   /* bitmask over in[]: inputs streamed from main memory for this op */
	int out_streamed;
	int wait_reason;  /* stall category while the op waits for its transfers */
	double start, end, xfer_end;
	struct acc acc;  /* cycle fidelity: the activity of the jobs run so far */
};

struct event {
	double time;
	int kind;        /* 0 jobs end, 1 transfer end */
	int op;          /* op of the jobs, or tensor of the transfer (-1: a write or stream) */
	long count;
};

struct xfer {
	int tensor;      /* tensor loaded, or -1 */
	int op;          /* op waiting for this stream transfer, or -1 */
	double bits, mask;
};

struct sched {
	struct run *x;
	const struct op_plan *plan;   /* per-op costs */
	const struct workload *w;
	struct tstate *ts;
	struct ostate *os;
	const int *rd, *rd_start;     /* readers of tensor t: rd[rd_start[t] .. rd_start[t + 1]) */
	int *resident;                /* tensors on chip (resident or loading), unordered */
	int nresident;
	unsigned space_epoch;         /* bumped whenever buffer space is freed */
	unsigned pf_failed;           /* space_epoch when prefetch last failed, or 0 */
	struct event *heap;
	size_t nheap, capheap;
	long freeu[UNIT_COUNT];
	double used[BUF_COUNT];
	/* main-memory channel: one transfer at a time, s->q[cur] while busy */
	int chan_busy;
	size_t cur;
	double chan_free_at;
	struct xfer *q;
	size_t nq, capq, hq;
	/* blocks and streams */
	int block, nblock;
	int *block_first, *block_end; /* op index range of each block */
	int *next;                    /* per stream of the current block: next op index, or -1 */
	double now, block_start;
	int left;                     /* ops not done */
	int pf;                       /* prefetch cursor: ops before it have their inputs loaded or on the way */
	unsigned epoch;               /* marks the inputs of the ops the streams wait on (never evicted) */
};

static void
heap_push(struct sched *s, struct event ev)
{
	size_t i;

	s->heap = egrow(s->heap, &s->capheap, s->nheap + 1, sizeof *s->heap);
	i = s->nheap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (s->heap[p].time <= ev.time)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = ev;
}

static struct event
heap_pop(struct sched *s)
{
	struct event top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && s->heap[c + 1].time < s->heap[c].time)
			c++;
		if (last.time <= s->heap[c].time)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->nheap)
		s->heap[i] = last;
	return top;
}

#define NEVER (1 << 30)

/* The first op not yet finished that reads tensor t, or NEVER. */
static int
next_use(const struct sched *s, int t)
{
	int k = s->rd_start[t] + s->ts[t].cursor;

	return k < s->rd_start[t + 1] ? s->rd[k] : NEVER;
}

static void
transfer_queue(struct sched *s, int tensor, int op, double bits, double mask)
{
	s->q = egrow(s->q, &s->capq, s->nq + 1, sizeof *s->q);
	s->q[s->nq++] = (struct xfer){tensor, op, bits, mask};
}

static void
on_chip(struct sched *s, int t)
{
	s->ts[t].slot = s->nresident;
	s->resident[s->nresident++] = t;
}

static void
free_space(struct sched *s, int t)
{
	int k = s->ts[t].slot, last = s->resident[--s->nresident];

	for (int b = 0; b < BUF_COUNT; b++)
		s->used[b] -= s->ts[t].bits[b];
	s->ts[t].state = T_OUT_OF_CHIP;
	s->resident[k] = last;
	s->ts[last].slot = k;
	s->space_epoch++;
}

/* Evict tensors from the buffers until need[] more bits fit, choosing the farthest next use
 * first and never one needed by op protect or earlier. Dirty tensors still needed are spilled.
 * Returns 0, or -1 (with the full buffer in *full_buf) if not enough can be evicted. */
static int
make_room(struct sched *s, const double *need, int protect, int *full_buf)
{
	const struct hw_config *c = s->x->c;

	for (;;) {
		int bad = -1, victim = -1, far = -1;
		for (int b = 0; b < BUF_COUNT; b++)
			if (s->used[b] + need[b] > c->buf_bits[b] + 1e-6)
				bad = b;
		if (bad < 0)
			return 0;
		for (int r = 0; r < s->nresident; r++) {
			int t = s->resident[r], nu;
			struct tstate *st = &s->ts[t];
			if (st->state != T_RESIDENT || st->pins || st->wanted == s->epoch || st->bits[bad] <= 0)
				continue;
			nu = next_use(s, t);
			if (nu > far) {
				far = nu;
				victim = t;
			}
		}
		s->x->r->constrained = 1;
		if (victim < 0 || far <= protect) {
			if (full_buf)
				*full_buf = bad;
			return -1;
		}
		if (!s->ts[victim].in_mem && far < NEVER) {
			transfer_queue(s, -1, -1, s->ts[victim].bits[home(s->w->t[victim].cls)], s->ts[victim].bits[BUF_MASK]);
			s->ts[victim].in_mem = 1;
			s->x->r->mem_write_bits += s->ts[victim].bits[home(s->w->t[victim].cls)] + s->ts[victim].bits[BUF_MASK];
		}
		free_space(s, victim);
	}
}

static void
tensor_bits(const struct run *x, int t, double *bits)
{
	if (x->size) {
		memcpy(bits, x->size[t], sizeof(double) * BUF_COUNT);
		return;
	}
	const struct wl_tensor *tt = &x->w->t[t];

	bits[BUF_ACT] = bits[BUF_WEIGHT] = 0;
	bits[home(tt->cls)] = data_bits(x, tt->elements, tt->cls);
	bits[BUF_MASK] = mask_bits(x, tt->elements, tt->cls);
}

static int
fits_alone(const struct run *x, const double *bits)
{
	for (int b = 0; b < BUF_COUNT; b++)
		if (bits[b] > x->c->buf_bits[b])
			return 0;
	return 1;
}

/* Start the next queued transfer if the channel is idle. */
static void
channel_kick(struct sched *s)
{
	struct xfer *q;
	double cyc;

	if (s->chan_busy || s->hq == s->nq)
		return;
	s->cur = s->hq;
	q = &s->q[s->hq++];
	cyc = ceil((q->bits + q->mask) / s->x->c->mem_bits_per_cycle - 1e-9);
	if (cyc < 1)
		cyc = 1;
	s->chan_busy = 1;
	s->chan_free_at = s->now + cyc;
	s->x->r->mem_busy += cyc;
	s->x->r->transfers++;
	s->x->r->mem_blocks += (q->bits + q->mask) / s->x->wbits / s->x->block;
	heap_push(s, (struct event){s->now + cyc, 1, -1, 0});
}

/* Load tensor t (in main memory, not on chip) for op i if room can be made without evicting
 * anything op i or an earlier op needs. Returns 1 if the load was queued. */
static int
try_load(struct sched *s, int t, int i)
{
	double bits[BUF_COUNT];

	tensor_bits(s->x, t, bits);
	if (make_room(s, bits, i, NULL) < 0)
		return 0;
	for (int b = 0; b < BUF_COUNT; b++) {
		s->used[b] += bits[b];
		s->ts[t].bits[b] = bits[b];
	}
	s->ts[t].state = T_LOADING;
	on_chip(s, t);
	transfer_queue(s, t, -1, bits[home(s->w->t[t].cls)], bits[BUF_MASK]);
	s->x->r->mem_read_bits += bits[home(s->w->t[t].cls)] + bits[BUF_MASK];
	return 1;
}

static int
op_input_streamed(const struct ostate *os, int k)
{
	return (int)((os->streamed >> k) & 1);
}

/* Is op i's input k needed on chip (not streamed) and not there yet? */
static int
missing(const struct sched *s, int i, int k)
{
	const struct wl_op *op = &s->w->op[i];

	return !op_input_streamed(&s->os[i], k) && s->ts[op->in[k]].state != T_RESIDENT;
}

/* Queue loads: first the missing inputs of the ops streams are waiting on, then prefetch in
 * program order while room can be made without evicting anything needed sooner. */
static void
memory_engine(struct sched *s, int nstreams)
{
	int lo = s->w->nop, hi;

	for (int st = 0; st < nstreams; st++) {
		int i = s->next[st];
		if (i < 0)
			continue;
		if (i < lo)
			lo = i;
		for (int k = 0; k < s->w->op[i].nin; k++) {
			int t = s->w->op[i].in[k];
			if (missing(s, i, k) && s->ts[t].state == T_OUT_OF_CHIP && s->ts[t].in_mem)
				try_load(s, t, i);
		}
	}
	/* prefetch in program order from the cursor, within a window, stopping at the first load
	 * that does not fit */
	if (s->pf < lo)
		s->pf = lo;
	if (s->pf_failed && s->pf_failed == s->space_epoch + 1)
		goto done;
	hi = lo + 64 < s->w->nop ? lo + 64 : s->w->nop;
	for (; s->pf < hi && s->nq - s->hq < 4; s->pf++) {
		int i = s->pf;
		const struct wl_op *op = &s->w->op[i];
		if (s->os[i].started)
			continue;
		for (int k = 0; k < op->nin; k++) {
			int t = op->in[k];
			if (s->ts[t].state != T_OUT_OF_CHIP || !s->ts[t].in_mem || op_input_streamed(&s->os[i], k))
				continue;
			if (!try_load(s, t, i)) {
				s->pf_failed = s->space_epoch + 1;
				goto done;
			}
		}
	}
done:
	channel_kick(s);
}

/* Duration of the k jobs of op i dispatched now; pushes their end events. */
static void
dispatch(struct sched *s, int i, long k)
{
	struct ostate *os = &s->os[i];
	const struct run *x = s->x;

	if (x->o->fidelity == SIM_FAST) {
		heap_push(s, (struct event){s->now + s->plan[i].dur_fast, 0, i, k});
	} else {
		/* jobs with equal durations end together: one event each */
		double durs[64];
		long counts[64];
		int nd = 0;
		for (long j = os->dispatched; j < os->dispatched + k; j++) {
			const struct geom *g = &s->plan[i].g;
			long p0 = (long)((double)j * g->T / os->jobs), p1 = (long)((double)(j + 1) * g->T / os->jobs);
			double dur = job_cost(x, g, p0, p1, &os->acc);
			int f = 0;
			while (f < nd && durs[f] != dur)
				f++;
			if (f == nd) {
				if (nd == 64) {
					for (int q = 0; q < nd; q++)
						heap_push(s, (struct event){s->now + durs[q], 0, i, counts[q]});
					nd = f = 0;
				}
				durs[nd] = dur;
				counts[nd++] = 0;
			}
			counts[f]++;
		}
		for (int q = 0; q < nd; q++)
			heap_push(s, (struct event){s->now + durs[q], 0, i, counts[q]});
	}
	os->dispatched += k;
	os->running += k;
	s->freeu[s->w->op[i].unit] -= k;
}

/*
 * Can op i start now? Its inputs must be on chip, or streamed from main memory when they cannot
 * be loaded (too large, or the buffer is held by data needed sooner); its result needs room, or
 * is streamed out. Returns 1 and starts it, else 0 with *why set to a stall category.
 */
static int
try_start(struct sched *s, int i, int *why)
{
	const struct wl_op *op = &s->w->op[i];
	struct ostate *os = &s->os[i];
	double need[BUF_COUNT] = {0};
	int full = -1;

	for (int k = 0; k < op->nin; k++) {
		int t = op->in[k];
		if (op_input_streamed(os, k) || s->ts[t].state == T_RESIDENT)
			continue;
		if (s->ts[t].state == T_LOADING) {
			*why = s->cur < s->nq && s->q[s->cur].tensor == t ? ST_DATA_NOT_IN_BUFFER : ST_BUFFER_BUSY;
			return 0;
		}
		if (s->w->t[t].cls != WL_STATE && fits_alone(s->x, s->x->size[t])) {
			for (int q = 0; q < op->nin; q++)
				if (s->ts[op->in[q]].state == T_RESIDENT)
					s->ts[op->in[q]].pins++;
			int loaded = try_load(s, t, i);
			for (int q = 0; q < op->nin; q++)
				if (s->ts[op->in[q]].state == T_RESIDENT)
					s->ts[op->in[q]].pins--;
			if (loaded) {
				*why = ST_BUFFER_BUSY;
				channel_kick(s);
				return 0;
			}
			os->wait_reason = ST_BUFFER_FULL;
		}
		if (s->w->t[t].cls != WL_STATE)
			s->x->r->constrained = 1;
		os->streamed |= 1L << k;
	}
	for (int k = 0; k < op->nin; k++)
		s->ts[op->in[k]].pins++;
	if (op->out >= 0 && !os->out_streamed) {
		memcpy(need, s->x->size[op->out], sizeof need);
		if (!fits_alone(s->x, need) || make_room(s, need, i, &full) < 0) {
			s->x->r->constrained = 1;
			os->out_streamed = 1;
			os->wait_reason = full == BUF_MASK ? ST_MASK_BUFFER_FULL : ST_BUFFER_FULL;
		} else {
			for (int b = 0; b < BUF_COUNT; b++) {
				s->used[b] += need[b];
				s->ts[op->out].bits[b] = need[b];
			}
			s->ts[op->out].state = T_RESIDENT;
			on_chip(s, op->out);
			s->ts[op->out].pins++;
		}
	}
	if (s->freeu[op->unit] <= 0) {
		/* inputs are pinned and the result placed: the op waits for units only */
		*why = ST_COMPUTE_BUSY;
	}
	os->started = 1;
	os->start = s->now;
	/* streamed inputs and results, and optimizer state, go through the channel */
	for (int k = 0; k < op->nin; k++)
		if (op_input_streamed(os, k)) {
			double b[BUF_COUNT];
			tensor_bits(s->x, op->in[k], b);
			transfer_queue(s, -1, i, b[0] + b[1], b[2]);
			s->x->r->mem_read_bits += b[0] + b[1] + b[2];
			os->xfer_end = -1;
		}
	if (op->out >= 0 && os->out_streamed) {
		double b[BUF_COUNT];
		tensor_bits(s->x, op->out, b);
		transfer_queue(s, -1, i, b[0] + b[1], b[2]);
		s->x->r->mem_write_bits += b[0] + b[1] + b[2];
		os->xfer_end = -1;
	}
	if (op->kind == WL_UPDATE) {
		/* the updated state goes back, and the updated weights with it */
		double st = data_bits(s->x, (double)op->n * s->x->c->prof->opt_state, WL_STATE);
		double wb[BUF_COUNT];
		tensor_bits(s->x, op->a, wb);
		transfer_queue(s, -1, i, st + wb[BUF_WEIGHT], wb[BUF_MASK]);
		s->x->r->mem_write_bits += st + wb[BUF_WEIGHT] + wb[BUF_MASK];
		s->ts[op->a].in_mem = 1;
		os->xfer_end = -1;
	}
	return 1;
}

/* Energy (nJ) of an op's activity, buffer and memory traffic aside from leakage. */
static double
acc_energy(const struct hw_config *c, int unit, const struct acc *a)
{
	double e = (c->ctl_dyn + c->ctl_leak) * a->tiles;

	if (unit == UNIT_MAC)
		e += (c->lane_dyn + c->lane_leak + c->sparsity_dyn + c->sparsity_leak + c->sr_dyn + c->sr_leak) * a->comp +
		     (c->fifo_dyn + c->fifo_leak) * a->fifo;
	else if (unit == UNIT_SOFTMAX)
		e += (c->sm_dyn + c->sm_leak) * a->comp;
	else
		e += (c->ln_dyn + c->ln_leak) * a->comp;
	for (int b = 0; b < BUF_COUNT; b++)
		e += a->blocks[b] * c->buf_nj_per_block[b];
	return e;
}

static void
op_finish(struct sched *s, int i)
{
	const struct wl_op *op = &s->w->op[i];
	struct ostate *os = &s->os[i];
	struct sim_result *r = s->x->r;
	const struct acc *a = s->x->o->fidelity == SIM_FAST ? &s->plan[i].acc : &os->acc;

	os->done = 1;
	os->end = s->now;
	s->left--;
	for (int k = 0; k < op->nin; k++) {
		int t = op->in[k];
		struct tstate *st = &s->ts[t];
		st->pins--;
		while (s->rd_start[t] + st->cursor < s->rd_start[t + 1] && s->rd[s->rd_start[t] + st->cursor] <= i)
			st->cursor++;
		if (s->rd_start[t] + st->cursor == s->rd_start[t + 1] && st->state == T_RESIDENT && !st->pins)
			free_space(s, t);
	}
	if (op->out >= 0) {
		struct tstate *st = &s->ts[op->out];
		if (os->out_streamed) {
			st->state = T_OUT_OF_CHIP;
			st->in_mem = 1;
		} else {
			st->pins--;
			if (s->rd_start[op->out] == s->rd_start[op->out + 1])
				free_space(s, op->out);
		}
	}
	r->busy[op->unit] += a->comp;
	r->fifo_cycles += a->fifo;
	r->ctl_tiles += a->tiles;
	for (int b = 0; b < BUF_COUNT; b++)
		r->blocks[b] += a->blocks[b];
	r->buf_read_bits += a->buf_r;
	r->buf_write_bits += a->buf_w;
	r->macs += a->macs;
	r->tiles += (long)a->tiles;
	r->jobs += os->jobs;
	if (s->x->o->trace)
		s->x->o->trace(s->x->o->trace_ctx, wl_kind_names[op->kind], op->name, os->start, os->end, os->jobs,
			       (long)a->tiles, acc_energy(s->x->c, op->unit, a));
}

/* Set up the streams of block b. */
static int
enter_block(struct sched *s, int b)
{
	int n = 0;

	s->block = b;
	s->block_start = s->now;
	for (int st = 0; st < s->w->nstream_max; st++)
		s->next[st] = -1;
	for (int i = s->block_first[b]; i < s->block_end[b]; i++) {
		int st = s->w->op[i].stream;
		if (s->next[st] < 0)
			s->next[st] = i;
		if (st + 1 > n)
			n = st + 1;
	}
	return n;
}

/* The op after i in its stream and block, or -1. */
static int
stream_next(const struct sched *s, int i)
{
	int st = s->w->op[i].stream;

	for (int j = i + 1; j < s->block_end[s->w->op[i].block]; j++)
		if (s->w->op[j].stream == st)
			return j;
	return -1;
}

static void
plan_op(struct op_plan *p, const struct run *x, const struct wl_op *op)
{
	long units = op->unit == UNIT_MAC ? x->c->lanes : op->unit == UNIT_SOFTMAX ? x->c->softmax : x->c->layernorm;

	memset(p, 0, sizeof *p);
	geom_init(&p->g, x, op);
	p->jobs = p->g.T < units ? p->g.T : units;
	if (x->o->fidelity == SIM_FAST) {
		op_cost_fast(x, &p->g, p->jobs, &p->acc, &p->dur_fast);
		p->dur_fast = ceil(p->dur_fast - 1e-9);
	}
}


void
sim_energy(struct sim_result *r, const struct hw_config *c)
{
	const long units[UNIT_COUNT] = {c->lanes, c->softmax, c->layernorm};
	double mac = r->busy[UNIT_MAC];

	r->latency_s = r->cycles / (c->prof->clock_mhz * 1e6);
	memset(r->dyn_nj, 0, sizeof r->dyn_nj);
	memset(r->leak_nj, 0, sizeof r->leak_nj);
	r->dyn_nj[E_MAC] = c->lane_dyn * mac;
	r->leak_nj[E_MAC] = c->lane_leak * mac;
	r->dyn_nj[E_SPARSITY] = c->sparsity_dyn * mac;
	r->leak_nj[E_SPARSITY] = c->sparsity_leak * mac;
	r->dyn_nj[E_SR] = c->sr_dyn * mac;
	r->leak_nj[E_SR] = c->sr_leak * mac;
	r->dyn_nj[E_FIFO] = c->fifo_dyn * r->fifo_cycles;
	r->leak_nj[E_FIFO] = c->fifo_leak * r->fifo_cycles;
	r->dyn_nj[E_SOFTMAX] = c->sm_dyn * r->busy[UNIT_SOFTMAX];
	r->leak_nj[E_SOFTMAX] = c->sm_leak * r->busy[UNIT_SOFTMAX];
	r->dyn_nj[E_LAYERNORM] = c->ln_dyn * r->busy[UNIT_LN];
	r->leak_nj[E_LAYERNORM] = c->ln_leak * r->busy[UNIT_LN];
	r->dyn_nj[E_CONTROL] = c->ctl_dyn * r->ctl_tiles;
	r->leak_nj[E_CONTROL] = c->ctl_leak * r->ctl_tiles;
	for (int b = 0; b < BUF_COUNT; b++) {
		r->dyn_nj[E_BUF_ACT + b] = r->blocks[b] * c->buf_nj_per_block[b];
		r->leak_nj[E_BUF_ACT + b] = c->buf_leak_nj_per_cycle[b] * r->cycles;
	}
	r->dyn_nj[E_MEMORY] = r->mem_blocks * c->mem_nj_per_block;
	r->energy_j = 0;
	for (int e = 0; e < E_COUNT; e++)
		r->energy_j += (r->dyn_nj[e] + r->leak_nj[e]) * 1e-9;
	for (int u = 0; u < UNIT_COUNT; u++)
		r->util[u] = r->cycles > 0 ? r->busy[u] / ((double)units[u] * r->cycles) : 0;
}

static void
sched_release(struct sched *s)
{
	free(s->resident);
	free(s->ts);
	free(s->os);
	free(s->heap);
	free(s->q);
	free(s->block_first);
	free(s->block_end);
	free(s->next);
}

static void
run_init(struct run *x, const struct workload *w, const struct hw_config *c, const struct sim_options *o,
	 struct sim_result *r)
{
	memset(x, 0, sizeof *x);
	x->w = w, x->c = c, x->o = o, x->r = r;
	for (int l = 0; l < 4; l++)
		x->order[l] = (int)(strchr("bijk", o->dataflow[l]) - "bijk");
	x->dens[WL_ACT] = 1 - o->sparsity[0];
	x->dens[WL_WEIGHT] = 1 - o->sparsity[1];
	x->dens[WL_GRAD] = x->dens[WL_WGRAD] = 1 - o->sparsity[2];
	x->dens[WL_STATE] = x->dens[WL_CONST] = 1;
	x->wbits = c->prof->word_bits;
	x->mbits = c->prof->mask_bits;
	x->fifo = c->fifo_bits;
	x->block = c->prof->block_elements;
}

struct sim_plan *
sim_plan_new(const struct workload *w, const struct hw_config *c, const struct sim_options *o,
	     struct tc_error *err)
{
	struct sim_plan *p;
	struct sim_result scratch;
	struct run x;

	if (!sim_valid_dataflow(o->dataflow))
		return tc_error_set(err, "dataflow '%s' is not a permutation of bijk", o->dataflow), NULL;
	p = ecalloc(1, sizeof *p);
	p->w = w;
	p->o = *o;
	p->c = *c;
	p->op = emalloc(sizeof *p->op * (size_t)(w->nop + 1));
	run_init(&x, w, &p->c, &p->o, &scratch);
	for (int i = 0; i < w->nop; i++)
		plan_op(&p->op[i], &x, &w->op[i]);
	p->size = emalloc(sizeof *p->size * (size_t)(w->nt + 1));
	for (int t = 0; t < w->nt; t++)
		tensor_bits(&x, t, p->size[t]);
	p->rd_start = ecalloc((size_t)w->nt + 2, sizeof *p->rd_start);
	for (int i = 0; i < w->nop; i++)
		for (int k = 0; k < w->op[i].nin; k++)
			p->rd_start[w->op[i].in[k] + 2]++;
	for (int t = 0; t < w->nt; t++)
		p->rd_start[t + 2] += p->rd_start[t + 1];
	p->rd = emalloc(sizeof *p->rd * (size_t)(p->rd_start[w->nt + 1] + 1));
	for (int i = 0; i < w->nop; i++)
		for (int k = 0; k < w->op[i].nin; k++)
			p->rd[p->rd_start[w->op[i].in[k] + 1]++] = i;
	return p;
}

void
sim_plan_free(struct sim_plan *p)
{
	if (!p)
		return;
	free(p->op);
	free(p->size);
	free(p->rd);
	free(p->rd_start);
	free(p);
}

int
sim_plan_fits(const struct sim_plan *p, const struct hw_config *c)
{
	const struct hw_config *q = &p->c;

	return q->lanes == c->lanes && q->softmax == c->softmax && q->layernorm == c->layernorm && q->macs == c->macs &&
	       q->tile_b == c->tile_b && q->tile_x == c->tile_x && q->tile_y == c->tile_y && q->fifo_bits == c->fifo_bits &&
	       q->prof == c->prof && q->training == c->training;
}

int
sim_run(struct sim_result *r, const struct workload *w, const struct hw_config *c, const struct sim_options *o,
	struct tc_error *err)
{
	struct sim_plan *p = sim_plan_new(w, c, o, err);
	int rc;

	if (!p) {
		memset(r, 0, sizeof *r);
		return -1;
	}
	rc = sim_plan_run(r, p, c, err);
	sim_plan_free(p);
	return rc;
}

int
sim_plan_run(struct sim_result *r, const struct sim_plan *plan, const struct hw_config *c, struct tc_error *err)
{
	const struct workload *w = plan->w;
	const struct sim_options *o = &plan->o;
	struct run x;
	struct sched s;
	double emb[BUF_COUNT];
	int nstreams;

	memset(r, 0, sizeof *r);
	run_init(&x, w, c, o, r);
	r->ops = w->nop;

	x.size = (const double(*)[BUF_COUNT])plan->size;
	tensor_bits(&x, w->embedding, emb);
	if (!fits_alone(&x, emb)) {
		snprintf(r->reason, sizeof r->reason,
			 "the embedding table (%.3g M elements, %.1f MB with its mask) does not fit the %.0f MB weight "
			 "buffer and %.0f MB mask buffer",
			 w->t[w->embedding].elements / 1e6, (emb[BUF_WEIGHT] + emb[BUF_MASK]) / 8 / 1048576,
			 c->buf_bits[BUF_WEIGHT] / 8 / 1048576, c->buf_bits[BUF_MASK] / 8 / 1048576);
		return 0;
	}
	r->feasible = 1;

	memset(&s, 0, sizeof s);
	s.x = &x;
	s.w = w;
	s.ts = ecalloc((size_t)w->nt, sizeof *s.ts);
	s.os = ecalloc((size_t)w->nop, sizeof *s.os);
	s.rd = plan->rd;
	s.rd_start = plan->rd_start;
	s.resident = emalloc(sizeof *s.resident * (size_t)(w->nt + 1));
	s.block_first = ecalloc((size_t)w->nblock + 1, sizeof *s.block_first);
	s.block_end = ecalloc((size_t)w->nblock + 1, sizeof *s.block_end);
	s.next = ecalloc((size_t)w->nstream_max + 1, sizeof *s.next);
	s.freeu[UNIT_MAC] = c->lanes;
	s.freeu[UNIT_SOFTMAX] = c->softmax;
	s.freeu[UNIT_LN] = c->layernorm;
	s.left = w->nop;
	for (int t = 0; t < w->nt; t++)
		s.ts[t].in_mem = w->t[t].producer < 0;
	for (int b = 0; b <= w->nblock; b++)
		s.block_first[b] = w->nop;
	for (int i = w->nop - 1; i >= 0; i--)
		s.block_first[w->op[i].block] = i;
	for (int i = 0; i < w->nop; i++)
		s.block_end[w->op[i].block] = i + 1;
	s.plan = plan->op;
	for (int i = 0; i < w->nop; i++) {
		s.os[i].jobs = plan->op[i].jobs;
		s.os[i].wait_reason = ST_DATA_NOT_IN_BUFFER;
	}

	nstreams = enter_block(&s, 0);
	while (s.left > 0) {
		int progress = 1, why[64];
		double dt;

		while (progress) {
			progress = 0;
			/* the inputs of every op a stream waits on stay: no two streams evict each other's */
			s.epoch++;
			for (int st = 0; st < nstreams; st++)
				if (s.next[st] >= 0)
					for (int k = 0; k < w->op[s.next[st]].nin; k++)
						s.ts[w->op[s.next[st]].in[k]].wanted = s.epoch;
			memory_engine(&s, nstreams);
			for (int st = 0; st < nstreams; st++) {
				int i = s.next[st];
				why[st] = -1;
				if (i < 0)
					continue;
				if (!s.os[i].started) {
					int y = ST_COMPUTE_BUSY;
					if (try_start(&s, i, &y))
						progress = 1;
					else
						why[st] = y;
				}
				if (s.os[i].started && s.os[i].dispatched < s.os[i].jobs) {
					long k = s.os[i].jobs - s.os[i].dispatched;
					if (k > s.freeu[w->op[i].unit])
						k = s.freeu[w->op[i].unit];
					if (k > 0) {
						dispatch(&s, i, k);
						progress = 1;
					}
					if (s.os[i].dispatched < s.os[i].jobs)
						why[st] = ST_COMPUTE_BUSY;
				}
				if (s.os[i].started && s.os[i].running == 0 && s.os[i].dispatched == s.os[i].jobs &&
				    s.os[i].xfer_end == -2)
					why[st] = s.os[i].wait_reason;
			}
			channel_kick(&s);
		}
		if (s.nheap == 0) {
			tc_error_set(err, "simulation stalled at cycle %.0f with %d operations left (block %d)", s.now,
				     s.left, s.block);
			goto fail;
		}
		dt = s.heap[0].time - s.now;
		for (int st = 0; st < nstreams; st++) {
			if (dt <= 0)
				break;
			if (why[st] >= 0)
				r->stalls[why[st]] += dt;
			else if (s.next[st] < 0 && nstreams > 1)
				r->stalls[ST_PRODUCER] += dt; /* done, waiting for the other heads' results */
		}
		s.now = s.heap[0].time;
		while (s.nheap && s.heap[0].time <= s.now) {
			struct event ev = heap_pop(&s);
			if (ev.kind == 0) {
				struct ostate *os = &s.os[ev.op];
				os->running -= ev.count;
				s.freeu[w->op[ev.op].unit] += ev.count;
				if (os->running == 0 && os->dispatched == os->jobs && os->xfer_end >= 0) {
					op_finish(&s, ev.op);
				} else if (os->running == 0 && os->dispatched == os->jobs) {
					os->xfer_end = -2; /* compute done, waiting for its transfers */
				}
			} else {
				struct xfer done = s.q[s.cur];
				s.chan_busy = 0;
				if (done.tensor >= 0)
					s.ts[done.tensor].state = T_RESIDENT;
				else if (done.op >= 0) {
					/* a stream transfer of op i: the op is done with them when none waits */
					int i = done.op, pending = 0;
					for (size_t q = s.hq; q < s.nq; q++)
						if (s.q[q].op == i)
							pending = 1;
					if (!pending) {
						struct ostate *os = &s.os[i];
						if (os->xfer_end == -2) {
							os->xfer_end = s.now;
							op_finish(&s, i);
						} else {
							os->xfer_end = s.now;
						}
					}
				}
				channel_kick(&s);
			}
		}
		/* advance streams past finished ops, and blocks when all their ops are done */
		for (int st = 0; st < nstreams; st++)
			while (s.next[st] >= 0 && s.os[s.next[st]].done)
				s.next[st] = stream_next(&s, s.next[st]);
		{
			int all = 1;
			for (int st = 0; st < nstreams; st++)
				if (s.next[st] >= 0)
					all = 0;
			if (all && s.block + 1 < w->nblock)
				nstreams = enter_block(&s, s.block + 1);
		}
		for (int b = 0; b < BUF_COUNT; b++)
			if (s.used[b] > r->peak_bits[b])
				r->peak_bits[b] = s.used[b];
	}
	/* the last write-backs */
	channel_kick(&s);
	while (s.nheap) {
		struct event ev = heap_pop(&s);
		s.now = ev.time;
		s.chan_busy = 0;
		channel_kick(&s);
	}
	r->cycles = s.now;
	sim_energy(r, c);
	sched_release(&s);
	return 0;
fail:
	sched_release(&s);
	return -1;
}
