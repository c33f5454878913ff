/*
 * train_step.c: the time of one training step of a FlexiBERT 2.0 model in lib/flexibert, and the
 * speed of OpenBLAS's sgemm on the same machine in the same run, for bench/train.
 *
 * Usage: train_step [--threads N[,N...]] [--steps S] [--model JSON] [--batch B] [--seq T] [--vocab V]
 *                   [--eager]
 * Each step has a batch of its own, its tokens drawn from Zipf's law over the vocabulary (the k-th
 * most frequent with weight 1/k, as in text), so that the token embeddings' rows that hold a gradient
 * change from step to step as they do in training. --eager updates every row of them at every step
 * (flexibert_set_eager) instead of deferring the rows without a gradient.
 * After 3 steps unmeasured on each thread count, S times, each thread count in turn: one step
 * unmeasured (the last sgemm products left the step's data out of the caches), one measured, then two
 * sgemm products of n = 1024 on its threads (split as lib/nn.c splits its products), the second timed
 * (the first, with its operands out of the caches, took 5% longer on 1 thread and 9% on 2). A step
 * and the product right after it make a pair, slowed alike by a neighbour who slows the machine for a
 * while.
 * Prints a JSON line for each thread count, in the order given: threads, step_ms_all and sgemm_ms_all
 * (each measured step's and each product's milliseconds, in the order taken), step_ms_median,
 * step_ms_min, gflops and gflops_best (the step's FLOPs over its median and its shortest time),
 * sgemm_gflops and sgemm_gflops_best (sgemm's at its median and its shortest), ratio_paired (the median
 * over the pairs of the step's FLOP/s against its product's), params, peak_rss_mb (the process's, after the
 * first steps, before sgemm's buffers), and what the step spends in its products (lib/gemm: its own kernel,
 * or OpenBLAS with TC_GEMM=openblas, named in "gemm"): gemm_share (the share of the step's time inside them,
 * summed over the threads), gemm_gflops (the rate of those calls, their own FLOPs over their own time) and
 * gemm_bound_gflops (the step's FLOPs over its time in products alone: the rate the step would have if
 * everything but its products took no time); and the medians of the step's phases: forward_ms, backward_ms
 * (with zeroing the gradients), optimizer_ms (clipping and AdamW).
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "flexibert.h"
#include "gemm.h"
#include "nn.h"
#include "rng.h"
#include "space.h"
#include "util.h"

enum {
	WARM = 3, /* steps before any is measured */
	SGEMM_N = 1024,
	MAXRUNS = 8, /* thread counts in one run */
};

/* One thread count's measurements */
struct run {
	int threads;
	double *ms, *ph[3], *sgt, gs, gf; /* the i-th step's ms and its sgemm's seconds; gs, gf: seconds
	                                    and FLOPs in products */
	long helped; /* blocks whose input gradient another thread wrote (gemm_team_stats) */
};

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/*
 * OpenBLAS's sgemm, n x n x n, split over the threads by rows as lib/nn.c splits its products: the
 * seconds of one product
 */
static double
sgemm_once(int n, const float *a, const float *b, float *c)
{
	double t0 = now();
#pragma omp parallel
	{
		int nt = omp_get_num_threads(), t = omp_get_thread_num();
		int lo = n * t / nt, hi = n * (t + 1) / nt;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, n, n, 1.0f, a + (size_t)lo * n,
		            n, b, n, 0.0f, c + (size_t)lo * n, n);
	}
	return now() - t0;
}

/*
 * One training step on the k-th batch of ids (its dropout masks drawn for k): its milliseconds, and those of
 * its phases in ph[0..2] unless ph is NULL
 */
static double
step_k(struct flexibert *fb, const int32_t *ids, const int32_t *labels, int B, int T, uint64_t k, double *ph)
{
	double t0 = now(), t1, t2, t3;

	flexibert_forward(fb, ids + (size_t)k * B * T, labels, B, T, 1, k);
	t1 = now();
	flexibert_zero_grad(fb);
	flexibert_backward(fb);
	t2 = now();
	flexibert_clip(fb, 1.0);
	flexibert_adamw(fb, 1e-4, 0.01);
	t3 = now();
	if (ph)
		ph[0] = (t1 - t0) * 1e3, ph[1] = (t2 - t1) * 1e3, ph[2] = (t3 - t2) * 1e3;
	return (t3 - t0) * 1e3;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"threads", required_argument, NULL, 't'}, {"steps", required_argument, NULL, 's'},
	    {"model", required_argument, NULL, 'm'},   {"batch", required_argument, NULL, 'b'},
	    {"seq", required_argument, NULL, 'q'},     {"vocab", required_argument, NULL, 'v'},
	    {"eager", no_argument, NULL, 'e'},         {NULL, 0, NULL, 0}};
	const char *model = "{\"l\":2,\"o\":[[\"sa_sdp_64\",\"sa_sdp_64\"],[\"sa_sdp_64\",\"sa_sdp_64\"]],"
	                    "\"h\":[128,128],\"f\":[[512],[512]]}";
	int steps = 20, B = 32, T = 128, c, eager = 0, nrun = 1, maxt = 1;
	struct fb_config cfg = {0};
	struct flexibert fb;
	struct tc_error err;
	struct rusage ru;
	struct rng r;
	json_t *mj;
	int32_t *ids, *labels;
	struct run run[MAXRUNS] = {{.threads = 1}};
	double flops, sg;
	uint64_t batch = 0;

	tc_setprogname(argv[0]);
	nn_blas_setup(argv);
	cfg.vocab = 8192;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (c) {
		case 't': {
			char *tok, *save = NULL;
			nrun = 0;
			for (tok = strtok_r(optarg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (nrun == MAXRUNS)
					die("--threads: at most %d counts", MAXRUNS);
				run[nrun++].threads = (int)eparse_long(tok, "--threads", 1, 256);
			}
			if (nrun == 0)
				die("--threads: no count");
			break;
		}
		case 's':
			steps = (int)eparse_long(optarg, "--steps", 1, 100000);
			break;
		case 'm':
			model = optarg;
			break;
		case 'b':
			B = (int)eparse_long(optarg, "--batch", 1, 4096);
			break;
		case 'q':
			T = (int)eparse_long(optarg, "--seq", 1, 512);
			break;
		case 'v':
			cfg.vocab = (int)eparse_long(optarg, "--vocab", 6, 1000000);
			break;
		case 'e':
			eager = 1;
			break;
		default:
			return 2;
		}
	for (int q = 0; q < nrun; q++)
		maxt = run[q].threads > maxt ? run[q].threads : maxt;
	omp_set_num_threads(maxt); /* (the scratch that flexibert_init sizes by the threads) */
	openblas_set_num_threads(1);
	nn_flush_denormals();
	if (!(mj = json_loads(model, 0, NULL)) || model_from_json(&cfg.m, mj, NULL, &err) < 0)
		die("--model: %s", mj ? err.msg : "not JSON");
	json_decref(mj);
	cfg.labels = 45, cfg.max_pos = 512, cfg.objective = FB_CLS, cfg.dropout = 0.1f;
	if (flexibert_init(&fb, &cfg, 1, &err) < 0)
		die("%s", err.msg);
	flexibert_set_eager(&fb, eager);
	size_t nb = (size_t)nrun * (2 * steps + WARM) * B * T;
	double *cdf = emalloc(sizeof *cdf * (size_t)cfg.vocab), z = 0;
	ids = emalloc(sizeof *ids * nb);
	labels = emalloc(sizeof *labels * (size_t)B);
	rng_seed(&r, 2);
	for (int k = 1; k < cfg.vocab; k++) /* ids 1 .. V-1 (0 is padding) by Zipf's law */
		cdf[k] = z += 1.0 / k;
	for (size_t i = 0; i < nb; i++) {
		double u = rng_uniform(&r) * z;
		int lo = 1, hi = cfg.vocab - 1;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		ids[i] = lo;
	}
	free(cdf);
	for (int i = 0; i < B; i++)
		labels[i] = (int)rng_below(&r, 45);
	for (int q = 0; q < nrun; q++) {
		run[q].ms = emalloc(sizeof *run[q].ms * (size_t)steps);
		run[q].sgt = emalloc(sizeof *run[q].sgt * (size_t)steps);
		for (int p = 0; p < 3; p++)
			run[q].ph[p] = emalloc(sizeof *run[q].ph[p] * (size_t)steps);
		omp_set_num_threads(run[q].threads);
		for (int s = 0; s < WARM; s++)
			step_k(&fb, ids, labels, B, T, batch++, NULL);
	}
	getrusage(RUSAGE_SELF, &ru); /* the step's peak, before the sgemm's buffers */

	/*
	 * For each measured step, each thread count in turn: one step unmeasured (the last sgemm left the
	 * step's data out of the caches), the measured step, then two sgemm products, the second timed.
	 * A step and that product make a pair: a neighbour who slows the machine for a while slows both, so
	 * their ratio holds where the medians of each, taken over different moments, need not.
	 */
	size_t nn = (size_t)SGEMM_N * SGEMM_N;
	float *sa = emalloc64(sizeof *sa * nn), *sb = emalloc64(sizeof *sb * nn),
	      *sc = emalloc64(sizeof *sc * nn);
	for (size_t i = 0; i < nn; i++)
		sa[i] = sb[i] = (float)(i % 7) * 0.1f;
	for (int i = 0; i < steps; i++)
		for (int q = 0; q < nrun; q++) {
			struct run *u = &run[q];
			double s0, f0, s1, f1, t[3];
			long h0, h1;
			omp_set_num_threads(u->threads);
			step_k(&fb, ids, labels, B, T, batch++, NULL);
			gemm_stats(&s0, &f0);
			h0 = gemm_team_stats();
			gemm_count(1);
			u->ms[i] = step_k(&fb, ids, labels, B, T, batch++, t);
			gemm_count(0);
			gemm_stats(&s1, &f1);
			h1 = gemm_team_stats();
			u->helped += h1 - h0;
			u->gs += s1 - s0, u->gf += f1 - f0;
			for (int p = 0; p < 3; p++)
				u->ph[p][i] = t[p];
			sgemm_once(SGEMM_N, sa, sb, sc); /* (its operands, to the caches) */
			u->sgt[i] = sgemm_once(SGEMM_N, sa, sb, sc);
		}
	free(sa), free(sb), free(sc);
	flops = flexibert_flops(&cfg, B, T, 1);
	sg = 2.0 * SGEMM_N * SGEMM_N * (double)SGEMM_N / 1e9;
	for (int q = 0; q < nrun; q++) {
		struct run *u = &run[q];
		/* the products' seconds per step and thread (the step's wall time), and FLOPs per step */
		double mean = 0, gs = u->gs / (steps * u->threads), gf = u->gf / steps, *ms = u->ms;
		double *pr = emalloc(sizeof *pr * (size_t)steps);
		printf("{\"threads\":%d,\"step_ms_all\":[", u->threads);
		for (int s = 0; s < steps; s++) {
			mean += ms[s] / steps;
			pr[s] = flops * u->sgt[s] / (ms[s] * 1e-3 * sg * 1e9);
			printf("%s%.2f", s ? "," : "", ms[s]);
		}
		printf("],\"sgemm_ms_all\":[");
		for (int s = 0; s < steps; s++)
			printf("%s%.2f", s ? "," : "", u->sgt[s] * 1e3);
		qsort(ms, (size_t)steps, sizeof *ms, cmp);
		for (int p = 0; p < 3; p++)
			qsort(u->ph[p], (size_t)steps, sizeof *u->ph[p], cmp);
		qsort(u->sgt, (size_t)steps, sizeof *u->sgt, cmp);
		qsort(pr, (size_t)steps, sizeof *pr, cmp);
		printf("],\"step_ms_median\":%.2f,\"step_ms_min\":%.2f,\"gflops\":%.2f,"
		       "\"gflops_best\":%.2f,\"sgemm_gflops\":%.2f,\"sgemm_gflops_best\":%.2f,"
		       "\"ratio_paired\":%.4f,\"flops_per_step\":%.4g,\"params\":%zu,\"peak_rss_mb\":%.1f,"
		       "\"blas_core\":\"%s\",\"gemm\":\"%s\",\"gemm_share\":%.3f,\"gemm_gflops\":%.2f,"
		       "\"gemm_bound_gflops\":%.2f,\"forward_ms\":%.2f,\"backward_ms\":%.2f,\"optimizer_ms\":"
		       "%.2f,\"blocks_helped\":%.2f}\n",
		       ms[steps / 2], ms[0], flops / ms[steps / 2] / 1e6, flops / ms[0] / 1e6,
		       sg / u->sgt[steps / 2], sg / u->sgt[0], (pr[(steps - 1) / 2] + pr[steps / 2]) / 2,
		       flops, fb.nparams, ru.ru_maxrss / 1024.0, openblas_get_corename(),
		       gemm_own() ? "own" : "openblas", gs * 1e3 / mean, gf / gs / 1e9, flops / gs / 1e9,
		       u->ph[0][steps / 2], u->ph[1][steps / 2], u->ph[2][steps / 2],
		       (double)u->helped / steps);
		free(pr), free(u->ms), free(u->sgt), free(u->ph[0]), free(u->ph[1]), free(u->ph[2]);
	}
	flexibert_release(&fb);
	free(ids), free(labels);
	return 0;
}
