/*
 * jsonl.c: JSON Lines through jansson, which does all parsing and printing; this file adds line
 * framing with positions, a bound on line length, shortest round-trip printing of reals, and
 * dotted-path field access with messages that name the field.
 *
 * Reading uses getc_unlocked rather than getline so that an over-long line is refused after
 * JSONL_MAX_LINE bytes instead of being read whole; records are a few hundred bytes, so the
 * per-byte loop costs well under a microsecond a record.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

int
jsonl_open(struct jsonl_reader *r, const char *path, struct tc_error *err)
{
	memset(r, 0, sizeof *r);
	if (!path || strcmp(path, "-") == 0) {
		r->f = stdin;
		r->name = estrdup("<stdin>");
		return 0;
	}
	r->f = fopen(path, "r");
	if (!r->f)
		return tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
	r->name = estrdup(path);
	r->own = 1;
	return 0;
}

void
jsonl_close(struct jsonl_reader *r)
{
	if (r->own && r->f)
		fclose(r->f);
	free(r->name);
	free(r->buf);
	memset(r, 0, sizeof *r);
}

int
jsonl_error(const struct jsonl_reader *r, struct tc_error *err, const char *fmt, ...)
{
	char msg[TC_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return tc_error_set(err, "%s:%ld: %s", r->name, r->line, msg);
}

/* Read one line into r->buf without its '\n'. Returns its length, -1 at end of input, -2 on a
 * read error and -3 on an over-long line. */
static long
read_line(struct jsonl_reader *r)
{
	size_t n = 0;
	int c;

	for (;;) {
		c = getc_unlocked(r->f);
		if (c == EOF) {
			if (ferror(r->f))
				return -2;
			if (n == 0)
				return -1;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= r->cap) {
			if ((long)n >= JSONL_MAX_LINE)
				return -3;
			r->buf = egrow(r->buf, &r->cap, n + 2, 1);
		}
		r->buf[n++] = (char)c;
	}
	if (n + 1 > r->cap)
		r->buf = egrow(r->buf, &r->cap, n + 1, 1);
	r->buf[n] = 0;
	return (long)n;
}

static int
blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

int
jsonl_next_line(struct jsonl_reader *r, const char **line, size_t *len, struct tc_error *err)
{
	long n;

	for (;;) {
		r->line++;
		n = read_line(r);
		if (n == -1) {
			r->line--;
			return 0;
		}
		if (n == -2)
			return jsonl_error(r, err, "read error: %s", strerror(errno));
		if (n == -3)
			return jsonl_error(r, err, "line longer than %ld bytes", JSONL_MAX_LINE);
		if (!blank(r->buf, (size_t)n))
			break;
	}
	*line = r->buf;
	*len = (size_t)n;
	return 1;
}

int
jsonl_parse(const char *name, long lineno, const char *line, size_t len, json_t **rec, struct tc_error *err)
{
	json_error_t je;

	*rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!*rec)
		return tc_error_set(err, "%s:%ld: malformed JSON at column %d: %s", name, lineno, je.column,
		                    je.text);
	if (!json_is_object(*rec)) {
		const char *k = json_kind(*rec);
		json_decref(*rec);
		*rec = NULL;
		return tc_error_set(err, "%s:%ld: expected a JSON object, got %s", name, lineno, k);
	}
	return 0;
}

int
jsonl_read(struct jsonl_reader *r, json_t **rec, struct tc_error *err)
{
	const char *line;
	size_t len;
	int rc;

	*rec = NULL;
	if ((rc = jsonl_next_line(r, &line, &len, err)) <= 0)
		return rc;
	if (jsonl_parse(r->name, r->line, line, len, rec, err) < 0)
		return -1;
	r->nrec++;
	return 1;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Is x the double nearest to a decimal of at most d significant digits, e its decimal exponent?
 * With 10^|d - 1 - e| exact (at most 10^22), one correctly rounded product or quotient gives
 * that nearest double. */
static int
short_decimal(double x, int e, int d)
{
	int s = d - 1 - e;
	double p, r;

	if (s < -22 || s > 22)
		return 0;
	p = pow10_exact[s < 0 ? -s : s];
	r = s >= 0 ? nearbyint(x * p) / p : nearbyint(x / p) * p;
	return r == x;
}

/* The fewest of 9, 15, 16 or 17 significant digits that print x so that it reads back exactly
 * (results are rounded to 9, and %.9g prints faster than %.15g). */
static int
real_digits(double x)
{
	char buf[40];

	if (x == 0)
		return 1;
	if (isfinite(x)) {
		int e = (int)floor(log10(fabs(x)));
		if (short_decimal(x, e, 9))
			return 9;
		if (short_decimal(x, e, 15))
			return 15;
	}
	for (int p = 15; p < 17; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			return p;
	}
	return 17;
}

static int
max_digits(const json_t *v)
{
	const char *key;
	json_t *x;
	size_t i;
	int p = 1, q;

	switch (json_typeof(v)) {
	case JSON_REAL:
		return real_digits(json_real_value(v));
	case JSON_OBJECT:
		json_object_foreach ((json_t *)v, key, x) {
			q = max_digits(x);
			p = q > p ? q : p;
		}
		return p;
	case JSON_ARRAY:
		json_array_foreach (v, i, x) {
			q = max_digits(x);
			p = q > p ? q : p;
		}
		return p;
	default:
		return p;
	}
}

/* Dump into a growing thread-local buffer; returns the length or 0 on failure. */
static size_t
dump(const json_t *rec, char **out)
{
	static __thread char *buf;
	static __thread size_t cap;
	size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(max_digits(rec)), n;

	for (;;) {
		n = json_dumpb(rec, buf, cap, flags);
		if (n == 0)
			return 0;
		if (n < cap)
			break;
		buf = egrow(buf, &cap, n + 2, 1);
	}
	*out = buf;
	return n;
}

int
jsonl_write(FILE *f, const json_t *rec)
{
	char *s;
	size_t n = dump(rec, &s);

	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	s[n] = '\n';
	if (fwrite(s, 1, n + 1, f) != n + 1)
		return -1;
	return 0;
}

int
jsonl_append(char **buf, size_t *len, size_t *cap, const json_t *rec)
{
	char *s;
	size_t n = dump(rec, &s);

	if (n == 0)
		return -1;
	*buf = egrow(*buf, cap, *len + n + 1, 1);
	memcpy(*buf + *len, s, n);
	(*buf)[*len + n] = '\n';
	*len += n + 1;
	return 0;
}

int
jsonl_append_member(char **buf, size_t *len, size_t *cap, const char *line, size_t linelen, const char *key,
                    const json_t *val)
{
	size_t end = linelen, open, klen = strlen(key), n;
	char *s;

	while (end > 0 && strchr(" \t\r\n", line[end - 1]))
		end--;
	if (end == 0 || line[end - 1] != '}')
		return -1;
	end--;
	for (open = end; open > 0 && strchr(" \t\r\n", line[open - 1]); open--)
		;
	if ((n = dump(val, &s)) == 0)
		return -1;
	*buf = egrow(*buf, cap, *len + end + klen + n + 8, 1);
	memcpy(*buf + *len, line, end);
	*len += end;
	if (open == 0 || line[open - 1] != '{')
		(*buf)[(*len)++] = ',';
	(*buf)[(*len)++] = '"';
	memcpy(*buf + *len, key, klen);
	*len += klen;
	(*buf)[(*len)++] = '"';
	(*buf)[(*len)++] = ':';
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[(*len)++] = '}';
	(*buf)[(*len)++] = '\n';
	return 0;
}

char *
jsonl_dumps(const json_t *rec)
{
	char *s, *r;
	size_t n = dump(rec, &s);

	if (n == 0)
		return NULL;
	r = emalloc(n + 1);
	memcpy(r, s, n);
	r[n] = 0;
	return r;
}

/* Copy the next path component of *p into key (at most size-1 bytes); advance *p past it and its
 * dot. Returns the component length, or -1 if it is too long or empty. */
static int
next_component(const char **p, char *key, size_t size)
{
	const char *dot = strchr(*p, '.');
	size_t n = dot ? (size_t)(dot - *p) : strlen(*p);

	if (n == 0 || n >= size)
		return -1;
	memcpy(key, *p, n);
	key[n] = 0;
	*p += n + (dot ? 1 : 0);
	return (int)n;
}

static int
all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

json_t *
json_path_get(const json_t *root, const char *path)
{
	const char *p = path;
	char key[256];
	json_t *v = (json_t *)root;

	while (v && *p) {
		if (next_component(&p, key, sizeof key) < 0)
			return NULL;
		if (json_is_object(v))
			v = json_object_get(v, key);
		else if (json_is_array(v) && all_digits(key))
			v = json_array_get(v, strtoul(key, NULL, 10));
		else
			return NULL;
	}
	return v;
}

int
json_path_set_new(json_t *root, const char *path, json_t *value)
{
	const char *p = path;
	char key[256];
	json_t *v = root, *next;

	for (;;) {
		if (next_component(&p, key, sizeof key) < 0 || !json_is_object(v))
			break;
		if (!*p)
			return json_object_set_new(v, key, value);
		next = json_object_get(v, key);
		if (!next) {
			next = json_object();
			if (json_object_set_new(v, key, next) < 0)
				break;
		}
		v = next;
	}
	json_decref(value);
	return -1;
}

const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

#define EXACT_INT_MAX 9007199254740992.0 /* 2^53 */

int
json_as_number(const json_t *v, const char *what, double *out, struct tc_error *err)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i > (json_int_t)EXACT_INT_MAX || i < -(json_int_t)EXACT_INT_MAX)
			return tc_error_set(err, "field '%s': %lld is beyond 2^53", what, (long long)i);
		*out = (double)i;
		return 0;
	}
	if (json_is_real(v)) {
		*out = json_real_value(v);
		return 0;
	}
	return tc_error_set(err, "field '%s': expected a number, got %s", what, json_kind(v));
}

int
json_as_int(const json_t *v, const char *what, long lo, long hi, long *out, struct tc_error *err)
{
	double x;

	if (json_as_number(v, what, &x, err) < 0)
		return -1;
	if (x != floor(x))
		return tc_error_set(err, "field '%s': expected an integer, got %.17g", what, x);
	if (x < (double)lo || x > (double)hi)
		return tc_error_set(err, "field '%s': %.17g is outside [%ld, %ld]", what, x, lo, hi);
	*out = (long)x;
	return 0;
}

int
json_get_number(const json_t *root, const char *path, double *out, struct tc_error *err)
{
	const json_t *v = json_path_get(root, path);

	if (!v)
		return tc_error_set(err, "missing field '%s'", path);
	return json_as_number(v, path, out, err);
}

int
json_get_int(const json_t *root, const char *path, long lo, long hi, long *out, struct tc_error *err)
{
	const json_t *v = json_path_get(root, path);

	if (!v)
		return tc_error_set(err, "missing field '%s'", path);
	return json_as_int(v, path, lo, hi, out, err);
}

int
json_get_string(const json_t *root, const char *path, const char **out, struct tc_error *err)
{
	const json_t *v = json_path_get(root, path);

	if (!v)
		return tc_error_set(err, "missing field '%s'", path);
	if (!json_is_string(v))
		return tc_error_set(err, "field '%s': expected a string, got %s", path, json_kind(v));
	*out = json_string_value(v);
	return 0;
}

json_t *
json_number(double x)
{
	if (!isfinite(x))
		return NULL;
	if (x == floor(x) && fabs(x) <= EXACT_INT_MAX)
		return json_integer((json_int_t)x);
	return json_real(x);
}
