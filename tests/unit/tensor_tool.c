/*
 * tensor_tool.c: a small driver over lib/tensor and lib/tstream for the shell tests, so they can write
 * example files and streams, and check real files, pipes, truncated and corrupted input from outside.
 *
 *   tensor_tool check FILE                    print "name dtype [shape]" per tensor of a safetensors file
 *   tensor_tool stream-check FILE|-           print "frame i: N tensors" per frame of a tensor stream
 *   tensor_tool make FILE [INDEX]             write example frame INDEX (default 0) as a plain file
 *   tensor_tool make-stream FILE|- NFRAMES    write example frames 0..NFRAMES-1 as a stream
 *   tensor_tool values FILE NAME              print tensor NAME's elements (F32), one a line (%.9g)
 *
 * Exit status: 0 success, 1 bad input or I/O error ("tensor_tool: <message>" on stderr), 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "tensor.h"
#include "tstream.h"
#include "util.h"

static const char usage_text[] = "usage: tensor_tool check FILE\n"
                                 "       tensor_tool stream-check FILE|-\n"
                                 "       tensor_tool make FILE [INDEX]\n"
                                 "       tensor_tool make-stream FILE|- NFRAMES\n"
                                 "       tensor_tool values FILE NAME\n";

/* Set t's elements from i and their position, so that every frame differs and every run is the same. */
static void
fill(struct tensor *t, long i)
{
	size_t n = (size_t)tensor_numel(t);

	for (size_t k = 0; k < n; k++) {
		long v = (long)k + i;

		switch (t->dtype) {
		case TENSOR_F64:
			((double *)t->data)[k] = -0.25 * (double)v;
			break;
		case TENSOR_F32:
			((float *)t->data)[k] = 0.5f * (float)v;
			break;
		case TENSOR_F16:
			((uint16_t *)t->data)[k] = k % 2 ? 0xc000 : 0x3c00;
			break; /* -2.0, 1.0 */
		case TENSOR_BF16:
			((uint16_t *)t->data)[k] = k % 2 ? 0x3f00 : 0x3f80;
			break; /* 0.5, 1.0 */
		case TENSOR_I64:
			((int64_t *)t->data)[k] = v * 1000000007LL;
			break;
		case TENSOR_I32:
			((int32_t *)t->data)[k] = (int32_t)-v;
			break;
		case TENSOR_I16:
			((int16_t *)t->data)[k] = (int16_t)(v * 3);
			break;
		case TENSOR_I8:
			((int8_t *)t->data)[k] = (int8_t)(v - 5);
			break;
		case TENSOR_U8:
			((uint8_t *)t->data)[k] = (uint8_t)v;
			break;
		case TENSOR_BOOL:
			((uint8_t *)t->data)[k] = (uint8_t)(v % 2);
			break;
		default:
			break;
		}
	}
}

/* The example frame i: one tensor of each dtype, a scalar, an empty tensor, and the format metadata. */
static void
example(struct tensor_set *set, long i)
{
	static const struct {
		const char *name;
		enum tensor_dtype dtype;
		int ndim;
		int64_t shape[2];
	} spec[] = {
	    {"enc.0.weight", TENSOR_F32, 2, {2, 3}},
	    {"enc.0.bias", TENSOR_F64, 1, {3}},
	    {"half", TENSOR_F16, 1, {2}},
	    {"brain", TENSOR_BF16, 1, {2}},
	    {"step", TENSOR_I64, 0, {0}},
	    {"ids", TENSOR_I32, 2, {2, 2}},
	    {"small", TENSOR_I16, 1, {3}},
	    {"tiny", TENSOR_I8, 1, {2}},
	    {"bytes", TENSOR_U8, 1, {0}},
	    {"mask", TENSOR_BOOL, 1, {4}},
	};
	struct tc_error err;
	char v[32];

	tensor_set_init(set);
	for (size_t k = 0; k < sizeof spec / sizeof *spec; k++) {
		struct tensor *t =
		    tensor_set_add(set, spec[k].name, spec[k].dtype, spec[k].ndim, spec[k].shape, &err);

		if (!t)
			die("%s", err.msg);
		fill(t, i);
	}
	snprintf(v, sizeof v, "%ld", i);
	if (tensor_set_meta(set, "format", TENSOR_FORMAT, &err) || tensor_set_meta(set, "frame", v, &err))
		die("%s", err.msg);
}

static int
check(const char *path)
{
	struct tensor_set set;
	struct tc_error err;
	char shape[TENSOR_SHAPE_STRMAX];

	tensor_set_init(&set);
	if (tensor_file_load(&set, path, &err))
		die("%s", err.msg);
	for (size_t i = 0; i < set.n; i++) {
		const struct tensor *t = &set.t[i];

		printf("%s %s %s\n", t->name, tensor_dtype_name(t->dtype),
		       tensor_shape_format(shape, sizeof shape, t->ndim, t->shape));
	}
	tensor_set_release(&set);
	return 0;
}

static int
stream_check(const char *path)
{
	struct tensor_set set;
	struct tc_error err;
	struct tstream *s = tstream_open_read(path, &err);
	int rc;

	if (!s)
		die("%s", err.msg);
	tensor_set_init(&set);
	while ((rc = tstream_read(s, &set, &err)) == 1)
		printf("frame %zu: %zu tensors\n", tstream_frames(s) - 1, set.n);
	if (rc == 0 && tstream_frames(s) == 0)
		rc = tc_error_set(&err, "%s: empty stream", tstream_name(s));
	tensor_set_release(&set);
	tstream_close(s, NULL);
	if (rc < 0)
		die("%s", err.msg);
	return 0;
}

static int
values(const char *path, const char *name)
{
	struct tensor_set set;
	struct tc_error err;
	const struct tensor *t;

	tensor_set_init(&set);
	if (tensor_file_load(&set, path, &err))
		die("%s", err.msg);
	if (!(t = tensor_set_find(&set, name)) || t->dtype != TENSOR_F32)
		die("%s: no F32 tensor '%s'", path, name);
	for (size_t k = 0; k < (size_t)tensor_numel(t); k++)
		printf("%.9g\n", (double)((const float *)t->data)[k]);
	tensor_set_release(&set);
	return 0;
}

static int
make(const char *path, long index)
{
	struct tensor_set set;
	struct tc_error err;

	example(&set, index);
	if (tensor_file_save(&set, path, &err))
		die("%s", err.msg);
	tensor_set_release(&set);
	return 0;
}

static int
make_stream(const char *path, long nframes)
{
	struct tensor_set set;
	struct tc_error err;
	struct tstream *s = tstream_open_write(path, -1, &err);

	if (!s)
		die("%s", err.msg);
	for (long i = 0; i < nframes; i++) {
		example(&set, i);
		if (tstream_write(s, &set, &err)) {
			tstream_abort(s);
			die("%s", err.msg);
		}
		tensor_set_release(&set);
	}
	if (tstream_close(s, &err))
		die("%s", err.msg);
	return 0;
}

int
main(int argc, char **argv)
{
	int rc;

	tc_setprogname("tensor_tool");
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage_text, stdout);
		rc = 0;
	} else if (argc == 3 && strcmp(argv[1], "check") == 0)
		rc = check(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "stream-check") == 0)
		rc = stream_check(argv[2]);
	else if ((argc == 3 || argc == 4) && strcmp(argv[1], "make") == 0)
		rc = make(argv[2], argc == 4 ? eparse_long(argv[3], "INDEX", 0, 1000000) : 0);
	else if (argc == 4 && strcmp(argv[1], "make-stream") == 0)
		rc = make_stream(argv[2], eparse_long(argv[3], "NFRAMES", 0, 1000000));
	else if (argc == 4 && strcmp(argv[1], "values") == 0)
		rc = values(argv[2], argv[3]);
	else
		usage_die("expected check, stream-check, make, make-stream or values and its arguments");
	close_stdout();
	return rc;
}
