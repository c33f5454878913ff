/*
 * plot.c: gnuplot as a child process. Data travel inline ($name << EOD datablocks, gnuplot 5), so
 * nothing but the image touches the disk. The image goes to an atomic file (afile_open: unnamed
 * where the file system allows), which gnuplot opens as /proc/PID/fd/N; it gets its name only when
 * gnuplot exits with status 0, so a plot killed at any moment leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"

void
plot_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static const char *
terminal(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot && strcmp(dot, ".png") == 0)
		return "pngcairo";
	if (dot && strcmp(dot, ".svg") == 0)
		return "svg";
	return NULL;
}

FILE *
plot_open(struct plot *p, const char *path, int width, int height, struct tc_error *err)
{
	const char *term = terminal(path);
	char out[64];

	memset(p, 0, sizeof *p);
	if (!term)
		return tc_error_set(err, "plot '%s': expected a .png or .svg file name", path), NULL;
	if (afile_open(&p->out, path, err) < 0) /* never stdout: the name ends in .png or .svg */
		return NULL;
	fflush(p->out.f);
	snprintf(out, sizeof out, "/proc/%ld/fd/%d", (long)getpid(), fileno(p->out.f));
	signal(SIGPIPE, SIG_IGN); /* a gnuplot that dies must not kill the tool; plot_close reports it */
	p->gp = popen("gnuplot", "w");
	if (!p->gp) {
		tc_error_set(err, "cannot run gnuplot: %s", strerror(errno));
		afile_abort(&p->out);
		return NULL;
	}
	p->path = estrdup(path);
	fprintf(p->gp, "set terminal %s size %d,%d noenhanced font ',10' background rgb 'white'\nset output ",
	        term, width, height);
	plot_quote(p->gp, out);
	fputc('\n', p->gp);
	return p->gp;
}

int
plot_close(struct plot *p, struct tc_error *err)
{
	int status, rc = 0;

	fputs("unset output\n", p->gp);
	fflush(p->gp);
	status = pclose(p->gp);
	signal(SIGPIPE, SIG_DFL);
	if (status == -1)
		rc = tc_error_set(err, "gnuplot: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
		rc = tc_error_set(err, "cannot run gnuplot; install it with: apt-get install gnuplot-nox");
	else if (WEXITSTATUS(status) != 0)
		rc = tc_error_set(err, "gnuplot failed with status %d drawing '%s'", WEXITSTATUS(status),
		                  p->path);
	if (rc)
		afile_abort(&p->out);
	else if (afile_commit(&p->out, err) < 0)
		rc = -1;
	free(p->path);
	memset(p, 0, sizeof *p);
	return rc;
}
