/*
 * wordpiece_test.c: unit tests of lib/wordpiece against hand-worked expectations and independent
 * references: basic tokenization case by case, encoding on a hand-written vocabulary with ids worked out
 * by hand, training on a small corpus whose merges are worked out below, vocab.txt round trips and
 * rejections, a property test of encoding against an ASCII word splitter written here, and a naive
 * trainer (a full recount of every pair before each merge) that the fast one must match token for token
 * on random corpora built to have many ties. Prints TAP; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "tap.h"
#include "util.h"
#include "wordpiece.h"

static char tmpdir[] = "/tmp/wordpiece_test.XXXXXX";

static char *
tmp(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void
write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || (n && fwrite(s, 1, n, f) != n) || fclose(f)) {
		printf("Bail out! cannot write '%s'\n", path);
		exit(1);
	}
}

/* Load a vocabulary given as one string of tokens separated by '\n'. */
static struct wordpiece *
vocab_of(const char *lines)
{
	struct tc_error err;
	struct wordpiece *wp;

	write_file(tmp("vocab.txt"), lines, strlen(lines));
	if (!(wp = wordpiece_load(tmp("vocab.txt"), &err))) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	return wp;
}

static int
ids_equal(const int32_t *got, int n, const int32_t *want, int nwant)
{
	if (n != nwant)
		return 0;
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
			return 0;
	return 1;
}

static void
diag_ids(const int32_t *ids, int n)
{
	printf("#   got");
	for (int i = 0; i < n; i++)
		printf(" %d", (int)ids[i]);
	putchar('\n');
}

/* ---- Basic tokenization ---- */

static void
split_is(const char *text, const char *want, const char *what)
{
	char *got = wordpiece_split(text);

	check(strcmp(got, want) == 0, "split: %s", what);
	if (strcmp(got, want) != 0)
		printf("#   got '%s', want '%s'\n", got, want);
	free(got);
}

static void
test_split(void)
{
	split_is("Hello, World!", "hello , world !", "lowercase, punctuation split off");
	split_is("don't stop--now.", "don ' t stop - - now .", "every punctuation character is a word");
	split_is("a!b\"c#d$e%f&g'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}~",
	         "a ! b \" c # d $ e % f & g ' h ( i ) j * k + l , m - n . o / p : q ; r < s = t > u ? v "
	         "@ w [ x \\ y ] z ^ _ ` { | } ~",
	         "all 32 ASCII punctuation characters");
	split_is("  one\ttwo\nthree\r\nfour  ", "one two three four",
	         "tabs, newlines and runs of spaces separate");
	split_is("", "", "empty text has no words");
	split_is(" \t\r\n ", "", "whitespace alone has no words");
	split_is("Café Über NAÏVE ÀÉÎÕÜÿ", "cafe uber naive aeiouy", "Latin-1 letters lose case and accents");
	split_is("Straße Łódź Æsir Øre", "straße łodz æsir øre",
	         "letters without a decomposition keep their base (ß, ł, æ, ø)");
	split_is("Čeština İstanbul", "cestina istanbul", "Latin Extended-A: Č, š, İ");
	split_is("Tie\xcc\x81\xcc\x82ng ViỆT", "tieng viet",
	         "combining marks dropped, Latin Extended Additional folded");
	split_is("ΑΘΗΝΑ Ελλάδα", "αθηνα ελλαδα", "Greek lowercased, tonos stripped");
	split_is("τι;", "τι ;", "Greek question mark becomes ';' and splits");
	split_is("Москва ЙЁ", "москва ие", "Cyrillic lowercased, Й -> и and Ё -> е as NFD does");
	split_is("a\x01"
	         "b\x7f"
	         "c\x1b[0m d\x0b"
	         "e\x0c"
	         "f",
	         "abc [ 0m def", "ASCII controls dropped without separating (\\v and \\f too)");
	split_is("co\xc2\xadop a\xe2\x80\x8b"
	         "b \xef\xbb\xbfx \xc2\x85y\xef\xbf\xbdz",
	         "coop ab x yz", "soft hyphen, zero-width space, BOM, NEL, U+FFFD dropped");
	split_is("a\xc2\xa0"
	         "b\xe3\x80\x80"
	         "c\xe2\x80\xa8"
	         "d\xe2\x80\x83"
	         "e",
	         "a b c d e", "no-break, ideographic, em space and line separator separate");
	split_is("ab\xff"
	         "cd",
	         "abcd", "invalid byte dropped");
	split_is("\x80x \xc3(", "x (", "stray continuation and truncated 2-byte sequence dropped");
	split_is("x\xe2\x82", "x", "sequence truncated by the end of the text dropped");
	split_is("\xc0\xaf"
	         "a\xe0\x80\xaf"
	         "b",
	         "ab", "overlong encodings dropped");
	split_is("\xed\xa0\x80z\xf4\x90\x80\x80y", "zy", "surrogate and code point above U+10FFFF dropped");
	split_is("😀ok", "😀ok", "a valid 4-byte character is kept in its word");
	split_is("我爱NLP大", "我 爱 nlp 大", "CJK ideographs are words of their own");
	split_is("テキスト日", "テキスト 日", "katakana stays one word");
	split_is("«Bonjour» ¿Qué? ¡Hola!", "« bonjour » ¿ que ? ¡ hola !", "« » ¿ ¡ are punctuation");
	split_is("a—b…c “q” 。", "a — b … c “ q ” 。",
	         "general and CJK punctuation (em dash, ellipsis, curly quotes, ideographic full stop)");
	split_is("5€ ©x", "5€ ©x", "symbols (euro, copyright) stay in words");
	split_is(" \xcc\x81 x\xcc\x81", "x", "a lone combining mark is no word");
}

/* ---- Encoding on a hand-written vocabulary ---- */

/*
 * ids:  0 [PAD]  1 [UNK]  2 [CLS]  3 [SEP]  4 [MASK]  5 un  6 ##aff  7 ##able  8 aff  9 a  10 ##a  11 the
 *      12 play  13 ##ing  14 ##in  15 ##s  16 ,  17 !  18 a\xc5 (half of "ł")  19 ##\x82 (its other half)
 *      20 ##ł  21 ##b  22 ##ab
 */
static const char hand_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\naff\na\n##a\nthe\n"
                                 "play\n##ing\n##in\n##s\n,\n!\na\xc5\n##\x82\n##ł\n##b\n##ab\n";

#define ENCODES(wp, text, max, ...)                                                                          \
	do {                                                                                                 \
		static const int32_t want_[] = {__VA_ARGS__};                                                \
		int32_t got_[256];                                                                           \
		int n_ = wordpiece_encode(wp, text, got_, max);                                              \
		int ok_ = ids_equal(got_, n_, want_, (int)(sizeof want_ / sizeof want_[0]));                 \
		check(ok_, "encode '%s' (max %d)", text, max);                                               \
		if (!ok_)                                                                                    \
			diag_ids(got_, n_);                                                                  \
	} while (0)

static void
test_encode(void)
{
	struct wordpiece *wp = vocab_of(hand_vocab);
	char word[128];
	int32_t ids[128];
	int n, ok;

	check(wordpiece_size(wp) == 23, "hand vocabulary has 23 tokens");
	check(wordpiece_pad(wp) == 0 && wordpiece_unk(wp) == 1 && wordpiece_cls(wp) == 2 &&
	          wordpiece_sep(wp) == 3 && wordpiece_mask(wp) == 4,
	      "specials found by name");
	check(wordpiece_id(wp, "##able") == 7 && wordpiece_id(wp, "able") == -1 &&
	          strcmp(wordpiece_token(wp, 12), "play") == 0 && !wordpiece_token(wp, 23) &&
	          !wordpiece_token(wp, -1),
	      "id and token lookups, -1 and NULL when absent");

	/* un|affable: "un" is the longest prefix; then "##aff" (not "##a"), then "##able". */
	ENCODES(wp, "unaffable", 64, 2, 5, 6, 7, 3);
	/* "playing": "##ing" beats the shorter "##in"; "plays" -> play ##s; "The" -> the. */
	ENCODES(wp, "The playing, plays!", 64, 2, 11, 12, 13, 16, 12, 15, 17, 3);
	/* "aff" as a word of its own is 8, not 9 10 ...; "aaa" -> a ##a ##a; "aab" -> a ##ab (longest). */
	ENCODES(wp, "aff aaa aab", 64, 2, 8, 9, 10, 10, 9, 22, 3);
	/* "ał": "a\xc5" would match a prefix of bytes but ends inside "ł", so a ##ł. */
	ENCODES(wp, "aŁ", 64, 2, 9, 20, 3);
	/* [UNK]: a character outside the vocabulary; a word covered but for its end ("playx"): the whole
	 * word, not its prefix; "playin" is covered by play ##in. */
	ENCODES(wp, "xyz playx playin", 64, 2, 1, 1, 12, 14, 3);
	ENCODES(wp, "", 64, 2, 3);
	/* Truncation keeps [SEP]: 2 + 3 pieces fit 5; 4 cuts inside the word; 2 and 1 and 0. */
	ENCODES(wp, "unaffable unaffable", 5, 2, 5, 6, 7, 3);
	ENCODES(wp, "unaffable unaffable", 4, 2, 5, 6, 3);
	ENCODES(wp, "unaffable unaffable", 8, 2, 5, 6, 7, 5, 6, 7, 3);
	ENCODES(wp, "unaffable unaffable", 7, 2, 5, 6, 7, 5, 6, 3);
	ENCODES(wp, "unaffable unaffable", 2, 2, 3);
	ENCODES(wp, "unaffable unaffable", 1, 2);
	check(wordpiece_encode(wp, "unaffable", ids, 0) == 0, "max 0 writes nothing");

	/* Words of 100 bytes are encoded; of 101, [UNK]. */
	memset(word, 'a', 101);
	word[100] = 0;
	n = wordpiece_encode(wp, word, ids, 128);
	ok = n == 102 && ids[0] == 2 && ids[1] == 9 && ids[101] == 3;
	for (int i = 2; i < 101; i++)
		ok = ok && ids[i] == 10;
	check(ok, "a 100-byte word is encoded piece by piece");
	word[100] = 'a';
	word[101] = 0;
	ENCODES(wp, word, 64, 2, 1, 3);
	wordpiece_free(wp);

	/* Without [CLS] and [SEP] nothing surrounds the pieces. */
	wp = vocab_of("a\n##b\n[UNK]\n");
	check(wordpiece_pad(wp) == -1 && wordpiece_cls(wp) == -1 && wordpiece_sep(wp) == -1 &&
	          wordpiece_mask(wp) == -1 && wordpiece_unk(wp) == 2,
	      "missing specials are -1");
	ENCODES(wp, "ab a c", 64, 0, 1, 0, 2);
	ENCODES(wp, "ab a c", 2, 0, 1);
	wordpiece_free(wp);
	wp = vocab_of("[UNK]\na\n[SEP]\n");
	ENCODES(wp, "a a a", 3, 1, 1, 2);
	ENCODES(wp, "a a a", 1, 2);
	wordpiece_free(wp);
}

/* ---- vocab.txt ---- */

static void
load_fails(const char *content, size_t len, const char *want, const char *what)
{
	struct tc_error err = {""};
	struct wordpiece *wp;

	write_file(tmp("bad.txt"), content, len);
	wp = wordpiece_load(tmp("bad.txt"), &err);
	check(!wp && strstr(err.msg, want) != NULL, "load rejects %s", what);
	if (wp || !strstr(err.msg, want))
		printf("#   message '%s', want '%s'\n", err.msg, want);
	wordpiece_free(wp);
}

static void
test_load(void)
{
	static const char crlf[] = "[UNK]\r\nthe\r\n##s\r\nend";
	char want[600], *big;
	struct tc_error err;
	struct wordpiece *wp;

	write_file(tmp("crlf.txt"), crlf, strlen(crlf));
	wp = wordpiece_load(tmp("crlf.txt"), &err);
	check(wp && wordpiece_size(wp) == 4 && wordpiece_id(wp, "the") == 1 && wordpiece_id(wp, "##s") == 2 &&
	          wordpiece_id(wp, "end") == 3 && wordpiece_unk(wp) == 0,
	      "load accepts \\r\\n line ends and a last line without one");
	wordpiece_free(wp);

	snprintf(want, sizeof want, "%s:3: duplicate token 'the' (first on line 2)", tmp("bad.txt"));
	load_fails("[UNK]\nthe\nthe\n", 14, want, "a duplicate token, naming file and line");
	snprintf(want, sizeof want, "%s:2: empty line", tmp("bad.txt"));
	load_fails("[UNK]\n\nthe\n", 11, want, "an empty line");
	snprintf(want, sizeof want, "%s:3: empty line", tmp("bad.txt"));
	load_fails("[UNK]\r\nthe\r\n\r\n", 14, want, "an empty \\r\\n line");
	/* "x\r" would be written back as "x\r\n", which reads as "x": a checkpoint's vocabulary then
	 * failed to load (make fuzz found it) */
	snprintf(want, sizeof want, "%s:3: carriage return inside a token", tmp("bad.txt"));
	load_fails("[UNK]\nx\nx\r\r\n", 12, want, "a token ending in \\r before the \\r\\n line end");
	snprintf(want, sizeof want, "%s:2: carriage return inside a token", tmp("bad.txt"));
	load_fails("[UNK]\na\rb\n", 10, want, "a lone \\r inside a token");
	snprintf(want, sizeof want, "%s: no [UNK] token", tmp("bad.txt"));
	load_fails("[PAD]\n[CLS]\nthe\n", 16, want, "a vocabulary without [UNK]");
	load_fails("", 0, want, "an empty file");
	snprintf(want, sizeof want, "%s:2: NUL byte in token", tmp("bad.txt"));
	load_fails("[UNK]\nt\0he\n", 11, want, "a NUL byte");
	big = emalloc(WORDPIECE_MAX_TOKEN + 16);
	memcpy(big, "[UNK]\n", 6);
	memset(big + 6, 'x', WORDPIECE_MAX_TOKEN + 1);
	snprintf(want, sizeof want, "%s:2: line longer than %d bytes", tmp("bad.txt"), WORDPIECE_MAX_TOKEN);
	load_fails(big, 6 + WORDPIECE_MAX_TOKEN + 1, want, "an over-long line");
	memcpy(big + 6 + WORDPIECE_MAX_TOKEN, "\r\n", 2);
	write_file(tmp("long.txt"), big, 6 + WORDPIECE_MAX_TOKEN + 2);
	wp = wordpiece_load(tmp("long.txt"), &err);
	check(wp && wordpiece_size(wp) == 2 && strlen(wordpiece_token(wp, 1)) == WORDPIECE_MAX_TOKEN,
	      "load accepts a token of WORDPIECE_MAX_TOKEN bytes ended by \\r\\n");
	wordpiece_free(wp);
	free(big);
	snprintf(want, sizeof want, "cannot open '%s'", tmp("missing.txt"));
	wp = wordpiece_load(tmp("missing.txt"), &err);
	check(!wp && strstr(err.msg, want) && strstr(err.msg, "No such file"), "load names a missing file");
}

/* ---- Training ---- */

static int
vocab_is(const struct wordpiece *wp, const char *const *want, int n)
{
	int ok = wordpiece_size(wp) == n;

	for (int i = 0; ok && i < n; i++)
		ok = strcmp(wordpiece_token(wp, i), want[i]) == 0;
	if (!ok) {
		printf("#   got");
		for (int i = 0; i < wordpiece_size(wp); i++)
			printf(" %s", wordpiece_token(wp, i));
		putchar('\n');
	}
	return ok;
}

/*
 * The corpus "Hug hug, HUG pug" "pug pun bun hugs." has the words hug 3, pug 2, pun 1, bun 1, hugs 1, ","
 * 1 and "." 1. Alphabet, with counts in the initial split: word-initial , . b h p (1 1 1 4 3) and g n s u
 * (0: seen only inside words), ids 5-13 in strcmp order; then ##g ##n ##s ##u (6 2 1 8), ids 14-17.
 * Pairs: (##u ##g) 3+2+1 = 6, (h ##u) 3+1 = 4, (p ##u) 2+1 = 3, (##u ##n) 1+1 = 2, (b ##u) 1, (##g ##s) 1.
 *   1. (##u ##g) 6 -> "##ug" 18.  Now (h ##ug) 4, (p ##ug) 2, (##u ##n) 2, (p ##u) 1, (b ##u) 1,
 *      (##ug ##s) 1.
 *   2. (h ##ug) 4 -> "hug" 19.    Now (p ##ug) 2, (##u ##n) 2, (p ##u) 1, (b ##u) 1, (hug ##s) 1.
 *   3. A tie at 2: "##u" < "p" in strcmp ('#' < 'p'), so (##u ##n) -> "##un" 20.
 *   4. (p ##ug) 2 -> "pug" 21.    Every pair left occurs once: stop at 22 tokens.
 */
static const char *const hug_vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",",  ".",   "b",
                                        "g",     "h",     "n",     "p",     "s",      "u",  "##g", "##n",
                                        "##s",   "##u",   "##ug",  "hug",   "##un",   "pug"};

static void
test_train(void)
{
	const char *texts[] = {"Hug hug, HUG pug", "pug pun bun hugs."};
	/* Alphabet cut to fit: by count, ties by strcmp: ##u 8, ##g 6, h 4, p 3, ##n 2, then at 1: "##s"
	 * < "," < "." < "b". */
	static const char *const cut3[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "h", "##g", "##u"};
	static const char *const cut7[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",",
	                                   "h",     "p",     "##g",   "##n",   "##s",    "##u"};
	struct tc_error err;
	struct wordpiece *wp;
	int32_t ids[32];
	int n;

	wp = wordpiece_train(texts, 2, 100, &err);
	check(vocab_is(wp, hug_vocab, 22),
	      "train: hand-worked merges, tie broken by strcmp, stops at count 1");
	{
		/* hug ##s | p ##un | b ##ug | g ##un | s ##un ##g ("##ung" is absent). */
		static const int32_t want[] = {2, 19, 16, 11, 20, 7, 18, 8, 20, 12, 20, 14, 3};
		n = wordpiece_encode(wp, "Hugs pun bug gun sung", ids, 32);
		check(ids_equal(ids, n, want, 13), "the trained vocabulary encodes as worked out");
		if (!ids_equal(ids, n, want, 13))
			diag_ids(ids, n);
	}
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 21, &err);
	check(vocab_is(wp, hug_vocab, 21), "train: vocab_size 21 stops after the third merge");
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 18, &err);
	check(vocab_is(wp, hug_vocab, 18), "train: vocab_size 18 is the whole alphabet and no merge");
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 8, &err);
	check(vocab_is(wp, cut3, 8), "train: alphabet cut to the 3 most frequent tokens");
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 12, &err);
	check(vocab_is(wp, cut7, 12), "train: alphabet cut to 7, count ties broken by strcmp");
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 5, &err);
	check(vocab_is(wp, hug_vocab, 5), "train: vocab_size 5 is the specials alone");
	wordpiece_free(wp);
	wp = wordpiece_train(NULL, 0, 100, &err);
	check(vocab_is(wp, hug_vocab, 5) && wordpiece_unk(wp) == 1 && wordpiece_mask(wp) == 4,
	      "train: no texts give the specials alone");
	wordpiece_free(wp);
	wp = wordpiece_train(texts, 2, 4, &err);
	check(!wp && strstr(err.msg, "vocabulary size 4"), "train: vocab_size below 5 is refused (%s)",
	      err.msg);

	/*
	 * UTF-8: the words are łał 2 (from "łał" and "ŁAŁ"), 日 2 and 本 1 (each ideograph a word). Alphabet
	 * in code point order: a ł 日 本, then ##a ##ł (ids 5-10). Pairs (ł ##a) 2 and (##a ##ł) 2 tie; "##a"
	 * < "ł", so ##ał (11) first, then (ł ##ał) 2 -> łał (12).
	 */
	{
		const char *utf8[] = {"łał ŁAŁ", "日本日"};
		static const char *const want[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",  "ł",
		                                   "日",    "本",    "##a",   "##ł",   "##ał",   "łał"};
		static const int32_t want_ids[] = {2, 12, 7, 8, 6, 10, 11, 3};
		wp = wordpiece_train(utf8, 2, 100, &err);
		check(vocab_is(wp, want, 13),
		      "train: UTF-8 characters, in code point order, and their merges");
		/* "Łał日本 łłał": łał | 日 | 本 | ł ##ł ##ał (ids 12 | 7 | 8 | 6 10 11). */
		n = wordpiece_encode(wp, "Łał日本 łłał", ids, 32);
		check(ids_equal(ids, n, want_ids, 8), "the UTF-8 vocabulary encodes as worked out");
		if (!ids_equal(ids, n, want_ids, 8))
			diag_ids(ids, n);
		wordpiece_free(wp);
	}
}

/* ---- Random texts ---- */

/* A random text of about n bytes: words over letters (weighted towards the first few of alphabet), with
 * spaces and punctuation between. */
static char *
random_text(struct rng *r, size_t n, const char *alphabet)
{
	static const char between[] = "     \t\n.,!-'";
	size_t k = strlen(alphabet), len = 0;
	char *s = emalloc(n + 1);

	while (len < n) {
		size_t wl = 1 + rng_below(r, 6);
		for (size_t i = 0; i < wl && len < n; i++) {
			/* min of two draws: early letters are more frequent, so there are pairs to merge */
			uint64_t a = rng_below(r, k), b = rng_below(r, k);
			s[len++] = alphabet[a < b ? a : b];
		}
		if (len < n)
			s[len++] = between[rng_below(r, sizeof between - 1)];
	}
	s[len] = 0;
	return s;
}

static int
is_ascii_punct(int c)
{
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
	       !(c >= 'A' && c <= 'Z');
}

/*
 * Property: for random ASCII texts, the pieces of each word, "##" stripped and concatenated, give back the
 * word lowercased, unless the word became [UNK]. Words are split here independently of the library.
 */
static void
test_property(void)
{
	static const char train_chars[] = "etaoinshrdlucmfwypvbgkETAOIN0123";
	static const char test_chars[] = "etaoinshrdlucmfwypvbgkETAOIN0123qQxzZj";
	struct tc_error err;
	struct wordpiece *wp;
	const char *texts[50];
	char *owned[50];
	struct rng r;
	long words = 0, unks = 0, bad = 0;

	rng_seed(&r, 42);
	for (int i = 0; i < 50; i++)
		texts[i] = owned[i] = random_text(&r, 400, train_chars);
	wp = wordpiece_train(texts, 50, 300, &err);
	for (int t = 0; t < 400; t++) {
		char *text = random_text(&r, 1 + rng_below(&r, 300), test_chars), word[400], got[800];
		int32_t *ids = emalloc((strlen(text) + 2) * sizeof *ids);
		int n = wordpiece_encode(wp, text, ids, (int)strlen(text) + 2), k = 1;
		const char *p = text;

		bad += n < 2 || ids[0] != wordpiece_cls(wp) || ids[n - 1] != wordpiece_sep(wp);
		for (;;) {
			size_t wl = 0, gl = 0;
			int unk = 0;
			while (*p && (*p == ' ' || *p == '\t' || *p == '\n'))
				p++;
			if (!*p)
				break;
			if (is_ascii_punct(*p)) {
				word[wl++] = *p++;
			} else {
				while (*p && *p != ' ' && *p != '\t' && *p != '\n' && !is_ascii_punct(*p)) {
					char c = *p++;
					word[wl++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
				}
			}
			word[wl] = 0;
			/* This word's pieces: ids[k] and every following "##" piece. */
			if (k >= n - 1) {
				bad++;
				break;
			}
			do {
				const char *tok = wordpiece_token(wp, ids[k]);
				unk |= ids[k] == wordpiece_unk(wp);
				if (strncmp(tok, "##", 2) == 0)
					tok += 2;
				gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s", tok);
				k++;
			} while (k < n - 1 && strncmp(wordpiece_token(wp, ids[k]), "##", 2) == 0);
			words++;
			unks += unk;
			bad += !unk && strcmp(got, word) != 0;
		}
		bad += k != n - 1;
		free(ids);
		free(text);
	}
	check(bad == 0 && words > 10000 && unks > 100 && unks < words / 2,
	      "property: pieces give back each lowercased word unless [UNK] (%ld words, %ld [UNK], %ld bad)",
	      words, unks, bad);
	wordpiece_free(wp);
	for (int i = 0; i < 50; i++)
		free(owned[i]);
}

/* ---- A naive trainer: every pair recounted before each merge ---- */

struct naive {
	char **tok; /* the vocabulary */
	int ntok;
	char ***word; /* distinct words as token strings */
	int *len, *freq, nword;
	int reused; /* merges whose token was already in the vocabulary */
	int tied;   /* merges chosen by the tie-break among pairs of equal count */
	int merges;
};

static int
naive_find(char **list, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

struct naive_alpha {
	char *tok;
	long count;
};

static int
naive_by_count(const void *x, const void *y)
{
	const struct naive_alpha *p = x, *q = y;

	return p->count != q->count ? (p->count > q->count ? -1 : 1) : strcmp(p->tok, q->tok);
}

static int
naive_by_kind(const void *x, const void *y)
{
	const struct naive_alpha *p = x, *q = y;
	int hp = p->tok[0] == '#' && p->tok[1] == '#', hq = q->tok[0] == '#' && q->tok[1] == '#';

	return hp != hq ? hp - hq : strcmp(p->tok, q->tok);
}

static void
naive_train(struct naive *nv, const char *const *texts, int n, int vocab_size)
{
	static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
	struct naive_alpha alpha[512];
	char **distinct = NULL;
	int nalpha = 0;

	memset(nv, 0, sizeof *nv);
	nv->tok = emalloc(sizeof *nv->tok * (size_t)(vocab_size + 1));
	for (int i = 0; i < 5; i++)
		nv->tok[nv->ntok++] = estrdup(specials[i]);
	/* Distinct words and their counts, from the library's basic tokenization. */
	for (int t = 0; t < n; t++) {
		char *s = wordpiece_split(texts[t]), *save = NULL;
		for (char *w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			int i = distinct ? naive_find(distinct, nv->nword, w) : -1;
			if (i < 0) {
				distinct = erealloc(distinct, sizeof *distinct * (size_t)(nv->nword + 1));
				nv->freq = erealloc(nv->freq, sizeof *nv->freq * (size_t)(nv->nword + 1));
				distinct[nv->nword] = estrdup(w);
				nv->freq[i = nv->nword++] = 0;
			}
			nv->freq[i]++;
		}
		free(s);
	}
	/* Words split into characters (ASCII here), "##" inside; the alphabet with counts. */
	nv->word = emalloc(sizeof *nv->word * (size_t)(nv->nword + 1));
	nv->len = emalloc(sizeof *nv->len * (size_t)(nv->nword + 1));
	for (int w = 0; w < nv->nword; w++) {
		int len = (int)strlen(distinct[w]);
		nv->word[w] = emalloc(sizeof **nv->word * (size_t)len);
		nv->len[w] = len;
		for (int i = 0; i < len; i++) {
			char first[2] = {distinct[w][i], 0}, buf[4] = {'#', '#', distinct[w][i], 0};
			nv->word[w][i] = estrdup(i ? buf : first);
			for (int form = 0; form < (i ? 2 : 1); form++) {
				const char *tk = form ? buf : first;
				int a;
				for (a = 0; a < nalpha && strcmp(alpha[a].tok, tk) != 0; a++)
					;
				if (a == nalpha)
					alpha[nalpha++] = (struct naive_alpha){estrdup(tk), 0};
				alpha[a].count += form == (i ? 1 : 0) ? nv->freq[w] : 0;
			}
		}
		free(distinct[w]);
	}
	free(distinct);
	{
		int keep = nalpha <= vocab_size - 5 ? nalpha : vocab_size - 5;
		if (keep < nalpha)
			qsort(alpha, (size_t)nalpha, sizeof *alpha, naive_by_count);
		qsort(alpha, (size_t)keep, sizeof *alpha, naive_by_kind);
		for (int a = 0; a < nalpha; a++) {
			if (a < keep)
				nv->tok[nv->ntok++] = alpha[a].tok;
			else
				free(alpha[a].tok);
		}
		if (keep < nalpha)
			return;
	}
	/* Merges: recount every pair, take the best, rewrite every word. */
	while (nv->ntok < vocab_size) {
		const char *bl = NULL, *br = NULL;
		long best = 0;
		int tie = 0;
		char merged[512];

		for (int w = 0; w < nv->nword; w++)
			for (int i = 0; i + 1 < nv->len[w]; i++) {
				const char *l = nv->word[w][i], *r = nv->word[w][i + 1];
				long c = 0;
				for (int v = 0; v < nv->nword; v++)
					for (int j = 0; j + 1 < nv->len[v]; j++)
						if (strcmp(nv->word[v][j], l) == 0 &&
						    strcmp(nv->word[v][j + 1], r) == 0)
							c += nv->freq[v];
				if (c > best) {
					best = c;
					bl = l;
					br = r;
					tie = 0;
				} else if (c == best && (strcmp(l, bl) != 0 || strcmp(r, br) != 0)) {
					tie = 1;
					if (strcmp(l, bl) < 0 || (strcmp(l, bl) == 0 && strcmp(r, br) < 0)) {
						bl = l;
						br = r;
					}
				}
			}
		if (best < 2)
			break;
		nv->tied += tie;
		nv->merges++;
		snprintf(merged, sizeof merged, "%s%s", bl, br + 2);
		if (naive_find(nv->tok, nv->ntok, merged) < 0)
			nv->tok[nv->ntok++] = estrdup(merged);
		else
			nv->reused++;
		/* bl and br point into the words being rewritten: keep copies. */
		{
			char *l = estrdup(bl), *r = estrdup(br);
			for (int w = 0; w < nv->nword; w++) {
				int j = 0;
				for (int i = 0; i < nv->len[w];) {
					if (i + 1 < nv->len[w] && strcmp(nv->word[w][i], l) == 0 &&
					    strcmp(nv->word[w][i + 1], r) == 0) {
						free(nv->word[w][i]);
						free(nv->word[w][i + 1]);
						nv->word[w][j++] = estrdup(merged);
						i += 2;
					} else {
						nv->word[w][j++] = nv->word[w][i++];
					}
				}
				nv->len[w] = j;
			}
			free(l);
			free(r);
		}
	}
}

static void
naive_free(struct naive *nv)
{
	for (int i = 0; i < nv->ntok; i++)
		free(nv->tok[i]);
	for (int w = 0; w < nv->nword; w++) {
		for (int i = 0; i < nv->len[w]; i++)
			free(nv->word[w][i]);
		free(nv->word[w]);
	}
	free(nv->tok);
	free(nv->word);
	free(nv->len);
	free(nv->freq);
}

static int
same_vocab(const struct wordpiece *wp, const struct naive *nv)
{
	if (wordpiece_size(wp) != nv->ntok)
		return 0;
	for (int i = 0; i < nv->ntok; i++)
		if (strcmp(wordpiece_token(wp, i), nv->tok[i]) != 0)
			return 0;
	return 1;
}

/*
 * Random corpora over two to four letters, skewed so that the pair counts tie often, against the naive
 * trainer; the vocabulary sizes include ones that cut the alphabet and ones that merges never reach.
 */
static void
test_naive(void)
{
	static const char *const alphabets[] = {"ab", "abc", "abcd", "aab"};
	static const int sizes[] = {7, 10, 16, 30, 60, 1000};
	struct tc_error err;
	struct rng r;
	int runs = 0, bad = 0, reused = 0, tied = 0, merges = 0;

	rng_seed(&r, 7);
	for (int c = 0; c < 40; c++) {
		const char *alphabet = alphabets[c % 4];
		int n = 1 + (int)rng_below(&r, 6);
		char *owned[6];
		const char *texts[6];

		for (int i = 0; i < n; i++)
			texts[i] = owned[i] = random_text(&r, 10 + rng_below(&r, 120), alphabet);
		for (int s = 0; s < 6; s++) {
			struct naive nv;
			struct wordpiece *wp = wordpiece_train(texts, (size_t)n, sizes[s], &err);
			naive_train(&nv, texts, n, sizes[s]);
			runs++;
			if (!same_vocab(wp, &nv)) {
				bad++;
				printf("# corpus %d, vocab_size %d: the fast and naive trainers differ\n", c,
				       sizes[s]);
				vocab_is(wp, (const char *const *)nv.tok, nv.ntok);
			}
			reused += nv.reused;
			tied += nv.tied;
			merges += nv.merges;
			naive_free(&nv);
			wordpiece_free(wp);
		}
		for (int i = 0; i < n; i++)
			free(owned[i]);
	}
	check(bad == 0, "naive trainer: %d of %d random corpora and sizes give the same vocabulary",
	      runs - bad, runs);
	check(tied > 200, "naive trainer: the corpora exercise the tie-break (%d of %d merges were ties)",
	      tied, merges);
	printf("# %d merges made a token that was already in the vocabulary\n", reused);
}

/* Determinism and the file round trip, on a larger random corpus. */
static void
test_determinism_roundtrip(void)
{
	static const char chars[] = "etaoinshrdlucmfwypvbgkjqxzETAO0123456789";
	const char *texts[200];
	char *owned[200];
	struct tc_error err;
	struct wordpiece *a, *b, *back;
	struct rng r;
	int same, fail;

	rng_seed(&r, 1);
	for (int i = 0; i < 200; i++)
		texts[i] = owned[i] = random_text(&r, 300, chars);
	a = wordpiece_train(texts, 200, 2000, &err);
	b = wordpiece_train(texts, 200, 2000, &err);
	same = wordpiece_size(a) == wordpiece_size(b) && wordpiece_size(a) > 500;
	for (int i = 0; same && i < wordpiece_size(a); i++)
		same = strcmp(wordpiece_token(a, i), wordpiece_token(b, i)) == 0;
	check(same, "train twice on the same texts: the same %d tokens", wordpiece_size(a));

	fail = wordpiece_save(a, tmp("round.txt"), &err);
	back = fail ? NULL : wordpiece_load(tmp("round.txt"), &err);
	same = back && wordpiece_size(back) == wordpiece_size(a);
	for (int i = 0; same && i < wordpiece_size(a); i++)
		same = strcmp(wordpiece_token(a, i), wordpiece_token(back, i)) == 0 &&
		       wordpiece_id(back, wordpiece_token(a, i)) == i;
	same = same && wordpiece_unk(back) == 1 && wordpiece_cls(back) == 2 && wordpiece_sep(back) == 3;
	check(same, "save then load gives the same tokens, ids and specials");
	{
		int32_t x[400], y[400];
		int nx = wordpiece_encode(a, texts[0], x, 400),
		    ny = back ? wordpiece_encode(back, texts[0], y, 400) : 0;
		check(ids_equal(x, nx, y, ny) && nx > 50, "the loaded vocabulary encodes as the trained one");
	}
	{
		DIR *d = opendir(tmpdir);
		struct dirent *de;
		int stray = 0;
		while (d && (de = readdir(d)))
			stray += strncmp(de->d_name, ".round", 6) == 0;
		if (d)
			closedir(d);
		check(stray == 0, "save leaves no temporary file behind");
	}
	{
		/* the in-memory form a checkpoint carries: the file's bytes, and back */
		size_t len, flen = 0;
		char *text = wordpiece_text(a, &len), buf[1 << 16];
		FILE *f = fopen(tmp("round.txt"), "rb");
		if (f) {
			flen = fread(buf, 1, sizeof buf, f);
			fclose(f);
		}
		check(flen == len && memcmp(buf, text, len) == 0,
		      "wordpiece_text is the vocab.txt file byte for byte");
		struct wordpiece *mem = wordpiece_load_mem(text, len, "ck", &err);
		same = mem && wordpiece_size(mem) == wordpiece_size(a);
		for (int i = 0; same && i < wordpiece_size(a); i++)
			same = strcmp(wordpiece_token(a, i), wordpiece_token(mem, i)) == 0;
		check(same, "wordpiece_load_mem reads it back to the same tokens");
		wordpiece_free(mem);
		mem = wordpiece_load_mem("a\nb\na\n", 6, "ck", &err);
		check(!mem && strcmp(err.msg, "ck:3: duplicate token 'a' (first on line 1)") == 0,
		      "wordpiece_load_mem names its input and line (%s)", err.msg);
		mem = wordpiece_load_mem("", 0, "ck", &err);
		check(!mem && strstr(err.msg, "ck: no [UNK]"), "an empty vocabulary is refused (%s)",
		      err.msg);
		free(text);
	}
	fail = wordpiece_save(a, tmp("no/such/dir/vocab.txt"), &err);
	check(fail == -1 && strstr(err.msg, "no/such/dir/vocab.txt"),
	      "save to a missing directory fails (%s)", err.msg);
	wordpiece_free(a);
	wordpiece_free(b);
	wordpiece_free(back);
	for (int i = 0; i < 200; i++)
		free(owned[i]);
}

static void
cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlink(tmp(de->d_name));
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int
main(void)
{
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot create a temporary directory\n");
		return 1;
	}
	test_split();
	test_encode();
	test_load();
	test_train();
	test_property();
	test_naive();
	test_determinism_roundtrip();
	cleanup();
	return tap_done();
}
