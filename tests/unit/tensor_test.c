/*
 * tensor_test.c: unit tests for lib/tensor.c and lib/tstream.c, printing TAP ("ok N - what", "# detail")
 * and exiting 1 if any test fails.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -Ilib tests/unit/tensor_test.c lib/tensor.c lib/tstream.c \
 *        lib/util.c -ljansson -lz -lm
 *
 * Every rejection is provoked by bytes built here and checked for the words that tell the user what was
 * wrong; the golden file is spelled out byte by byte, independently of the encoder; streams are cut at
 * every offset and have every byte flipped, and must fail cleanly each time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include "tensor.h"
#include "tstream.h"
#include "util.h"

static int ntest, nfail;
static char tmpdir[] = "/tmp/tensor_test.XXXXXX";

static int __attribute__((format(printf, 2, 3))) ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		nfail++;
	fflush(stdout);
	return cond;
}

static void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ok() for a call that must fail with a message containing every needle (NULL-terminated list). */
static int
fails_with(int rc, const struct tc_error *err, const char *what, ...)
{
	const char *needle, *missing = NULL;
	va_list ap;

	va_start(ap, what);
	while ((needle = va_arg(ap, const char *)))
		if (!missing && !strstr(err->msg, needle))
			missing = needle;
	va_end(ap);
	if (!ok(rc < 0 && !missing, "%s", what)) {
		diag("rc %d, message: %s", rc, err->msg);
		if (missing)
			diag("expected the message to contain: %s", missing);
		return 0;
	}
	return 1;
}

static char *
tmp(const char *name)
{
	static char buf[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void
write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f))
		die("cannot write '%s'", path);
}

/* Whole file into a new buffer; caller frees. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		die("cannot read '%s'", path);
	do {
		p = egrow(p, &cap, n + 4096, 1);
		r = fread(p + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return p;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned char
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned char)(rng >> 24);
}

static struct tensor *
add(struct tensor_set *set, const char *name, enum tensor_dtype dtype, int ndim, const int64_t *shape)
{
	struct tc_error err = {""};
	struct tensor *t = tensor_set_add(set, name, dtype, ndim, shape, &err);

	if (!t)
		die("tensor_set_add('%s'): %s", name, err.msg);
	for (size_t i = 0; i < t->nbytes; i++)
		((unsigned char *)t->data)[i] = rnd();
	return t;
}

/* Whether a and b hold the same tensors (same order) and metadata; if not, say why in a diag line. */
static int
sets_equal(const struct tensor_set *a, const struct tensor_set *b)
{
	if (a->n != b->n || a->nmeta != b->nmeta) {
		diag("%zu tensors and %zu metadata keys vs %zu and %zu", a->n, a->nmeta, b->n, b->nmeta);
		return 0;
	}
	for (size_t i = 0; i < a->n; i++) {
		const struct tensor *x = &a->t[i], *y = &b->t[i];

		if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim ||
		    memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof *x->shape) ||
		    x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes) || !y->data) {
			diag("tensor %zu differs: '%s' vs '%s'", i, x->name, y->name);
			return 0;
		}
	}
	for (size_t i = 0; i < a->nmeta; i++) {
		if (strcmp(a->meta_key[i], b->meta_key[i]) || strcmp(a->meta_val[i], b->meta_val[i])) {
			diag("metadata %zu differs: '%s' vs '%s'", i, a->meta_key[i], b->meta_key[i]);
			return 0;
		}
	}
	return 1;
}

static const int64_t shapes[][TENSOR_MAX_DIM] = {{0}, {0}, {5}, {2, 3}, {2, 0, 3}, {1, 2, 1, 3, 1, 2, 1, 1}};
static const int ndims[] = {0, 1, 1, 2, 3, 8};
#define NSHAPE (sizeof ndims / sizeof *ndims)

static void
test_dtypes(void)
{
	int good = 1;

	for (int d = 0; d < TENSOR_NDTYPE; d++) {
		enum tensor_dtype back;

		good &= tensor_dtype_parse(tensor_dtype_name(d), &back) == 0 && back == (enum tensor_dtype)d;
	}
	good &= tensor_dtype_size(TENSOR_F64) == 8 && tensor_dtype_size(TENSOR_BF16) == 2 &&
	        tensor_dtype_size(TENSOR_BOOL) == 1 && tensor_dtype_size(TENSOR_I32) == 4;
	ok(good, "dtype names parse back and sizes are right");
	ok(tensor_dtype_parse("f32", &(enum tensor_dtype){0}) < 0 &&
	       tensor_dtype_parse("F8_E4M3", &(enum tensor_dtype){0}) < 0,
	   "dtype names are exact (f32 and F8_E4M3 are refused)");
}

/* Every dtype with scalars, zero-size and 8-d shapes: decode(encode(x)) == x and re-encoding is identical. */
static void
test_roundtrip(void)
{
	struct tc_error err = {""};
	struct tensor_set all, back;
	void *buf = NULL, *buf2 = NULL;
	size_t len, len2;

	tensor_set_init(&all);
	tensor_set_init(&back);
	for (int d = 0; d < TENSOR_NDTYPE; d++) {
		struct tensor_set one;
		char name[64];
		int good;

		tensor_set_init(&one);
		for (size_t s = 0; s < NSHAPE; s++) {
			snprintf(name, sizeof name, "%s.%zu", tensor_dtype_name(d), s);
			add(&one, name, d, ndims[s], shapes[s]);
			add(&all, name, d, ndims[s], shapes[s]);
		}
		good = tensor_set_encode(&one, &buf, &len, &err) == 0 &&
		       tensor_set_decode(&back, buf, len, "mem", &err) == 0 && sets_equal(&one, &back) &&
		       tensor_set_encode(&back, &buf2, &len2, &err) == 0 && len == len2 &&
		       !memcmp(buf, buf2, len);
		if (!ok(good, "%s: round trip of scalar, [0], [5], [2, 3], [2, 0, 3] and 8-d shapes is exact",
		        tensor_dtype_name(d)))
			diag("%s", err.msg);
		free(buf);
		free(buf2);
		buf = buf2 = NULL;
		tensor_set_release(&one);
	}
	tensor_set_meta(&all, "format", TENSOR_FORMAT, &err);
	tensor_set_meta(&all, "note", "ünïcode \"quoted\" \\ and\nnewline", &err);
	ok(tensor_set_encode(&all, &buf, &len, &err) == 0 &&
	       tensor_set_decode(&back, buf, len, "mem", &err) == 0 && sets_equal(&all, &back),
	   "a set of all %zu tensors with metadata round-trips", all.n);
	ok(tensor_set_encode(&back, &buf2, &len2, &err) == 0 && len == len2 && !memcmp(buf, buf2, len),
	   "re-encoding the decoded set gives byte-identical output (%zu bytes)", len);
	ok(back.t[0].nbytes == tensor_dtype_size(TENSOR_F64) && tensor_numel(&back.t[0]) == 1 &&
	       back.t[1].nbytes == 0 && back.t[1].data && tensor_numel(&back.t[4]) == 0,
	   "a scalar has one element, a zero-size tensor has 0 bytes and a non-NULL data pointer");
	free(buf2);
	tensor_set_release(&back);
	tensor_set_release(&all);
	free(buf);
}

/* A file built by hand, byte by byte: what the encoder must write and the decoder must read. */
static const unsigned char golden[] =
    "\x10\x01\x00\x00\x00\x00\x00\x00" /* header length 272 = 265 bytes of JSON + 7 spaces */
    "{\"__metadata__\":{\"format\":\"transcode-tensor/1\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
    "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]},"
    "\"s\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[11,13]},"
    "\"e\":{\"dtype\":\"F16\",\"shape\":[0,2],\"data_offsets\":[13,13]}}"
    "       "
    "\x00\x00\x80\x3f\x00\x00\x00\xc0" /* a = 1.0f, -2.0f */
    "\x01\x02\x03"                     /* b */
    "\x02\x01";                        /* s = 0x0102 */
#define GOLDEN_LEN (sizeof golden - 1)

static void
test_golden(void)
{
	struct tc_error err = {""};
	struct tensor_set set, back;
	const int64_t two = 2, three = 3, e_shape[2] = {0, 2};
	float a[2] = {1.0f, -2.0f};
	int16_t s = 0x0102;
	struct tensor *t;
	void *buf = NULL;
	size_t len;

	ok(GOLDEN_LEN == 293, "the golden file is 8 + 272 + 13 bytes");
	tensor_set_init(&set);
	tensor_set_init(&back);
	memcpy(tensor_set_add(&set, "a", TENSOR_F32, 1, &two, &err)->data, a, sizeof a);
	memcpy(tensor_set_add(&set, "b", TENSOR_U8, 1, &three, &err)->data, "\x01\x02\x03", 3);
	memcpy(tensor_set_add(&set, "s", TENSOR_I16, 0, NULL, &err)->data, &s, sizeof s);
	tensor_set_add(&set, "e", TENSOR_F16, 2, e_shape, &err);
	tensor_set_meta(&set, "format", TENSOR_FORMAT, &err);
	if (!ok(tensor_set_encode(&set, &buf, &len, &err) == 0 && len == GOLDEN_LEN &&
	            !memcmp(buf, golden, len),
	        "the encoder writes the hand-made golden file byte for byte")) {
		diag("got %zu bytes: %.*s", len, (int)len, (char *)buf);
	}
	free(buf);
	ok(tensor_set_decode(&back, golden, GOLDEN_LEN, "golden", &err) == 0 && sets_equal(&set, &back),
	   "the decoder reads the golden file back into the same set");
	t = tensor_set_find(&back, "a");
	ok(t && t->dtype == TENSOR_F32 && t->ndim == 1 && t->shape[0] == 2 && ((float *)t->data)[1] == -2.0f,
	   "golden: tensor 'a' is F32 [2] holding -2.0 at index 1");
	t = tensor_set_find(&back, "s");
	ok(t && t->ndim == 0 && *(int16_t *)t->data == 0x0102,
	   "golden: scalar 's' is 0x0102 (little-endian)");
	t = tensor_set_find(&back, "e");
	ok(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 2 && t->nbytes == 0,
	   "golden: 'e' is an empty F16 [0, 2]");
	ok(!tensor_set_find(&back, "z") && !tensor_set_find(&back, "__metadata__"),
	   "find returns NULL for a missing name and for __metadata__");
	tensor_set_release(&set);
	tensor_set_release(&back);
}

/* Headers are read whatever their key order and spacing, as long as the data section is covered. */
static void
test_foreign_header(void)
{
	static const char hdr[] =
	    "{ \"b\" : {\"data_offsets\": [4, 6], \"shape\": [1], \"dtype\": \"BF16\"},\n"
	    "  \"a\": {\"shape\": [], \"dtype\": \"I32\", \"data_offsets\": [0, 4]},"
	    " \"__metadata__\": {\"z\": \"1\", \"format\": \"pt\"} }\t\n";
	struct tc_error err = {""};
	unsigned char buf[512];
	size_t n = sizeof hdr - 1;
	struct tensor_set set;

	tensor_set_init(&set);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)(n >> (8 * i));
	memcpy(buf + 8, hdr, n);
	memcpy(buf + 8 + n, "\x01\x00\x00\x00\x80\x3f", 6);
	ok(tensor_set_decode(&set, buf, 8 + n + 6, "foreign", &err) == 0 && set.n == 2 &&
	       strcmp(set.t[0].name, "a") == 0 && strcmp(set.t[1].name, "b") == 0 && set.nmeta == 2 &&
	       strcmp(set.meta_key[0], "format") == 0 && strcmp(tensor_set_get_meta(&set, "z"), "1") == 0,
	   "a header with other key order, spacing and an unaligned length is read, tensors in data order");
	if (err.msg[0])
		diag("%s", err.msg);
	tensor_set_release(&set);
}

#define META_JSON "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}"

static void
test_metadata(void)
{
	struct tc_error err = {""};
	struct tensor_set x, y;
	void *bx = NULL, *by = NULL;
	size_t lx, ly;

	tensor_set_init(&x);
	tensor_set_init(&y);
	tensor_set_meta(&x, "b", "2", &err);
	tensor_set_meta(&x, "a", "1", &err);
	tensor_set_meta(&x, "c", "old", &err);
	tensor_set_meta(&x, "c", "3", &err);
	tensor_set_meta(&y, "c", "3", &err);
	tensor_set_meta(&y, "a", "1", &err);
	tensor_set_meta(&y, "gone", "x", &err);
	tensor_set_meta(&y, "b", "2", &err);
	tensor_set_meta(&y, "gone", NULL, &err);
	ok(x.nmeta == 3 && strcmp(tensor_set_get_meta(&x, "c"), "3") == 0 && !tensor_set_get_meta(&y, "gone"),
	   "metadata: set replaces, NULL removes, get finds");
	ok(tensor_set_encode(&x, &bx, &lx, &err) == 0 && tensor_set_encode(&y, &by, &ly, &err) == 0 &&
	       lx == ly && !memcmp(bx, by, lx) && memmem(bx, lx, META_JSON, sizeof META_JSON - 1),
	   "metadata keys are written sorted, whatever the order they were set in");
	ok(lx == 8 + 48 && ((unsigned char *)bx)[0] == 48 && ((char *)bx)[8 + 47] == ' ',
	   "a header is padded with spaces to a multiple of 8 bytes");
	free(bx);
	free(by);
	fails_with(tensor_set_meta(&x, "k", "\xc3\x28", &err), &err,
	           "metadata: invalid UTF-8 value is refused", "not valid UTF-8", NULL);
	fails_with(tensor_set_meta(&x, "\xed\xa0\x80", "v", &err), &err,
	           "metadata: a UTF-8 encoded surrogate in a key is refused", "not valid UTF-8", NULL);
	tensor_set_release(&x);
	tensor_set_release(&y);
}

static void
test_padding(void)
{
	struct tc_error err = {""};
	int good = 1;

	for (int k = 1; k <= 24; k++) {
		struct tensor_set set;
		char name[32];
		void *buf = NULL;
		size_t len;
		uint64_t n = 0;

		tensor_set_init(&set);
		memset(name, 'x', (size_t)k);
		name[k] = 0;
		add(&set, name, TENSOR_I8, 1, (int64_t[]){k});
		if (tensor_set_encode(&set, &buf, &len, &err))
			die("%s", err.msg);
		for (int i = 7; i >= 0; i--)
			n = n << 8 | ((unsigned char *)buf)[i];
		good &= (8 + n) % 8 == 0 && len == 8 + n + (size_t)k && ((char *)buf)[8 + n - 1] != '\0';
		good &= ((char *)buf)[8 + n - 1] == ' ' || ((char *)buf)[8 + n - 1] == '}';
		free(buf);
		tensor_set_release(&set);
	}
	ok(good, "for names of 1..24 bytes, 8 + N is a multiple of 8 and padding is spaces");
}

static void
test_add_errors(void)
{
	struct tc_error err = {""};
	struct tensor_set set;
	int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -1}, big[2] = {1LL << 31, 1LL << 31};

	tensor_set_init(&set);
	add(&set, "w", TENSOR_F32, 0, NULL);
	fails_with(tensor_set_add(&set, "w", TENSOR_F32, 0, NULL, &err) ? 0 : -1, &err,
	           "add: a duplicate name is refused", "duplicate", "'w'", NULL);
	fails_with(tensor_set_add(&set, "__metadata__", TENSOR_F32, 0, NULL, &err) ? 0 : -1, &err,
	           "add: the name __metadata__ is refused", "reserved", NULL);
	fails_with(tensor_set_add(&set, "bad\xff", TENSOR_F32, 0, NULL, &err) ? 0 : -1, &err,
	           "add: a name that is not UTF-8 is refused", "UTF-8", NULL);
	fails_with(tensor_set_add(&set, "x", TENSOR_F32, 9, nine, &err) ? 0 : -1, &err,
	           "add: 9 dimensions are refused", "at most 8", NULL);
	fails_with(tensor_set_add(&set, "x", TENSOR_F32, 2, neg, &err) ? 0 : -1, &err,
	           "add: a negative dimension is refused", "[2, -1]", "negative", NULL);
	fails_with(tensor_set_add(&set, "x", TENSOR_F32, 2, big, &err) ? 0 : -1, &err,
	           "add: a shape whose byte size overflows is refused", "too large", NULL);
	fails_with(tensor_set_add(&set, "x", TENSOR_NDTYPE, 0, NULL, &err) ? 0 : -1, &err,
	           "add: an invalid dtype is refused", "invalid dtype", NULL);
	ok(set.n == 1, "failed adds leave the set unchanged");
	tensor_set_release(&set);
}

/* A file: 8-byte length of json, json (unpadded), then datalen bytes of data. Caller frees. */
static unsigned char *
mkfile(const char *json, size_t datalen, size_t *len)
{
	size_t n = strlen(json);
	unsigned char *p = ecalloc(1, 8 + n + datalen);

	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(p + 8, json, n);
	*len = 8 + n + datalen;
	return p;
}

/* Decode json + datalen zero bytes as "w.safetensors"; it must fail with a message holding needle. */
static void
reject(const char *what, const char *json, size_t datalen, const char *needle)
{
	struct tc_error err = {""};
	struct tensor_set set;
	size_t len;
	unsigned char *p = mkfile(json, datalen, &len);
	int rc;

	tensor_set_init(&set);
	add(&set, "stale", TENSOR_U8, 0, NULL);
	rc = tensor_set_decode(&set, p, len, "w.safetensors", &err);
	if (fails_with(rc, &err, what, "w.safetensors: ", needle, NULL) && set.n != 0)
		ok(0, "%s: the set is left empty", what);
	tensor_set_release(&set);
	free(p);
}

/* A header entry {"name": {"dtype", "shape", "data_offsets"}}, and one with a single tensor 'a'. */
#define T(name, dtype, shape, offs)                                                                          \
	"\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define A(dtype, shape, offs) "{" T("a", dtype, shape, offs) "}"

static void
test_rejections(void)
{
	struct tc_error err = {""};
	struct tensor_set set;
	unsigned char *p;
	size_t len;

	tensor_set_init(&set);
	fails_with(tensor_set_decode(&set, "", 0, "w.safetensors", &err), &err, "reject: empty input",
	           "w.safetensors: empty input", NULL);
	fails_with(tensor_set_decode(&set, "\x02\0\0", 3, "w.safetensors", &err), &err,
	           "reject: 3 bytes, shorter than the header length",
	           "truncated (expected 8 header-length bytes, got 3)", NULL);
	p = mkfile("{}", 0, &len);
	p[0] = 100;
	fails_with(tensor_set_decode(&set, p, len, "w.safetensors", &err), &err,
	           "reject: header length larger than the rest of the file",
	           "header length 100 is larger than the rest of the file (2 bytes)", NULL);
	p[0] = 0x01, p[3] = 0x10; /* 0x10000001 = 268435457 > 100 MB */
	fails_with(tensor_set_decode(&set, p, len, "w.safetensors", &err), &err,
	           "reject: header length above 100 MB", "header length 268435457 exceeds the limit", NULL);
	p[0] = 0, p[3] = 0;
	fails_with(tensor_set_decode(&set, p, len, "w.safetensors", &err), &err, "reject: header length 0",
	           "not a JSON object", NULL);
	free(p);

	reject("reject: header not valid JSON", "{\"a\":", 0, "header is not valid JSON");
	reject("reject: header not an object", "[1, 2]", 0, "not a JSON object");
	reject("reject: header with leading space", " {}", 0,
	       "not a JSON object (it does not start with '{')");
	reject("reject: header not UTF-8", "{\"\xff\":1}", 0, "header is not valid JSON");
	reject("reject: duplicate tensor name",
	       "{" T("a", "F32", "[2]", "[0,8]") "," T("a", "F32", "[2]", "[8,16]") "}", 16,
	       "duplicate key \"a\"");
	reject("reject: entry not an object", "{\"a\":[1]}", 0, "tensor 'a': entry is not an object");
	reject("reject: missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
	       "tensor 'a': missing \"dtype\"");
	reject("reject: missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8,
	       "tensor 'a': missing \"shape\"");
	reject("reject: missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
	       "tensor 'a': missing \"data_offsets\"");
	reject("reject: dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
	       "\"dtype\" is not a string");
	reject("reject: shape not an array", A("F32", "2", "[0,8]"), 8, "\"shape\" is not an array");
	reject("reject: shape with a non-integer", A("F32", "[2,1.0]", "[0,8]"), 8,
	       "shape[1] is not an integer");
	reject("reject: data_offsets with one number", A("F32", "[2]", "[8]"), 8,
	       "\"data_offsets\" is not an array of two integers");
	reject("reject: data_offsets as a string", A("F32", "[2]", "\"0-8\""), 8,
	       "\"data_offsets\" is not an array of two integers");
	reject("reject: an unknown field",
	       "{\"a\":{\"stride\":[1],\"dtype\":\"F32\",\"shape\":[2],"
	       "\"data_offsets\":[0,8]}}",
	       8, "tensor 'a': unknown field 'stride'");
	reject("reject: unknown dtype", A("F8_E4M3", "[2]", "[0,2]"), 2,
	       "tensor 'a': unknown dtype 'F8_E4M3'");
	reject("reject: negative dimension", A("F32", "[-2]", "[0,0]"), 0,
	       "shape [-2] has a negative dimension");
	reject("reject: 9 dimensions", A("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), 1,
	       "shape has 9 dimensions (at most 8");
	reject("reject: shape product overflow", A("F32", "[4294967296,4294967296]", "[0,0]"), 0,
	       "shape [4294967296, 4294967296] of F32 overflows");
	reject("reject: overflow hidden behind a zero dimension",
	       A("U8", "[0,4294967296,4294967296]", "[0,0]"), 0, "overflows");
	reject("reject: integer beyond 64 bits", A("U8", "[99999999999999999999]", "[0,0]"), 0,
	       "too big integer");
	reject("reject: data_offsets that do not match the shape",
	       "{" T("enc.0.wq", "F32", "[4,8]", "[0,100]") "}", 100,
	       "w.safetensors: tensor 'enc.0.wq': "
	       "data_offsets [0, 100] do not match shape [4, 8] of F32 (128 bytes)");
	reject("reject: negative data_offsets", A("F32", "[2]", "[-8,0]"), 0,
	       "data_offsets [-8, 0] are negative");
	reject("reject: reversed data_offsets", A("F32", "[2]", "[8,0]"), 8,
	       "data_offsets [8, 0] end before");
	reject("reject: data_offsets beyond the data section", A("F32", "[2]", "[0,8]"), 4,
	       "tensor 'a': data_offsets [0, 8] out of range (the data section has 4 bytes)");
	reject("reject: overlapping tensors",
	       "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12,
	       "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
	reject("reject: an empty tensor inside another",
	       "{" T("a", "F32", "[2]", "[0,8]") "," T("z", "F32", "[0]", "[4,4]") "}", 8,
	       "tensor 'z': data_offsets [4, 4] overlap tensor 'a'");
	reject("reject: a gap between tensors",
	       "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[12,20]") "}", 20,
	       "gap in the data section: bytes [8, 12) before tensor 'b'");
	reject("reject: a gap before the first tensor", A("F32", "[2]", "[4,12]"), 12,
	       "bytes [0, 4) before tensor 'a'");
	reject("reject: trailing garbage after the data", A("F32", "[2]", "[0,8]"), 11,
	       "trailing garbage: 3 bytes after the data section");
	reject("reject: metadata value not a string", "{\"__metadata__\":{\"format\":\"x\",\"epoch\":3}}", 0,
	       "metadata 'epoch': value is not a string");
	reject("reject: metadata not an object", "{\"__metadata__\":[\"x\"]}", 0,
	       "\"__metadata__\" is not an object");
	tensor_set_release(&set);
}

/* A file without tensors (an empty set, or metadata alone) is valid, and its header has no entry to
 * sort: qsort was once called with NULL for it (undefined; caught under SAN=1 and by make fuzz). */
static void
test_no_tensors(void)
{
	static const char *const hdr[2] = {"{}      ", "{\"__metadata__\":{\"k\":\"v\"}}  "};
	struct tc_error err = {""};
	struct tensor_set set;
	unsigned char *p;
	size_t len;

	tensor_set_init(&set);
	for (int i = 0; i < 2; i++) {
		p = mkfile(hdr[i], 0, &len);
		ok(tensor_set_decode(&set, p, len, "none", &err) == 0 && set.n == 0 &&
		       set.nmeta == (size_t)i && (i == 0 || strcmp(tensor_set_get_meta(&set, "k"), "v") == 0),
		   "a file without tensors decodes to an empty set%s", i ? ", metadata kept" : "");
		if (err.msg[0])
			diag("%s", err.msg);
		free(p);
	}
	tensor_set_release(&set);
}

static void
test_files(void)
{
	struct tc_error err = {""};
	struct tensor_set set, back;
	unsigned char *p, *q;
	size_t len, len2;
	DIR *d;
	struct dirent *de;
	int others = 0;

	tensor_set_init(&set);
	tensor_set_init(&back);
	add(&set, "enc.0.wq", TENSOR_F32, 2, (int64_t[]){4, 8});
	add(&set, "mask", TENSOR_BOOL, 1, (int64_t[]){3});
	tensor_set_meta(&set, "format", TENSOR_FORMAT, &err);
	ok(tensor_file_save(&set, tmp("w.safetensors"), &err) == 0 &&
	       tensor_file_load(&back, tmp("w.safetensors"), &err) == 0 && sets_equal(&set, &back),
	   "file: save then load round-trips");
	d = opendir(tmpdir);
	while (d && (de = readdir(d)))
		others += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	ok(others == 0, "file: save leaves no temporary file behind");
	fails_with(tensor_file_save(&set, tmp("no/such/dir.safetensors"), &err), &err,
	           "file: saving into a missing directory fails", "cannot create", "no/such/dir.safetensors",
	           NULL);
	fails_with(tensor_file_load(&back, tmp("missing.safetensors"), &err), &err,
	           "file: loading a missing file fails", "cannot open", "missing.safetensors", NULL);
	ok(back.n == 0, "file: a failed load leaves the set empty");
	fails_with(tensor_file_load(&back, tmpdir, &err), &err, "file: loading a directory fails",
	           "Is a directory", NULL);

	p = slurp(tmp("w.safetensors"), &len);
	write_bytes(tmp("empty.safetensors"), p, 0);
	fails_with(tensor_file_load(&back, tmp("empty.safetensors"), &err), &err, "file: an empty file fails",
	           "empty.safetensors: empty file", NULL);
	write_bytes(tmp("short.safetensors"), p, len - 1);
	fails_with(tensor_file_load(&back, tmp("short.safetensors"), &err), &err,
	           "file: a file one byte short fails", "short.safetensors: tensor 'mask'", "out of range",
	           NULL);
	write_bytes(tmp("short.safetensors"), p, 40);
	fails_with(tensor_file_load(&back, tmp("short.safetensors"), &err), &err,
	           "file: a file cut inside the header fails", "larger than the rest of the file", NULL);
	q = emalloc(len + 1);
	memcpy(q, p, len);
	q[len] = 0;
	write_bytes(tmp("long.safetensors"), q, len + 1);
	fails_with(tensor_file_load(&back, tmp("long.safetensors"), &err), &err,
	           "file: one byte of trailing garbage fails", "long.safetensors: trailing garbage: 1 bytes",
	           NULL);
	free(q);

	/* Saving over a file replaces it whole. */
	add(&set, "extra", TENSOR_I64, 1, (int64_t[]){2});
	ok(tensor_file_save(&set, tmp("w.safetensors"), &err) == 0 &&
	       tensor_file_load(&back, tmp("w.safetensors"), &err) == 0 && back.n == 3,
	   "file: saving over an existing file replaces it");
	q = slurp(tmp("w.safetensors"), &len2);
	ok(len2 > len, "file: the replaced file is the new, longer one");
	free(q);
	free(p);
	tensor_set_release(&set);
	tensor_set_release(&back);
}

/* The deterministic frame i used by the stream tests: a few small tensors whose contents depend on i. */
static void
frame(struct tensor_set *set, int i, size_t big)
{
	char v[16];

	tensor_set_init(set);
	rng = 0x1234567u + (uint64_t)i;
	add(set, "x", TENSOR_F32, 2, (int64_t[]){2, 3});
	add(set, "step", TENSOR_I64, 0, NULL);
	add(set, "empty", TENSOR_F16, 2, (int64_t[]){0, 4});
	if (big)
		add(set, "noise", TENSOR_U8, 1, (int64_t[]){(int64_t)big});
	snprintf(v, sizeof v, "%d", i);
	tensor_set_meta(set, "format", TENSOR_FORMAT, NULL);
	tensor_set_meta(set, "frame", v, NULL);
}

/* Write nframes frames (each with big bytes of noise) to path; return 0 or -1. */
static int
write_stream(const char *path, int nframes, size_t big, struct tc_error *err)
{
	struct tstream *s = tstream_open_write(path, 6, err);
	struct tensor_set set;

	if (!s)
		return -1;
	for (int i = 0; i < nframes; i++) {
		frame(&set, i, big);
		if (tstream_write(s, &set, err)) {
			tensor_set_release(&set);
			tstream_abort(s);
			return -1;
		}
		tensor_set_release(&set);
	}
	return tstream_close(s, err);
}

/*
 * Read every frame of path and check frame i against frame(i, big) unless big is NOCHECK. Returns the
 * number of frames when the stream reads cleanly to its end, -1 - (frames read) on an error (err set), or
 * -1000 when the stream reads cleanly but a frame differs.
 */
#define NOCHECK ((size_t)-1)
static int
read_stream(const char *path, size_t big, struct tc_error *err)
{
	struct tstream *s = tstream_open_read(path, err);
	struct tensor_set got, want;
	int n = 0, rc, same = 1;

	if (!s)
		return -1;
	tensor_set_init(&got);
	while ((rc = tstream_read(s, &got, err)) == 1) {
		if (big != NOCHECK) {
			frame(&want, n, big);
			same &= sets_equal(&want, &got);
			tensor_set_release(&want);
		}
		n++;
	}
	tensor_set_release(&got);
	tstream_close(s, NULL);
	return rc < 0 ? -1 - n : same ? n : -1000;
}

static void
test_stream_roundtrip(void)
{
	struct tc_error err = {""};
	struct tensor_set set;
	struct tstream *s;
	unsigned char *a, *b, *all = NULL, zbuf[4096];
	size_t la, lb, cap = 0, nall = 0, nz = 0;
	gzFile gz;
	int r, good;

	ok(write_stream(tmp("s.tcs"), 5, 0, &err) == 0, "stream: write 5 frames to a file");
	ok(read_stream(tmp("s.tcs"), 0, &err) == 5, "stream: read back 5 frames equal to those written");
	s = tstream_open_read(tmp("s.tcs"), &err);
	tensor_set_init(&set);
	while (tstream_read(s, &set, &err) == 1)
		;
	ok(tstream_read(s, &set, &err) == 0 && tstream_read(s, &set, &err) == 0 && tstream_frames(s) == 5,
	   "stream: reading past the end keeps returning 0, and 5 frames were counted");
	tstream_close(s, NULL);
	ok(write_stream(tmp("s2.tcs"), 5, 0, &err) == 0, "stream: write the same frames again");
	a = slurp(tmp("s.tcs"), &la);
	b = slurp(tmp("s2.tcs"), &lb);
	ok(la == lb && !memcmp(a, b, la), "stream: the same frames give a byte-identical stream (%zu bytes)",
	   la);
	ok(la > 12 && a[0] == 0x1f && a[1] == 0x8b && a[2] == 8 && a[3] == 0x02,
	   "stream: a gzip member with a header CRC (FLG = FHCRC)");
	free(b);
	free(a);

	/* What zcat sees: the frames, each exactly a safetensors file, back to back. */
	for (int i = 0; i < 5; i++) {
		void *buf = NULL;
		size_t len;

		frame(&set, i, 0);
		tensor_set_encode(&set, &buf, &len, &err);
		all = egrow(all, &cap, nall + len, 1);
		memcpy(all + nall, buf, len);
		nall += len;
		free(buf);
		tensor_set_release(&set);
	}
	gz = gzopen(tmp("s.tcs"), "rb");
	good = gz != NULL;
	while (good && (r = gzread(gz, zbuf, sizeof zbuf)) > 0) {
		good = nz + (size_t)r <= nall && !memcmp(all + nz, zbuf, (size_t)r);
		nz += (size_t)r;
	}
	if (gz)
		gzclose(gz);
	ok(good && nz == nall, "stream: gunzip gives the concatenation of the 5 encoded frames (%zu bytes)",
	   nall);
	free(all);

	ok(write_stream(tmp("empty.tcs"), 0, 0, &err) == 0 && read_stream(tmp("empty.tcs"), 0, &err) == 0,
	   "stream: an empty stream reads as 0 frames, cleanly");
	s = tstream_open_read(tmp("empty.tcs"), &err);
	ok(s && tstream_read(s, &set, &err) == 0 && tstream_frames(s) == 0,
	   "stream: an empty stream is told apart by tstream_frames() == 0");
	tstream_close(s, NULL);

	ok(write_stream(tmp("big.tcs"), 3, 200000, &err) == 0 &&
	       read_stream(tmp("big.tcs"), 200000, &err) == 3,
	   "stream: 3 frames of 200 KB incompressible data round-trip");
}

static void
concat(const char *out, const char *a, const char *b)
{
	size_t la, lb;
	unsigned char *pa = slurp(a, &la), *pb = slurp(b, &lb);

	pa = erealloc(pa, la + lb);
	memcpy(pa + la, pb, lb);
	write_bytes(out, pa, la + lb);
	free(pa);
	free(pb);
}

/* Cut the stream file src at offsets from..to (step) and check each cut fails with "truncated". */
static void
cut_at(const char *src, size_t big, size_t step, const char *what)
{
	struct tc_error err = {""};
	size_t len, bad = 0, tested = 0;
	unsigned char *p = slurp(src, &len);

	for (size_t k = 0; k < len; k += (k < 64 || k + 64 > len) ? 1 : step) {
		int n;

		write_bytes(tmp("cut.tcs"), p, k);
		err.msg[0] = 0;
		n = read_stream(tmp("cut.tcs"), big, &err);
		tested++;
		if (n >= 0 || !strstr(err.msg, tmp("cut.tcs")) ||
		    !(strstr(err.msg, "truncated") || (k == 0 && strstr(err.msg, "empty input")))) {
			if (bad++ < 5)
				diag("cut at %zu of %zu: read %d frames, message: %s", k, len, n, err.msg);
		}
	}
	ok(bad == 0, "%s: all %zu cuts of a %zu-byte stream fail, naming the file and the truncation", what,
	   tested, len);
	write_bytes(tmp("cut.tcs"), p, len);
	ok(read_stream(tmp("cut.tcs"), big, &err) >= 0, "%s: the uncut stream reads cleanly", what);
	free(p);
}

static void
test_stream_damage(void)
{
	struct tc_error err = {""};
	size_t len, bad = 0, kinds[4] = {0};
	unsigned char *p;
	int n;

	write_stream(tmp("small.tcs"), 3, 0, &err);
	cut_at(tmp("small.tcs"), 0, 1, "truncation at every offset");
	write_stream(tmp("big.tcs"), 3, 20000, &err);
	cut_at(tmp("big.tcs"), 20000, 97, "truncation of a 60 KB stream every 97 bytes and near both ends");

	/* Cut exactly between two frames: at the end of the sync-flush marker of frame 1. */
	p = slurp(tmp("small.tcs"), &len);
	for (size_t k = 0, seen = 0; k + 4 <= len; k++) {
		if (memcmp(p + k, "\x00\x00\xff\xff", 4) == 0 && ++seen == 2) {
			write_bytes(tmp("cut.tcs"), p, k + 4);
			n = read_stream(tmp("cut.tcs"), 0, &err);
			ok(n == -1 - 2 && strstr(err.msg, "frame 2: truncated gzip stream"),
			   "a stream cut exactly after frame 1 gives 2 frames, then an error for frame 2");
			diag("%s", err.msg);
			break;
		}
	}

	for (size_t k = 0; k < len; k++) {
		p[k] ^= 0xff;
		write_bytes(tmp("flip.tcs"), p, len);
		p[k] ^= 0xff;
		err.msg[0] = 0;
		n = read_stream(tmp("flip.tcs"), NOCHECK, &err);
		if (n >= 0) {
			if (bad++ < 5)
				diag("flip at %zu: %d frames read, message: %s", k, n, err.msg);
		}
		kinds[strstr(err.msg, "corrupted gzip") ? 0
		      : strstr(err.msg, "not a gzip")   ? 1
		      : strstr(err.msg, "truncated")    ? 2
		                                        : 3]++;
	}
	ok(bad == 0, "every one of %zu flipped bytes makes reading the stream fail", len);
	diag("errors: %zu corrupted gzip, %zu not gzip, %zu truncated, %zu invalid frame", kinds[0], kinds[1],
	     kinds[2], kinds[3]);
	p[len / 2] ^= 0x01;
	write_bytes(tmp("flip.tcs"), p, len);
	n = read_stream(tmp("flip.tcs"), NOCHECK, &err);
	ok(n < 0 && strstr(err.msg, "flip.tcs: frame "),
	   "a flipped bit in the middle of the stream is an error");
	diag("%s", err.msg);
	p[len / 2] ^= 0x01;
	p[len - 6] ^= 0x01; /* the CRC-32 of the trailer */
	write_bytes(tmp("flip.tcs"), p, len);
	n = read_stream(tmp("flip.tcs"), 0, &err);
	ok((n == -1 - 2 || n == -1 - 3) && strstr(err.msg, "corrupted gzip stream (incorrect data check)"),
	   "a damaged CRC is found at the end, at the latest when looking for a 4th frame (%d read)", -1 - n);
	diag("%s", err.msg);
	free(p);
}

static void
test_stream_inputs(void)
{
	struct tc_error err = {""};
	struct tensor_set set;
	unsigned char *p;
	size_t len;
	gzFile gz;
	int n;

	fails_with(read_stream(tmp("w.safetensors"), 0, &err), &err,
	           "stream: a plain safetensors file is refused", "w.safetensors: frame 0: not a gzip stream",
	           NULL);
	fails_with(read_stream(tmp("none.tcs"), 0, &err), &err, "stream: a missing file is refused",
	           "cannot open", "none.tcs", NULL);
	write_bytes(tmp("zero.tcs"), "", 0);
	fails_with(read_stream(tmp("zero.tcs"), 0, &err), &err, "stream: a 0-byte file is refused",
	           "zero.tcs: empty input", NULL);

	write_stream(tmp("a.tcs"), 5, 0, &err);
	write_stream(tmp("b.tcs"), 2, 0, &err);
	concat(tmp("ab.tcs"), tmp("a.tcs"), tmp("b.tcs"));
	ok(read_stream(tmp("ab.tcs"), NOCHECK, &err) == 7,
	   "stream: two concatenated streams read as one of 7 frames");
	p = slurp(tmp("a.tcs"), &len);
	p = erealloc(p, len + 3);
	memcpy(p + len, "\0\0\0", 3);
	write_bytes(tmp("trail.tcs"), p, len + 3);
	free(p);
	fails_with(read_stream(tmp("trail.tcs"), 0, &err), &err,
	           "stream: zero bytes after the gzip stream are refused",
	           "frame 5: trailing garbage after the gzip stream", NULL);

	/* Frames that gzip cleanly but are not valid: the message names the frame. */
	tensor_set_init(&set);
	frame(&set, 0, 0);
	{
		void *buf = NULL;
		size_t blen, hlen;
		unsigned char *bad;

		tensor_set_encode(&set, &buf, &blen, &err);
		bad = mkfile(A("F32", "[2]", "[0,9]"), 9, &hlen);
		gz = gzopen(tmp("badframe.tcs"), "wb");
		gzwrite(gz, buf, (unsigned)blen);
		gzwrite(gz, bad, (unsigned)hlen);
		gzclose(gz);
		n = read_stream(tmp("badframe.tcs"), 0, &err);
		ok(n == -1 - 1 && strstr(err.msg, "badframe.tcs: frame 1: tensor 'a': data_offsets [0, 9]"),
		   "stream: an invalid frame 1 is reported with its index: %s", err.msg);
		free(bad);

		bad = mkfile(A("U8", "[4096]", "[0,4096]"), 4096, &hlen);
		gz = gzopen(tmp("shortframe.tcs"), "wb");
		gzwrite(gz, buf, (unsigned)blen);
		gzwrite(gz, bad, (unsigned)(hlen - 4096 + 1200));
		gzclose(gz);
		n = read_stream(tmp("shortframe.tcs"), 0, &err);
		ok(n == -1 - 1 &&
		       strstr(err.msg,
		              "shortframe.tcs: frame 1: truncated (expected 4096 data bytes, got 1200)"),
		   "stream: a short frame in a clean gzip stream: %s", err.msg);
		free(bad);
		free(buf);
	}
	tensor_set_release(&set);
}

/* In a child: stdout is fd; write nframes frames to "-", waiting for a byte on ack before each next frame
 * (so the test hangs, and the alarm fails it, unless each frame is flushed as it is written). */
static void
child_writer(int fd, int ack, int nframes)
{
	struct tc_error err = {""};
	struct tensor_set set;
	struct tstream *s;
	char c;

	dup2(fd, 1);
	close(fd);
	s = tstream_open_write("-", 6, &err);
	for (int i = 0; i < nframes && s; i++) {
		frame(&set, i, 1000);
		if (tstream_write(s, &set, &err))
			_exit(3);
		tensor_set_release(&set);
		if (ack >= 0 && i + 1 < nframes && read(ack, &c, 1) != 1)
			_exit(4);
	}
	_exit(s && tstream_close(s, &err) == 0 ? 0 : 5);
}

static void
test_stream_pipes(void)
{
	struct tc_error err = {""};
	struct tensor_set got, want;
	int data[2], ack[2], saved, st, good = 1, n = 0, rc;
	struct tstream *s;
	pid_t pid;

	if (pipe(data) || pipe(ack))
		die("pipe: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN); /* a writer that died early must fail a test, not kill the suite */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(data[0]);
		close(ack[1]);
		child_writer(data[1], ack[0], 4);
	}
	close(data[1]);
	close(ack[0]);
	saved = dup(0);
	dup2(data[0], 0);
	close(data[0]);
	alarm(20);
	s = tstream_open_read("-", &err);
	tensor_set_init(&got);
	while ((rc = tstream_read(s, &got, &err)) == 1) {
		frame(&want, n++, 1000);
		good &= sets_equal(&want, &got);
		tensor_set_release(&want);
		if (n < 4 && write(ack[1], "k", 1) != 1)
			good = 0;
	}
	alarm(0);
	ok(good && rc == 0 && n == 4 && strcmp(tstream_name(s), "<stdin>") == 0,
	   "pipe: 4 frames from a writer on stdout, each read before the next is written");
	if (rc < 0)
		diag("%s", err.msg);
	tstream_close(s, NULL);
	tensor_set_release(&got);
	close(ack[1]);
	dup2(saved, 0);
	close(saved);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pipe: the writer finished cleanly");

	/* Writing to a full device: a write error, never a success. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/full", O_WRONLY);

		if (fd < 0)
			_exit(9);
		child_writer(fd, -1, 40);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && (WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 5),
	   "a stream written to /dev/full fails (child status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void
test_stream_writer(void)
{
	struct tc_error err = {""};
	struct tensor_set set;
	struct tstream *s;
	size_t len;
	unsigned char *p;

	fails_with(tstream_open_write(tmp("x.tcs"), 10, &err) ? 0 : -1, &err, "writer: level 10 is refused",
	           "compression level 10", NULL);
	fails_with(tstream_open_write(tmp("no/dir/x.tcs"), 6, &err) ? 0 : -1, &err,
	           "writer: a missing directory is refused", "cannot create", NULL);
	write_bytes(tmp("keep.tcs"), "old", 3);
	s = tstream_open_write(tmp("keep.tcs"), 1, &err);
	frame(&set, 0, 0);
	tstream_write(s, &set, &err);
	tstream_abort(s);
	p = slurp(tmp("keep.tcs"), &len);
	ok(len == 3 && !memcmp(p, "old", 3), "writer: abort leaves the old file in place");
	free(p);
	s = tstream_open_write(tmp("keep.tcs"), 1, &err);
	ok(tstream_read(s, &set, &err) < 0 && strstr(err.msg, "open for writing"),
	   "writer: reading is refused");
	frame(&set, 0, 0);
	ok(tstream_write(s, &set, &err) == 0 && tstream_frames(s) == 1 && tstream_close(s, &err) == 0 &&
	       read_stream(tmp("keep.tcs"), 0, &err) == 1,
	   "writer: close commits the file");
	s = tstream_open_read(tmp("keep.tcs"), &err);
	ok(tstream_write(s, &set, &err) < 0 && strstr(err.msg, "open for reading"),
	   "reader: writing is refused");
	tstream_close(s, NULL);
	ok(tstream_close(NULL, &err) == 0, "tstream_close(NULL) is a no-op");
	tstream_abort(NULL);
	tensor_set_release(&set);
	tensor_set_free(NULL);
}

static void
cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlink(tmp(de->d_name));
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	(void)argc;
	tc_setprogname(argv[0]);
	if (!mkdtemp(tmpdir))
		die("mkdtemp: %s", strerror(errno));
	test_dtypes();
	test_roundtrip();
	test_golden();
	test_foreign_header();
	test_metadata();
	test_padding();
	test_add_errors();
	test_rejections();
	test_no_tensors();
	test_files();
	test_stream_roundtrip();
	test_stream_damage();
	test_stream_inputs();
	test_stream_pipes();
	test_stream_writer();
	cleanup();
	printf("1..%d\n", ntest);
	if (nfail)
		printf("# %d of %d tests failed\n", nfail, ntest);
	return nfail ? 1 : 0;
}
