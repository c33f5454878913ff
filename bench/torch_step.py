#!/usr/bin/env python3
"""PyTorch side of the training-step benchmark: one AdamW step of a BERT-Tiny-shaped FlexiBERT.

    OMP_WAIT_POLICY=PASSIVE python3 bench/torch_step.py --threads N --steps S

Model {"l":2,"o":[["sa_sdp_64","sa_sdp_64"],["sa_sdp_64","sa_sdp_64"]],"h":[128,128],"f":[[512],[512]]},
vocab 8192, 45 labels, max_pos 512, classification, dropout 0.1 (training mode), batch 32 x 128 real
tokens (random ids, fixed seed). A step is forward + backward + clipping (max_norm 1.0) + AdamW (the
reference's, tests/reference/flexibert.py). Three warm-up steps, then S timed steps; prints one JSON line:
{"threads", "step_ms_median", "step_ms_min", "peak_rss_mb" (getrusage ru_maxrss), "params"}.

Threads: torch.set_num_threads(N) sizes torch's OpenMP pool only. Debian's torch calls OpenBLAS
(the pthread build), which keeps its own pool of nproc threads unless OPENBLAS_NUM_THREADS is set
before the library loads; so this script sets OPENBLAS_NUM_THREADS=N (unless already set) before it
imports torch, and N threads means N for both. Run with OMP_WAIT_POLICY=PASSIVE (anchors.md).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

torch = fb = None  # imported in main, after OPENBLAS_NUM_THREADS is set

MODEL = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128],
         "f": [[512], [512]]}
VOCAB, LABELS, MAX_POS, BATCH, TOKENS, WARMUP = 8192, 45, 512, 32, 128, 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    if args.threads < 1 or args.steps < 1:
        ap.error("--threads and --steps must be at least 1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    global torch, fb
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
    import flexibert as fb
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = fb.FlexiBERT(MODEL, vocab=VOCAB, labels=LABELS, max_pos=MAX_POS, objective="cls", dropout=0.1)
    model.train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (BATCH, TOKENS), generator=g)
    mask = torch.ones(BATCH, TOKENS, dtype=torch.int64)
    labels = torch.randint(0, LABELS, (BATCH,), generator=g)
    total = WARMUP + args.steps
    opt = fb.AdamW(model, args.lr, warmup=WARMUP, steps=total, weight_decay=0.01, max_norm=1.0)
    times = []
    for s in range(total):
        t0 = time.perf_counter()
        fb.train_step(model, opt, s, ids, mask, labels)
        t1 = time.perf_counter()
        if s >= WARMUP:
            times.append((t1 - t0) * 1e3)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    print(json.dumps({"threads": args.threads, "step_ms_median": round(statistics.median(times), 2),
                      "step_ms_min": round(min(times), 2), "peak_rss_mb": round(rss_mb, 1),
                      "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
