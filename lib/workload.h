/*
 * workload.h: a FlexiBERT 2.0 model, for one batch, as the list of operations an accelerator
 * runs, with the tensors they read and write: the forward pass for inference; for training also
 * the backward pass (for every trainable layer both the activation-gradient and the weight-gradient
 * product) and the optimizer's update of every parameter.
 *
 * Ownership: workload_build fills a struct workload whose arrays workload_release frees.
 *
 * Dimensions (llm.c style): B = batch, N = tokens, h = hidden size of a layer, d = head size,
 * A = heads x d, f = feed-forward width, k = convolution taps, V = vocabulary, C = classes.
 * Every operation is tiled over four loops: b (batch), i (output rows), j (output columns) and
 * k (reduction); a tensor operand depends on a subset of them (dep masks), which is what makes a
 * loop order reuse it or not.
 */
#ifndef TC_WORKLOAD_H
#define TC_WORKLOAD_H

#include "space.h"
#include "util.h"

#define WL_NAME   40
#define WL_MAX_IN 16

enum wl_kind { WL_MATMUL, WL_CONV, WL_ELEM, WL_SOFTMAX, WL_LAYERNORM, WL_UPDATE, WL_NKIND };
enum wl_unit { UNIT_MAC, UNIT_SOFTMAX, UNIT_LN, UNIT_COUNT };
enum wl_class { WL_ACT, WL_GRAD, WL_WEIGHT, WL_WGRAD, WL_STATE, WL_CONST, WL_NCLASS };
enum wl_dim { DIM_B = 1, DIM_I = 2, DIM_J = 4, DIM_K = 8 };
enum wl_phase { PH_FORWARD, PH_BACKWARD, PH_UPDATE };

extern const char *const wl_kind_names[WL_NKIND];
extern const char *const wl_class_names[WL_NCLASS];

struct wl_tensor {
	char name[WL_NAME];
	unsigned char cls;       /* enum wl_class */
	unsigned char writeback; /* must be in main memory at the end (updated parameters) */
	double elements;
	int producer; /* op index, or -1 when it starts in main memory */
	int last_use; /* the last op that reads it, or -1 */
};

struct wl_op {
	char name[WL_NAME];
	unsigned char kind, unit, phase;
	unsigned char dep_a, dep_b, dep_out; /* enum wl_dim masks */
	int block, stream;      /* blocks run in order; the streams of a block run concurrently */
	long bt, m, n, k;       /* extents of the b, i, j and k loops */
	int k_tiled;            /* the k loop is tiled (matrix products), else it lies inside a tile */
	double work;            /* elementwise and update ops: operations per element */
	int a, b, out;          /* operand and result tensors, or -1 */
	int nin, in[WL_MAX_IN]; /* every tensor that must be on chip while the op runs */
};

struct workload {
	struct wl_op *op;
	struct wl_tensor *t;
	int nop, nt, nblock, nstream_max;
	size_t capop, capt;
	long batch, seq;
	double params; /* trainable parameters */
	double macs;   /* dense multiply-accumulates of the matrix products and convolutions */
	int embedding; /* the embedding table tensor */
};

struct wl_options {
	long batch, seq, vocab;
	int classes, training;
	int opt_state;  /* optimizer state words per parameter (AdamW: 2) */
	double opt_ops; /* optimizer operations per parameter */
	int names;      /* name ops and tensors (for traces); otherwise names are empty */
};

/* Build the operations of m for one batch. Returns 0, or -1 if the sizes overflow. */
int workload_build(struct workload *w, const struct model *m, const struct wl_options *o,
                   struct tc_error *err);
void workload_release(struct workload *w);

/* Dense multiply-accumulates of one op (matrix products and convolutions; 0 otherwise). */
double wl_op_macs(const struct wl_op *op);

#endif
