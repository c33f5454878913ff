#!/usr/bin/env python3
"""gelu_table.py: the piecewise polynomials of lib/nn.c's AVX-512 GELU (gelu_tab_*), printed as C.

For a = |x| in [0, 6], split into 16 intervals of 3/8, two functions of a:
  q(a) = Phi(-a) = erfc(a / sqrt 2) / 2, and r(a) = a phi(a) = a exp(-a^2 / 2) / sqrt(2 pi),
from which GELU(x) = x Phi(x) and GELU'(x) = Phi(x) + x phi(x) follow: Phi(x) = 1 - q for x >= 0 and
q for x < 0; x phi(x) = r for x >= 0 and -r for x < 0. Each interval's polynomial has degree 5 in
t = a - (its centre), fitted by least squares on 200 Chebyshev nodes in double; the largest errors
(checked on 2001 points an interval) are printed as a comment. Past 6 (q < 1e-9, r < 4e-8) a is
taken as 6. Run with python3 (numpy); the output replaces the tables in lib/nn.c (then make fmt).
"""
import math

import numpy as np

A, NI, DEG = 6.0, 16, 5


def q(a):
    return 0.5 * math.erfc(a / math.sqrt(2))


def r(a):
    return a * math.exp(-a * a / 2) / math.sqrt(2 * math.pi)


def fit(f):
    w = A / NI
    worst, rows = 0.0, []
    for k in range(NI):
        lo, c = k * w, (k + 0.5) * w
        n = 200
        xs = c + (w / 2) * np.cos((2 * np.arange(n) + 1) * np.pi / (2 * n))
        v = np.vander(xs - c, DEG + 1, increasing=True)
        cf, *_ = np.linalg.lstsq(v, np.array([f(x) for x in xs]), rcond=None)
        cf32 = cf.astype(np.float32).astype(np.float64)
        t = np.linspace(lo, lo + w, 2001)
        e = np.abs(np.polyval(cf32[::-1], t - c) - np.array([f(x) for x in t]))
        worst = max(worst, float(e.max()))
        rows.append(cf32)
    return worst, rows


for name, f in (("q", q), ("r", r)):
    worst, rows = fit(f)
    print("/* %s: largest error %.1e (coefficients in float, evaluated in double) */" % (name, worst))
    print("static const float gelu_tab_%s[%d][16] = {" % (name, DEG + 1))
    for d in range(DEG + 1):
        vals = ["%.9ef" % rows[k][d] for k in range(NI)]
        lines = [", ".join(vals[i:i + 4]) for i in range(0, NI, 4)]
        print("\t{" + ",\n\t ".join(lines) + "},")
    print("};")
