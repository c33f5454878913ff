/*
 * md5.h: the MD5 message digest (RFC 1321), one-shot and incremental.
 *
 * Ownership: nothing is allocated; the caller owns every buffer and context.
 *
 * MD5 is broken as a cryptographic hash and is used here only where a fixed, widely reproducible
 * function of a string is wanted: the train/validation/test split of the data sets (lib/task),
 * which anyone can recompute with md5sum.
 */
#ifndef TC_MD5_H
#define TC_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST 16

struct md5_ctx {
	uint32_t s[4];         /* state A, B, C, D */
	uint64_t n;            /* bytes hashed so far */
	unsigned char buf[64]; /* the partial block, n % 64 bytes of it used */
};

void md5_init(struct md5_ctx *c);
/* Hash len more bytes at data (any alignment; len 0 is allowed, data may then be NULL). */
void md5_update(struct md5_ctx *c, const void *data, size_t len);
/* Pad, write the 16-byte digest to out and leave c to be initialised again before reuse. */
void md5_final(struct md5_ctx *c, unsigned char out[MD5_DIGEST]);

/* The digest of len bytes at data. */
void md5(const void *data, size_t len, unsigned char out[MD5_DIGEST]);
/* The digest in lower-case hex, as md5sum prints it, NUL-terminated. */
void md5_hex(char out[2 * MD5_DIGEST + 1], const unsigned char digest[MD5_DIGEST]);

#endif
