/*
 * tstream_fuzz.c: tensor streams (lib/tstream), safetensors frames in one gzip stream. The first
 * input byte chooses what the rest is: odd, the stream file itself (so the gzip layer is fuzzed,
 * header, CRC and trailer included); even, the uncompressed frames, which the harness gzips into
 * one or two members (bit 1) so that the fuzzer reaches the frame parser through valid gzip. The
 * file is read with tstream_read until the end or an error; every frame read must encode, and when
 * the whole stream was read cleanly its frames are written with tstream_write and must read back
 * the same. A disagreement aborts.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz.h"
#include "tensor.h"
#include "tstream.h"

#define MAXFRAMES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn)) fail(const char *what)
{
	fprintf(stderr, "tstream_fuzz: %s\n", what);
	abort();
}

/* Append one gzip member of the n bytes at p to f. */
static void
gzip_member(FILE *f, const uint8_t *p, size_t n)
{
	z_stream z;
	unsigned char out[16384];
	int ret;

	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		fail("deflateInit2");
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)n;
	do {
		z.next_out = out;
		z.avail_out = sizeof out;
		ret = deflate(&z, Z_FINISH);
		fwrite(out, 1, sizeof out - z.avail_out, f);
	} while (ret == Z_OK);
	if (ret != Z_STREAM_END)
		fail("deflate");
	deflateEnd(&z);
}

static void
write_input(const char *path, const uint8_t *data, size_t size)
{
	FILE *f;
	size_t half;

	if (size == 0 || data[0] & 1) {
		fuzz_write(path, data + (size > 0), size - (size > 0));
		return;
	}
	if (!(f = fopen(path, "wb")))
		fail("cannot write the scratch file");
	data++, size--;
	half = data[-1] & 2 ? size / 2 : size;
	gzip_member(f, data, half);
	if (half < size)
		gzip_member(f, data + half, size - half);
	if (fclose(f) != 0)
		fail("cannot write the scratch file");
}

static int
same_sets(const struct tensor_set *a, const struct tensor_set *b)
{
	void *x, *y;
	size_t nx, ny;
	int same;

	if (tensor_set_encode(a, &x, &nx, NULL) < 0 || tensor_set_encode(b, &y, &ny, NULL) < 0)
		fail("a frame read does not encode");
	same = nx == ny && memcmp(x, y, nx) == 0;
	free(x);
	free(y);
	return same;
}

/* Write the n frames to a stream at path and read them back. */
static void
roundtrip(const char *path, struct tensor_set *frames, int n)
{
	struct tc_error err;
	struct tstream *s = tstream_open_write(path, 1, &err);
	struct tensor_set back;
	int i, rc;

	if (!s)
		fail(err.msg);
	for (i = 0; i < n; i++)
		if (tstream_write(s, &frames[i], &err) < 0)
			fail(err.msg);
	if (tstream_close(s, &err) < 0)
		fail(err.msg);
	if (!(s = tstream_open_read(path, &err)))
		fail(err.msg);
	tensor_set_init(&back);
	for (i = 0; (rc = tstream_read(s, &back, &err)) == 1; i++)
		if (i >= n || !same_sets(&frames[i], &back))
			fail("frames written do not read back the same");
	if (rc < 0 || i != n || tstream_frames(s) != (size_t)n)
		fail("a stream written does not read back whole");
	tensor_set_release(&back);
	tstream_close(s, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *in, *out;
	static struct tensor_set frames[MAXFRAMES];
	struct tc_error err;
	struct tstream *s;
	int n = 0, rc;

	if (!in) {
		in = fuzz_path("in.tz");
		out = fuzz_path("out.tz");
		for (int i = 0; i < MAXFRAMES; i++)
			tensor_set_init(&frames[i]);
	}
	write_input(in, data, size);
	if (!(s = tstream_open_read(in, &err)))
		fail(err.msg);
	while (n < MAXFRAMES && (rc = tstream_read(s, &frames[n], &err)) == 1)
		n++;
	if (n == MAXFRAMES)
		rc = 1;
	if (rc < 0 && tstream_read(s, &frames[n], &err) != -1)
		fail("a stream read on after an error");
	if (rc == 0 && tstream_read(s, &frames[n], &err) != 0)
		fail("a stream ended twice differently");
	tstream_name(s);
	tstream_close(s, NULL);
	if (rc == 0)
		roundtrip(out, frames, n);
	for (int i = 0; i <= n && i < MAXFRAMES; i++)
		tensor_set_release(&frames[i]);
	return 0;
}
