/*
 * tstream.c: tensor streams, safetensors frames back to back in one gzip stream, driven through zlib's
 * deflate/inflate so that every byte going in or out is accounted for.
 *
 * Writer: one gzip member with a header CRC (FHCRC), so a flipped byte anywhere in the file, header
 * included, is an error for the reader; each frame ends with a sync flush and an fflush, so a consumer at
 * the other end of a pipe decodes a frame as soon as it is written (about 5 bytes per frame). The output
 * depends only on the frames and the level, so the same frames give the same bytes.
 *
 * Reader: decompresses exactly what tensor_set_read asks for. End of input is clean only right after the
 * end of a gzip member, whose CRC-32 and length zlib has then verified; end of input anywhere else, even
 * between two frames, is truncation. Members concatenated as gzip(1) allows are read as one stream, so
 * "cat a b" of two streams is a stream; any other trailing byte is an error. Reads go straight to read(2),
 * not stdio, so a frame is decoded as soon as its bytes reach a pipe.
 *
 * Invariant: a stream that has failed stays failed. A reader returns no frame after an error, so a caller
 * cannot step over a damaged frame and carry on; a writer's file is then never committed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "tensor.h"
#include "tstream.h"
#include "util.h"

#define ZCHUNK (64u * 1024)
/* Largest single deflate input (zlib counts in uInt). */
#define ZFEED_MAX (1u << 30)

struct tstream {
	int writing;
	char *what;    /* the name in messages */
	size_t frames; /* frames read or written */
	int failed;    /* sticky error */
	z_stream z;
	unsigned char *buf; /* ZCHUNK bytes: compressed input (reader) or output (writer) */

	/* reader */
	int fd, ownfd;
	int member_end; /* inflate has reached the end of a member and verified its trailer */
	int eof;        /* clean end: input ended right after a member */
	int cut;        /* input ended inside a member */
	int members;    /* members finished */
	uint64_t nin;   /* compressed bytes read */

	/* writer */
	struct afile af;
	gz_header head; /* must outlive the first deflate call */
};

static void
stream_free(struct tstream *s)
{
	free(s->buf);
	free(s->what);
	free(s);
}

struct tstream *
tstream_open_read(const char *path, struct tc_error *err)
{
	struct tstream *s;
	int stdin_ = strcmp(path, "-") == 0;
	int fd = stdin_ ? 0 : open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return tc_error_set(err, "cannot open '%s': %s", path, strerror(errno)), NULL;
	s = ecalloc(1, sizeof *s);
	s->what = estrdup(stdin_ ? "<stdin>" : path);
	s->fd = fd;
	s->ownfd = !stdin_;
	s->buf = emalloc(ZCHUNK);
	if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
		tc_error_set(err, "%s: cannot initialise zlib (out of memory?)", s->what);
		if (s->ownfd)
			close(fd);
		stream_free(s);
		return NULL;
	}
	return s;
}

/* Refill the compressed input. Returns the number of bytes read (0 at end of input), or -1 with err set. */
static long
fill(struct tstream *s, struct tc_error *err)
{
	ssize_t r;

	do
		r = read(s->fd, s->buf, ZCHUNK);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return tc_error_set(err, "read error: %s", strerror(errno));
	s->z.next_in = s->buf;
	s->z.avail_in = (uInt)r;
	s->nin += (uint64_t)r;
	return (long)r;
}

/* The message for an inflate error, telling a file that is no gzip stream from a damaged one. */
static int
inflate_error(struct tstream *s, int ret, struct tc_error *err)
{
	const char *msg = s->z.msg ? s->z.msg : "unknown error";
	int header = s->z.total_out == 0 && strcmp(msg, "incorrect header check") == 0;

	if (ret == Z_MEM_ERROR)
		return tc_error_set(err, "out of memory in zlib");
	if (ret == Z_BUF_ERROR)
		return tc_error_set(err, "zlib made no progress (%s)", msg);
	if (header && s->members == 0)
		return tc_error_set(err, "not a gzip stream (%s)", msg);
	if (header)
		return tc_error_set(err, "trailing garbage after the gzip stream (%s)", msg);
	return tc_error_set(err, "corrupted gzip stream (%s)", msg);
}

/*
 * tensor_set_read's callback: decompress n bytes into buf. Returns n, or fewer when the input ends (cleanly,
 * s->eof, or inside a member, s->cut), or -1 with err set on a read error or damaged data.
 */
static long
zread(void *ctx, void *buf, size_t n, struct tc_error *err)
{
	struct tstream *s = ctx;
	long r;
	int ret;

	s->z.next_out = buf;
	s->z.avail_out = (uInt)n; /* n <= the 1 GiB tensor_set_read asks for at most */
	while (s->z.avail_out > 0 && !s->eof && !s->cut) {
		if (s->z.avail_in == 0) {
			r = fill(s, err);
			if (r < 0)
				return -1;
			if (r == 0) {
				if (s->member_end)
					s->eof = 1;
				else
					s->cut = 1;
				break;
			}
		}
		if (s->member_end) {
			inflateReset(&s->z);
			s->member_end = 0;
		}
		ret = inflate(&s->z, Z_NO_FLUSH);
		if (ret == Z_STREAM_END) {
			s->member_end = 1;
			s->members++;
		} else if (ret != Z_OK && !(ret == Z_BUF_ERROR && s->z.avail_in == 0)) {
			return inflate_error(s, ret, err);
		}
	}
	return (long)(n - s->z.avail_out);
}

int
tstream_read(struct tstream *s, struct tensor_set *out, struct tc_error *err)
{
	char *what;
	int rc;

	tensor_set_release(out);
	if (s->writing)
		return tc_error_set(err, "%s: stream is open for writing", s->what);
	if (s->failed)
		return tc_error_set(err, "%s: stream is unusable after an earlier error", s->what);
	if (s->eof)
		return 0;
	what = esprintf("%s: frame %zu", s->what, s->frames);
	rc = tensor_set_read(out, zread, s, UINT64_MAX, what, err);
	if (rc == 0 && s->cut) {
		if (s->nin == 0)
			tc_error_set(err, "%s: empty input (not even a gzip header)", s->what);
		else
			tc_error_set(err, "%s: truncated gzip stream (unexpected end of file)", what);
		rc = -1;
	}
	free(what);
	if (rc < 0)
		s->failed = 1;
	if (rc > 0)
		s->frames++;
	return rc;
}

struct tstream *
tstream_open_write(const char *path, int level, struct tc_error *err)
{
	struct tstream *s;

	if (level < -1 || level > 9)
		return tc_error_set(err, "compression level %d is not in [-1, 9]", level), NULL;
	s = ecalloc(1, sizeof *s);
	s->writing = 1;
	s->what = estrdup(strcmp(path, "-") == 0 ? "<stdout>" : path);
	s->buf = emalloc(ZCHUNK);
	if (afile_open(&s->af, path, err)) {
		stream_free(s);
		return NULL;
	}
	s->head.os = 255; /* "unknown", as zlib's default header: the bytes do not depend on the host */
	s->head.hcrc = 1;
	if (deflateInit2(&s->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
	    deflateSetHeader(&s->z, &s->head) != Z_OK) {
		tc_error_set(err, "%s: cannot initialise zlib (out of memory?)", s->what);
		deflateEnd(&s->z);
		afile_abort(&s->af);
		stream_free(s);
		return NULL;
	}
	return s;
}

/*
 * Compress n bytes of data with the given flush mode and write whatever deflate produces. Returns 0, or -1
 * with err set on a write error.
 */
static int
feed(struct tstream *s, const void *data, size_t n, int flush, struct tc_error *err)
{
	const unsigned char *p = data;

	do {
		size_t k = n < ZFEED_MAX ? n : ZFEED_MAX;

		s->z.next_in = (unsigned char *)p;
		s->z.avail_in = (uInt)k;
		if (k) /* a flush passes data NULL, and NULL + 0 is undefined */
			p += k;
		n -= k;
		do {
			size_t have;

			s->z.next_out = s->buf;
			s->z.avail_out = ZCHUNK;
			deflate(&s->z, n ? Z_NO_FLUSH : flush); /* cannot fail with valid arguments */
			have = ZCHUNK - s->z.avail_out;
			if (have && fwrite(s->buf, 1, have, s->af.f) != have)
				return tc_error_set(err, "write error on '%s': %s", s->what, strerror(errno));
		} while (s->z.avail_out == 0);
	} while (n);
	return 0;
}

static int
zwrite(void *ctx, const void *buf, size_t n, struct tc_error *err)
{
	return feed(ctx, buf, n, Z_NO_FLUSH, err);
}

int
tstream_write(struct tstream *s, const struct tensor_set *set, struct tc_error *err)
{
	if (!s->writing)
		return tc_error_set(err, "%s: stream is open for reading", s->what);
	if (s->failed)
		return tc_error_set(err, "%s: stream is unusable after an earlier error", s->what);
	if (tensor_set_write(set, zwrite, s, err) || feed(s, NULL, 0, Z_SYNC_FLUSH, err)) {
		s->failed = 1;
		return -1;
	}
	if (fflush(s->af.f)) {
		s->failed = 1;
		return tc_error_set(err, "write error on '%s': %s", s->what, strerror(errno));
	}
	s->frames++;
	return 0;
}

int
tstream_close(struct tstream *s, struct tc_error *err)
{
	int rc = 0;

	if (!s)
		return 0;
	if (!s->writing) {
		inflateEnd(&s->z);
		if (s->ownfd)
			close(s->fd);
		stream_free(s);
		return 0;
	}
	if (s->failed)
		rc = tc_error_set(err, "%s: not written, after an earlier error", s->what);
	else
		rc = feed(s, NULL, 0, Z_FINISH, err);
	deflateEnd(&s->z);
	if (rc)
		afile_abort(&s->af);
	else
		rc = afile_commit(&s->af, err);
	stream_free(s);
	return rc;
}

void
tstream_abort(struct tstream *s)
{
	if (!s)
		return;
	if (!s->writing) {
		tstream_close(s, NULL);
		return;
	}
	deflateEnd(&s->z);
	afile_abort(&s->af);
	stream_free(s);
}

size_t
tstream_frames(const struct tstream *s)
{
	return s->frames;
}

const char *
tstream_name(const struct tstream *s)
{
	return s->what;
}
