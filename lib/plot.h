/*
 * plot.h: drawing through gnuplot. A tool writes a gnuplot script (data inline as datablocks) to
 * the FILE that plot_open returns; plot_close runs it to the end and renames the image over its
 * destination, so a failed plot never leaves a half-written file.
 *
 * Ownership: struct plot holds a gnuplot process and the image's atomic file until plot_close.
 */
#ifndef TC_PLOT_H
#define TC_PLOT_H

#include <stdio.h>

#include "util.h"

struct plot {
	FILE *gp;         /* gnuplot's standard input */
	char *path;       /* destination */
	struct afile out; /* what gnuplot writes, through /proc/PID/fd/N */
};

/* Start gnuplot with the terminal chosen by path's extension (.png: pngcairo, .svg: svg) at
 * width x height pixels. Returns the script stream, or NULL with err set. */
FILE *plot_open(struct plot *p, const char *path, int width, int height, struct tc_error *err);
/* Finish the script, wait for gnuplot and move the image into place. Returns 0 or -1. */
int plot_close(struct plot *p, struct tc_error *err);
/* Write s as a gnuplot single-quoted string. */
void plot_quote(FILE *f, const char *s);

#endif
