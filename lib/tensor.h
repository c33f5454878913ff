/*
 * tensor.h: named n-dimensional arrays and their file form, the safetensors layout (tc-tensor(5)).
 *
 * Ownership: a struct tensor_set owns every tensor, name, data buffer and metadata string in it until
 * tensor_set_release, and a buffer returned through a pointer argument (tensor_set_encode) is the caller's,
 * released with free().
 *
 * Data is kept as the raw little-endian bytes of the file, which is also host order: the module refuses to
 * build on a big-endian host rather than silently write byte-swapped files.
 */
#ifndef TC_TENSOR_H
#define TC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

struct tc_error;

#define TENSOR_MAX_DIM 8
/* Readers refuse a JSON header longer than this (100 MB), as the reference implementation does. */
#define TENSOR_HEADER_MAX 100000000u
/* Room for tensor_shape_format's longest output, "[" + 8 x "-9223372036854775808, " + "]". */
#define TENSOR_SHAPE_STRMAX 192
/* The value this project's writers put under the metadata key "format". */
#define TENSOR_FORMAT "transcode-tensor/1"

enum tensor_dtype {
	TENSOR_F64,
	TENSOR_F32,
	TENSOR_F16,
	TENSOR_BF16,
	TENSOR_I64,
	TENSOR_I32,
	TENSOR_I16,
	TENSOR_I8,
	TENSOR_U8,
	TENSOR_BOOL,
	TENSOR_NDTYPE
};

struct tensor {
	char *name; /* valid UTF-8, unique in its set, never "__metadata__" */
	enum tensor_dtype dtype;
	int ndim; /* 0 for a scalar */
	int64_t shape[TENSOR_MAX_DIM];
	void *data;    /* nbytes bytes; never NULL, a zero-size tensor still has a (1-byte) allocation */
	size_t nbytes; /* numel * element size */
};

struct tensor_set {
	struct tensor *t; /* in data order: the order of the adds, or of the data section when read */
	size_t n, cap;
	char **meta_key; /* nmeta string pairs, kept sorted by key (strcmp) */
	char **meta_val;
	size_t nmeta, metacap;
	size_t *index; /* private: open-addressing hash from name to position + 1 in t, 0 = empty slot */
	size_t nindex;
};

/* "F32" etc. for a valid dtype, "?" otherwise. */
const char *tensor_dtype_name(enum tensor_dtype dtype);
/* Element size in bytes (1 for BOOL); 0 for an invalid dtype. */
size_t tensor_dtype_size(enum tensor_dtype dtype);
/* Parse a dtype name exactly as a header spells it; return 0, or -1 if it is not one of the ten. */
int tensor_dtype_parse(const char *s, enum tensor_dtype *out);
/* Number of elements: the product of the shape, 1 for a scalar, 0 if any dimension is 0. */
int64_t tensor_numel(const struct tensor *t);
/* Write "[4, 8]" ("[]" for a scalar) into buf (TENSOR_SHAPE_STRMAX bytes is always enough); return buf. */
char *tensor_shape_format(char *buf, size_t size, int ndim, const int64_t *shape);

void tensor_set_init(struct tensor_set *set);
/* Free every tensor and metadata string; the set is left empty and ready for reuse. */
void tensor_set_release(struct tensor_set *set);
struct tensor_set *tensor_set_new(void);
void tensor_set_free(struct tensor_set *set);

/*
 * Append a tensor with zeroed data; name and shape are copied (shape may be NULL when ndim is 0). Returns
 * the tensor, valid until the next add or release, or NULL with err set when the name is not valid UTF-8,
 * is "__metadata__" or is already in the set, when ndim is outside [0, TENSOR_MAX_DIM], a dimension is
 * negative, the size in bytes overflows, or the data cannot be allocated.
 */
struct tensor *tensor_set_add(struct tensor_set *set, const char *name, enum tensor_dtype dtype, int ndim,
                              const int64_t *shape, struct tc_error *err);
/* The tensor called name, or NULL. */
struct tensor *tensor_set_find(const struct tensor_set *set, const char *name);
/* Set metadata key to value (both copied, both valid UTF-8), replacing an old value; a NULL value removes
 * the key. Returns 0, or -1 with err set for invalid UTF-8. */
int tensor_set_meta(struct tensor_set *set, const char *key, const char *value, struct tc_error *err);
/* The value of metadata key, or NULL. */
const char *tensor_set_get_meta(const struct tensor_set *set, const char *key);

/*
 * One safetensors file in memory. decode replaces the contents of set (left empty on failure) with the
 * len bytes at buf, validating everything tc-tensor(5) lists; messages start with "<what>: ". encode
 * writes the file bytes for set into a new buffer *buf of *len bytes: the same set gives the same bytes.
 * Both return 0, or -1 with err set.
 */
int tensor_set_decode(struct tensor_set *set, const void *buf, size_t len, const char *what,
                      struct tc_error *err);
int tensor_set_encode(const struct tensor_set *set, void **buf, size_t *len, struct tc_error *err);

/*
 * The same through callbacks, for readers and writers that move the bytes themselves (tstream.c).
 *
 * tensor_set_read reads one file from readfn, which is asked for at most 1 GiB (n <= 2^30) at a time and
 * must return n bytes unless its input ends first, the count it read (0..n), or -1 with err set (its
 * message is then prefixed with "<what>: "). size is the total number of bytes the input holds when
 * known, or UINT64_MAX; when known, the header length and the data offsets are checked against it and bytes
 * beyond the last tensor are an error. Returns 1 when a file was read into set, 0 when the input ended
 * before its first byte (set left empty), -1 with err set (set left empty).
 *
 * tensor_set_write writes the file for set through writefn, which returns 0, or -1 with err set (its
 * message is passed on as is). Returns 0 or -1.
 */
int tensor_set_read(struct tensor_set *set,
                    long (*readfn)(void *ctx, void *buf, size_t n, struct tc_error *err), void *ctx,
                    uint64_t size, const char *what, struct tc_error *err);
int tensor_set_write(const struct tensor_set *set,
                     int (*writefn)(void *ctx, const void *buf, size_t n, struct tc_error *err), void *ctx,
                     struct tc_error *err);

/*
 * Files. load replaces the contents of set (left empty on failure) with the file at path ("-" = stdin);
 * messages start with the path ("<stdin>" for "-"). save writes atomically (a temporary file in the same
 * directory, fsync, rename; "-" writes stdout directly), so a failure or a crash never leaves a half file.
 * Both return 0, or -1 with err set.
 */
int tensor_file_load(struct tensor_set *set, const char *path, struct tc_error *err);
/* Load the file at path and check that every F32 and F64 element is finite: 0, or -1 with the
 * load's error or "path: tensor 'x': element i is nan (a checkpoint holds finite numbers)". */
int tensor_file_check_finite(const char *path, struct tc_error *err);
int tensor_file_save(const struct tensor_set *set, const char *path, struct tc_error *err);

#endif
