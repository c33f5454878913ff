/*
 * surrogate_test: the BOSHCODE networks against the test vectors of boshcode.md section 8, every
 * gradient against central differences, a fit on a known function, and GOBI on a known minimum.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate.h"
#include "tap.h"

static int
near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

static void
test_vectors(void)
{
	static const double relu[3][8] = {
	    {0.3, 0.5, 0.456738, 0.259949, 0.659638, 0.258846, 0.304153, 0.428653},
	    {-1.2, 0.2, -0.011479, 0.016368, -0.014682, -0.072742, 0.015395, 0.128028},
	    {2.0, 3.0, 2.081285, 2.420602, 0.844259, 0.065461, 0.581779, 0.612941}};
	static const double sig[3][8] = {
	    {0.3, 0.5, 0.568143, 0.030525, 0.224320, -0.011045, -0.017315, 0.041872},
	    {-1.0, 2.0, 0.321171, 0.074984, 0.163166, 0.017944, 0.014177, 0.017506},
	    {0.0, 0.0, 0.500000, 0.012582, 0.250000, 0.000000, -0.023145, 0.053886}};
	double dm, ds, l;

	for (int t = 0; t < 2; t++)
		for (int i = 0; i < 3; i++) {
			const double *v = t ? sig[i] : relu[i];
			double m, s, d[4];
			int ok;
			(t ? npn_sigmoid : npn_relu)(v[0], v[1], &m, &s, d);
			ok = near(m, v[2], 2e-6) && near(s, v[3], 2e-6);
			for (int j = 0; j < 4; j++)
				ok &= near(d[j], v[4 + j], 2e-6);
			check(ok,
			      "NPN %s at (%g, %g): moments and derivatives match section 8 (%.6f %.6f %.6f "
			      "%.6f %.6f %.6f)",
			      t ? "sigmoid" : "ReLU", v[0], v[1], m, s, d[0], d[1], d[2], d[3]);
		}
	l = npn_loss(0.6, 0.01, 0.5, &dm, &ds);
	check(near(l, 2.697415, 1e-6) && near(dm, 100, 1e-9) && near(ds, -450, 1e-9),
	      "NPN loss at (0.6, 0.01, 0.5) = %.6f, %g, %g", l, dm, ds);
}

/* Derivatives of the activations against central differences of their own moments. */
static void
test_activation_fd(void)
{
	double worst = 0;

	for (int t = 0; t < 2; t++)
		for (double c = -3; c <= 3; c += 0.37)
			for (double dv = 0.05; dv < 4; dv *= 1.9) {
				double m, s, d[4], mp, sp, mq, sq, h = 1e-6;
				void (*f)(double, double, double *, double *, double *) =
				    t ? npn_sigmoid : npn_relu;
				f(c, dv, &m, &s, d);
				f(c + h, dv, &mp, &sp, NULL);
				f(c - h, dv, &mq, &sq, NULL);
				worst = fmax(worst, fmax(fabs((mp - mq) / (2 * h) - d[0]),
				                         fabs((sp - sq) / (2 * h) - d[2])));
				f(c, dv + h, &mp, &sp, NULL);
				f(c, dv - h, &mq, &sq, NULL);
				worst = fmax(worst, fmax(fabs((mp - mq) / (2 * h) - d[1]),
				                         fabs((sp - sq) / (2 * h) - d[3])));
			}
	check(worst < 1e-6, "NPN activation derivatives agree with central differences (worst %.2g)", worst);
}

static double
net_loss(struct sg_net *n, int d1, const double *x, double y, const struct rng *r0)
{
	struct rng r = *r0;
	double var, out = sg_forward_out(n, d1, x, 1, &r, &var);

	return n->npn ? npn_loss(out, var, y, NULL, NULL) : (out - y) * (out - y);
}

/* Every parameter's gradient against central differences, dropout masks frozen. */
static void
test_param_grad(void)
{
	static const char *names[3] = {"teacher", "student", "NPN"};
	int d1 = 5, d2 = 3;
	struct surrogate s;
	double x[8], y = 0.3;
	struct rng r0;

	surrogate_init(&s, d1, d2, NULL, 7);
	rng_seed(&r0, 11);
	for (int i = 0; i < d1 + d2; i++)
		x[i] = rng_uniform(&r0);
	for (int w = 0; w < 3; w++) {
		struct sg_net *n = w == 0 ? &s.teacher : w == 1 ? &s.student : &s.npn;
		double *g = malloc(sizeof *g * (size_t)n->np), worst = 0;
		struct rng r = r0;
		/* variances of order one keep the NPN loss well conditioned for differencing */
		if (n->npn)
			for (int c = 0; c < 3; c++)
				for (int l = 0; l < n->nl[c]; l++)
					for (int j = 0; j < n->L[c][l].out; j++)
						n->p[n->L[c][l].bs + j] = -1;
		sg_param_grad(n, d1, x, y, 1, &r);
		memcpy(g, n->g, sizeof *g * (size_t)n->np);
		for (int i = 0; i < n->np; i++) {
			double keep = n->p[i], h = 1e-5 * fmax(1, fabs(keep)), lp, lm, fd;
			n->p[i] = keep + h;
			lp = net_loss(n, d1, x, y, &r0);
			n->p[i] = keep - h;
			lm = net_loss(n, d1, x, y, &r0);
			n->p[i] = keep;
			fd = (lp - lm) / (2 * h);
			if (fabs(fd - g[i]) / fmax(1e-3, fabs(fd) + fabs(g[i])) > worst && getenv("SG_DEBUG"))
				printf("# %d: p %g fd %g g %g\n", i, keep, fd, g[i]);
			worst = fmax(worst, fabs(fd - g[i]) / fmax(1e-3, fabs(fd) + fabs(g[i])));
		}
		check(worst < 1e-4,
		      "%s: all %d parameter gradients agree with central differences (worst relative %.2g)",
		      names[w], n->np, worst);
		free(g);
	}
	surrogate_release(&s);
}

/* The input gradient of every combination GOBI uses, against central differences. */
static void
test_input_grad(void)
{
	static const int dims[3][2] = {{4, 3}, {0, 6}, {5, 0}};

	for (int c = 0; c < 3; c++) {
		int d1 = dims[c][0], d2 = dims[c][1], d = d1 + d2;
		struct surrogate s;
		double x[16], g[16], worst = 0;
		struct rng r;
		surrogate_init(&s, d1, d2, NULL, 3 + (uint64_t)c);
		rng_seed(&r, 5);
		for (int i = 0; i < d; i++)
			x[i] = rng_uniform(&r);
		surrogate_combo(&s, x, 1, -0.5, -0.5, g);
		for (int i = 0; i < d; i++) {
			double keep = x[i], h = 1e-6, fp, fm, fd;
			x[i] = keep + h;
			fp = surrogate_combo(&s, x, 1, -0.5, -0.5, NULL);
			x[i] = keep - h;
			fm = surrogate_combo(&s, x, 1, -0.5, -0.5, NULL);
			x[i] = keep;
			fd = (fp - fm) / (2 * h);
			worst = fmax(worst, fabs(fd - g[i]) / fmax(1e-4, fabs(fd) + fabs(g[i])));
		}
		check(worst < 1e-5,
		      "input gradient of mu - sigma_ep/2 - s_al/2, widths (%d, %d): worst relative %.2g", d1,
		      d2, worst);
		surrogate_release(&s);
	}
}

static double
truth(const double *x)
{
	/* a smooth loss in (0.1, 0.9) depending on both sides */
	return 0.1 + 0.8 *
	                 (0.5 * (x[0] - 0.3) * (x[0] - 0.3) + 0.3 * x[1] * x[4] + 0.2 * (1 - x[3]) +
	                  0.25 * sin(3 * x[2]) * x[5]) /
	                 1.0;
}

/* Trained on 80 points of a known function, the NPN mean ranks 200 fresh points well. */
static void
test_fit(void)
{
	int n = 80, m = 200, d1 = 3, d2 = 3, d = 6, concord = 0, pairs = 0;
	double *x = malloc(sizeof *x * (size_t)(n + m) * (size_t)d), *y = malloc(sizeof *y * (size_t)(n + m));
	double *p = malloc(sizeof *p * (size_t)m), mse = 0, var = 0, mean = 0, a, b, sep, sal;
	struct surrogate s, s2;
	struct surrogate_params par;
	struct rng r;

	rng_seed(&r, 42);
	for (int i = 0; i < n + m; i++) {
		for (int j = 0; j < d; j++)
			x[i * d + j] = rng_uniform(&r);
		y[i] = truth(x + i * d);
	}
	surrogate_defaults(&par);
	par.epochs = 100;
	surrogate_init(&s, d1, d2, &par, 1);
	surrogate_train(&s, x, y, n);
	for (int i = 0; i < m; i++) {
		surrogate_predict(&s, x + (n + i) * d, &p[i], NULL, NULL);
		mse += (p[i] - y[n + i]) * (p[i] - y[n + i]);
		mean += y[n + i];
	}
	mean /= m;
	for (int i = 0; i < m; i++)
		var += (y[n + i] - mean) * (y[n + i] - mean);
	for (int i = 0; i < m; i++)
		for (int j = i + 1; j < m; j++) {
			pairs++;
			concord += (p[i] - p[j]) * (y[n + i] - y[n + j]) > 0;
		}
	check(mse / var < 0.3 && (double)concord / pairs > 0.8,
	      "fit on 80 points: held-out R^2 %.3f, pairwise order agreement %.3f (epochs %d %d %d)",
	      1 - mse / var, (double)concord / pairs, s.epochs_run[0], s.epochs_run[1], s.epochs_run[2]);
	surrogate_predict(&s, x, &a, &sep, &sal);
	check(sep > 0 && sal > 0, "uncertainties are positive (epistemic %.3g, aleatoric %.3g)", sep, sal);
	surrogate_init(&s2, d1, d2, &par, 1);
	surrogate_train(&s2, x, y, n);
	surrogate_predict(&s2, x, &b, NULL, NULL);
	check(a == b, "same data and seed: the same prediction (%.17g, %.17g)", a, b);
	surrogate_release(&s);
	surrogate_release(&s2);
	free(x);
	free(y);
	free(p);
}

static double
bowl(void *ctx, const double *x, double *g)
{
	const double *c = ctx;
	double f = 0;

	for (int i = 0; i < 4; i++) {
		double w = 1 + i;
		f += w * (x[i] - c[i]) * (x[i] - c[i]);
		if (g)
			g[i] = 2 * w * (x[i] - c[i]);
	}
	return f;
}

static double
combo_acq(void *ctx, const double *x, double *g)
{
	return surrogate_combo(ctx, x, 1, -0.5, -0.5, g);
}

static void
test_gobi(void)
{
	double c[4] = {0.2, 0.7, 1.3, -0.4}, x[4] = {0.9, 0.1, 0.5, 0.5}, want[4] = {0.2, 0.7, 1, 0}, err = 0;
	struct rng r;
	struct surrogate s;
	double xs[6], a0, a1;
	int steps;

	rng_seed(&r, 9);
	steps = gobi(x, 4, bowl, c, &r);
	for (int i = 0; i < 4; i++)
		err = fmax(err, fabs(x[i] - want[i]));
	check(err < 1e-2, "GOBI finds the minimum of a bowl clamped to the box (error %.2g, %d steps)", err,
	      steps);

	surrogate_init(&s, 3, 3, NULL, 2);
	for (int i = 0; i < 6; i++)
		xs[i] = rng_uniform(&r);
	a0 = combo_acq(&s, xs, NULL);
	gobi(xs, 6, combo_acq, &s, &r);
	a1 = combo_acq(&s, xs, NULL);
	check(a1 < a0, "GOBI lowers the acquisition of an untrained surrogate (%.4f -> %.4f)", a0, a1);
	surrogate_release(&s);
}

int
main(void)
{
	test_vectors();
	test_activation_fd();
	test_param_grad();
	test_input_grad();
	test_gobi();
	test_fit();
	return tap_done();
}
