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
    "mac_lanes", "sparsity",          "stochastic_rounding", "fifo",        "softmax",    "layernorm",
    "control",   "activation_buffer", "weight_buffer",       "mask_buffer", "main_memory"};

const char *const sim_stall_names[ST_COUNT] = {"buffer_busy",       "mask_buffer_busy", "buffer_full",
                                               "mask_buffer_full",  "producer",         "compute_busy",
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
	int nlev, lev[4]; /* non-trivial loop levels, outermost first */
	long T;
	double taps; /* convolution taps inside a tile, else 1 */
	int clsA, clsB, clsO;
	double dA, dB, dO;
	unsigned dep[3]; /* A, B, out: dim masks */
	int taps_on[3];  /* the operand has a taps axis */
	unsigned red;    /* reduction dims: loop dims the output does not depend on */
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
	double comp;              /* unit-cycles of compute */
	double fifo;              /* lane FIFO cycles, fetch and write-back */
	double tiles;             /* tiles dispatched: a cycle of the PE's dataflow and DMA modules each */
	double blocks[BUF_COUNT]; /* 64-element block accesses of each buffer */
	double occupied;          /* unit-cycles including fetch and write */
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
 * Write back the output tile at indices idx (extents e) as a job leaves it: compressed if its
 * reduction is complete, else as a dense partial sum. Returns the FIFO cycles.
 */
static double
leave_output(const struct run *x, const struct geom *g, struct acc *a, const long *idx, const long *e)
{
	double n = operand_elems(g, 2, e);
	int final = 1;

	for (int d = 0; d < 4; d++)
		if ((g->red & (1u << d)) && idx[d] != g->cnt[d] - 1)
			final = 0;
	charge_access(x, a, n, g->clsO, !final, 1, 1);
	return fifo_cycles(x, a, g,
	                   final ? data_bits(x, n, g->clsO) + mask_bits(x, n, g->clsO) : n * x->wbits, 1);
}

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
			total += leave_output(x, g, a, pe, pext);
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
	if (open)
		total += leave_output(x, g, a, pe, pext);
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
 * Operand and output traffic of an operation whose loop nest is cut in splits places: adds
 * energy and traffic to a and returns the FIFO cycles. sum_e[] holds each operand's elements
 * summed over all tiles and O the number of output tiles.
 */
static double
fast_traffic(const struct run *x, const struct geom *g, const double *sum_e, double O, double splits,
             struct acc *a)
{
	const struct wl_op *op = g->op;
	double T = (double)g->T, RA = run_length(g, g->dep[0]), RB = run_length(g, g->dep[1]);
	double RO = run_length(g, g->dep[2]), fetchA, fetchB, visits, partials, nA, nB, nboth, r, m[3];
	double eA, eB, eO, bitsA, bitsB, bitsP, bitsF, cyc = 0;

	/* fetches: one every run of positions that keep the operand, one more after a cut */
	fetchA = op->a >= 0 ? T / RA + splits * (1 - 1 / RA) : 0;
	fetchB = op->b >= 0 ? T / RB + splits * (1 - 1 / RB) : 0;
	visits = T / RO + splits * (1 - 1 / RO);
	partials = visits - O; /* each extra visit writes one partial and reads one back */
	/* average elements per fetch: operand elements over the tiles, weighted alike */
	eA = fetchA > 0 ? sum_e[0] / T : 0;
	eB = fetchB > 0 ? sum_e[1] / T : 0;
	eO = sum_e[2] / T;
	if (op->a >= 0)
		charge_access(x, a, eA, g->clsA, 0, 0, fetchA);
	if (op->b >= 0)
		charge_access(x, a, eB, g->clsB, 0, 0, fetchB);
	charge_access(x, a, eO, g->clsO, 1, 0, partials);
	charge_access(x, a, eO, g->clsO, 1, 1, partials);
	charge_access(x, a, eO, g->clsO, 0, 1, O);
	/* FIFO cycles, rounded per tile as the FIFO moves whole cycles: tiles that fetch both
	 * operands, one of them, or neither; a partial sum read back comes with the tile's operands,
	 * with both where they come together, then with one, then alone; write-backs go alone */
	bitsA = data_bits(x, eA, g->clsA) + mask_bits(x, eA, g->clsA);
	bitsB = data_bits(x, eB, g->clsB) + mask_bits(x, eB, g->clsB);
	bitsP = eO * x->wbits;
	bitsF = data_bits(x, eO, g->clsO) + mask_bits(x, eO, g->clsO);
	nboth = op->a >= 0 && op->b >= 0 ? fmin(fetchA, fetchB) : 0;
	nA = fetchA - nboth;
	nB = fetchB - nboth;
	r = partials;
	m[0] = fmin(r, nboth), r -= m[0];
	m[1] = fmin(r, nA), r -= m[1];
	m[2] = fmin(r, nB), r -= m[2];
	cyc += fifo_cycles(x, a, g, bitsA + bitsB + bitsP, m[0]) * m[0];
	cyc += fifo_cycles(x, a, g, bitsA + bitsB, nboth - m[0]) * (nboth - m[0]);
	cyc += fifo_cycles(x, a, g, bitsA + bitsP, m[1]) * m[1];
	cyc += fifo_cycles(x, a, g, bitsA, nA - m[1]) * (nA - m[1]);
	cyc += fifo_cycles(x, a, g, bitsB + bitsP, m[2]) * m[2];
	cyc += fifo_cycles(x, a, g, bitsB, nB - m[2]) * (nB - m[2]);
	cyc += fifo_cycles(x, a, g, bitsP, r) * r;
	cyc += fifo_cycles(x, a, g, bitsP, partials) * partials;
	cyc += fifo_cycles(x, a, g, bitsF, O) * O;
	return cyc;
}

/*
 * Totals of an operation split into J jobs: adds energy and traffic to a and returns the
 * unit-cycles occupied; *longest receives the duration of the longest job: its share of the
 * uncut nest's cycles, ceil(T / J) tiles of T, plus what one cut costs.
 */
static double
op_cost_fast(const struct run *x, const struct geom *g, long J, struct acc *a, double *longest)
{
	double T = (double)g->T, O = 1, sum_e[3] = {0, 0, 0}, comp_total = 0, occ, occ1;
	struct acc scratch;

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
			n *= g->dep[w] & (1u << d) ? (double)((g->cnt[d] - 1) * g->ts[d] + g->edge[d])
			                           : (double)g->cnt[d];
		sum_e[w] = n;
	}
	for (int d = 0; d < 4; d++)
		if (g->dep[2] & (1u << d))
			O *= (double)g->cnt[d];
	occ = comp_total + fast_traffic(x, g, sum_e, O, (double)(J - 1), a);
	a->occupied += occ;
	*longest = occ;
	if (J > 1) {
		memset(&scratch, 0, sizeof scratch);
		occ1 = comp_total + fast_traffic(x, g, sum_e, O, 0, &scratch);
		*longest = occ1 * ceil(T / (double)J) / T + (occ - occ1) / (double)(J - 1);
	}
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
	struct sim_options o;
	struct hw_config c; /* the configuration planned for (its compute part is what counts) */
	struct op_plan *op;
};

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

static void
plan_op(struct op_plan *p, const struct run *x, const struct wl_op *op)
{
	long units = op->unit == UNIT_MAC       ? x->c->lanes
	             : op->unit == UNIT_SOFTMAX ? x->c->softmax
	                                        : x->c->layernorm;

	memset(p, 0, sizeof *p);
	geom_init(&p->g, x, op);
	p->jobs = p->g.T < units ? p->g.T : units;
	if (x->o->fidelity == SIM_FAST) {
		op_cost_fast(x, &p->g, p->jobs, &p->acc, &p->dur_fast);
		p->dur_fast = ceil(p->dur_fast - 1e-9);
	}
}

/* What an op's costs depend on besides the configuration: equal keys, equal costs. */
struct op_key {
	unsigned char kind, unit, dep_a, dep_b, dep_out, cls_a, cls_b, cls_out, has_a, has_b, k_tiled;
	long bt, m, n, k;
	double work;
};

static void
op_key(struct op_key *key, const struct workload *w, const struct wl_op *op)
{
	memset(key, 0, sizeof *key); /* padding too: keys are compared as bytes */
	key->kind = op->kind, key->unit = op->unit;
	key->dep_a = op->dep_a, key->dep_b = op->dep_b, key->dep_out = op->dep_out;
	key->has_a = op->a >= 0, key->has_b = op->b >= 0;
	key->cls_a = op->a >= 0 ? w->t[op->a].cls : 0;
	key->cls_b = op->b >= 0 ? w->t[op->b].cls : 0;
	key->cls_out = op->out >= 0 ? w->t[op->out].cls : 0;
	key->k_tiled = (unsigned char)op->k_tiled;
	key->bt = op->bt, key->m = op->m, key->n = op->n, key->k = op->k;
	key->work = op->work;
}

static uint64_t
key_hash(const struct op_key *k)
{
	uint64_t h = 0, word;
	const unsigned char *b = (const unsigned char *)k;

	/* independent products, so the multiplies overlap; one strong mix at the end */
	for (size_t i = 0; i + 8 <= sizeof *k; i += 8) {
		memcpy(&word, b + i, 8);
		h += (word ^ (0x9e3779b97f4a7c15u * (i + 1))) * 0xff51afd7ed558ccdu;
	}
	return tc_hash_final(h);
}

/* Cost every op, once per distinct shape: the heads of a layer and the layers of a stack repeat. */
static void
plan_ops(struct sim_plan *p, const struct run *x)
{
	const struct workload *w = p->w;
	enum { SLOTS = 512 };
	int head[SLOTS], *next = emalloc(sizeof *next * (size_t)(w->nop + 1));
	struct op_key *keys = emalloc(sizeof *keys * (size_t)(w->nop + 1));

	for (int h = 0; h < SLOTS; h++)
		head[h] = -1;
	for (int i = 0; i < w->nop; i++) {
		uint64_t h;
		int j;
		op_key(&keys[i], w, &w->op[i]);
		h = key_hash(&keys[i]) % SLOTS;
		for (j = head[h]; j >= 0; j = next[j])
			if (memcmp(&keys[j], &keys[i], sizeof keys[i]) == 0)
				break;
		if (j >= 0) {
			p->op[i] = p->op[j];
			p->op[i].g.op = &w->op[i];
		} else {
			plan_op(&p->op[i], x, &w->op[i]);
		}
		next[i] = head[h];
		head[h] = i;
	}
	free(next);
	free(keys);
}

struct sim_plan *
sim_plan_new(const struct workload *w, const struct hw_config *c, const struct sim_options *o,
             struct tc_error *err)
{
	struct sim_result scratch;
	struct sim_plan *p;
	struct run x;

	if (!sim_valid_dataflow(o->dataflow))
		return tc_error_set(err, "dataflow '%s' is not a permutation of bijk", o->dataflow), NULL;
	p = ecalloc(1, sizeof *p);
	p->w = w;
	p->o = *o;
	p->c = *c;
	p->op = emalloc(sizeof *p->op * (size_t)(w->nop + 1));
	run_init(&x, w, &p->c, &p->o, &scratch);
	plan_ops(p, &x);
	return p;
}

void
sim_plan_free(struct sim_plan *p)
{
	if (!p)
		return;
	free(p->op);
	free(p);
}

int
sim_plan_fits(const struct sim_plan *p, const struct hw_config *c)
{
	const struct hw_config *q = &p->c;

	return q->lanes == c->lanes && q->softmax == c->softmax && q->layernorm == c->layernorm &&
	       q->macs == c->macs && q->tile_b == c->tile_b && q->tile_x == c->tile_x &&
	       q->tile_y == c->tile_y && q->fifo_bits == c->fifo_bits && q->prof == c->prof &&
	       q->training == c->training;
}

/* ---- the memory plan ---- */

/*
 * Residency is decided once, in a canonical order, independent of timing: within a block the ops
 * are taken by their position in their stream and then by stream (the heads advance together, as
 * AccelTran staggers them). Walking that order with the buffers' capacities gives every load,
 * spill and stream transfer, and for every allocation what it must wait for: all ops up to some
 * position complete (the space they free or the tensors they still read), spills, loads. Both
 * fidelities then time the same plan, so memory traffic never depends on the number of units,
 * and neither does which op waits for what.
 */
enum { PE_OP, PE_LOAD, PE_SPILL };

#define NEVER           (1 << 30)
#define PREFETCH_WINDOW 16

struct pevent {
	unsigned char kind;
	unsigned char reason;    /* stall category while something waits for this event */
	int op;                  /* PE_OP: the op */
	int tensor;              /* PE_LOAD, PE_SPILL: the tensor */
	double bits;             /* bits moved: the transfer, or an op's streams */
	int dep;                 /* all ops at canonical positions <= dep complete first; -1 none */
	int wait0, nwait;        /* events it waits for: mp->waits[wait0 .. wait0 + nwait) */
	int vict0, nvict;        /* tensors leaving the buffers when it allocates */
	int free0, nfree;        /* PE_OP: tensors freed when it completes */
	double alloc[BUF_COUNT]; /* bits it allocates */
};

struct sim_mplan {
	const struct workload *w;
	double buf_bits[BUF_COUNT], dens[WL_NCLASS];
	int feasible;
	char reason[256];
	int *order, *pos; /* canonical order and its inverse */
	int *pred;        /* per op: the previous op of its stream in its block, or -1 */
	int *block_last;  /* per block: the canonical position of its last op */
	int *op_ev;       /* per op: its PE_OP event */
	struct pevent *ev;
	int nev;
	size_t capev;
	int *waits, *vict, *frees;
	size_t nwaits, capwaits, nvict, capvict, nfrees, capfrees;
	double (*size)[BUF_COUNT];
	double peak[BUF_COUNT];
	double mem_read_bits, mem_write_bits;
};

struct tplan {         /* a tensor during planning */
	int res;       /* on chip */
	int in_mem;    /* a copy in main memory */
	int ready_ev;  /* the load that brought it on chip, or -1 */
	int last_read; /* canonical position of its latest reader so far, or -1 */
	int prod_pos;  /* canonical position of its producer, or -1 */
	int cursor;    /* next reader in rd */
	int slot;      /* position in planner.res_list while on chip */
};

struct planner {
	struct sim_mplan *mp;
	const struct workload *w;
	const struct hw_config *c;
	struct tplan *t;
	int *rd, *rd_start; /* readers of each tensor by canonical position */
	double used[BUF_COUNT];
	/* frees so far, in order, each with the latest op position and load event (over it and all
	 * before it) that must complete before its space may be taken, and the bits freed by it and all
	 * before it; evictions count as frees by the event that evicts */
	int *flog_pos, *flog_ev;
	double (*flog_cum)[BUF_COUNT];
	size_t nflog, capflog;
	int *victims;        /* scratch: one per tensor at most */
	int *res_list, nres; /* tensors on chip, unordered; tplan.slot is the position */
	int pf;              /* prefetch cursor: canonical position whose inputs to load next */
};

static void
reside(struct planner *p, int t)
{
	p->t[t].res = 1;
	p->t[t].slot = p->nres;
	p->res_list[p->nres++] = t;
}

static void
unreside(struct planner *p, int t)
{
	int k = p->t[t].slot, last = p->res_list[--p->nres];

	p->t[t].res = 0;
	p->res_list[k] = last;
	p->t[last].slot = k;
}

static int
pl_next_use(const struct planner *p, int t)
{
	int k = p->rd_start[t] + p->t[t].cursor;

	return k < p->rd_start[t + 1] ? p->rd[k] : NEVER;
}

static int
fits_alone(const struct hw_config *c, const double *bits)
{
	for (int b = 0; b < BUF_COUNT; b++)
		if (bits[b] > c->buf_bits[b])
			return 0;
	return 1;
}

static int
add_event(struct sim_mplan *mp, int kind, int op, int tensor, double bits)
{
	struct pevent *e;

	mp->ev = egrow(mp->ev, &mp->capev, (size_t)mp->nev + 1, sizeof *mp->ev);
	e = &mp->ev[mp->nev];
	memset(e, 0, sizeof *e);
	e->kind = (unsigned char)kind;
	e->op = op;
	e->tensor = tensor;
	e->bits = bits;
	e->dep = -1;
	e->wait0 = (int)mp->nwaits;
	e->vict0 = (int)mp->nvict;
	e->free0 = (int)mp->nfrees;
	e->reason = ST_DATA_NOT_IN_BUFFER;
	return mp->nev++;
}

/* Make event e wait for event f. Waits must be added while e is the last event that has any. */
static void
add_wait(struct sim_mplan *mp, int e, int f)
{
	if (f < 0)
		return;
	mp->waits = egrow(mp->waits, &mp->capwaits, mp->nwaits + 1, sizeof *mp->waits);
	mp->waits[mp->nwaits++] = f;
	mp->ev[e].nwait++;
}

/*
 * What the allocation of need relies on: counting back from the most recent free, the first whose
 * space is needed once the frees after it are not; the op position and load event to wait for
 * are in *pos and *ev (-1 if the space was free before any of them). A binary search over
 * cumulative sums: entries k and later hold cum[end] - cum[k - 1] bits.
 */
static void
free_dep(const struct planner *p, const double *need, int *pos, int *ev)
{
	double slack[BUF_COUNT];
	long lo = 0, hi = (long)p->nflog - 1, found = -1;

	*pos = *ev = -1;
	if (p->nflog == 0)
		return;
	for (int b = 0; b < BUF_COUNT; b++) {
		slack[b] = p->c->buf_bits[b] - p->used[b] - need[b];
		if (slack[b] - p->flog_cum[p->nflog - 1][b] < -1e-6)
			found = 0;
	}
	if (found < 0)
		return; /* it would fit had nothing been freed */
	found = -1;
	while (lo <= hi) {
		long k = (lo + hi) / 2;
		int needed = 0;
		for (int b = 0; b < BUF_COUNT; b++) {
			double after = p->flog_cum[p->nflog - 1][b] - (k > 0 ? p->flog_cum[k - 1][b] : 0);
			if (slack[b] - after < -1e-6)
				needed = 1;
		}
		if (needed) {
			found = k;
			lo = k + 1;
		} else {
			hi = k - 1;
		}
	}
	if (found >= 0)
		*pos = p->flog_pos[found], *ev = p->flog_ev[found];
}

static int
max_int(int a, int b)
{
	return a > b ? a : b;
}

/*
 * Find room for need[] at canonical position k: evict farthest-next-use first among tensors not needed at or
 * before k (with clean_only, only those that need no spill), spilling dirty ones still needed. Returns the
 * number of victims, with the op position to wait for in *dep and the load event in *lev, or -1 (with the
 * buffer that stays full in *full) if the room cannot be made. The victims are appended to mp->vict for the
 * next event to take.
 */
static int
pl_room(struct planner *p, const double *need, int k, int clean_only, int *dep, int *lev, int *full)
{
	const struct hw_config *c = p->c;
	struct sim_mplan *mp = p->mp;
	double avail[BUF_COUNT] = {0};
	int over = 0, nv = 0;
	int *victims = p->victims, fpos;

	*dep = *lev = -1;
	for (int b = 0; b < BUF_COUNT; b++)
		if (p->used[b] + need[b] > c->buf_bits[b] + 1e-6)
			over = 1;
	if (over) {
		for (int r = 0; r < p->nres; r++) {
			int t = p->res_list[r], nu;
			const struct tplan *tp = &p->t[t];
			nu = pl_next_use(p, t);
			if (nu <= k || (clean_only && !tp->in_mem && nu != NEVER))
				continue;
			for (int b = 0; b < BUF_COUNT; b++)
				avail[b] += mp->size[t][b];
		}
		for (int b = 0; b < BUF_COUNT; b++)
			if (p->used[b] - avail[b] + need[b] > c->buf_bits[b] + 1e-6) {
				*full = b;
				return -1;
			}
	}
	for (;;) {
		int bad = -1, victim = -1, far = -1;
		for (int b = 0; b < BUF_COUNT; b++)
			if (p->used[b] + need[b] > c->buf_bits[b] + 1e-6)
				bad = b;
		if (bad < 0)
			break;
		for (int r = 0; r < p->nres; r++) {
			int t = p->res_list[r], nu;
			const struct tplan *tp = &p->t[t];
			if (mp->size[t][bad] <= 0)
				continue;
			nu = pl_next_use(p, t);
			if (nu <= k || (clean_only && !tp->in_mem && nu != NEVER))
				continue;
			if (nu > far || (nu == far && t < victim)) { /* ties to the lowest tensor */
				far = nu;
				victim = t;
			}
		}
		if (victim < 0) {
			*full = bad;
			return -1;
		}
		victims[nv++] = victim;
		for (int b = 0; b < BUF_COUNT; b++)
			p->used[b] -= mp->size[victim][b];
		unreside(p, victim);
	}
	/* the allocation waits for the victims' readers so far, their loads and spills */
	for (int v = 0; v < nv; v++) {
		int t = victims[v];
		struct tplan *tp = &p->t[t];
		*dep = max_int(*dep, max_int(tp->last_read, tp->prod_pos));
		if (!tp->in_mem && pl_next_use(p, t) != NEVER) {
			int s =
			    add_event(mp, PE_SPILL, -1, t, mp->size[t][0] + mp->size[t][1] + mp->size[t][2]);
			mp->ev[s].dep = tp->prod_pos;
			mp->mem_write_bits += mp->ev[s].bits;
			tp->in_mem = 1;
			tp->ready_ev = s; /* a later load of it waits for this copy */
		}
	}
	for (int v = 0; v < nv; v++) {
		mp->vict = egrow(mp->vict, &mp->capvict, mp->nvict + 1, sizeof *mp->vict);
		mp->vict[mp->nvict++] = victims[v];
	}
	free_dep(p, need, &fpos, lev);
	*dep = max_int(*dep, fpos);
	return nv;
}

static void
flog_push(struct planner *p, const double *bits, int pos, int lev)
{
	size_t n = p->nflog;

	if (n + 1 > p->capflog) {
		size_t cap = p->capflog;
		p->flog_pos = egrow(p->flog_pos, &cap, n + 1, sizeof *p->flog_pos);
		p->flog_ev = erealloc(p->flog_ev, sizeof *p->flog_ev * cap);
		p->flog_cum = erealloc(p->flog_cum, sizeof *p->flog_cum * cap);
		p->capflog = cap;
	}
	p->flog_pos[n] = n ? max_int(pos, p->flog_pos[n - 1]) : pos;
	p->flog_ev[n] = n ? max_int(lev, p->flog_ev[n - 1]) : lev;
	for (int b = 0; b < BUF_COUNT; b++)
		p->flog_cum[n][b] = bits[b] + (n ? p->flog_cum[n - 1][b] : 0);
	p->nflog++;
}

/*
 * Attach the victims just recorded (from vict_start), the waits for their spills and loads and
 * the load lev to event e, which was added after them. The victims leave when e starts, so what
 * later relies on their room waits for e: for an op, through its position; for a load, through
 * the event itself (transfers keep their order, so that covers earlier loads as well).
 */
static void
attach_victims(struct sim_mplan *mp, struct planner *p, int e, size_t vict_start, int dep, int lev)
{
	struct pevent *ev = &mp->ev[e];
	int pos = ev->kind == PE_OP ? mp->pos[ev->op] : -1, ld = ev->kind == PE_LOAD ? e : -1;

	ev->vict0 = (int)vict_start;
	ev->nvict = (int)(mp->nvict - vict_start);
	ev->dep = max_int(ev->dep, dep);
	ev->wait0 = (int)mp->nwaits;
	ev->nwait = 0;
	for (int v = 0; v < ev->nvict; v++) {
		int t = mp->vict[ev->vict0 + v];
		add_wait(mp, e, p->t[t].ready_ev);
		flog_push(p, mp->size[t], pos, ld);
	}
	add_wait(mp, e, lev);
}

static void
pl_alloc(struct planner *p, int t)
{
	for (int b = 0; b < BUF_COUNT; b++) {
		p->used[b] += p->mp->size[t][b];
		if (p->used[b] > p->mp->peak[b])
			p->mp->peak[b] = p->used[b];
	}
	reside(p, t);
}

/* A load of t for the op at position k; returns its event, or -1 if it cannot be placed. */
static int
pl_load(struct planner *p, int t, int k, int speculative)
{
	struct sim_mplan *mp = p->mp;
	size_t vs = mp->nvict;
	int dep, lev, full, e;

	if (pl_room(p, mp->size[t], k, speculative, &dep, &lev, &full) < 0)
		return -1;
	e = add_event(mp, PE_LOAD, -1, t, mp->size[t][0] + mp->size[t][1] + mp->size[t][2]);
	attach_victims(mp, p, e, vs, dep, lev);
	add_wait(mp, e, p->t[t].ready_ev); /* its spill, if it was spilled */
	memcpy(mp->ev[e].alloc, mp->size[t], sizeof mp->ev[e].alloc);
	pl_alloc(p, t);
	p->t[t].ready_ev = e;
	mp->mem_read_bits += mp->ev[e].bits;
	return e;
}

static void
log_free(struct planner *p, int t, int k)
{
	flog_push(p, p->mp->size[t], k, -1);
	for (int b = 0; b < BUF_COUNT; b++)
		p->used[b] -= p->mp->size[t][b];
	unreside(p, t);
}

/* Plan the op at position k. */
static void
plan_step(struct planner *p, int k)
{
	struct sim_mplan *mp = p->mp;
	const struct workload *w = p->w;
	int i = mp->order[k], capacity = 0;
	const struct wl_op *op = &w->op[i];
	int loads[WL_MAX_IN], nl = 0, e, dep = -1, lev = -1, full = -1;
	double stream = 0;
	size_t vs;

	/* inputs: on chip, loaded now, or streamed */
	for (int q = 0; q < op->nin; q++) {
		int t = op->in[q];
		struct tplan *tp = &p->t[t];
		if (w->t[t].cls == WL_STATE) {
			stream += mp->size[t][0] + mp->size[t][1];
			mp->mem_read_bits += mp->size[t][0] + mp->size[t][1];
			continue;
		}
		if (tp->res) {
			loads[nl++] = tp->ready_ev;
			continue;
		}
		if (fits_alone(p->c, mp->size[t]) && (e = pl_load(p, t, k, 0)) >= 0) {
			loads[nl++] = e;
			continue;
		}
		stream += mp->size[t][0] + mp->size[t][1] + mp->size[t][2];
		mp->mem_read_bits += mp->size[t][0] + mp->size[t][1] + mp->size[t][2];
		capacity = 1;
	}
	/* the result: room on chip, or streamed out */
	vs = mp->nvict;
	if (op->out >= 0) {
		int t = op->out;
		if (fits_alone(p->c, mp->size[t]) && pl_room(p, mp->size[t], k, 0, &dep, &lev, &full) >= 0) {
			pl_alloc(p, t);
		} else {
			stream += mp->size[t][0] + mp->size[t][1] + mp->size[t][2];
			mp->mem_write_bits += mp->size[t][0] + mp->size[t][1] + mp->size[t][2];
			p->t[t].in_mem = 1;
			capacity = 1;
		}
		p->t[t].prod_pos = k;
	}
	if (op->kind == WL_UPDATE) {
		/* the state goes back, and the updated weights with it */
		double wb = mp->size[op->a][1] + mp->size[op->a][2];
		stream += wb;
		mp->mem_write_bits += wb;
		for (int q = 0; q < op->nin; q++)
			if (w->t[op->in[q]].cls == WL_STATE) {
				stream += mp->size[op->in[q]][1];
				mp->mem_write_bits += mp->size[op->in[q]][1];
			}
		p->t[op->a].in_mem = 1;
	}
	e = add_event(mp, PE_OP, i, -1, stream);
	mp->op_ev[i] = e;
	attach_victims(mp, p, e, vs, dep, lev);
	if (op->out >= 0 && p->t[op->out].res) {
		memcpy(mp->ev[e].alloc, mp->size[op->out], sizeof mp->ev[e].alloc);
		if (dep >= 0 || mp->ev[e].nvict)
			mp->ev[e].reason = full == BUF_MASK ? ST_MASK_BUFFER_FULL : ST_BUFFER_FULL;
	}
	for (int q = 0; q < nl; q++)
		add_wait(mp, e, loads[q]);
	if (capacity)
		mp->ev[e].reason = full == BUF_MASK ? ST_MASK_BUFFER_FULL : ST_BUFFER_FULL;
	/* reads done at k; frees when the op completes */
	mp->ev[e].free0 = (int)mp->nfrees;
	for (int q = 0; q < op->nin; q++) {
		int t = op->in[q];
		struct tplan *tp = &p->t[t];
		tp->last_read = k;
		while (p->rd_start[t] + tp->cursor < p->rd_start[t + 1] &&
		       p->rd[p->rd_start[t] + tp->cursor] <= k)
			tp->cursor++;
		if (tp->res && pl_next_use(p, t) == NEVER) {
			log_free(p, t, k);
			mp->frees = egrow(mp->frees, &mp->capfrees, mp->nfrees + 1, sizeof *mp->frees);
			mp->frees[mp->nfrees++] = t;
			mp->ev[e].nfree++;
		}
	}
	if (op->out >= 0 && p->t[op->out].res && pl_next_use(p, op->out) == NEVER) {
		log_free(p, op->out, k);
		mp->frees = egrow(mp->frees, &mp->capfrees, mp->nfrees + 1, sizeof *mp->frees);
		mp->frees[mp->nfrees++] = op->out;
		mp->ev[e].nfree++;
	}
	/* prefetch the inputs of the next ops while the room is there without spilling; ops before
	 * the cursor have been prefetched already */
	if (p->pf <= k)
		p->pf = k + 1;
	for (; p->pf < mp->w->nop && p->pf <= k + PREFETCH_WINDOW; p->pf++) {
		const struct wl_op *o2 = &w->op[mp->order[p->pf]];
		for (int q = 0; q < o2->nin; q++) {
			int t = o2->in[q];
			if (p->t[t].res || !p->t[t].in_mem || w->t[t].cls == WL_STATE ||
			    !fits_alone(p->c, mp->size[t]))
				continue;
			if (pl_load(p, t, p->pf, 1) < 0)
				return;
		}
	}
}

static void
mplan_order(struct sim_mplan *mp)
{
	const struct workload *w = mp->w;
	int *posin = emalloc(sizeof *posin * (size_t)(w->nop + 1));
	int *start = emalloc(sizeof *start * (size_t)(w->nop + 2));

	/* per block, a stable counting sort of its ops by position in their stream */
	for (int i0 = 0, i1; i0 < w->nop; i0 = i1) {
		int cnt[WL_MAX_IN * 4] = {0}, last[WL_MAX_IN * 4], maxpos = 0;
		for (int st = 0; st < WL_MAX_IN * 4; st++)
			last[st] = -1;
		for (i1 = i0; i1 < w->nop && w->op[i1].block == w->op[i0].block; i1++) {
			int st = w->op[i1].stream;
			posin[i1] = cnt[st]++;
			mp->pred[i1] = last[st];
			last[st] = i1;
			if (posin[i1] + 1 > maxpos)
				maxpos = posin[i1] + 1;
		}
		memset(start, 0, sizeof *start * (size_t)(maxpos + 1));
		for (int i = i0; i < i1; i++)
			start[posin[i] + 1]++;
		start[0] = i0;
		for (int q = 1; q <= maxpos; q++)
			start[q] += start[q - 1];
		for (int i = i0; i < i1; i++) {
			int k = start[posin[i]]++;
			mp->order[k] = i;
			mp->pos[i] = k;
		}
		mp->block_last[w->op[i0].block] = i1 - 1;
	}
	free(posin);
	free(start);
}

int
sim_mplan_fits(const struct sim_mplan *mp, const struct hw_config *c)
{
	for (int b = 0; b < BUF_COUNT; b++)
		if (mp->buf_bits[b] != c->buf_bits[b])
			return 0;
	return 1;
}

void
sim_mplan_free(struct sim_mplan *mp)
{
	if (!mp)
		return;
	free(mp->order);
	free(mp->pos);
	free(mp->pred);
	free(mp->block_last);
	free(mp->op_ev);
	free(mp->ev);
	free(mp->waits);
	free(mp->vict);
	free(mp->frees);
	free(mp->size);
	free(mp);
}

struct sim_mplan *
sim_mplan_new(const struct workload *w, const struct hw_config *c, const struct sim_options *o,
              struct tc_error *err)
{
	struct sim_mplan *mp = ecalloc(1, sizeof *mp);
	struct sim_result scratch;
	struct planner p;
	struct run x;
	double *emb;

	(void)err;
	run_init(&x, w, c, o, &scratch);
	mp->w = w;
	memcpy(mp->buf_bits, c->buf_bits, sizeof mp->buf_bits);
	memcpy(mp->dens, x.dens, sizeof mp->dens);
	mp->order = emalloc(sizeof *mp->order * (size_t)(w->nop + 1));
	mp->pos = emalloc(sizeof *mp->pos * (size_t)(w->nop + 1));
	mp->pred = emalloc(sizeof *mp->pred * (size_t)(w->nop + 1));
	mp->block_last = ecalloc((size_t)w->nblock + 1, sizeof *mp->block_last);
	mp->op_ev = emalloc(sizeof *mp->op_ev * (size_t)(w->nop + 1));
	mp->size = emalloc(sizeof *mp->size * (size_t)(w->nt + 1));
	for (int t = 0; t < w->nt; t++) {
		const struct wl_tensor *tt = &w->t[t];
		mp->size[t][BUF_ACT] = mp->size[t][BUF_WEIGHT] = 0;
		mp->size[t][home(tt->cls)] = data_bits(&x, tt->elements, tt->cls);
		mp->size[t][BUF_MASK] = mask_bits(&x, tt->elements, tt->cls);
	}
	emb = mp->size[w->embedding];
	if (!fits_alone(c, emb)) {
		snprintf(mp->reason, sizeof mp->reason,
		         "the embedding table (%.3g M elements, %.1f MB with its mask) does not fit the %.0f "
		         "MB weight "
		         "buffer and %.0f MB mask buffer",
		         w->t[w->embedding].elements / 1e6, (emb[BUF_WEIGHT] + emb[BUF_MASK]) / 8 / 1048576,
		         c->buf_bits[BUF_WEIGHT] / 8 / 1048576, c->buf_bits[BUF_MASK] / 8 / 1048576);
		return mp;
	}
	mp->feasible = 1;
	mplan_order(mp);
	/* room for the usual counts up front: growing these dominated small plans */
	mp->capev = (size_t)w->nop * 2 + 16;
	mp->ev = emalloc(sizeof *mp->ev * mp->capev);
	mp->capwaits = mp->capev * 2;
	mp->waits = emalloc(sizeof *mp->waits * mp->capwaits);
	mp->capvict = mp->capfrees = (size_t)w->nt + 16;
	mp->vict = emalloc(sizeof *mp->vict * mp->capvict);
	mp->frees = emalloc(sizeof *mp->frees * mp->capfrees);

	memset(&p, 0, sizeof p);
	p.mp = mp;
	p.w = w;
	p.c = c;
	p.t = ecalloc((size_t)w->nt + 1, sizeof *p.t);
	p.victims = emalloc(sizeof *p.victims * (size_t)(w->nt + 1));
	p.res_list = emalloc(sizeof *p.res_list * (size_t)(w->nt + 1));
	p.rd_start = ecalloc((size_t)w->nt + 2, sizeof *p.rd_start);
	for (int i = 0; i < w->nop; i++)
		for (int q = 0; q < w->op[i].nin; q++)
			p.rd_start[w->op[i].in[q] + 2]++;
	for (int t = 0; t < w->nt; t++)
		p.rd_start[t + 2] += p.rd_start[t + 1];
	p.rd = emalloc(sizeof *p.rd * (size_t)(p.rd_start[w->nt + 1] + 1));
	for (int k = 0; k < w->nop; k++) {
		const struct wl_op *op = &w->op[mp->order[k]];
		for (int q = 0; q < op->nin; q++)
			p.rd[p.rd_start[op->in[q] + 1]++] = k;
	}
	for (int t = 0; t < w->nt; t++) {
		p.t[t].in_mem = w->t[t].producer < 0;
		p.t[t].ready_ev = -1;
		p.t[t].last_read = -1;
		p.t[t].prod_pos = -1;
	}
	for (int k = 0; k < w->nop; k++)
		plan_step(&p, k);
	free(p.t);
	free(p.victims);
	free(p.res_list);
	free(p.rd);
	free(p.rd_start);
	free(p.flog_pos);
	free(p.flog_ev);
	free(p.flog_cum);
	return mp;
}

/* ---- timing ---- */

/* Energy (nJ) of an op's activity without leakage of buffers and memory, for traces. */
static double
acc_energy(const struct hw_config *c, int unit, const struct acc *a)
{
	double e = (c->ctl_dyn + c->ctl_leak) * a->tiles;

	if (unit == UNIT_MAC)
		e += (c->lane_dyn + c->lane_leak + c->sparsity_dyn + c->sparsity_leak + c->sr_dyn +
		      c->sr_leak) *
		         a->comp +
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
add_activity(struct sim_result *r, const struct wl_op *op, const struct acc *a)
{
	r->busy[op->unit] += a->comp;
	r->fifo_cycles += a->fifo;
	r->ctl_tiles += a->tiles;
	for (int b = 0; b < BUF_COUNT; b++)
		r->blocks[b] += a->blocks[b];
	r->buf_read_bits += a->buf_r;
	r->buf_write_bits += a->buf_w;
	r->macs += a->macs;
	r->tiles += (long)a->tiles;
}

static void
trace_transfer(const struct sim_options *o, const struct sim_mplan *mp, const struct pevent *ev, double start,
               double end, const struct hw_config *c)
{
	const char *kind = ev->kind == PE_LOAD ? "load" : ev->kind == PE_SPILL ? "spill" : "stream";
	const char *name = ev->kind == PE_OP ? mp->w->op[ev->op].name : mp->w->t[ev->tensor].name;

	o->trace(o->trace_ctx, kind, name, start, end, 1, 0, end - start,
	         ev->bits / c->prof->word_bits / c->prof->block_elements * c->mem_nj_per_block);
}

static double
xfer_cycles(const struct hw_config *c, double bits)
{
	double cyc = ceil(bits / c->mem_bits_per_cycle - 1e-9);

	return cyc < 1 ? 1 : cyc;
}

/* Things that end at a time: busy groups of units (count n) and, in the cycle fidelity, jobs of
 * an op (op, count n) and transfers (op -1, event n). A binary min-heap by time. */
struct tev {
	double time;
	int op;
	long n;
};

struct theap {
	struct tev *e;
	size_t n, cap;
};

static void
theap_push(struct theap *h, struct tev v)
{
	size_t i;

	h->e = egrow(h->e, &h->cap, h->n + 1, sizeof *h->e);
	i = h->n++;
	while (i > 0 && h->e[(i - 1) / 2].time > v.time) {
		h->e[i] = h->e[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->e[i] = v;
}

static struct tev
theap_pop(struct theap *h)
{
	struct tev top = h->e[0], last = h->e[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->e[c + 1].time < h->e[c].time)
			c++;
		if (last.time <= h->e[c].time)
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->n)
		h->e[i] = last;
	return top;
}

/* Units of one class: the busy groups and how many are free. */
struct pool {
	struct theap busy;
	long free;
	double last_start;
};

static void
pool_push(struct pool *p, double end, long n)
{
	theap_push(&p->busy, (struct tev){end, -1, n});
	p->free -= n;
}

static struct tev
pool_pop(struct pool *p)
{
	struct tev top = theap_pop(&p->busy);

	p->free += top.n;
	return top;
}

/* The earliest time >= t at which n units are free, taking units in a fixed order of ops (no op
 * starts before the one before it in its class): monotone in every duration and in the count. */
static double
pool_take(struct pool *p, double t, long n)
{
	if (t < p->last_start)
		t = p->last_start;
	while (p->busy.n && p->busy.e[0].time <= t)
		pool_pop(p);
	while (p->free < n && p->busy.n) {
		struct tev g = pool_pop(p);
		if (g.time > t)
			t = g.time;
	}
	p->last_start = t;
	return t;
}

/* Waiting for the producer: a stream that has finished its part of a block waits for the other
 * streams' results until the block ends. */
static void
producer_stalls(struct sim_result *r, const struct sim_mplan *mp, const double *op_end)
{
	const struct workload *w = mp->w;

	for (int i0 = 0, i1; i0 < w->nop; i0 = i1) {
		double block_end = 0;
		char seen[WL_MAX_IN * 4] = {0}; /* streams are heads: MODEL_MAX_HEADS at most */
		for (i1 = i0; i1 < w->nop && w->op[i1].block == w->op[i0].block; i1++)
			block_end = op_end[i1] > block_end ? op_end[i1] : block_end;
		for (int i = i1 - 1; i >= i0; i--)
			if (!seen[w->op[i].stream]) {
				seen[w->op[i].stream] = 1;
				r->stalls[ST_PRODUCER] += block_end - op_end[i];
			}
	}
}

/*
 * Fast timing: one pass over the plan's events in order, every start a maximum of the times it
 * waits for (max-plus), units taken in the canonical order. Stalls: the time an op's stream waits
 * beyond its predecessor, charged to what it waited for last.
 */
static void
time_fast(struct sim_result *r, const struct sim_plan *pl, const struct sim_mplan *mp,
          const struct hw_config *c)
{
	const struct workload *w = mp->w;
	double *ev_end = emalloc(sizeof *ev_end * (size_t)(mp->nev + 1));
	double *op_end = emalloc(sizeof *op_end * (size_t)(w->nop + 1));
	double *prefix = emalloc(sizeof *prefix * (size_t)(w->nop + 1));
	double chan = 0, last = 0;
	struct pool pools[UNIT_COUNT];
	const long units[UNIT_COUNT] = {c->lanes, c->softmax, c->layernorm};

	memset(pools, 0, sizeof pools);
	for (int u = 0; u < UNIT_COUNT; u++)
		pools[u].free = units[u];
	for (int e = 0; e < mp->nev; e++) {
		const struct pevent *ev = &mp->ev[e];
		double t = ev->dep >= 0 ? prefix[ev->dep] : 0, twait = t;
		int why = ev->dep >= 0 ? ev->reason : ST_DATA_NOT_IN_BUFFER;
		for (int q = 0; q < ev->nwait; q++) {
			int f = mp->waits[ev->wait0 + q];
			if (ev_end[f] > t) {
				t = ev_end[f];
				why = mp->ev[f].kind == PE_SPILL ? ev->reason : ST_DATA_NOT_IN_BUFFER;
			}
		}
		twait = t;
		if (ev->kind != PE_OP) {
			double s = t > chan ? t : chan, cyc = xfer_cycles(c, ev->bits);
			ev_end[e] = s + cyc;
			chan = s + cyc;
			r->mem_busy += cyc;
			r->transfers++;
			if (pl->o.trace)
				trace_transfer(&pl->o, mp, ev, s, s + cyc, c);
			continue;
		}
		{
			int i = ev->op, k = mp->pos[i];
			const struct wl_op *op = &w->op[i];
			const struct op_plan *opl = &pl->op[i];
			double base = 0, start, cend, end;
			int blk = op->block;
			if (mp->pred[i] >= 0)
				base = op_end[mp->pred[i]];
			if (blk > 0 && prefix[mp->block_last[blk - 1]] > base)
				base = prefix[mp->block_last[blk - 1]];
			if (twait > base) {
				r->stalls[why] += twait - base;
				base = twait;
			}
			start = pool_take(&pools[op->unit], base, opl->jobs);
			if (start > base)
				r->stalls[ST_COMPUTE_BUSY] += start - base;
			cend = start + opl->dur_fast;
			pool_push(&pools[op->unit], cend, opl->jobs);
			end = cend;
			if (ev->bits > 0) {
				double s = start > chan ? start : chan, cyc = xfer_cycles(c, ev->bits);
				if (pl->o.trace)
					trace_transfer(&pl->o, mp, ev, s, s + cyc, c);
				chan = s + cyc;
				r->mem_busy += cyc;
				r->transfers++;
				if (chan > end) {
					r->stalls[ev->reason] += chan - end;
					end = chan;
				}
			}
			ev_end[e] = end;
			op_end[i] = end;
			prefix[k] = k > 0 && prefix[k - 1] > end ? prefix[k - 1] : end;
			if (end > last)
				last = end;
			add_activity(r, op, &opl->acc);
			r->jobs += opl->jobs;
			if (pl->o.trace)
				pl->o.trace(pl->o.trace_ctx, wl_kind_names[op->kind], op->name, start, end,
				            opl->jobs, (long)opl->acc.tiles, opl->acc.comp,
				            acc_energy(c, op->unit, &opl->acc));
		}
	}
	r->cycles = last > chan ? last : chan;
	producer_stalls(r, mp, op_end);
	for (int u = 0; u < UNIT_COUNT; u++)
		free(pools[u].busy.e);
	free(ev_end);
	free(op_end);
	free(prefix);
}

/*
 * Cycle timing: an event-driven run of the same plan with every job of every op costed tile by
 * tile; the channel moves transfers in plan order as their waits are met; an op starts when its
 * stream, its block and its waits allow, and its jobs take free units, lowest canonical position
 * first, as they free up. Occupancy of the buffers is tracked as it happens.
 */

struct cstate {
	const struct sim_plan *pl;
	const struct sim_mplan *mp;
	const struct hw_config *c;
	struct sim_result *r;
	struct run x;
	struct theap heap;
	double *ev_end; /* completion time of each event, or -1 */
	char *ev_started;
	int *started, *done;
	long *dispatched, *running;
	struct acc *acc;
	double *op_start, *op_end;
	double now, chan_free;
	int chan_next; /* next transfer event in plan order */
	int chan_ev;   /* event in flight, or -1 */
	long freeu[UNIT_COUNT];
	int done_prefix; /* every op at positions <= done_prefix is done */
	int first_open;  /* lowest position not started */
	double used[BUF_COUNT];
};

static int
waits_met(const struct cstate *s, const struct pevent *ev)
{
	if (ev->dep >= 0 && s->done_prefix < ev->dep)
		return 0;
	for (int q = 0; q < ev->nwait; q++)
		if (s->ev_end[s->mp->waits[ev->wait0 + q]] < 0)
			return 0;
	return 1;
}

static void
occupy(struct cstate *s, const struct pevent *ev)
{
	for (int v = 0; v < ev->nvict; v++)
		for (int b = 0; b < BUF_COUNT; b++)
			s->used[b] -= s->mp->size[s->mp->vict[ev->vict0 + v]][b];
	for (int b = 0; b < BUF_COUNT; b++) {
		s->used[b] += ev->alloc[b];
		if (s->used[b] > s->r->peak_bits[b])
			s->r->peak_bits[b] = s->used[b];
	}
}

/* Start the next transfer of the plan if the channel is idle and its waits are met. */
static void
chan_kick(struct cstate *s)
{
	const struct sim_mplan *mp = s->mp;

	if (s->chan_ev >= 0)
		return;
	while (s->chan_next < mp->nev) {
		const struct pevent *ev = &mp->ev[s->chan_next];
		double cyc;
		if (ev->kind == PE_OP && ev->bits <= 0) {
			s->chan_next++;
			continue;
		}
		if (ev->kind == PE_OP ? !s->started[ev->op] : !waits_met(s, ev))
			return;
		if (ev->kind == PE_LOAD)
			occupy(s, ev);
		cyc = xfer_cycles(s->c, ev->bits);
		s->chan_ev = s->chan_next++;
		s->ev_started[s->chan_ev] = 1;
		s->r->mem_busy += cyc;
		s->r->transfers++;
		theap_push(&s->heap, (struct tev){s->now + cyc, -1, s->chan_ev});
		if (s->pl->o.trace)
			trace_transfer(&s->pl->o, mp, ev, s->now, s->now + cyc, s->c);
		return;
	}
}

static void
c_finish(struct cstate *s, int i)
{
	const struct sim_mplan *mp = s->mp;
	const struct pevent *ev = &mp->ev[mp->op_ev[i]];
	const struct wl_op *op = &mp->w->op[i];

	s->done[i] = 1;
	s->op_end[i] = s->now;
	s->ev_end[mp->op_ev[i]] = s->now;
	for (int f = 0; f < ev->nfree; f++)
		for (int b = 0; b < BUF_COUNT; b++)
			s->used[b] -= mp->size[mp->frees[ev->free0 + f]][b];
	while (s->done_prefix + 1 < mp->w->nop && s->done[mp->order[s->done_prefix + 1]])
		s->done_prefix++;
	add_activity(s->r, op, &s->acc[i]);
	s->r->jobs += s->pl->op[i].jobs;
	if (s->pl->o.trace)
		s->pl->o.trace(s->pl->o.trace_ctx, wl_kind_names[op->kind], op->name, s->op_start[i], s->now,
		               s->pl->op[i].jobs, (long)s->acc[i].tiles, s->acc[i].comp,
		               acc_energy(s->c, op->unit, &s->acc[i]));
}

/* Is op i done with its compute and its streams? */
static void
c_maybe_finish(struct cstate *s, int i)
{
	int e = s->mp->op_ev[i];
	const struct pevent *ev = &s->mp->ev[e];

	if (s->done[i] || !s->started[i] || s->running[i] || s->dispatched[i] < s->pl->op[i].jobs)
		return;
	if (ev->bits > 0 && !(s->ev_started[e] && s->chan_ev != e))
		return;
	c_finish(s, i);
}

/* Dispatch k jobs of op i now; jobs of equal duration end in one event. */
static void
c_dispatch(struct cstate *s, int i, long k)
{
	const struct op_plan *opl = &s->pl->op[i];
	double durs[32];
	long counts[32];
	int nd = 0;

	for (long j = s->dispatched[i]; j < s->dispatched[i] + k; j++) {
		long p0 = (long)((double)j * opl->g.T / opl->jobs),
		     p1 = (long)((double)(j + 1) * opl->g.T / opl->jobs);
		double dur = job_cost(&s->x, &opl->g, p0, p1, &s->acc[i]);
		int f = 0;
		while (f < nd && durs[f] != dur)
			f++;
		if (f == nd) {
			if (nd == 32) {
				for (int q = 0; q < nd; q++)
					theap_push(&s->heap, (struct tev){s->now + durs[q], i, counts[q]});
				nd = f = 0;
			}
			durs[nd] = dur;
			counts[nd++] = 0;
		}
		counts[f]++;
	}
	for (int q = 0; q < nd; q++)
		theap_push(&s->heap, (struct tev){s->now + durs[q], i, counts[q]});
	s->dispatched[i] += k;
	s->running[i] += k;
	s->freeu[s->mp->w->op[i].unit] -= k;
}

static int
c_ready(const struct cstate *s, int i, int *why)
{
	const struct sim_mplan *mp = s->mp;
	const struct wl_op *op = &mp->w->op[i];
	const struct pevent *ev = &mp->ev[mp->op_ev[i]];

	if (mp->pred[i] >= 0 && !s->done[mp->pred[i]])
		return *why = -1, 0;
	if (op->block > 0 && s->done_prefix < mp->block_last[op->block - 1])
		return *why = -1, 0;
	for (int q = 0; q < ev->nwait; q++) {
		int f = mp->waits[ev->wait0 + q];
		if (s->ev_end[f] < 0) {
			*why = mp->ev[f].kind == PE_SPILL ? ev->reason
			       : s->ev_started[f]         ? ST_DATA_NOT_IN_BUFFER
			                                  : ST_BUFFER_BUSY;
			return 0;
		}
	}
	if (ev->dep >= 0 && s->done_prefix < ev->dep)
		return *why = ev->reason, 0;
	return 1;
}

static int
time_cycle(struct sim_result *r, const struct sim_plan *pl, const struct sim_mplan *mp,
           const struct hw_config *c, struct tc_error *err)
{
	const struct workload *w = mp->w;
	struct cstate s;
	int left = w->nop, rc = 0;

	memset(&s, 0, sizeof s);
	s.pl = pl, s.mp = mp, s.c = c, s.r = r;
	run_init(&s.x, w, c, &pl->o, r);
	s.ev_end = emalloc(sizeof *s.ev_end * (size_t)(mp->nev + 1));
	for (int e = 0; e < mp->nev; e++)
		s.ev_end[e] = -1;
	s.ev_started = ecalloc((size_t)mp->nev + 1, 1);
	s.started = ecalloc((size_t)w->nop + 1, sizeof *s.started);
	s.done = ecalloc((size_t)w->nop + 1, sizeof *s.done);
	s.dispatched = ecalloc((size_t)w->nop + 1, sizeof *s.dispatched);
	s.running = ecalloc((size_t)w->nop + 1, sizeof *s.running);
	s.acc = ecalloc((size_t)w->nop + 1, sizeof *s.acc);
	s.op_start = ecalloc((size_t)w->nop + 1, sizeof *s.op_start);
	s.op_end = ecalloc((size_t)w->nop + 1, sizeof *s.op_end);
	s.chan_ev = -1;
	s.done_prefix = -1;
	s.freeu[UNIT_MAC] = c->lanes;
	s.freeu[UNIT_SOFTMAX] = c->softmax;
	s.freeu[UNIT_LN] = c->layernorm;
	while (left > 0) {
		int progress = 1;
		double dt;
		while (progress) {
			progress = 0;
			chan_kick(&s);
			while (s.first_open < w->nop && s.started[mp->order[s.first_open]])
				s.first_open++;
			for (int k = s.first_open; k < w->nop && k < s.first_open + 4 * PREFETCH_WINDOW;
			     k++) {
				int i = mp->order[k], why;
				if (s.started[i] || !c_ready(&s, i, &why))
					continue;
				s.started[i] = 1;
				s.op_start[i] = s.now;
				occupy(&s, &mp->ev[mp->op_ev[i]]);
				progress = 1;
			}
			for (int k = s.done_prefix + 1; k < w->nop; k++) {
				int i = mp->order[k];
				long n;
				if (k > s.first_open + 4 * PREFETCH_WINDOW)
					break;
				if (!s.started[i] || s.dispatched[i] == pl->op[i].jobs)
					continue;
				n = pl->op[i].jobs - s.dispatched[i];
				if (n > s.freeu[w->op[i].unit])
					n = s.freeu[w->op[i].unit];
				if (n > 0) {
					c_dispatch(&s, i, n);
					progress = 1;
				}
			}
			chan_kick(&s);
		}
		if (s.heap.n == 0) {
			/* nothing can move: the plan's order guarantees this never happens */
			tc_error_set(err, "cycle simulation stalled at cycle %.0f with %d ops left", s.now,
			             left);
			rc = -1;
			break;
		}
		dt = s.heap.e[0].time - s.now;
		/* stalls: streams whose next op waits */
		if (dt > 0)
			for (int k = s.first_open; k < w->nop && k < s.first_open + 4 * PREFETCH_WINDOW;
			     k++) {
				int i = mp->order[k], why = -1;
				if (s.done[i])
					continue;
				if (!s.started[i]) {
					if (!c_ready(&s, i, &why) && why >= 0)
						r->stalls[why] += dt;
				} else if (s.dispatched[i] < pl->op[i].jobs) {
					r->stalls[ST_COMPUTE_BUSY] += dt;
				} else if (!s.running[i]) {
					r->stalls[mp->ev[mp->op_ev[i]].reason] += dt;
				}
			}
		s.now = s.heap.e[0].time;
		while (s.heap.n && s.heap.e[0].time <= s.now) {
			struct tev j = theap_pop(&s.heap);
			if (j.op >= 0) {
				s.running[j.op] -= j.n;
				s.freeu[w->op[j.op].unit] += j.n;
				if (!s.running[j.op] && s.dispatched[j.op] == pl->op[j.op].jobs) {
					int before = s.done[j.op];
					c_maybe_finish(&s, j.op);
					left -= s.done[j.op] && !before;
				}
			} else {
				const struct pevent *ev = &mp->ev[j.n];
				s.chan_ev = -1;
				if (ev->kind == PE_OP) {
					int before = s.done[ev->op];
					c_maybe_finish(&s, ev->op);
					left -= s.done[ev->op] && !before;
				} else {
					s.ev_end[j.n] = s.now;
				}
			}
		}
	}
	/* the last transfers */
	while (s.heap.n || s.chan_next < mp->nev) {
		chan_kick(&s);
		if (!s.heap.n)
			break;
		{
			struct tev j = theap_pop(&s.heap);
			s.now = j.time;
			if (j.op < 0) {
				s.chan_ev = -1;
				if (mp->ev[j.n].kind != PE_OP)
					s.ev_end[j.n] = s.now;
			}
		}
	}
	r->cycles = s.now;
	producer_stalls(r, mp, s.op_end);
	free(s.heap.e);
	free(s.ev_end);
	free(s.ev_started);
	free(s.started);
	free(s.done);
	free(s.dispatched);
	free(s.running);
	free(s.acc);
	free(s.op_start);
	free(s.op_end);
	return rc;
}

/* ---- results ---- */

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

int
sim_time(struct sim_result *r, const struct sim_plan *pl, const struct sim_mplan *mp,
         const struct hw_config *c, struct tc_error *err)
{
	memset(r, 0, sizeof *r);
	r->ops = mp->w->nop;
	if (!mp->feasible) {
		snprintf(r->reason, sizeof r->reason, "%s", mp->reason);
		return 0;
	}
	r->feasible = 1;
	r->units[UNIT_MAC] = c->lanes;
	r->units[UNIT_SOFTMAX] = c->softmax;
	r->units[UNIT_LN] = c->layernorm;
	r->mem_read_bits = mp->mem_read_bits;
	r->mem_write_bits = mp->mem_write_bits;
	r->mem_blocks =
	    (mp->mem_read_bits + mp->mem_write_bits) / c->prof->word_bits / c->prof->block_elements;
	if (pl->o.fidelity == SIM_FAST) {
		memcpy(r->peak_bits, mp->peak, sizeof r->peak_bits);
		time_fast(r, pl, mp, c);
	} else if (time_cycle(r, pl, mp, c, err) < 0) {
		return -1;
	}
	sim_energy(r, c);
	return 0;
}

int
sim_run(struct sim_result *r, const struct workload *w, const struct hw_config *c,
        const struct sim_options *o, struct tc_error *err)
{
	struct sim_plan *p = sim_plan_new(w, c, o, err);
	struct sim_mplan *mp;
	int rc;

	if (!p) {
		memset(r, 0, sizeof *r);
		return -1;
	}
	mp = sim_mplan_new(w, c, o, err);
	rc = sim_time(r, p, mp, c, err);
	sim_mplan_free(mp);
	sim_plan_free(p);
	return rc;
}
