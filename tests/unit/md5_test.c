/*
 * md5_test.c: unit tests of lib/md5 against the test suite of RFC 1321 (appendix A.5), digests
 * computed independently with Python's hashlib (written into this file) for every length from 0
 * to 1000 bytes, for unaligned starts and for 16 MiB, the incremental API fed in awkward pieces,
 * and the md5sum command on a file this test writes. Prints TAP; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "md5.h"
#include "tap.h"

/* The same bytes as the Python that made the expected digests:
 *   x = (x * 1103515245 + 12345) mod 2^32; byte = x >> 24, starting from x = seed. */
static unsigned char *
lcg_bytes(size_t n, uint32_t seed)
{
	unsigned char *p = malloc(n);
	uint32_t x = seed;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

static int
digest_is(const unsigned char d[MD5_DIGEST], const char *hex)
{
	char h[2 * MD5_DIGEST + 1];

	md5_hex(h, d);
	return strcmp(h, hex) == 0;
}

static void
test_rfc(void)
{
	static const char *const vec[7][2] = {
	    {"", "d41d8cd98f00b204e9800998ecf8427e"},
	    {"a", "0cc175b9c0f1b6a831c399e269772661"},
	    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
	    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
	    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	     "d174ab98d277d9f5a5611c2c9f419d9f"},
	    {"1234567890123456789012345678901234567890"
	     "1234567890123456789012345678901234567890",
	     "57edf4a22be3c955ac49da2e2107b67a"},
	};
	unsigned char d[MD5_DIGEST];

	for (int i = 0; i < 7; i++) {
		md5(vec[i][0], strlen(vec[i][0]), d);
		check(digest_is(d, vec[i][1]), "RFC 1321 A.5: MD5(\"%.20s%s\") = %s", vec[i][0],
		      strlen(vec[i][0]) > 20 ? "..." : "", vec[i][1]);
	}
	md5(NULL, 0, d);
	check(digest_is(d, "d41d8cd98f00b204e9800998ecf8427e"), "MD5 of nothing at NULL is MD5(\"\")");
}

/* Every length 0..1000 crosses each padding case (56 bytes mod 64 and either side of it) many
 * times; the digest of the 1001 digests, concatenated, is compared with hashlib's. */
static void
test_lengths(void)
{
	unsigned char *buf = lcg_bytes(1 << 16, 1), *all = malloc(1001 * MD5_DIGEST), d[MD5_DIGEST];
	static const size_t pieces[] = {1, 3, 7, 55, 56, 57, 63, 64, 65, 127, 200};
	int inc_ok = 1;

	for (size_t n = 0; n <= 1000; n++) {
		md5(buf, n, all + n * MD5_DIGEST);
		for (size_t k = 0; k < sizeof pieces / sizeof *pieces; k++) {
			struct md5_ctx c;
			md5_init(&c);
			for (size_t at = 0; at < n; at += pieces[k])
				md5_update(&c, buf + at, n - at < pieces[k] ? n - at : pieces[k]);
			md5_final(&c, d);
			inc_ok = inc_ok && memcmp(d, all + n * MD5_DIGEST, MD5_DIGEST) == 0;
		}
	}
	md5(all, 1001 * MD5_DIGEST, d);
	check(digest_is(d, "09429abcd91e109cdf9bdfeb98102c5a"),
	      "digests of every length 0..1000 match hashlib's (digest of digests)");
	check(inc_ok, "incremental updates in pieces of 1, 3, 7, 55..65, 127, 200 bytes match one-shot");

	static const struct {
		size_t off;
		const char *hex;
	} un[] = {{1, "9b97b928ab0bb4699781f211dd826efc"},
	          {3, "7f6151edae8e81f9475b91f08f702acd"},
	          {7, "ec675a745704aea480020cf87097697a"},
	          {13, "0443acc0667f309f4533bb8a2925210d"}};
	for (size_t i = 0; i < sizeof un / sizeof *un; i++) {
		md5(buf + un[i].off, 40000, d);
		check(digest_is(d, un[i].hex), "40,000 bytes starting at unaligned offset %zu: %s", un[i].off,
		      un[i].hex);
	}
	free(all);
	free(buf);
}

static void
test_long(void)
{
	size_t n = (size_t)16 << 20;
	unsigned char *buf = lcg_bytes(n, 7), d[MD5_DIGEST];
	struct md5_ctx c;

	md5(buf, n, d);
	check(digest_is(d, "94f3303c9c7647da39248f48fcfdf2e1"), "16 MiB: 94f3303c9c7647da39248f48fcfdf2e1");
	free(buf);

	buf = malloc(1000);
	memset(buf, 'a', 1000);
	md5_init(&c);
	for (int i = 0; i < 1000; i++)
		md5_update(&c, buf, 1000);
	md5_final(&c, d);
	check(digest_is(d, "7707d6ae4e027c70eea2a935c2296f21"),
	      "a million 'a' in 1000-byte updates: 7707d6ae4e027c70eea2a935c2296f21");
	free(buf);
}

/* The md5sum command on a file of 100,003 bytes written here. */
static void
test_md5sum(void)
{
	char path[] = "/tmp/md5_test.XXXXXX", cmd[128], line[128] = "", h[2 * MD5_DIGEST + 1];
	unsigned char *buf = lcg_bytes(100003, 99), d[MD5_DIGEST];
	int fd = mkstemp(path);
	FILE *f, *p;

	f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f || fwrite(buf, 1, 100003, f) != 100003 || fclose(f) != 0) {
		check(0, "write a temporary file for md5sum");
		free(buf);
		return;
	}
	snprintf(cmd, sizeof cmd, "md5sum '%s'", path);
	p = popen(cmd, "r");
	if (!p || !fgets(line, sizeof line, p))
		line[0] = 0;
	if (p)
		pclose(p);
	unlink(path);
	md5(buf, 100003, d);
	md5_hex(h, d);
	check(strncmp(line, h, 32) == 0 && line[32] == ' ', "md5sum agrees on 100,003 bytes: %s", h);
	free(buf);
}

int
main(void)
{
	test_rfc();
	test_lengths();
	test_long();
	test_md5sum();
	return tap_done();
}
