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
		if ((long)n >= JSONL_MAX_LINE)
			return -3;
		if (n + 1 >= r->cap)
			r->buf = egrow(r->buf, &r->cap, n + 2, 1);
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
		if (e >= -14 && e <= 8) { /* 10^(8 - e) and 10^(14 - e) are exact */
			if (short_decimal(x, e, 9))
				return 9;
			if (short_decimal(x, e, 15))
				return 15;
		} else {
			snprintf(buf, sizeof buf, "%.9g", x);
			if (strtod(buf, NULL) == x)
				return 9;
		}
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

#define EXACT_INT_MAX 9007199254740992.0 /* 2^53 */

/*
 * The encoder. jansson prints every real through snprintf("%.*g"), which took a quarter of
 * tc-sim's time per record; results are rounded to 9 significant digits, and for a real that is
 * the double nearest a decimal of at most 9 digits, the digits come from one exact scaling and
 * an integer. Everything else (a real needing more digits, a string with a character to escape)
 * is handed to jansson itself, so the text is byte for byte what json_dumpb would print with
 * JSON_COMPACT; tests/unit/jsonl_test.c checks that on random trees.
 */
static void
out_put(struct jsonl_out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap)
		o->p = egrow(o->p, &o->cap, o->len + n + 1, 1);
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* v as jansson prints it alone; 0 or -1 */
static int
out_jansson(struct jsonl_out *o, const json_t *v, size_t flags)
{
	char tmp[64], *s = tmp;
	size_t n = json_dumpb(v, tmp, sizeof tmp, flags | JSON_ENCODE_ANY);

	if (n == 0)
		return -1;
	if (n > sizeof tmp) {
		s = emalloc(n);
		json_dumpb(v, s, n, flags | JSON_ENCODE_ANY);
	}
	out_put(o, s, n);
	if (s != tmp)
		free(s);
	return 0;
}

/* the decimal digits of v, with a '-' if negative; the length */
static int
put_int(char *buf, long long v)
{
	char t[24];
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
	int n = 0, k = 0;

	do
		t[k++] = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		buf[n++] = '-';
	while (k > 0)
		buf[n++] = t[--k];
	return n;
}

/* "%.*g" of x, with jansson's changes (".0" on integral values, no '+' or leading zeros in the
 * exponent), into buf; the length, or 0 if x is not a short decimal this can print exactly. x is
 * the double nearest a decimal D of 9 digits, so %.{9..15}g prints D: half a step of the 15-digit
 * grid is at least 5e-16 of x, more than the half ulp (1.1e-16) between x and D. At 16 digits a
 * step can be 1.0e-16 of x, and %.16g may print a neighbour of D. */
static int
short_real(char *buf, double x, int prec)
{
	double a = fabs(x), m, p;
	char d[12];
	int e, s, nd, n = 0;

	if (!isfinite(x) || x == 0 || prec > 15 || prec < 9)
		return 0;
	e = (int)floor(log10(a));
	for (int tries = 0;; tries++) {
		s = 8 - e;
		if (s < -22 || s > 22 || tries == 2)
			return 0;
		p = pow10_exact[s < 0 ? -s : s];
		m = s >= 0 ? nearbyint(a * p) : nearbyint(a / p);
		if (m >= 1e9)
			e++;
		else if (m < 1e8)
			e--;
		else
			break;
	}
	if ((s >= 0 ? m / p : m * p) != a)
		return 0;
	for (long long v = (long long)m, i = 8; i >= 0; i--, v /= 10)
		d[i] = (char)('0' + v % 10);
	for (nd = 9; d[nd - 1] == '0'; nd--)
		;
	if (x < 0)
		buf[n++] = '-';
	if (e < -4 || e >= prec) {
		buf[n++] = d[0];
		if (nd > 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + 1, (size_t)nd - 1);
			n += nd - 1;
		}
		buf[n++] = 'e';
		n += put_int(buf + n, e);
	} else if (e < 0) {
		buf[n++] = '0';
		buf[n++] = '.';
		for (int i = 0; i < -e - 1; i++)
			buf[n++] = '0';
		memcpy(buf + n, d, (size_t)nd);
		n += nd;
	} else {
		for (int i = 0; i <= e; i++)
			buf[n++] = i < nd ? d[i] : '0';
		if (nd > e + 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + e + 1, (size_t)(nd - e - 1));
			n += nd - e - 1;
		} else {
			buf[n++] = '.';
			buf[n++] = '0';
		}
	}
	return n;
}

/* a string with nothing to escape is copied; anything else is jansson's */
static int
out_string(struct jsonl_out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
			json_t *t = json_stringn_nocheck(s, n);
			int rc = t ? out_jansson(o, t, 0) : -1;
			json_decref(t);
			return rc;
		}
	}
	if (o->len + n + 3 > o->cap)
		o->p = egrow(o->p, &o->cap, o->len + n + 3, 1);
	o->p[o->len++] = '"';
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len++] = '"';
	return 0;
}

static int
encode(struct jsonl_out *o, const json_t *v, int prec)
{
	char buf[40];
	const char *key;
	json_t *x;
	size_t i;
	int n, first = 1;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		out_put(o, "{", 1);
		json_object_foreach ((json_t *)v, key, x) {
			if (!first)
				out_put(o, ",", 1);
			first = 0;
			if (out_string(o, key, strlen(key)) < 0)
				return -1;
			out_put(o, ":", 1);
			if (encode(o, x, prec) < 0)
				return -1;
		}
		out_put(o, "}", 1);
		return 0;
	case JSON_ARRAY:
		out_put(o, "[", 1);
		json_array_foreach (v, i, x) {
			if (i > 0)
				out_put(o, ",", 1);
			if (encode(o, x, prec) < 0)
				return -1;
		}
		out_put(o, "]", 1);
		return 0;
	case JSON_STRING:
		return out_string(o, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		out_put(o, buf, (size_t)put_int(buf, json_integer_value(v)));
		return 0;
	case JSON_REAL:
		if ((n = short_real(buf, json_real_value(v), prec)) > 0) {
			out_put(o, buf, (size_t)n);
			return 0;
		}
		return out_jansson(o, v, JSON_COMPACT | JSON_REAL_PRECISION(prec));
	case JSON_TRUE:
		out_put(o, "true", 4);
		return 0;
	case JSON_FALSE:
		out_put(o, "false", 5);
		return 0;
	case JSON_NULL:
		out_put(o, "null", 4);
		return 0;
	}
	return -1;
}

/* Encode into a growing thread-local buffer (with room for one more byte); returns the length or
 * 0 on failure. */
static size_t
dump(const json_t *rec, char **out)
{
	static __thread struct jsonl_out o;

	o.len = 0;
	if (!json_is_object(rec) && !json_is_array(rec))
		return 0;
	if (encode(&o, rec, max_digits(rec)) < 0)
		return 0;
	*out = o.p;
	return o.len;
}

/* ---- the streaming writer ---- */

static void
jw_key(struct jsonl_out *w, const char *key)
{
	if (w->depth > 0) {
		if (w->more[w->depth - 1])
			out_put(w, ",", 1);
		w->more[w->depth - 1] = 1;
	}
	if (key) {
		if (out_string(w, key, strlen(key)) < 0)
			w->err = 1;
		out_put(w, ":", 1);
	}
}

void
jw_begin(struct jsonl_out *w, const char *key)
{
	jw_key(w, key);
	out_put(w, "{", 1);
	if (w->depth == JSONL_OUT_DEPTH) {
		w->err = 1;
		return;
	}
	w->more[w->depth++] = 0;
}

void
jw_end(struct jsonl_out *w)
{
	out_put(w, "}", 1);
	if (w->depth > 0)
		w->depth--;
}

void
jw_number(struct jsonl_out *w, const char *key, double x)
{
	char buf[40];
	int n;
	json_t *t;

	jw_key(w, key);
	if (!isfinite(x)) {
		w->err = 1;
		return;
	}
	if (x == floor(x) && fabs(x) <= EXACT_INT_MAX) {
		out_put(w, buf, (size_t)put_int(buf, (long long)x));
		return;
	}
	if ((n = short_real(buf, x, 9)) > 0) {
		out_put(w, buf, (size_t)n);
		return;
	}
	t = json_real(x);
	if (out_jansson(w, t, JSON_COMPACT | JSON_REAL_PRECISION(real_digits(x))) < 0)
		w->err = 1;
	json_decref(t);
}

void
jw_int(struct jsonl_out *w, const char *key, long long v)
{
	char buf[24];

	jw_key(w, key);
	out_put(w, buf, (size_t)put_int(buf, v));
}

void
jw_string(struct jsonl_out *w, const char *key, const char *v)
{
	jw_key(w, key);
	if (out_string(w, v, strlen(v)) < 0)
		w->err = 1;
}

void
jw_bool(struct jsonl_out *w, const char *key, int v)
{
	jw_key(w, key);
	out_put(w, v ? "true" : "false", v ? 4 : 5);
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
jsonl_append_text(char **buf, size_t *len, size_t *cap, const char *line, size_t linelen, const char *key,
                  const char *text, size_t n)
{
	size_t end = linelen, open, klen = strlen(key);

	while (end > 0 && strchr(" \t\r\n", line[end - 1]))
		end--;
	if (end == 0 || line[end - 1] != '}')
		return -1;
	end--;
	for (open = end; open > 0 && strchr(" \t\r\n", line[open - 1]); open--)
		;
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
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[(*len)++] = '}';
	(*buf)[(*len)++] = '\n';
	return 0;
}

int
jsonl_append_member(char **buf, size_t *len, size_t *cap, const char *line, size_t linelen, const char *key,
                    const json_t *val)
{
	char *s;
	size_t n = dump(val, &s);

	if (n == 0)
		return -1;
	return jsonl_append_text(buf, len, cap, line, linelen, key, s, n);
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
