/*
 * fuzz.h: what the libFuzzer harnesses of tests/fuzz share: a private scratch directory, made
 * once per process in /dev/shm (else $TMPDIR, else /tmp) and removed at exit, for the parsers
 * that take a path; writing an input there; and the share/ lookup of the default data files.
 * Included by one harness per program, like tests/unit/tap.h.
 *
 * A harness never prints on success: libFuzzer's own output is the log. Anything a harness finds
 * inconsistent (a record that does not read back as it was written) is reported with abort(), so
 * that libFuzzer saves the input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char fuzz_dir[256];

static int
fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
fuzz_cleanup(void)
{
	if (fuzz_dir[0])
		nftw(fuzz_dir, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory, made on the first call. */
static const char *__attribute__((unused)) fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	struct stat st;

	if (fuzz_dir[0])
		return fuzz_dir;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	else if (!base || !*base)
		base = "/tmp";
	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/tc-fuzz.XXXXXX", base);
	if (!mkdtemp(fuzz_dir)) {
		perror(fuzz_dir);
		abort();
	}
	atexit(fuzz_cleanup);
	return fuzz_dir;
}

/* The path of rel in the scratch directory; caller frees. */
static char *__attribute__((unused)) fuzz_path(const char *rel)
{
	return esprintf("%s/%s", fuzz_tmpdir(), rel);
}

/* Write the n bytes at p to path, replacing it; directories on the way are made. Aborts on
 * failure: a harness that cannot write its input tests nothing. */
static void __attribute__((unused)) fuzz_write(const char *path, const void *p, size_t n)
{
	char *dir = estrdup(path);
	FILE *f;

	for (char *s = strchr(dir + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		mkdir(dir, 0700);
		*s = '/';
	}
	free(dir);
	f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* The path of a file under share/ (space/tiny.json), from the source tree the harness was built
 * in (TC_SHARE overrides, as for the tools); caller frees. */
static char *__attribute__((unused)) fuzz_share(const char *rel)
{
	if (!getenv("TC_SHARE"))
		setenv("TC_SHARE", FUZZ_TOP "/share", 1);
	return tc_share_path(rel);
}
