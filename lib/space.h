/*
 * space.h: the two design spaces (FlexiBERT 2.0 transformers, AccelTran accelerators) as data,
 * the candidates they contain (struct model, struct accel), and everything that maps between
 * them: JSON record fields, validity, sampling coordinates, integer encodings, snapping to the
 * nearest valid point, and the content id.
 *
 * Ownership: space_*_load allocate nothing that outlives the call except the space struct's own
 * contents, released by *_space_release; json_t results are new references owned by the caller.
 *
 * Spaces are loaded from share/space/<name>.json (format "transcode-space/1", described in
 * tc-records(5)). Errors name the file and the entry ("space file 'x.json': params.hidden[2]: ...");
 * errors about a record's field name the field ("model.h[1]: 100 is not in the space ...").
 */
#ifndef TC_SPACE_H
#define TC_SPACE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "util.h"

#define MODEL_MAX_LAYERS 32
#define MODEL_MAX_HEADS  32
#define MODEL_MAX_FF     6
#define SPACE_MAX_VALUES 64

/* Head operations, in the canonical order of the encoding (tc-records(5)). */
enum head_op { OP_SA_SDP, OP_SA_WMA, OP_L_DFT, OP_L_DCT, OP_C_5, OP_C_9, OP_C_13, OP_COUNT };
extern const char *const head_op_names[OP_COUNT]; /* "sa_sdp", ..., "c_13" */

struct model_layer {
	int h;                             /* hidden size */
	int n;                             /* heads */
	int d;                             /* head size, floor(h / n) */
	unsigned char op[MODEL_MAX_HEADS]; /* enum head_op per head, in record order */
	int nff;                           /* feed-forward stack depth */
	int ff[MODEL_MAX_FF];              /* feed-forward widths */
};

struct model {
	int l;
	struct model_layer layer[MODEL_MAX_LAYERS];
};

struct model_space {
	char name[64];
	int nl, layers[SPACE_MAX_VALUES];   /* allowed depths, ascending */
	int nh, hidden[SPACE_MAX_VALUES];   /* allowed hidden sizes */
	int nn, heads[SPACE_MAX_VALUES];    /* allowed head counts */
	int nops, ops[OP_COUNT];            /* allowed head ops, as enum head_op, in canonical order */
	int nfd, ffdepth[SPACE_MAX_VALUES]; /* allowed FF stack depths */
	int nfw, ffwidth[SPACE_MAX_VALUES]; /* allowed FF widths */
	int maxl;                           /* largest depth: the encoding has 1 + 3 * maxl entries */
	int maxfd;                          /* largest FF depth */
};

/* Accelerator parameters, in record key order. */
enum accel_param {
	AP_TILE_B,
	AP_TILE_X,
	AP_TILE_Y,
	AP_ACTIVATION,
	AP_PES,
	AP_LANES,
	AP_MACS,
	AP_SOFTMAX,
	AP_BATCH,
	AP_ACT_MB,
	AP_WEIGHT_MB,
	AP_MASK_MB,
	AP_MEMORY,
	AP_DATAFLOW,
	AP_COUNT
};
extern const char *const accel_param_names[AP_COUNT]; /* "tile_b", ..., "dataflow" */

#define ACCEL_NAME_MAX 24

struct accel {
	int tile_b, tile_x, tile_y;
	char activation[ACCEL_NAME_MAX]; /* "relu" or "gelu" */
	int pes, lanes_per_pe, macs_per_lane, softmax_per_pe, batch;
	double act_buffer_mb, weight_buffer_mb, mask_buffer_mb;
	char memory[ACCEL_NAME_MAX];   /* "dram-32-2-1": type-banks-ranks-channels */
	char dataflow[ACCEL_NAME_MAX]; /* a permutation of "bijk", outermost loop first */
};

struct accel_space {
	char name[64];
	/* Allowed values per parameter: numbers in num[] or strings in str[], in the file's order. */
	int nval[AP_COUNT];
	double num[AP_COUNT][SPACE_MAX_VALUES];
	char str[AP_COUNT][SPACE_MAX_VALUES][ACCEL_NAME_MAX];
	/* Index of the value held fixed when sampling or enumerating, or -1 if the parameter varies. */
	int fixed[AP_COUNT];
	int square_tiles; /* tile_y always equals tile_x */
};

/* Load a space file of the matching kind. */
int model_space_load(struct model_space *s, const char *path, struct tc_error *err);
int accel_space_load(struct accel_space *s, const char *path, struct tc_error *err);
/* The "kind" member of a space file ("model" or "accel"), copied into kind (size >= 8). */
int space_kind(const char *path, char *kind, size_t size, struct tc_error *err);
/* Set *model_path or *accel_path to path, by the kind of space it holds. Returns 0 or -1. */
int space_file_route(const char *path, const char **model_path, const char **accel_path,
                     struct tc_error *err);

/* Number of points: exact for accelerators (enumerated by space_accel_grid), a double for models. */
double model_space_size(const struct model_space *s);
uint64_t accel_space_size(const struct accel_space *s);

/*
 * Records. *_from_json parse and validate against the space (s may be NULL to check only the
 * structure and the physical rules); errors name the field, prefixed with "model." or "accel.".
 * *_to_json build the record form (model: l, o, h, f; accel: the 14 keys in record order).
 */
int model_from_json(struct model *m, const json_t *v, const struct model_space *s, struct tc_error *err);
int accel_from_json(struct accel *a, const json_t *v, const struct accel_space *s, struct tc_error *err);
json_t *model_to_json(const struct model *m);
json_t *accel_to_json(const struct accel *a);
/* Overwrite the values of obj, made by accel_to_json, with those of a, without reallocating:
 * for loops that write millions of records. Returns 0, or -1 if obj lacks a key. */
int accel_json_update(json_t *obj, const struct accel *a);
/* Check m or a against a space; 0 or -1 with the offending field named. */
int model_check(const struct model *m, const struct model_space *s, struct tc_error *err);
int accel_check(const struct accel *a, const struct accel_space *s, struct tc_error *err);

/*
 * Sampling coordinates: a point is decoded from u in [0, 1)^dim, one coordinate per free choice,
 * so that random sampling (iid u) and Latin hypercube sampling (stratified u) share one decoder.
 */
int model_sample_dim(const struct model_space *s);
void model_decode(struct model *m, const struct model_space *s, const double *u);
int accel_sample_dim(const struct accel_space *s);
void accel_decode(struct accel *a, const struct accel_space *s, const double *u);

/*
 * Inverses of the decoders: the coordinates u of a valid point, each the centre of the cell its
 * choice decodes from (0.5 where the point does not use a coordinate), so that decode(encode(p)) = p.
 * *_unit_levels: the number of cells of each coordinate (the head-multiset coordinate counts the
 * largest head count's multisets, capped at 10^6).
 */
void model_unit_encode(double *u, const struct model *m, const struct model_space *s);
void model_unit_levels(int *levels, const struct model_space *s);
void accel_unit_encode(double *u, const struct accel *a, const struct accel_space *s);
void accel_unit_levels(int *levels, const struct accel_space *s);

/*
 * The accelerator grid: index i in [0, accel_space_size) to a point, the last parameter varying
 * fastest; fixed parameters held, tile_y tied to tile_x when square_tiles.
 */
void accel_grid_point(struct accel *a, const struct accel_space *s, uint64_t i);

/*
 * Integer encodings (tc-records(5)). Model: 1 + 3 * maxl integers, [depth index, then per layer
 * (hidden index, FF-stack index, head-multiset index)], zero for layers beyond l; 37 for
 * FlexiBERT 2.0. Accelerator: 12 integers, the raw values of tile_b, tile_x, tile_y, pes,
 * lanes_per_pe, macs_per_lane, softmax_per_pe, batch, act/weight/mask buffer MB and the memory's
 * index in the space. m and a must be valid in s.
 */
#define ACCEL_ENC_DIM 12
int model_encode_dim(const struct model_space *s);
void model_encode(int64_t *e, const struct model *m, const struct model_space *s);
void accel_encode(double *e, const struct accel *a, const struct accel_space *s);
/* Lower and upper bounds of each encoding entry. */
void model_encode_bounds(int64_t *lo, int64_t *hi, const struct model_space *s);
void accel_encode_bounds(double *lo, double *hi, const struct accel_space *s);
/*
 * Nearest valid point to a real-valued encoding (from an optimiser): every entry rounded and
 * clamped into its range, entries of layers beyond the depth ignored; accelerators snap every
 * entry to the closest allowed value (ties to the smaller) and set tile_y to tile_x.
 */
void model_snap(struct model *m, const struct model_space *s, const double *x);
void accel_snap(struct accel *a, const struct accel_space *s, const double *x);
/* Decode a valid integer encoding; -1 with a message naming the entry if it is out of range. */
int model_decode_encoding(struct model *m, const struct model_space *s, const int64_t *e,
                          struct tc_error *err);

/* Combinations with replacement: number of multisets of size k from n kinds, and rank/unrank in
 * lexicographic order of the sorted sequence (Python's itertools order). */
uint64_t multiset_count(int n, int k);
uint64_t multiset_rank(const int *seq, int n, int k);
void multiset_unrank(int *seq, int n, int k, uint64_t r);

/*
 * Content id: 16 hex digits of a 64-bit hash of the canonical text of the model and the
 * accelerator (either may be NULL), as defined in tc-records(5). out must hold 17 bytes.
 */
void candidate_id(char *out, const struct model *m, const struct accel *a);
/* A new record {"id", "model", "accel"} for the candidate (either side may be NULL). */
json_t *candidate_to_json(const struct model *m, const struct accel *a);
/* The encodings as JSON arrays of integers (accelerator buffer sizes may be fractional). */
json_t *model_encoding_json(const struct model *m, const struct model_space *s);
json_t *accel_encoding_json(const struct accel *a, const struct accel_space *s);
/* The canonical text itself, written into buf (returns the length it needs, like snprintf). */
size_t model_canonical(char *buf, size_t size, const struct model *m);
size_t accel_canonical(char *buf, size_t size, const struct accel *a);

#endif
