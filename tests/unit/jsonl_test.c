/*
 * jsonl_test.c: lib/jsonl's encoder against jansson's own json_dumps. Random trees of objects,
 * arrays, strings (some needing escapes, some UTF-8), integers, booleans, nulls and reals of 1 to
 * 17 significant digits over exponents -30..30 are printed by jsonl_dumps and by json_dumps with
 * JSON_COMPACT and the precision a naive reference computes (the fewest of 9, 15, 16, 17 digits
 * that read back every real of the tree, by printing and parsing); the texts must be equal byte
 * for byte. Prints TAP; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "tap.h"

static uint64_t rs = 88172645463325252ull;

static uint64_t
next(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static int
below(int n)
{
	return (int)(next() % (uint64_t)n);
}

/* a real of d significant digits at decimal exponent e, read from its decimal text */
static double
real_of(int d, int e)
{
	char buf[64];
	int n = 0;

	buf[n++] = (char)('1' + below(9));
	buf[n++] = '.';
	for (int i = 1; i < d; i++)
		buf[n++] = (char)('0' + below(10));
	snprintf(buf + n, sizeof buf - (size_t)n, "e%d", e);
	return strtod(buf, NULL) * (below(4) ? 1 : -1);
}

static double
any_real(void)
{
	switch (below(8)) {
	case 0:
		return 0.0;
	case 1:
		return (double)below(100000);
	case 2:
		return (double)next() / 3.0; /* needs 16 or 17 digits */
	default:
		return real_of(1 + below(below(2) ? 9 : 17), below(61) - 30);
	}
}

static json_t *
any_string(void)
{
	static const char *const pieces[] = {"a", "bc", "sim",     " ",           "\"",   "\\",
	                                     "/", "\n", "\t",      "\x01",        "\x7f", "é",
	                                     "→", "x",  "latency", "\xe2\x80\xa8"};
	char buf[128];
	int n = 0, k = below(6);

	for (int i = 0; i < k; i++) {
		const char *p = pieces[below((int)(sizeof pieces / sizeof *pieces))];
		memcpy(buf + n, p, strlen(p));
		n += (int)strlen(p);
	}
	return json_stringn(buf, (size_t)n);
}

static json_t *
any_value(int depth)
{
	int k = below(depth > 3 ? 6 : 8);

	switch (k) {
	case 0:
		return json_real(any_real());
	case 1:
		return json_integer((json_int_t)(next() >> (1 + below(63))) * (below(2) ? 1 : -1));
	case 2:
		return any_string();
	case 3:
		return below(2) ? json_true() : json_false();
	case 4:
		return json_null();
	case 5:
		return json_real(any_real());
	case 6: {
		json_t *a = json_array();
		for (int i = below(5); i > 0; i--)
			json_array_append_new(a, any_value(depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (int i = below(6); i > 0; i--) {
			json_t *s = any_string();
			json_object_set_new(o, json_string_value(s), any_value(depth + 1));
			json_decref(s);
		}
		return o;
	}
	}
}

/* the naive reference for the precision of a tree */
static int
naive_digits(const json_t *v)
{
	const char *key;
	json_t *x;
	size_t i;
	int p = 1;

	if (json_is_real(v)) {
		double r = json_real_value(v);
		char buf[40];
		if (r == 0)
			return 1;
		for (int d = 9; d <= 17; d = d == 9 ? 15 : d + 1) {
			snprintf(buf, sizeof buf, "%.*g", d, r);
			if (strtod(buf, NULL) == r)
				return d;
		}
		return 17;
	}
	if (json_is_object(v))
		json_object_foreach ((json_t *)v, key, x) {
			int q = naive_digits(x);
			p = q > p ? q : p;
		}
	if (json_is_array(v))
		json_array_foreach (v, i, x) {
			int q = naive_digits(x);
			p = q > p ? q : p;
		}
	return p;
}

static int
same(json_t *tree)
{
	char *ours = jsonl_dumps(tree);
	char *theirs = json_dumps(tree, JSON_COMPACT | JSON_REAL_PRECISION(naive_digits(tree)));
	int ok = ours && theirs && strcmp(ours, theirs) == 0;

	if (!ok)
		fprintf(stderr, "jsonl: %s\njansson: %s\n", ours ? ours : "(null)",
		        theirs ? theirs : "(null)");
	free(ours);
	free(theirs);
	return ok;
}

int
main(void)
{
	int bad = 0, nreal = 0, badreal = 0;

	for (int t = 0; t < 20000; t++) {
		json_t *tree = json_object();
		json_object_set_new(tree, "v", any_value(0));
		bad += !same(tree);
		json_decref(tree);
	}
	check(bad == 0, "20000 random trees print as jansson prints them (%d differ)", bad);

	/* every digit count and exponent, alone and beside a real that forces 17 digits */
	for (int d = 1; d <= 17; d++)
		for (int e = -30; e <= 30; e++)
			for (int rep = 0; rep < 4; rep++) {
				json_t *a = json_pack("[f]", real_of(d, e));
				json_t *b = json_pack("[f,f]", real_of(d, e), 0.1 + 0.2);
				nreal++;
				badreal += !same(a) + !same(b);
				json_decref(a);
				json_decref(b);
			}
	check(badreal == 0,
	      "%d reals of 1..17 digits at exponents -30..30 print as jansson prints them (%d differ)", nreal,
	      badreal);

	{
		json_t *edge = json_pack("[f,f,f,f,f,f,f,f,f]", -0.0, 1e-5, 1e-4, 123456789.0, 1e9,
		                         99999999.5, 0.000999999999, 1e22, 1e23);
		check(same(edge),
		      "negative zero, the %%g switch points and the ends of the exact powers of ten");
		json_decref(edge);
	}
	{
		json_t *s = json_pack("{s:s,s:[],s:[I,I,I]}", "a\"b\\c\x1f/", "", "", "i",
		                      (json_int_t)LLONG_MIN, (json_int_t)LLONG_MAX, (json_int_t)0);
		check(same(s), "escaped strings, an empty key, an empty array and the extreme integers");
		json_decref(s);
	}
	return tap_done();
}
