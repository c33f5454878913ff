/*
 * util.h: errors, allocation that exits on failure, number parsing, atomic file writes.
 *
 * Ownership: every pointer returned here is owned by the caller and released with free() (or, for
 * struct afile, by afile_commit/afile_abort).
 *
 * Only the e* helpers and die()/usage_die() exit; they are meant for tools/. Everything else reports
 * failure through a struct tc_error, whose message already carries the "file:line: " position when
 * the failure concerns input data, so a tool prints "prog: <msg>" and nothing more.
 */
#ifndef TC_UTIL_H
#define TC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TC_ERROR_MAX 512

struct tc_error {
	char msg[TC_ERROR_MAX];
};

/* Set err->msg from a printf format; NULL err is a no-op. Always returns -1 so callers can write
 * "return tc_error_set(err, ...);". */
int tc_error_set(struct tc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix an existing message: "<prefix>: <old message>". Returns -1. */
int tc_error_prefix(struct tc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The program name used in messages ("tc-sample"); set once by main. */
extern const char *tc_progname;
void tc_setprogname(const char *argv0);

/* Print "prog: message\n" on stderr and exit 1 (failure) or 2 (usage). */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void usage_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Print "prog: message\n" on stderr and continue. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *emalloc(size_t n);
void *ecalloc(size_t nmemb, size_t size);
/* The same on a cache line's start (64 bytes), for what vector loads read: a load of a line that
 * spans two costs two. From 4 MB, on 2 MB pages where the kernel gives them (madvise): the
 * training step's activations and parameters, read in long passes, took a TLB miss every 4 KB.
 * Freed with free(). */
void *emalloc64(size_t n);
void *ecalloc64(size_t nmemb, size_t size);
void *erealloc(void *p, size_t n);
/* Grow *p (holding *cap elements of size elem) to at least need elements, doubling. */
void *egrow(void *p, size_t *cap, size_t need, size_t elem);
char *estrdup(const char *s);
char *esprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Strict number parsing: the whole string must be a number in [lo, hi], no leading or trailing
 * junk, no NaN or Inf. Return 0 or -1.
 */
int parse_long(const char *s, long lo, long hi, long *out);
int parse_double(const char *s, double lo, double hi, double *out);

/* Option parsing for tools: on failure print "prog: option '--n': expected an integer in [lo, hi],
 * got 'x'" and exit 2. */
long eparse_long(const char *s, const char *opt, long lo, long hi);
double eparse_double(const char *s, const char *opt, double lo, double hi);

/* 64-bit FNV-1a over bytes, continuing from h (start with TC_HASH_INIT), and a finaliser that
 * spreads every input bit over the output (splitmix64's). */
#define TC_HASH_INIT 0xcbf29ce484222325ULL
uint64_t tc_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t tc_hash_final(uint64_t h);

/*
 * Atomic output files: written to a temporary file in the destination's directory, then renamed
 * over the destination by afile_commit, so readers see either the old file or the whole new one.
 * The temporary file is unnamed where the file system allows (O_TMPFILE) and gets its name only
 * in afile_commit, so a process killed by any signal, SIGKILL included, leaves nothing behind;
 * elsewhere it is a named file, removed at exit and by afile_abort. "-" means stdout, and an
 * existing path that is not a regular file (/dev/null, a FIFO) is written in place: both are
 * written directly.
 */
struct afile {
	FILE *f;
	char *path; /* destination */
	char *tmp;  /* named temporary file, or NULL (stdout, written in place, or unnamed) */
	int direct; /* a device or FIFO, written in place and closed by commit */
	int anon;   /* an unnamed temporary file (O_TMPFILE), linked and renamed by commit */
};
int afile_open(struct afile *af, const char *path, struct tc_error *err);
/* Flush, fsync, close and rename; on any failure remove the temporary file and return -1. */
int afile_commit(struct afile *af, struct tc_error *err);
/* Close and remove the temporary file; the destination is left untouched. */
void afile_abort(struct afile *af);

/*
 * 0 unless path names a directory, else -1 with "cannot read 'path': Is a directory" in err. For
 * paths handed to a loader that would read a directory as an empty file (jansson's
 * json_load_file); a missing or unreadable path is left to the loader, which names the reason.
 */
int tc_check_input(const char *path, struct tc_error *err);

/* Close stdout with a check; on failure print "prog: write error: ..." and exit 1. */
void close_stdout(void);

/*
 * The directory of installed read-only data: $TC_SHARE if set, else <exe>/../share/transcode when
 * installed, else the source tree's share/ when run from build/. Returns a static string or NULL.
 */
const char *tc_share_dir(void);
/* share dir joined with rel ("space/flexibert2.json"); caller frees. Exits if there is no share dir. */
char *tc_share_path(const char *rel);

#endif
