/*
 * jsonl.h: JSON Lines records in and out, and typed access to their fields by dotted path.
 *
 * Ownership: a record returned by jsonl_read is a new jansson reference owned by the caller
 * (json_decref it); paths and names passed in are borrowed; strings returned by jsonl_dumps are
 * the caller's to free().
 *
 * The record contract is tc-records(5): one JSON object per line, UTF-8, '\n'-terminated,
 * duplicate keys rejected, numbers finite. Blank lines are skipped. Every error message for input
 * data starts with "file:line: " so that a tool prints it after its own name and nothing else.
 */
#ifndef TC_JSONL_H
#define TC_JSONL_H

#include <jansson.h>
#include <stdio.h>

#include "util.h"

/* Lines longer than this are rejected rather than read into memory without bound. */
#define JSONL_MAX_LINE (64L << 20)

struct jsonl_reader {
	FILE *f;
	char *name; /* as shown in messages: the path, or "<stdin>" */
	long line;  /* line number of the record last read, 1-based */
	long nrec;  /* records read so far */
	char *buf;
	size_t cap;
	int own; /* whether jsonl_close closes f */
};

/* Open path ("-" or NULL = stdin) for reading. Returns 0, or -1 with "cannot open ..." in err. */
int jsonl_open(struct jsonl_reader *r, const char *path, struct tc_error *err);
void jsonl_close(struct jsonl_reader *r);

/*
 * Read the next record. Returns 1 and sets *rec to a JSON object; 0 at the end of input; -1 on a
 * read error, a line that is not a JSON object, or an over-long line, with "file:line: ..." in err.
 */
int jsonl_read(struct jsonl_reader *r, json_t **rec, struct tc_error *err);

/* The same in two steps, so that lines can be read by one thread and parsed by others: the next
 * non-blank line (valid until the next call; 1, 0 at the end, -1 on error), and the record it
 * holds, with name and lineno for messages (0, or -1). */
int jsonl_next_line(struct jsonl_reader *r, const char **line, size_t *len, struct tc_error *err);
int jsonl_parse(const char *name, long lineno, const char *line, size_t len, json_t **rec,
                struct tc_error *err);

/* Format an error about the record last read: "file:line: <fmt>". Returns -1. */
int jsonl_error(const struct jsonl_reader *r, struct tc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Write rec compactly followed by '\n', as one fwrite so that a record is never half-written by
 * this call. Reals are printed with the fewest significant digits (9, 15, 16 or 17) that read
 * back exactly for every real in the record. Returns 0, or -1 if the record cannot be encoded or
 * the write fails (errno is set by the failing call).
 */
int jsonl_write(FILE *f, const json_t *rec);
/* Append the same line to a growing buffer (*buf of *cap bytes, *len used). Returns 0 or -1. */
int jsonl_append(char **buf, size_t *len, size_t *cap, const json_t *rec);
/* The same text without the newline, or NULL if rec cannot be encoded. */
char *jsonl_dumps(const json_t *rec);
/*
 * Append line (one JSON object, as read) with the member "key": val added at its end, and '\n':
 * the fields read pass through byte for byte, and only val is encoded. The caller makes sure the
 * object has no member key already. Returns 0, or -1 if val cannot be encoded or line does not
 * end its object with '}'.
 */
int jsonl_append_member(char **buf, size_t *len, size_t *cap, const char *line, size_t linelen,
                        const char *key, const json_t *val);

/* The same with val already encoded: n bytes of JSON text. */
int jsonl_append_text(char **buf, size_t *len, size_t *cap, const char *line, size_t linelen, const char *key,
                      const char *text, size_t n);

/*
 * A streaming writer, for results with a fixed shape where building a jansson tree only to print
 * it cost more than computing it. Members are added in order; key is NULL at the top level. The
 * text is what jsonl_dumps would print for the same tree when every real is a decimal of at most
 * 9 significant digits; other reals get the fewest of 15, 16, 17 digits that read back. Integral
 * numbers print as integers, as json_number makes them. Errors (NaN or Inf, invalid UTF-8, depth
 * beyond JSONL_OUT_DEPTH) set err; reset with len = 0, depth = 0, err = 0.
 */
#define JSONL_OUT_DEPTH 16
struct jsonl_out {
	char *p; /* the text, not NUL-terminated */
	size_t len, cap;
	int depth, err;
	unsigned char more[JSONL_OUT_DEPTH];
};
void jw_begin(struct jsonl_out *w, const char *key);
void jw_end(struct jsonl_out *w);
void jw_number(struct jsonl_out *w, const char *key, double x);
void jw_int(struct jsonl_out *w, const char *key, long long v);
void jw_string(struct jsonl_out *w, const char *key, const char *v);
void jw_bool(struct jsonl_out *w, const char *key, int v);

/*
 * Dotted paths: "sim.latency_s" names member latency_s of member sim; a component made of digits
 * indexes an array ("o.1.0"). json_path_get returns a borrowed reference or NULL.
 */
json_t *json_path_get(const json_t *root, const char *path);
/* Set the member at path to value (stealing the reference), creating intermediate objects.
 * Returns 0, or -1 if an intermediate member exists and is not an object. */
int json_path_set_new(json_t *root, const char *path, json_t *value);

/*
 * Typed getters. On failure they return -1 with "missing field 'p'" or "field 'p': expected a
 * number, got string" in err (no position: callers add it with jsonl_error or tc_error_prefix).
 * Integers must be exact and within [lo, hi]; json_get_int accepts 128.0 but not 128.5.
 */
int json_get_number(const json_t *root, const char *path, double *out, struct tc_error *err);
int json_get_int(const json_t *root, const char *path, long lo, long hi, long *out, struct tc_error *err);
int json_get_string(const json_t *root, const char *path, const char **out, struct tc_error *err);
/* A number value (integer or real) as a double; -1 with a message naming what if it is not one. */
int json_as_number(const json_t *v, const char *what, double *out, struct tc_error *err);
int json_as_int(const json_t *v, const char *what, long lo, long hi, long *out, struct tc_error *err);
/* "object", "array", "string", "number", "true", "false" or "null". */
const char *json_kind(const json_t *v);
/* An integer if x is integral and within 2^53, else a real; NULL if x is not finite. */
json_t *json_number(double x);

#endif
