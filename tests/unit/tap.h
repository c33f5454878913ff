/*
 * tap.h: the Test Anything Protocol for the unit tests that need no more than a line per check.
 * check() prints "ok N - what" or "not ok N - what"; tap_done() prints the plan "1..N" and returns
 * the exit status, 1 if any check failed. Included by one file of each test program.
 */
#include <stdarg.h>
#include <stdio.h>

static int ntest, nfail;

static void __attribute__((format(printf, 2, 3))) check(int ok, const char *fmt, ...)
{
	va_list ap;

	ntest++;
	printf("%sok %d - ", ok ? "" : "not ", ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	nfail += !ok;
}

static int
tap_done(void)
{
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
