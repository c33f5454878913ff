"""The PyTorch reference of the FlexiBERT 2.0 encoder that lib/ implements in C.

tests/reference/README.md is the contract; this file follows it line by line and uses only torch's
primitive operations (matmul, softmax, layer_norm, gelu, cross_entropy). The DFT and DCT are explicit
matrices built in float64 and cast, and the dynamic convolution is an explicit zero-pad + unfold, so
nothing here depends on a library transformer.

    model = FlexiBERT({"l": 2, "o": [["sa_sdp_8", "c_5_8"], ["l_dft_8"]], "h": [16, 16], "f": [[32], [32]]},
                      vocab=64, labels=3, max_pos=16, objective="cls", dropout=0.0)
    logits, loss = model(ids, mask, labels)
    opt = AdamW(model, lr=1e-3, warmup=3, steps=10, weight_decay=0.01, max_norm=1.0)
    info = train_step(model, opt, 0, ids, mask, labels)

Parameter names and order. named_parameters() and state_dict() give exactly the README's names in
the README's order (the order of the C side's one allocation). nn.Module lists a module's own
parameters before its children's, so a nested module tree cannot put attention.self.W0 after
attention.self.query.weight; instead the model keeps every parameter directly in its own
_parameters table under its full dotted name, in README order. state_dict, load_state_dict,
named_parameters, .double() and .to() work on that table unchanged; load_state_dict is overridden
(the stock one looks for unexpected keys by splitting them at the first dot).

Run this file to do the self-checks (make_fixtures.py runs them too before it writes anything).
"""

import functools
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-12
MASKED_SCORE = -10000.0
PAD_ID = 0
INIT_STD = 0.02
WMA_RANGE = 0.1

_WMA_NAME = re.compile(r"\.attention\.self\.W[0-9]+$")


# ---------------------------------------------------------------------------------------------
# Transform matrices (float64, exact integer reduction of the angles, then cast by the caller)


@functools.lru_cache(maxsize=None)
def dft_cos_sin(n):
    """C_N[a, c] = cos(2 pi a c / N), S_N[a, c] = sin(2 pi a c / N), float64 (N, N)."""
    a = torch.arange(n, dtype=torch.int64)
    ac = (a[:, None] * a[None, :]) % n  # exact: the angle is reduced before it becomes a float
    ang = (2.0 * math.pi / n) * ac.to(torch.float64)
    return torch.cos(ang), torch.sin(ang)


@functools.lru_cache(maxsize=None)
def dct_matrix(n):
    """Orthonormal DCT-II, D_N[a, c] = s_a cos(pi a (2c + 1) / (2N)), s_0 = sqrt(1/N), s_a = sqrt(2/N); float64."""
    a = torch.arange(n, dtype=torch.int64)
    num = (a[:, None] * (2 * a[None, :] + 1)) % (4 * n)  # cos has period 4N in these units
    d = torch.cos((math.pi / (2 * n)) * num.to(torch.float64))
    s = torch.full((n, 1), math.sqrt(2.0 / n), dtype=torch.float64)
    s[0, 0] = math.sqrt(1.0 / n)
    return s * d


# ---------------------------------------------------------------------------------------------
# Model description


class Head:
    """One head slot: kind is sa_sdp, sa_wma, l_dft, l_dct or c; k the kernel (c only); d the head
    size; index the W{m} number (sa_wma) or the conv number {c} (c), else None."""

    def __init__(self, op, index_of):
        f = op.split("_")
        if len(f) != 3:
            raise ValueError("bad op string %r" % op)
        self.op = op
        self.d = int(f[2])
        self.k = None
        self.index = None
        if f[0] == "sa" and f[1] in ("sdp", "wma"):
            self.kind = "sa_" + f[1]
        elif f[0] == "l" and f[1] in ("dft", "dct"):
            self.kind = "l_" + f[1]
        elif f[0] == "c" and f[1] in ("5", "9", "13"):
            self.kind = "c"
            self.k = int(f[1])
        else:
            raise ValueError("bad op string %r" % op)
        if self.kind in ("sa_wma", "c"):
            self.index = index_of[self.kind]
            index_of[self.kind] += 1
        if self.d < 1:
            raise ValueError("bad head size in %r" % op)


class Layer:
    def __init__(self, l, ops, h, ff, h_next):
        count = {"sa_wma": 0, "c": 0}
        self.heads = [Head(op, count) for op in ops]
        ds = {hd.d for hd in self.heads}
        if len(ds) != 1:
            raise ValueError("layer %d: all heads of a layer share d (%s)" % (l, ops))
        self.d = ds.pop()
        self.n = len(self.heads)
        self.A = self.n * self.d
        self.h = h
        if not 1 <= len(ff) <= 3:
            raise ValueError("layer %d: FF stack depth must be 1..3" % l)
        self.ff = list(ff)
        self.h_next = h_next  # width of the next layer's input; proj_head exists when it differs from h
        self.proj = h_next is not None and h_next != h
        self.prefix = "bert.encoder.layer.%d." % l


def param_specs(model, vocab, labels, max_pos, objective):
    """[(name, shape, init)] in the README's order; init is ("normal", std), ("uniform", a), "zeros",
    "ones" or ("normal_pad0", std) (the word table, row 0 zeroed)."""
    L = model["l"]
    hs = model["h"]
    layers = [Layer(l, model["o"][l], hs[l], model["f"][l], hs[l + 1] if l + 1 < L else None) for l in range(L)]
    N = ("normal", INIT_STD)
    out = []

    def linear(name, o, i, bias=True):
        out.append((name + ".weight", (o, i), N))
        if bias:
            out.append((name + ".bias", (o,), "zeros"))

    def ln(name, h):
        out.append((name + ".weight", (h,), "ones"))
        out.append((name + ".bias", (h,), "zeros"))

    h0 = hs[0]
    out.append(("bert.embeddings.word_embeddings.weight", (vocab, h0), ("normal_pad0", INIT_STD)))
    out.append(("bert.embeddings.position_embeddings.weight", (max_pos, h0), N))
    out.append(("bert.embeddings.token_type_embeddings.weight", (1, h0), N))
    ln("bert.embeddings.LayerNorm", h0)
    for ly in layers:
        p, h, A, d = ly.prefix, ly.h, ly.A, ly.d
        linear(p + "attention.self.query", A, h)
        linear(p + "attention.self.key", A, h)
        linear(p + "attention.self.value", A, h)
        for hd in ly.heads:
            if hd.kind == "sa_wma":
                out.append((p + "attention.self.W%d" % hd.index, (d, d), ("uniform", WMA_RANGE)))
        for hd in ly.heads:
            if hd.kind == "c":
                c, k = hd.index, hd.k
                out.append((p + "attention.self.key_conv_attn_layer%d.depthwise.weight" % c, (d, 1, k), N))
                out.append((p + "attention.self.key_conv_attn_layer%d.pointwise.weight" % c, (d, d, 1), N))
                out.append((p + "attention.self.key_conv_attn_layer%d.bias" % c, (d, 1), "zeros"))
                linear(p + "attention.self.conv_kernel_layer%d" % c, k, d)
                linear(p + "attention.self.conv_out_layer%d" % c, d, d)
        linear(p + "attention.output.dense", h, A)
        ln(p + "attention.output.LayerNorm", h)
        fin = h
        for i, f in enumerate(ly.ff):
            linear(p + "intermediate.sequential.%d" % (2 * i), f, fin)
            fin = f
        linear(p + "output.dense", h, fin)
        ln(p + "output.LayerNorm", h)
        if ly.proj:
            linear(p + "output.proj_head", ly.h_next, h)
    hL = hs[L - 1]
    if objective == "cls":
        linear("bert.pooler.dense", hL, hL)
        linear("classifier", labels, hL)
    elif objective == "mlm":
        linear("cls.predictions.transform.dense", hL, hL)
        ln("cls.predictions.transform.LayerNorm", hL)
        out.append(("cls.predictions.decoder.weight", (vocab, hL), N))
        out.append(("cls.predictions.bias", (vocab,), "zeros"))
    else:
        raise ValueError("objective must be cls or mlm")
    return layers, out


def decays(name):
    """AdamW weight decay applies to names ending in .weight without LayerNorm, and to the W{m}."""
    return (name.endswith(".weight") and "LayerNorm" not in name) or bool(_WMA_NAME.search(name))


# ---------------------------------------------------------------------------------------------
# The model


class FlexiBERT(nn.Module):
    def __init__(self, model, vocab, labels=2, max_pos=512, objective="cls", dropout=0.1, dtype=torch.float32):
        super().__init__()
        L = model["l"]
        if not (len(model["o"]) == len(model["h"]) == len(model["f"]) == L and L >= 1):
            raise ValueError("model dict: o, h, f must have l entries")
        self.model_dict = model
        self.vocab, self.labels, self.max_pos = vocab, labels, max_pos
        self.objective, self.dropout = objective, float(dropout)
        self.layers, specs = param_specs(model, vocab, labels, max_pos, objective)
        # Initialise in README order from torch's global generator (seed it before constructing).
        for name, shape, init in specs:
            t = torch.empty(shape, dtype=dtype)
            if init == "zeros":
                t.zero_()
            elif init == "ones":
                t.fill_(1.0)
            elif init[0] == "normal":
                t.normal_(0.0, init[1])
            elif init[0] == "normal_pad0":
                t.normal_(0.0, init[1])
                t[PAD_ID].zero_()
            elif init[0] == "uniform":
                t.uniform_(-init[1], init[1])
            else:
                raise AssertionError(init)
            # Full dotted name straight into the table (see the module docstring).
            self._parameters[name] = nn.Parameter(t)

    def p(self, name):
        return self._parameters[name]

    def load_state_dict(self, state_dict, strict=True):
        # nn.Module's version splits keys at the first dot to find unexpected ones; the table is flat.
        own = self._parameters
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError("load_state_dict: missing %s, unexpected %s" % (missing, unexpected))
        with torch.no_grad():
            for k, p in own.items():
                if k in state_dict:
                    p.copy_(state_dict[k])
        return missing, unexpected

    def forward(self, ids, mask, labels=None):
        return self.run(self._parameters, ids, mask, labels)

    def head(self, P, p, hd, Qj, Kj, Vj, keep, Mk, drop=lambda x: x):
        """O_j (B, T, d) of one head from its slices Q_j, K_j, V_j (B, T, d); p the layer prefix, keep
        (B, T, 1) the mask as 1/0, Mk (B, 1, T) the additive key mask."""
        B, T, d = Vj.shape
        dt = Vj.dtype

        def lin(x, name):
            return F.linear(x, P[name + ".weight"], P[name + ".bias"])

        if hd.kind in ("sa_sdp", "sa_wma"):
            Qs = Qj @ P[p + "attention.self.W%d" % hd.index] if hd.kind == "sa_wma" else Qj
            S = Qs @ Kj.transpose(1, 2) / math.sqrt(d) + Mk
            O = drop(torch.softmax(S, dim=-1)) @ Vj
        elif hd.kind == "l_dft":
            Vh = Vj * keep
            CT, ST = (t.to(dt) for t in dft_cos_sin(T))
            Cd, Sd = (t.to(dt) for t in dft_cos_sin(d))
            O = (CT @ Vh @ Cd - ST @ Vh @ Sd) / math.sqrt(T * d)
        elif hd.kind == "l_dct":
            Vh = Vj * keep
            DT, Dd = dct_matrix(T).to(dt), dct_matrix(d).to(dt)
            O = DT @ Vh @ Dd.t()
        else:  # c_k
            k, c = hd.k, hd.index
            pad = (k - 1) // 2
            q = p + "attention.self."
            dw = P[q + "key_conv_attn_layer%d.depthwise.weight" % c]  # (d, 1, k)
            pw = P[q + "key_conv_attn_layer%d.pointwise.weight" % c]  # (d, d, 1)
            beta = P[q + "key_conv_attn_layer%d.bias" % c]  # (d, 1)
            Kh = Kj * keep  # K^: padded rows zero
            # F.pad (0, 0, pad, pad) zero-extends the token axis; unfold gives
            # win[b, t, ch, u] = K^[b, t + u - pad, ch]
            win = F.pad(Kh, (0, 0, pad, pad)).unfold(1, k, 1)  # (B, T, d, k)
            Dw = (win * dw[:, 0, :]).sum(-1)  # (B, T, d)
            Ks = Dw @ pw[:, :, 0].t() + beta[:, 0]
            G = Ks * Qj
            Z = lin(G, q + "conv_kernel_layer%d" % c)  # (B, T, k)
            alpha = torch.softmax(Z, dim=-1)
            U = lin(Vj, q + "conv_out_layer%d" % c) * keep  # padded rows zero
            Uw = F.pad(U, (0, 0, pad, pad)).unfold(1, k, 1)  # (B, T, d, k), zero outside [0, T)
            O = (Uw * alpha[:, :, None, :]).sum(-1)
        return O

    # The whole computation as a function of a {name: tensor} table, so gradcheck can feed inputs.
    def run(self, P, ids, mask, labels=None, return_hidden=False):
        B, T = ids.shape
        if T > self.max_pos:
            raise ValueError("T %d exceeds max_pos %d" % (T, self.max_pos))
        dt = P["bert.embeddings.word_embeddings.weight"].dtype

        def drop(x):
            return F.dropout(x, self.dropout, self.training) if self.dropout > 0 else x

        def lin(x, name):
            return F.linear(x, P[name + ".weight"], P[name + ".bias"])

        def ln(x, name):
            return F.layer_norm(x, (x.shape[-1],), P[name + ".weight"], P[name + ".bias"], eps=LN_EPS)

        m = mask.to(dt)
        keep = m[:, :, None]  # (B, T, 1): 1 real, 0 padding
        Mk = (1.0 - m)[:, None, :] * MASKED_SCORE  # (B, 1, T): key mask over r

        # 1. embeddings; padding_idx: row 0 gets no gradient
        word = F.embedding(ids, P["bert.embeddings.word_embeddings.weight"], padding_idx=PAD_ID)
        x = word + P["bert.embeddings.position_embeddings.weight"][:T][None] + \
            P["bert.embeddings.token_type_embeddings.weight"][0]
        x = drop(ln(x, "bert.embeddings.LayerNorm"))

        # 2. layers
        for ly in self.layers:
            p, d = ly.prefix, ly.d
            Q = lin(x, p + "attention.self.query")
            K = lin(x, p + "attention.self.key")
            Vv = lin(x, p + "attention.self.value")
            outs = []
            for j, hd in enumerate(ly.heads):
                cols = slice(j * d, (j + 1) * d)
                Qj, Kj, Vj = Q[:, :, cols], K[:, :, cols], Vv[:, :, cols]
                O = self.head(P, p, hd, Qj, Kj, Vj, keep, Mk, drop)
                outs.append(O)
            ctx = torch.cat(outs, dim=-1)  # (B, T, A)
            y = ln(drop(lin(ctx, p + "attention.output.dense")) + x, p + "attention.output.LayerNorm")
            z = y
            for i in range(len(ly.ff)):
                z = F.gelu(lin(z, p + "intermediate.sequential.%d" % (2 * i)))
            hh = ln(drop(lin(z, p + "output.dense")) + y, p + "output.LayerNorm")
            x = lin(hh, p + "output.proj_head") if ly.proj else hh

        if return_hidden:
            return x

        # 3./4. heads
        if self.objective == "cls":
            pooled = torch.tanh(lin(x[:, 0, :], "bert.pooler.dense"))
            logits = lin(drop(pooled), "classifier")
            loss = F.cross_entropy(logits, labels) if labels is not None else None
        else:
            t = ln(F.gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
            logits = F.linear(t, P["cls.predictions.decoder.weight"], P["cls.predictions.bias"])
            loss = None
            if labels is not None:
                loss = F.cross_entropy(logits.reshape(B * T, -1), labels.reshape(B * T), ignore_index=-100)
        return logits, loss


# ---------------------------------------------------------------------------------------------
# Optimizer: clipping, schedule, AdamW (README "Optimizer"), written out


def lr_at(s, lr, warmup, steps):
    """lr_s = lr (s+1)/W for s < W, else lr (S - s)/(S - W)."""
    if s < warmup:
        return lr * (s + 1) / warmup
    return lr * (steps - s) / (steps - warmup)


class AdamW:
    def __init__(self, model, lr, warmup, steps, weight_decay=0.01, max_norm=1.0, betas=(0.9, 0.999), eps=1e-8):
        self.model = model
        self.lr, self.warmup, self.steps = lr, warmup, steps
        self.wd, self.max_norm, self.betas, self.eps = weight_decay, max_norm, betas, eps
        self.named = list(model.named_parameters())
        self.m = {n: torch.zeros_like(p) for n, p in self.named}
        self.v = {n: torch.zeros_like(p) for n, p in self.named}
        self.decay = {n: decays(n) for n, _ in self.named}

    @torch.no_grad()
    def step(self, s):
        """Clip the gradients in place, then one AdamW update at step s (0-based). Returns
        {"norm": N before clipping, "clipped": bool, "lr": lr_s}."""
        params = [p for _, p in self.named]
        # 1. global norm clipping exactly as torch.nn.utils.clip_grad_norm_ (coef = max_norm / (N + 1e-6))
        norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_norm))
        clipped = self.max_norm / (norm + 1e-6) < 1.0
        # 2. schedule
        lr_s = lr_at(s, self.lr, self.warmup, self.steps)
        b1, b2 = self.betas
        bc1 = 1.0 - b1 ** (s + 1)
        bc2 = 1.0 - b2 ** (s + 1)
        # 3. AdamW
        for n, p in self.named:
            g = p.grad
            if self.decay[n]:
                p.mul_(1.0 - lr_s * self.wd)
            m, v = self.m[n], self.v[n]
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            p.sub_(lr_s * (m / bc1) / (torch.sqrt(v / bc2) + self.eps))
        return {"norm": norm, "clipped": clipped, "lr": lr_s}


def train_step(model, opt, s, ids, mask, labels):
    """forward, backward, clip + schedule + AdamW; returns (loss before the update, step info)."""
    for p in model.parameters():
        p.grad = None
    _, loss = model(ids, mask, labels)
    loss.backward()
    word = model.p("bert.embeddings.word_embeddings.weight")
    word.grad[PAD_ID].zero_()  # already zero through padding_idx; kept so the contract is explicit
    info = opt.step(s)
    return float(loss), info


# ---------------------------------------------------------------------------------------------
# Self-checks


def _tiny_batch(gen, vocab, lengths, T):
    B = len(lengths)
    ids = torch.zeros(B, T, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, vocab, (n,), generator=gen)
        mask[b, :n] = 1
    return ids, mask


def _tiny_labels(gen, objective, ids, mask, labels):
    B, T = ids.shape
    if objective == "cls":
        return torch.randint(0, labels, (B,), generator=gen)
    lab = torch.full((B, T), -100, dtype=torch.int64)
    for b in range(B):
        n = int(mask[b].sum())
        pos = torch.randperm(n, generator=gen)[: max(1, min(2, n))]
        lab[b, pos] = torch.randint(1, ids.max().item() + 1, (len(pos),), generator=gen)
    return lab


def _fail(msg):
    raise AssertionError("self-check failed: " + msg)


def self_check(verbose=True):
    """Every check of the reference; raises AssertionError on the first failure. Returns a list of
    result lines."""
    res = []

    def note(s):
        res.append(s)
        if verbose:
            print("  " + s, flush=True)

    # -- transform matrices
    for n in (1, 2, 3, 5, 7, 8, 9, 16):
        D = dct_matrix(n)
        e = (D @ D.t() - torch.eye(n, dtype=torch.float64)).abs().max().item()
        e2 = (D.t() @ D - torch.eye(n, dtype=torch.float64)).abs().max().item()
        if max(e, e2) > 1e-13:
            _fail("DCT-II matrix N=%d not orthonormal (%.3g)" % (n, max(e, e2)))
        C, S = dft_cos_sin(n)
        Fm = torch.complex(C, -S) / math.sqrt(n)
        eu = (Fm @ Fm.conj().t() - torch.eye(n, dtype=torch.complex128)).abs().max().item()
        ef = (Fm * math.sqrt(n) - torch.fft.fft(torch.eye(n, dtype=torch.complex128), dim=0)).abs().max().item()
        if eu > 1e-13 or ef > 1e-12:
            _fail("DFT matrix N=%d: unitary %.3g, vs fft %.3g" % (n, eu, ef))
    note("DCT-II D D^T = D^T D = I and (C - iS)/sqrt(N) unitary and equal to torch.fft.fft, N in 1..16: ok")
    gen = torch.Generator().manual_seed(1234)
    worst = 0.0
    for T, d in ((9, 8), (7, 7), (8, 6), (5, 3), (1, 4)):
        Vj = torch.randn(3, T, d, generator=gen, dtype=torch.float64)
        keep = (torch.arange(T)[None, :] < torch.tensor([T, max(1, T - 3), 1])[:, None]).to(torch.float64)
        Vh = Vj * keep[:, :, None]
        CT, ST = dft_cos_sin(T)
        Cd, Sd = dft_cos_sin(d)
        ours = (CT @ Vh @ Cd - ST @ Vh @ Sd) / math.sqrt(T * d)
        ref = torch.fft.fft2(Vh).real / math.sqrt(T * d)
        worst = max(worst, (ours - ref).abs().max().item())
        # the real map R is symmetric (own adjoint) and R^2 = (I + P)/2, P the index reversal (-a mod N)
        R = torch.einsum("ac,bd->abcd", CT, Cd) - torch.einsum("ac,bd->abcd", ST, Sd)
        R = R.reshape(T * d, T * d) / math.sqrt(T * d)
        Pm = torch.zeros(T, d, T, d, dtype=torch.float64)
        for a in range(T):
            for b in range(d):
                Pm[a, b, (-a) % T, (-b) % d] = 1.0
        Pm = Pm.reshape(T * d, T * d)
        if (R - R.t()).abs().max() > 1e-12 or (R @ R - (torch.eye(T * d, dtype=torch.float64) + Pm) / 2).abs().max() > 1e-12:
            _fail("real DFT map T=%d d=%d: not symmetric or R^2 != (I+P)/2" % (T, d))
        DT, Dd = dct_matrix(T), dct_matrix(d)
        # DCT-II against its definition through the FFT (Makhoul), orthonormal
        def dct1(x, n):  # along dim -1, orthonormal, via a length-2n FFT of the mirrored sequence
            y = torch.cat([x, x.flip(-1)], -1)
            Y = torch.fft.fft(y, dim=-1)[..., :n]
            k = torch.arange(n, dtype=torch.float64)
            out = (Y * torch.exp(-1j * math.pi * k / (2 * n))).real / 2
            sc = torch.full((n,), math.sqrt(2.0 / n), dtype=torch.float64)
            sc[0] = math.sqrt(1.0 / n)
            return out * sc
        via_fft = dct1(dct1(Vh, d).transpose(1, 2), T).transpose(1, 2)
        worst = max(worst, (DT @ Vh @ Dd.t() - via_fft).abs().max().item())
    if worst > 1e-12:
        _fail("transform vs torch.fft: %.3g" % worst)
    note("l_dft map == Re(torch.fft.fft2(V^))/sqrt(T d), symmetric, R^2 = (I+P)/2; l_dct == FFT DCT-II: "
         "max diff %.2g" % worst)

    # -- each head against scalar loops written straight from the README formulas
    def naive_head(hd, P, p, Qj, Kj, Vj, m):
        B, T, d = Vj.shape
        O = torch.zeros(B, T, d, dtype=torch.float64)
        m = m.tolist()
        for b in range(B):
            if hd.kind in ("sa_sdp", "sa_wma"):
                W = P[p + "attention.self.W%d" % hd.index] if hd.kind == "sa_wma" else torch.eye(d, dtype=torch.float64)
                for t in range(T):
                    S = [sum(Qj[b, t, e] * W[e, f] * Kj[b, r, f] for e in range(d) for f in range(d)).item()
                         / math.sqrt(d) + (0.0 if m[b][r] else MASKED_SCORE) for r in range(T)]
                    mx = max(S)
                    ex = [math.exp(v - mx) for v in S]
                    for r in range(T):
                        O[b, t] += ex[r] / sum(ex) * Vj[b, r]
            elif hd.kind == "l_dft":
                for a in range(T):
                    for c in range(d):
                        O[b, a, c] = sum(Vj[b, t, e].item() * m[b][t] * math.cos(2 * math.pi * (a * t / T + c * e / d))
                                         for t in range(T) for e in range(d)) / math.sqrt(T * d)
            elif hd.kind == "l_dct":
                def D(N, a, c):
                    return math.sqrt((1.0 if a == 0 else 2.0) / N) * math.cos(math.pi * a * (2 * c + 1) / (2 * N))
                for a in range(T):
                    for c in range(d):
                        O[b, a, c] = sum(D(T, a, t) * Vj[b, t, e].item() * m[b][t] * D(d, c, e)
                                         for t in range(T) for e in range(d))
            else:
                k, c = hd.k, hd.index
                pp = (k - 1) // 2
                q = p + "attention.self."
                dw = P[q + "key_conv_attn_layer%d.depthwise.weight" % c]
                pw = P[q + "key_conv_attn_layer%d.pointwise.weight" % c]
                beta = P[q + "key_conv_attn_layer%d.bias" % c]
                Wk, bk = P[q + "conv_kernel_layer%d.weight" % c], P[q + "conv_kernel_layer%d.bias" % c]
                Wu, bu = P[q + "conv_out_layer%d.weight" % c], P[q + "conv_out_layer%d.bias" % c]

                def Kh(t, ch):
                    return Kj[b, t, ch].item() if 0 <= t < T and m[b][t] else 0.0

                def Uf(t, e):
                    if not (0 <= t < T and m[b][t]):
                        return 0.0
                    return sum(Wu[e, f].item() * Vj[b, t, f].item() for f in range(d)) + bu[e].item()
                for t in range(T):
                    Dw = [sum(dw[ch, 0, u].item() * Kh(t + u - pp, ch) for u in range(k)) for ch in range(d)]
                    Ks = [sum(pw[o, ch, 0].item() * Dw[ch] for ch in range(d)) + beta[o, 0].item() for o in range(d)]
                    G = [Ks[e] * Qj[b, t, e].item() for e in range(d)]
                    Z = [sum(G[e] * Wk[u, e].item() for e in range(d)) + bk[u].item() for u in range(k)]
                    mx = max(Z)
                    al = [math.exp(z - mx) for z in Z]
                    al = [a / sum(al) for a in al]
                    for e in range(d):
                        O[b, t, e] = sum(al[u] * Uf(t + u - pp, e) for u in range(k))
        return O

    worst = 0.0
    for kd in ("sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13"):
        torch.manual_seed(4)
        md = {"l": 1, "o": [[kd + "_3", kd + "_3"]], "h": [6], "f": [[4]]}
        model = FlexiBERT(md, vocab=5, labels=2, max_pos=8, objective="cls", dropout=0.0, dtype=torch.float64)
        P = {n: (p.detach() + 0.3 * torch.randn_like(p)) for n, p in model.named_parameters()}
        g = torch.Generator().manual_seed(8)
        B, T, d = 3, 7, 3
        m = (torch.arange(T)[None, :] < torch.tensor([7, 4, 1])[:, None]).to(torch.int64)
        for hd in model.layers[0].heads:
            Qj, Kj, Vj = (torch.randn(B, T, d, generator=g, dtype=torch.float64) for _ in range(3))
            keep = m[:, :, None].to(torch.float64)
            Mk = (1.0 - m.to(torch.float64))[:, None, :] * MASKED_SCORE
            ours = model.head(P, "bert.encoder.layer.0.", hd, Qj, Kj, Vj, keep, Mk)
            ref = naive_head(hd, P, "bert.encoder.layer.0.", Qj, Kj, Vj, m)
            worst = max(worst, (ours - ref).abs().max().item())
    if worst > 1e-12:
        _fail("head vs scalar loops from the README: %.3g" % worst)
    note("every head kind (second head of a kind too: W1, conv set 1) == scalar loops of the README formulas, "
         "with padding: max diff %.2g" % worst)

    # -- gradcheck in float64, one tiny model per head type (and one of all types), both objectives
    kinds = ["sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13"]
    cases = []
    for i, kd in enumerate(kinds):
        md = {"l": 2, "o": [[kd + "_4", kd + "_4"], [kd + "_5"]], "h": [8, 6], "f": [[6, 5], [7]]}
        cases.append((kd, md, "cls" if i % 2 == 0 else "mlm"))
        cases.append((kd, md, "mlm" if i % 2 == 0 else "cls"))
    allk = [k + "_3" for k in kinds]
    cases.append(("all", {"l": 1, "o": [allk], "h": [10], "f": [[6]]}, "cls"))
    import time
    t0 = time.time()
    for kd, md, obj in cases:
        torch.manual_seed(7)
        model = FlexiBERT(md, vocab=7, labels=3, max_pos=8, objective=obj, dropout=0.0, dtype=torch.float64)
        with torch.no_grad():  # make biases, LN affine and W non-trivial so every path is exercised
            for n, p in model.named_parameters():
                if n.endswith(".bias") or "LayerNorm" in n:
                    p.add_(0.1 * torch.randn_like(p))
                elif p.dim() >= 2 and "embeddings" not in n:
                    p.mul_(10.0)  # 0.02 -> 0.2 so softmaxes and convolutions are far from uniform
            model.p("bert.embeddings.word_embeddings.weight")[PAD_ID].zero_()
        g = torch.Generator().manual_seed(11)
        ids, mask = _tiny_batch(g, 7, [6, 4, 1], 6)
        labels = _tiny_labels(g, obj, ids, mask, 3)
        names = [n for n, _ in model.named_parameters()]
        inputs = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

        def fn(*ts):
            logits, loss = model.run(dict(zip(names, ts)), ids, mask, labels)
            if obj == "mlm":
                # MLM logits at padded positions do depend on the [PAD] row, which by contract gets no
                # gradient; they are not part of the loss, so the check leaves them out.
                logits = logits * mask[:, :, None].to(logits.dtype)
            return logits, loss

        ok = torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=False)
        if not ok:
            torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)  # raises with details
            _fail("gradcheck %s %s" % (kd, obj))
        # the [PAD] row gets no gradient, and the loss does not depend on it at all
        _, loss = fn(*inputs)
        loss.backward()
        if inputs[0].grad[PAD_ID].abs().max() != 0:
            _fail("[PAD] row got a gradient")
    note("gradcheck (float64, eps 1e-6, atol 1e-7, rtol 1e-5, logits and loss w.r.t. every parameter) on "
         "%d tiny models (each head type x cls/mlm, plus one layer of all 7 types; proj_head, A != h, "
         "padding, c_13 wider than T): ok (%.1f s)" % (len(cases), time.time() - t0))

    # -- padding: padded tokens never leak (all types); appending padding changes nothing (sa_*, c_*)
    worst_leak, worst_app, lt_dep = 0.0, 0.0, 0.0
    for kd in kinds + ["mixed-sa-c", "mixed-all"]:
        if kd == "mixed-sa-c":
            md = {"l": 2, "o": [["sa_sdp_4", "c_9_4", "sa_wma_4"], ["c_5_3", "c_13_3"]], "h": [12, 9], "f": [[7], [5]]}
        elif kd == "mixed-all":
            md = {"l": 2, "o": [[k + "_3" for k in kinds], ["l_dft_4", "l_dct_4", "c_5_4"]], "h": [12, 12], "f": [[7], [5, 6]]}
        else:
            md = {"l": 2, "o": [[kd + "_4", kd + "_4"], [kd + "_5"]], "h": [8, 6], "f": [[6, 5], [7]]}
        for obj in ("cls", "mlm"):
            torch.manual_seed(3)
            model = FlexiBERT(md, vocab=9, labels=4, max_pos=16, objective=obj, dropout=0.0, dtype=torch.float64)
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if p.dim() >= 2 and "embeddings" not in n:
                        p.mul_(10.0)
            g = torch.Generator().manual_seed(5)
            lengths = [7, 4, 1]
            ids, mask = _tiny_batch(g, 9, lengths, 7)
            labels = _tiny_labels(g, obj, ids, mask, 4)
            with torch.no_grad():
                hid = model.run(model._parameters, ids, mask, return_hidden=True)
                logits, loss = model(ids, mask, labels)
                # (a) other ids at padded positions: identical everywhere real
                ids2 = ids.clone()
                ids2[mask == 0] = torch.randint(1, 9, (int((mask == 0).sum()),), generator=g)
                hid2 = model.run(model._parameters, ids2, mask, return_hidden=True)
                _, loss2 = model(ids2, mask, labels)
                r = mask.bool()
                worst_leak = max(worst_leak, (hid[r] - hid2[r]).abs().max().item(), abs(loss.item() - loss2.item()))
                # (b) three more padding tokens (T 7 -> 10)
                ids3 = torch.cat([ids, torch.zeros(3, 3, dtype=torch.int64)], 1)
                mask3 = torch.cat([mask, torch.zeros(3, 3, dtype=torch.int64)], 1)
                hid3 = model.run(model._parameters, ids3, mask3, return_hidden=True)
                diff = (hid[r] - hid3[:, :7][r]).abs().max().item()
                if kd.startswith("l_") or kd == "mixed-all":
                    lt_dep = max(lt_dep, diff)
                else:
                    worst_app = max(worst_app, diff)
                    if obj == "cls":
                        lg3, _ = model(ids3, mask3, labels)
                        worst_app = max(worst_app, (lg3 - logits).abs().max().item())
    if worst_leak > 1e-12:
        _fail("padded tokens leak into real positions (%.3g)" % worst_leak)
    if worst_app > 1e-10:
        _fail("appending padding changes sa_*/c_* outputs at real positions (%.3g)" % worst_app)
    if lt_dep < 1e-6:
        _fail("l_* outputs should depend on the padded length T (%.3g)" % lt_dep)
    note("padding: other ids at padded positions change nothing real, every head type (max %.2g); "
         "appending 3 padding tokens leaves sa_*/c_* outputs and cls logits unchanged (max %.2g); "
         "l_* outputs do change with T, as documented (max %.2g)" % (worst_leak, worst_app, lt_dep))

    # -- optimizer: [PAD] row stays exactly zero; our AdamW == torch.optim.AdamW; clipping both ways
    for max_norm in (1.0, 1e-3):
        torch.manual_seed(9)
        md = {"l": 2, "o": [["sa_wma_4", "c_5_4"], ["l_dct_3", "sa_sdp_3"]], "h": [8, 7], "f": [[6], [5]]}
        model = FlexiBERT(md, vocab=11, labels=3, max_pos=8, objective="cls", dropout=0.0, dtype=torch.float64)
        twin = FlexiBERT(md, vocab=11, labels=3, max_pos=8, objective="cls", dropout=0.0, dtype=torch.float64)
        twin.load_state_dict(model.state_dict())
        g = torch.Generator().manual_seed(2)
        ids, mask = _tiny_batch(g, 11, [6, 3, 2, 5], 6)
        labels = torch.randint(0, 3, (4,), generator=g)
        S, W, lr = 8, 3, 3e-2
        opt = AdamW(model, lr, W, S, weight_decay=0.01, max_norm=max_norm)
        decay = [p for n, p in twin.named_parameters() if decays(n)]
        nodecay = [p for n, p in twin.named_parameters() if not decays(n)]
        topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}],
                                 lr=lr, betas=(0.9, 0.999), eps=1e-8)
        nclip = 0
        for s in range(S):
            _, info = train_step(model, opt, s, ids, mask, labels)
            nclip += info["clipped"]
            topt.zero_grad()
            twin(ids, mask, labels)[1].backward()
            torch.nn.utils.clip_grad_norm_(list(twin.parameters()), max_norm)
            for grp in topt.param_groups:
                grp["lr"] = lr_at(s, lr, W, S)
            topt.step()
        if model.p("bert.embeddings.word_embeddings.weight")[PAD_ID].abs().max() != 0:
            _fail("[PAD] row moved")
        if opt.m["bert.embeddings.word_embeddings.weight"][PAD_ID].abs().max() != 0:
            _fail("[PAD] row has Adam moments")
        dev = max((a - b).abs().max().item() for a, b in zip(model.parameters(), twin.parameters()))
        if dev > 1e-10:
            _fail("AdamW differs from torch.optim.AdamW by %.3g" % dev)
        if (max_norm == 1e-3) != (nclip == S) or (max_norm == 1.0 and nclip != 0):
            _fail("clipping triggered %d of %d steps with max_norm %g" % (nclip, S, max_norm))
        note("optimizer (max_norm %g, clipped %d/%d steps): [PAD] row and its moments exactly 0 after %d steps; "
             "== torch.optim.AdamW with two param groups (max diff %.2g)" % (max_norm, nclip, S, S, dev))

    # -- names/order: README order for a layer with every kind of parameter
    md = {"l": 2, "o": [["c_5_4", "sa_wma_4", "c_9_4", "sa_wma_4"], ["sa_sdp_4"]], "h": [12, 8], "f": [[6, 5], [7]]}
    names = list(FlexiBERT(md, vocab=5, labels=2, max_pos=4, objective="cls").state_dict().keys())
    q = "bert.encoder.layer.0."
    expect = ["bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
              "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
              "bert.embeddings.LayerNorm.bias"] + [q + s for s in [
                  "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
                  "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
                  "attention.self.W0", "attention.self.W1"] + [
                  "attention.self.key_conv_attn_layer%d.depthwise.weight" % c if i == 0 else
                  "attention.self.key_conv_attn_layer%d.pointwise.weight" % c if i == 1 else
                  "attention.self.key_conv_attn_layer%d.bias" % c if i == 2 else
                  "attention.self.conv_kernel_layer%d.weight" % c if i == 3 else
                  "attention.self.conv_kernel_layer%d.bias" % c if i == 4 else
                  "attention.self.conv_out_layer%d.weight" % c if i == 5 else
                  "attention.self.conv_out_layer%d.bias" % c for c in (0, 1) for i in range(7)] + [
                  "attention.output.dense.weight", "attention.output.dense.bias",
                  "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                  "intermediate.sequential.0.weight", "intermediate.sequential.0.bias",
                  "intermediate.sequential.2.weight", "intermediate.sequential.2.bias",
                  "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
                  "output.proj_head.weight", "output.proj_head.bias"]]
    if names[:len(expect)] != expect or names[-4:] != ["bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                       "classifier.weight", "classifier.bias"]:
        _fail("parameter names/order differ from README")
    if "bert.encoder.layer.1.output.proj_head.weight" in names:
        _fail("last layer must not have proj_head")
    note("parameter names and state_dict order match README (W{m} after value, conv sets after W, proj_head last)")
    return res


if __name__ == "__main__":
    torch.set_num_threads(1)
    print("flexibert.py self-checks:")
    self_check()
    print("all self-checks passed")
