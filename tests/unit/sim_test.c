/*
 * sim_test.c: unit tests of lib/hw, lib/workload and lib/sim against independent references:
 * parameter and MAC counts of the reference models worked out by hand; the fast fidelity's closed
 * form of every operation against the sum of the cycle fidelity's tile-by-tile job costs over
 * all 24 loop orders and many job counts; the memory plan's promise that the buffers never
 * overflow, checked by the cycle fidelity's occupancy; workload invariants. It includes sim.c to
 * reach the static cost functions. Prints TAP; exits 1 on any failure.
 */
#include "../../lib/sim.c"

#include <stdarg.h>
#include <stdio.h>

#include "rng.h"
#include "sample.h"
#include "tap.h"

static struct hw_profile prof;
static struct model_space tiny, fb2;
static struct accel_space acc;

static void
load(void)
{
	struct tc_error err;

	if (hw_profile_load(&prof, "share/hw/acceltran-14nm.json", &err) < 0 ||
	    model_space_load(&tiny, "share/space/tiny.json", &err) < 0 ||
	    model_space_load(&fb2, "share/space/flexibert2.json", &err) < 0 ||
	    accel_space_load(&acc, "share/space/acceltran.json", &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
}

/* The model or accelerator (key) of share/preset/NAME.json, checked against its space. */
static void
preset(void *out, const char *name, const char *key)
{
	char path[128];
	struct tc_error err;
	json_t *r;
	int rc;

	snprintf(path, sizeof path, "share/preset/%s.json", name);
	r = json_load_file(path, 0, NULL);
	rc = !r                          ? -1
	     : strcmp(key, "model") == 0 ? model_from_json(out, json_object_get(r, key), &fb2, &err)
	                                 : accel_from_json(out, json_object_get(r, key), &acc, &err);
	if (rc < 0) {
		printf("Bail out! %s\n", path);
		exit(1);
	}
	json_decref(r);
}

/* Hand counts: embeddings (V + N) x h; per layer Q, K, V (h x d per head), W_O (n d x h), FF in and
 * out; pooler h x h; classifier h x C. Forward MACs: projections B N h d x 3 per head, scores and
 * context B N N d per head each, W_O B N n d h, FF 2 B N h f, pooler B h h, classifier B h C. */
static void
test_counts(void)
{
	struct wl_options o = {4, 128, 30522, 2, 0, 2, 4, 1};
	struct workload w;
	struct model m;
	struct tc_error err;
	double B = 4, N = 128, h, f, d, n, L, mac;

	preset(&m, "bert-tiny", "model");
	workload_build(&w, &m, &o, &err);
	h = 128, f = 512, d = 64, n = 2, L = 2;
	check(w.params == (30522 + 128) * h + L * (3 * n * h * d + n * d * h + 2 * h * f) + h * h + h * 2,
	      "BERT-Tiny has %.0f parameters (embeddings, attention, FF, pooler, classifier)", w.params);
	mac = L * (3 * n * B * N * h * d + 2 * n * B * N * N * d + B * N * n * d * h + 2 * B * N * h * f) +
	      B * h * h + B * h * 2;
	check(w.macs == mac, "BERT-Tiny forward: %.4g multiply-accumulates at batch 4 x 128", w.macs);
	workload_release(&w);

	preset(&m, "bert-base", "model");
	workload_build(&w, &m, &o, &err);
	h = 768, f = 3072, d = 64, n = 12, L = 12;
	check(w.params == (30522 + 128) * h + L * (3 * n * h * d + n * d * h + 2 * h * f) + h * h + h * 2,
	      "BERT-Base has %.0f parameters", w.params);
	workload_release(&w);

	o.training = 1;
	preset(&m, "bert-tiny", "model");
	workload_build(&w, &m, &o, &err);
	h = 128, f = 512, d = 64, n = 2, L = 2;
	/* training: forward, then two products per trainable product and both operand gradients of
	 * the two activation products per head */
	mac =
	    3 * (L * (3 * n * B * N * h * d + 2 * n * B * N * N * d + B * N * n * d * h + 2 * B * N * h * f) +
	         B * h * h + B * h * 2);
	check(w.macs == mac, "BERT-Tiny training step: %.4g multiply-accumulates, three times the forward",
	      w.macs);
	workload_release(&w);
}

/* Every tensor an op reads exists before it: produced by an earlier op or in main memory. */
static void
test_workload_order(void)
{
	struct wl_options o = {16, 64, 1000, 3, 1, 2, 4, 1};
	struct sampler smp;
	struct tc_error err;
	double u[200];
	int bad = 0, blocks = 1;

	sampler_init(&smp, SAMPLE_RANDOM, 300, model_sample_dim(&fb2), 5, &err);
	for (uint64_t i = 0; i < 300; i++) {
		struct model m;
		struct workload w;
		sampler_point(&smp, i, u);
		model_decode(&m, &fb2, u);
		workload_build(&w, &m, &o, &err);
		for (int k = 0; k < w.nop; k++) {
			const struct wl_op *op = &w.op[k];
			for (int q = 0; q < op->nin; q++) {
				const struct wl_tensor *t = &w.t[op->in[q]];
				bad += t->producer >= k;
				bad += t->producer >= 0 && w.op[t->producer].block > op->block;
				bad += t->producer >= 0 && w.op[t->producer].block == op->block &&
				       w.op[t->producer].stream != op->stream;
			}
			blocks &= k == 0 || op->block >= w.op[k - 1].block;
		}
		workload_release(&w);
	}
	check(!bad && blocks,
	      "300 random FlexiBERT 2.0 training workloads read only tensors made before, in order");
	sampler_release(&smp);
}

/* The fast closed form of one op against the sum of its jobs costed tile by tile. */
static double worst_longest;
static int over5;

static int
compare_op(const struct run *x, const struct wl_op *op, long J, int exact, char *why, size_t size)
{
	struct geom g;
	struct acc fa = {0}, ca = {0};
	double longest, cmax = 0;

	geom_init(&g, x, op);
	if (J > g.T)
		J = g.T;
	op_cost_fast(x, &g, J, &fa, &longest);
	for (long j = 0; j < J; j++) {
		long p0 = (long)((double)j * g.T / J), p1 = (long)((double)(j + 1) * g.T / J);
		double d = job_cost(x, &g, p0, p1, &ca);
		cmax = d > cmax ? d : cmax;
	}
	if (fa.comp != ca.comp || fa.tiles != ca.tiles || fabs(fa.macs - ca.macs) > 1e-6 * ca.macs) {
		snprintf(why, size, "compute: fast %.0f cycles %.0f tiles, cycle %.0f cycles %.0f tiles",
		         fa.comp, fa.tiles, ca.comp, ca.tiles);
		return 0;
	}
	for (int b = 0; b < BUF_COUNT; b++) {
		double tol = exact ? 1e-9 : 0.12;
		if (fabs(fa.blocks[b] - ca.blocks[b]) > tol * ca.blocks[b] + 1e-9) {
			snprintf(why, size, "%s buffer blocks: fast %.1f, cycle %.1f", hw_buffer_names[b],
			         fa.blocks[b], ca.blocks[b]);
			return 0;
		}
	}
	if (!exact) {
		double dev = fabs(longest - cmax) / (cmax + 2);
		worst_longest = dev > worst_longest ? dev : worst_longest;
		over5 += dev > 0.05;
	}
	/* the closed form spreads the cost evenly over the tiles; where tiles differ (reductions
	 * split across jobs, partial sums read back) the longest job is off by up to a sixth */
	if (!exact && fabs(longest - cmax) > 0.2 * cmax + 2) {
		snprintf(why, size, "longest job: fast %.0f, cycle %.0f", longest, cmax);
		return 0;
	}
	return 1;
}

static void
test_closed_form(void)
{
	static const char *const orders[24] = {
	    "bijk", "bikj", "bjik", "bjki", "bkij", "bkji", "ibjk", "ibkj", "ijbk", "ijkb", "ikbj", "ikjb",
	    "jbik", "jbki", "jibk", "jikb", "jkbi", "jkib", "kbij", "kbji", "kibj", "kijb", "kjbi", "kjib"};
	struct wl_options o = {4, 128, 1000, 2, 1, 2, 4, 1};
	struct accel a;
	struct model m;
	struct workload w;
	struct hw_config c;
	struct tc_error err;
	struct sim_result r;
	char why[256] = "";
	int exact_bad = 0, approx_bad = 0, nexact = 0, napprox = 0;

#ifdef __SANITIZE_ADDRESS__
	/* Under the sanitizers the point is memory, which every fourth order exercises as fully as all
	 * 24 (they share one code path); the plain build compares every order. */
	const int kstep = 4;
#else
	const int kstep = 1;
#endif

	preset(&m, "bert-tiny", "model");
	preset(&a, "acceltran-edge", "accel");
	for (int t = 0; t < 3; t++) {
		a.tile_x = a.tile_y = 8 << t;
		a.tile_b = t == 1 ? 4 : 1;
		for (int training = 0; training < 2; training++) {
			o.training = training;
			workload_build(&w, &m, &o, &err);
			hw_config_init(&c, &prof, &a, training, &err);
			for (int k = 0; k < 24; k += kstep) {
				struct sim_options so = {SIM_FAST, {0.5, 0.5, 0.9}, "", NULL, NULL};
				struct run x;
				strcpy(so.dataflow, orders[k]);
				run_init(&x, &w, &c, &so, &r);
				for (int i = 0; i < w.nop; i++) {
					/* one job: every count exact; many jobs: boundaries averaged */
					if (!compare_op(&x, &w.op[i], 1, 1, why, sizeof why)) {
						if (!exact_bad++)
							printf("# %s, %s, tile %d: %s\n", w.op[i].name,
							       orders[k], a.tile_x, why);
					}
					nexact++;
					for (long J = 7; J < 5000; J *= 9) {
						if (!compare_op(&x, &w.op[i], J, 0, why, sizeof why) &&
						    approx_bad++ < 10)
							printf("# %s, %s, tile %d, %ld jobs: %s\n",
							       w.op[i].name, orders[k], a.tile_x, J, why);
						napprox++;
					}
				}
			}
			workload_release(&w);
		}
	}
	check(!exact_bad,
	      "fast closed form equals the tile-by-tile sum for one job (%d ops x orders x tiles)", nexact);
	printf("# longest job: worst deviation %.1f%%, %d of %d cases over 5%%\n", 100 * worst_longest, over5,
	       napprox);
	check(!approx_bad,
	      "fast closed form for 7 to 4,000 jobs: traffic within 12%%, longest job within 20%% (%d cases)",
	      napprox);
}

/* The cycle fidelity's occupancy, tracked as the plan runs, never exceeds a buffer. */
static void
test_plan_capacity(void)
{
	struct sampler smp;
	struct tc_error err;
	double u[64];
	int over = 0, runs = 0, spilled = 0;

	sampler_init(&smp, SAMPLE_RANDOM, 120, model_sample_dim(&tiny) + accel_sample_dim(&acc), 9, &err);
	for (uint64_t i = 0; i < 120; i++) {
		struct model m;
		struct accel a;
		struct workload w;
		struct hw_config c;
		struct sim_result r;
		struct sim_options so = {SIM_CYCLE, {0.3, 0.3, 0.6}, "bijk", NULL, NULL};
		struct wl_options o;
		sampler_point(&smp, i, u);
		model_decode(&m, &tiny, u);
		accel_decode(&a, &acc, u + model_sample_dim(&tiny));
		a.act_buffer_mb = 4, a.weight_buffer_mb = 8, a.mask_buffer_mb = 1; /* tight: spills happen */
		o = (struct wl_options){a.batch, 128, 30522, 2, (int)(i % 2), 2, 4, 0};
		workload_build(&w, &m, &o, &err);
		hw_config_init(&c, &prof, &a, o.training, &err);
		if (sim_run(&r, &w, &c, &so, &err) < 0) {
			printf("# %s\n", err.msg);
			over++;
		} else if (r.feasible) {
			runs++;
			spilled += r.mem_write_bits > 0;
			for (int b = 0; b < BUF_COUNT; b++)
				if (r.peak_bits[b] > c.buf_bits[b] + 1e-6) {
					if (!over)
						printf("# pair %llu (%s): %s buffer peak %.0f > %.0f bits\n",
						       (unsigned long long)i,
						       o.training ? "training" : "inference",
						       hw_buffer_names[b], r.peak_bits[b], c.buf_bits[b]);
					over++;
				}
		}
		workload_release(&w);
	}
	check(!over && runs > 40 && spilled > 5,
	      "buffers never overflow under the plan (%d feasible runs with 4/8/1 MB buffers, %d spilling)",
	      runs, spilled);
	sampler_release(&smp);
}

int
main(void)
{
	load();
	test_counts();
	test_workload_order();
	test_closed_form();
	test_plan_capacity();
	return tap_done();
}
