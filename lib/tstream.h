/*
 * tstream.h: tensor streams, safetensors files ("frames") back to back inside one gzip stream (tc-tensor(5)),
 * read from a file or a pipe and written to a file (atomically) or a pipe.
 *
 * Ownership: a struct tstream belongs to its opener until tstream_close or tstream_abort frees it, and a
 * frame read belongs to the caller's struct tensor_set.
 */
#ifndef TC_TSTREAM_H
#define TC_TSTREAM_H

#include <stddef.h>

struct tc_error;
struct tensor_set;
struct tstream;

/*
 * Open path ("-" = stdin) for reading frames. Returns the stream, or NULL with err set when the file
 * cannot be opened. Messages about the stream start with path, or "<stdin>".
 */
struct tstream *tstream_open_read(const char *path, struct tc_error *err);

/*
 * Open path ("-" = stdout) for writing frames at zlib compression level (-1 = zlib's default, 0..9). A file
 * is written to a temporary name and appears under path only when tstream_close succeeds. Returns the stream,
 * or NULL with err set.
 */
struct tstream *tstream_open_write(const char *path, int level, struct tc_error *err);

/*
 * Read the next frame into out, replacing its contents. Returns 1 for a frame, 0 at the clean end of the
 * stream (every later call returns 0 again; tstream_frames then tells an empty stream), or -1 with err set
 * (out left empty, every later call fails). The gzip checksum covers the whole stream and is checked at its
 * end, so only a caller that reads until 0 knows that the frames it got were intact.
 */
int tstream_read(struct tstream *s, struct tensor_set *out, struct tc_error *err);

/*
 * Append set as one frame and flush it, so a reader at the other end of a pipe gets it now. Returns 0, or
 * -1 with err set; after a failure, later writes fail and tstream_close discards the file.
 */
int tstream_write(struct tstream *s, const struct tensor_set *set, struct tc_error *err);

/*
 * Writer: finish the gzip stream and commit the file. Reader: just free. Frees s in every case (NULL is a
 * no-op) and returns 0, or -1 with err set on a write or commit failure (the file is then not created).
 */
int tstream_close(struct tstream *s, struct tc_error *err);

/* Free s; a writer's temporary file is removed, so path keeps its old contents (NULL is a no-op). On stdout,
 * the unfinished gzip stream makes every reader report truncation. */
void tstream_abort(struct tstream *s);

/* Frames read or written so far. */
size_t tstream_frames(const struct tstream *s);
/* The name messages use for the stream: its path, "<stdin>" or "<stdout>". */
const char *tstream_name(const struct tstream *s);

#endif
