/*
 * util.c: the small things every tool needs, done once: messages in the house format, allocation
 * that exits on failure (sbase's e* helpers), strict number parsing, a content hash, atomic output
 * files, and finding the installed share/ directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

const char *tc_progname = "transcode";

void
tc_setprogname(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	tc_progname = slash ? slash + 1 : argv0;
}

int
tc_error_set(struct tc_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int
tc_error_prefix(struct tc_error *err, const char *fmt, ...)
{
	char pre[TC_ERROR_MAX], old[TC_ERROR_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	if (snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old) >= (int)sizeof err->msg)
		memcpy(err->msg + sizeof err->msg - 4, "...", 4);
	return -1;
}

static void
vmessage(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", tc_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	exit(1);
}

void
usage_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", tc_progname);
	exit(2);
}

void
warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

void *
emalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

void *
ecalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		die("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

void *
emalloc64(size_t n)
{
	size_t huge = (size_t)2 << 20;
	void *p;

	if (n >= 2 * huge) { /* (the rest of its last 2 MB page unused) */
		size_t m = (n + huge - 1) / huge * huge;
		if ((p = aligned_alloc(huge, m))) {
			madvise(p, m, MADV_HUGEPAGE);
			return p;
		}
	}
	p = aligned_alloc(64, (n + 63) / 64 * 64 + (n == 0) * 64);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

void *
ecalloc64(size_t nmemb, size_t size)
{
	size_t n;

	if (size && nmemb > SIZE_MAX / size)
		die("out of memory (%zu x %zu bytes)", nmemb, size);
	n = nmemb * size;
	return memset(emalloc64(n), 0, n);
}

void *
erealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		die("out of memory (%zu bytes)", n);
	return q;
}

void *
egrow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (c < need) {
		if (c > SIZE_MAX / 2 / elem)
			die("out of memory (array of %zu elements)", need);
		c *= 2;
	}
	*cap = c;
	return erealloc(p, c * elem);
}

char *
estrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die("out of memory");
	return p;
}

char *
esprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("out of memory");
	return s;
}

int
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

long
eparse_long(const char *s, const char *opt, long lo, long hi)
{
	long v;

	if (parse_long(s, lo, hi, &v) < 0)
		usage_die("option '%s': expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
	return v;
}

double
eparse_double(const char *s, const char *opt, double lo, double hi)
{
	double v;

	if (parse_double(s, lo, hi, &v) < 0)
		usage_die("option '%s': expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
	return v;
}

uint64_t
tc_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t
tc_hash_final(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* Open temporary files, removed at exit unless committed, so that a tool dying in the middle of
 * its output (die() exits) leaves no half-written file behind. */
#define MAX_OPEN_AFILES 16
static struct afile *open_afiles[MAX_OPEN_AFILES];

static void
afile_cleanup(void)
{
	for (int i = 0; i < MAX_OPEN_AFILES; i++)
		if (open_afiles[i] && open_afiles[i]->tmp)
			unlink(open_afiles[i]->tmp);
}

static void
afile_track(struct afile *af, int on)
{
	static int registered;

	if (!registered)
		registered = atexit(afile_cleanup) == 0;
	for (int i = 0; i < MAX_OPEN_AFILES; i++)
		if (on ? !open_afiles[i] : open_afiles[i] == af) {
			open_afiles[i] = on ? af : NULL;
			return;
		}
}

/* An unnamed file in dir for writing (O_TMPFILE), or -1 where the file system has none. */
static int
anon_open(const char *dir)
{
#ifdef O_TMPFILE
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);

	if (fd >= 0)
		fchmod(fd, 0644);
	return fd;
#else
	(void)dir;
	return -1;
#endif
}

int
afile_open(struct afile *af, const char *path, struct tc_error *err)
{
	struct stat st;
	char *dir, *d;
	int fd;

	memset(af, 0, sizeof *af);
	if (strcmp(path, "-") == 0) {
		af->f = stdout;
		af->path = estrdup(path);
		return 0;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device or a FIFO (/dev/null, /dev/full, a named pipe): written in place, since
		 * renaming over it would replace it with a regular file. */
		if (!(af->f = fopen(path, "w")))
			return tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
		af->path = estrdup(path);
		af->direct = 1;
		return 0;
	}
	d = estrdup(path);
	dir = dirname(d);
	if ((fd = anon_open(dir)) >= 0) {
		free(d);
		if (!(af->f = fdopen(fd, "w"))) {
			tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		af->path = estrdup(path);
		af->anon = 1;
		return 0;
	}
	af->tmp = esprintf("%s/.%s.tmpXXXXXX", dir, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	free(d);
	fd = mkstemp(af->tmp);
	if (fd < 0) {
		tc_error_set(err, "cannot create '%s': %s", path, strerror(errno));
		free(af->tmp);
		af->tmp = NULL;
		return -1;
	}
	fchmod(fd, 0644 & ~0022);
	af->f = fdopen(fd, "w");
	if (!af->f) {
		tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
		close(fd);
		unlink(af->tmp);
		free(af->tmp);
		af->tmp = NULL;
		return -1;
	}
	af->path = estrdup(path);
	afile_track(af, 1);
	return 0;
}

/* Give the unnamed file fd a name beside path (".<name>.tmp<pid>.<k>"), to be renamed over path.
 * Returns the name, or NULL with errno set. */
static char *
anon_link(int fd, const char *path)
{
	char proc[64], *d = estrdup(path), *dir = dirname(d), *tmp = NULL;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	for (int k = 0; k < 1000; k++) {
		free(tmp);
		tmp = esprintf("%s/.%s.tmp%ld.%d", dir, base, (long)getpid(), k);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0 ||
		    (errno == ENOENT && linkat(fd, "", AT_FDCWD, tmp, AT_EMPTY_PATH) == 0)) {
			free(d);
			return tmp;
		}
		if (errno != EEXIST)
			break;
	}
	free(tmp);
	free(d);
	return NULL;
}

int
afile_commit(struct afile *af, struct tc_error *err)
{
	int rc = 0;

	if (!af->tmp && !af->anon) {
		if (fflush(af->f) || ferror(af->f)) {
			const char *why = strerror(errno ? errno : EIO);
			rc = af->direct ? tc_error_set(err, "write error on '%s': %s", af->path, why)
			                : tc_error_set(err, "write error: %s", why);
		}
		if (af->direct && fclose(af->f) && rc == 0)
			rc = tc_error_set(err, "write error on '%s': %s", af->path, strerror(errno));
		free(af->path);
		af->path = NULL;
		return rc;
	}
	if (fflush(af->f) || ferror(af->f) || fsync(fileno(af->f)))
		rc = tc_error_set(err, "write error on '%s': %s", af->path, strerror(errno));
	if (rc == 0 && af->anon && !(af->tmp = anon_link(fileno(af->f), af->path)))
		rc = tc_error_set(err, "cannot create '%s': %s", af->path, strerror(errno));
	if (fclose(af->f) && rc == 0)
		rc = tc_error_set(err, "write error on '%s': %s", af->path, strerror(errno));
	if (rc == 0 && rename(af->tmp, af->path))
		rc = tc_error_set(err, "cannot rename to '%s': %s", af->path, strerror(errno));
	if (rc && af->tmp)
		unlink(af->tmp);
	if (!af->anon)
		afile_track(af, 0);
	free(af->tmp);
	free(af->path);
	memset(af, 0, sizeof *af);
	return rc;
}

void
afile_abort(struct afile *af)
{
	if (af->direct || af->anon)
		fclose(af->f);
	if (af->tmp) {
		fclose(af->f);
		unlink(af->tmp);
		free(af->tmp);
		afile_track(af, 0);
	}
	free(af->path);
	memset(af, 0, sizeof *af);
}

int
tc_check_input(const char *path, struct tc_error *err)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return tc_error_set(err, "cannot read '%s': %s", path, strerror(EISDIR));
	return 0;
}

void
close_stdout(void)
{
	int e = 0;

	if (fflush(stdout) || ferror(stdout))
		e = errno ? errno : EIO;
	if (fclose(stdout) && !e)
		e = errno;
	if (e)
		die("write error: %s", strerror(e));
}

static int
is_share(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof path, "%s/space/flexibert2.json", dir) >= (int)sizeof path)
		return 0;
	return stat(path, &st) == 0;
}

const char *
tc_share_dir(void)
{
	static char dir[PATH_MAX];
	static int done;
	char exe[PATH_MAX], *d;
	ssize_t n;

	if (done)
		return dir[0] ? dir : NULL;
	done = 1;
	d = getenv("TC_SHARE");
	if (d && *d) {
		snprintf(dir, sizeof dir, "%s", d);
		return dir;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	d = dirname(exe);
	snprintf(dir, sizeof dir, "%s/../share/transcode", d);
	if (is_share(dir))
		return dir;
	snprintf(dir, sizeof dir, "%s/../../share", d);
	if (is_share(dir))
		return dir;
	snprintf(dir, sizeof dir, "%s/../../../share", d);
	if (is_share(dir))
		return dir;
	dir[0] = 0;
	return NULL;
}

char *
tc_share_path(const char *rel)
{
	const char *d = tc_share_dir();

	if (!d)
		die("cannot find the share directory; set TC_SHARE to the transcode share/ directory");
	return esprintf("%s/%s", d, rel);
}
