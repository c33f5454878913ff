/*
 * task_test.c: unit tests of lib/task on the committed fixtures in tests/data/task (never on the
 * full data in build/data or /usr/share/wordnet: the Debian location is pointed at a directory
 * that does not exist). Expected values were computed apart from the loader: splits with
 * "printf %s KEY | md5sum" in the shell, counts and glosses with a few lines of Python over the
 * same files. Malformed inputs are small files written by this test into a temporary directory,
 * and each must give its exact one-line message. Prints TAP; exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rng.h"
#include "task.h"
#include "tap.h"

static const char *const fixtures[] = {"tests/data/task", NULL};
static char tmp[] = "/tmp/task_test.XXXXXX";

/* Write content to tmp/rel, creating the directories on the way. */
static void
put(const char *rel, const char *content)
{
	char *path = esprintf("%s/%s", tmp, rel);
	FILE *f;

	for (char *s = strchr(path + strlen(tmp) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		mkdir(path, 0755);
		*s = '/';
	}
	f = fopen(path, "wb");
	if (!f || fputs(content, f) < 0 || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	free(path);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static size_t
count_split(const struct task *t, int split)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->ex[i].split == split;
	return n;
}

static size_t
count_label(const struct task *t, int label, int split)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->ex[i].label == label && (split < 0 || t->ex[i].split == split);
	return n;
}

static int
same_task(const struct task *a, const struct task *b)
{
	if (a->n != b->n || a->nlabels != b->nlabels)
		return 0;
	for (int i = 0; i < a->nlabels; i++)
		if (strcmp(a->labels[i], b->labels[i]) != 0)
			return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->ex[i].text, b->ex[i].text) != 0 || a->ex[i].label != b->ex[i].label ||
		    a->ex[i].split != b->ex[i].split)
			return 0;
	return 1;
}

static void
load(struct task *t, const char *spec, const char *const *dirs)
{
	struct tc_error err;

	if (task_load(t, spec, dirs, &err) < 0) {
		printf("Bail out! %s: %s\n", spec, err.msg);
		exit(1);
	}
}

/* task_load(spec) must fail with exactly the message want (freed here), leaving *t empty. */
static void
expect_error(const char *spec, const char *const *dirs, char *want, const char *what)
{
	struct task t;
	struct tc_error err = {""};
	int rc = task_load(&t, spec, dirs, &err);

	check(rc == -1 && t.n == 0 && !t.ex && !t.name && !t.labels && strcmp(err.msg, want) == 0 &&
	          !strchr(err.msg, '\n'),
	      "%s: %s", what, err.msg);
	if (rc == -1 && strcmp(err.msg, want) != 0)
		printf("# expected: %s\n", want);
	if (rc == 0)
		task_release(&t);
	free(want);
}

static void
test_split(void)
{
	/* printf %s KEY | md5sum: first bytes 27, 50, a1, 86, 28, b5, 83; mod 10: 9, 0, 1, 4, 0, 1, 1. */
	static const struct {
		const char *key;
		int split;
	} k[] = {
	    {"n00001740", TASK_TRAIN},
	    {"n00443803", TASK_TEST},
	    {"n02011460", TASK_VALID},
	    {"a00001740", TASK_TRAIN},
	    {"00001.7c53336b37003a9286aba55d2945844c", TASK_TEST},
	    {"00001.317e78fa8ee2f54cd4890fdc09ba8176", TASK_VALID},
	    {"a00025470", TASK_VALID},
	};

	for (size_t i = 0; i < sizeof k / sizeof *k; i++)
		check(task_split(k[i].key, strlen(k[i].key)) == k[i].split, "split of '%s' is %s", k[i].key,
		      task_split_name(k[i].split));
	check(task_split("n00001740x", 9) == TASK_TRAIN, "task_split reads len bytes only");
	check(strcmp(task_split_name(TASK_TRAIN), "train") == 0 &&
	          strcmp(task_split_name(TASK_VALID), "valid") == 0 &&
	          strcmp(task_split_name(TASK_TEST), "test") == 0,
	      "split names train, valid, test");
}

static void
test_wordnet(void)
{
	struct task t, again;
	int bad = 0;

	load(&t, NULL, fixtures);
	check(strcmp(t.name, "wordnet-lex") == 0, "a NULL spec is the default task, wordnet-lex");
	check(t.n == 600, "wordnet fixture: 600 synsets (150 from each file), got %zu", t.n);
	check(t.nlabels == 45 && strcmp(t.labels[0], "adj.all") == 0 && strcmp(t.labels[2], "adv.all") == 0 &&
	          strcmp(t.labels[3], "noun.Tops") == 0 && strcmp(t.labels[28], "noun.time") == 0 &&
	          strcmp(t.labels[29], "verb.body") == 0 && strcmp(t.labels[43], "verb.weather") == 0 &&
	          strcmp(t.labels[44], "adj.ppl") == 0,
	      "45 labels named as in lexnames(5WN), 44 = adj.ppl");
	check(count_split(&t, TASK_TRAIN) == 478 && count_split(&t, TASK_VALID) == 64 &&
	          count_split(&t, TASK_TEST) == 58,
	      "splits 478 / 64 / 58, got %zu / %zu / %zu", count_split(&t, TASK_TRAIN),
	      count_split(&t, TASK_VALID), count_split(&t, TASK_TEST));
	check(
	    count_label(&t, 0, -1) == 120 && count_label(&t, 1, -1) == 27 && count_label(&t, 2, -1) == 150 &&
	        count_label(&t, 18, -1) == 20 && count_label(&t, 30, -1) == 26 &&
	        count_label(&t, 44, -1) == 3 && count_label(&t, 12, -1) == 0,
	    "label counts: adj.all 120, adj.pert 27, adv.all 150, noun.person 20, verb.change 26, adj.ppl 3");
	check(count_label(&t, 0, TASK_TEST) == 20, "majority class on test is adj.all with 20 of 58");

	check(strcmp(t.ex[0].text, "that which is perceived or known or inferred to have its own distinct "
	                           "existence (living or nonliving)") == 0 &&
	          t.ex[0].label == 3 && t.ex[0].split == TASK_TRAIN,
	      "n00001740: the gloss of 'entity', trailing spaces gone, noun.Tops, train");
	check(strcmp(t.ex[4].text, "a dive in which the diver somersaults before entering the water") == 0 &&
	          t.ex[4].label == 4 && t.ex[4].split == TASK_TEST,
	      "n00443803: 'flip', noun.act, test");
	check(strncmp(t.ex[19].text, "relatively small compact tawny-brown heron", 42) == 0 &&
	          t.ex[19].label == 5 && t.ex[19].split == TASK_VALID,
	      "n02011460: 'bittern', noun.animal, valid");
	check(strcmp(t.ex[150].text,
	             "draw air into, and expel out of, the lungs; \"I can breathe better when the "
	             "air is clean\"; \"The patient is respiring\"") == 0 &&
	          t.ex[150].label == 29,
	      "v00001740: a verb with frames, gloss with its examples, verb.body");
	check(strncmp(t.ex[300].text, "(usually followed by `to') having the necessary means", 52) == 0 &&
	          t.ex[300].label == 0 && t.ex[301].split == TASK_VALID,
	      "a00001740: 'able', adj.all; a00025470 valid");
	check(strcmp(t.ex[447].text, "for which vengeance has been taken; \"an avenged injury\"") == 0 &&
	          t.ex[447].label == 44,
	      "a03147282: 'avenged', adj.ppl");
	check(strcmp(t.ex[450].text, "without musical accompaniment; \"they performed a cappella\"") == 0 &&
	          t.ex[450].label == 2,
	      "r00001740: 'a cappella', adv.all");
	for (size_t i = 0; i < t.n; i++) {
		size_t n = strlen(t.ex[i].text);
		bad += n == 0 || t.ex[i].text[n - 1] == ' ' || strncmp(t.ex[i].text, "| ", 2) == 0;
		bad += t.ex[i].label < 0 || t.ex[i].label >= 45;
	}
	check(!bad, "every text is a non-empty gloss without trailing space, every label in 0..44");

	load(&again, "wordnet-lex", fixtures);
	check(same_task(&t, &again), "wordnet: loading twice gives the same examples in the same order");
	task_release(&again);
	{
		const char *const d2[] = {"/nonexistent-dir", "tests/data/task", NULL};
		load(&again, "wordnet-lex", d2);
		check(same_task(&t, &again), "wordnet: directories without the data are passed over");
		task_release(&again);
	}
	task_release(&t);
	check(t.n == 0 && !t.ex && !t.name && !t.labels, "task_release leaves the task empty");
}

static void
test_spam(void)
{
	struct task t, again;
	int hdr = 0;

	load(&t, "spam", fixtures);
	check(t.n == 20 && t.nlabels == 2 && strcmp(t.labels[0], "ham") == 0 &&
	          strcmp(t.labels[1], "spam") == 0,
	      "spam fixture: 20 messages, labels ham, spam");
	check(count_label(&t, 0, -1) == 11 && count_label(&t, 1, -1) == 9,
	      "11 ham (easy-ham-1, easy-ham-2, hard-ham-1), 9 spam");
	check(count_split(&t, TASK_TRAIN) == 17 && count_split(&t, TASK_VALID) == 2 &&
	          count_split(&t, TASK_TEST) == 1,
	      "splits 17 / 2 / 1 by file name");
	check(t.ex[0].label == 0 && t.ex[0].split == TASK_TEST && strlen(t.ex[0].text) == 1604 &&
	          strncmp(t.ex[0].text, "    Date:        Wed, 21 Aug 2002 10:54:46 -0500\n", 49) == 0,
	      "easy-ham-1/00001 first: its 1604-byte body after the headers, test");
	check(strncmp(t.ex[2].text, "\nIf the frequency of my laptop's disk chirps", 44) == 0,
	      "a body starting with a blank line keeps it (only the first empty line ends the headers)");
	check(t.ex[15].label == 1 && t.ex[15].split == TASK_VALID &&
	          strncmp(t.ex[15].text, "Greetings!\n\nYou are receiving", 29) == 0,
	      "spam-2/00001: spam, valid");
	check(strlen(t.ex[17].text) == 2232 &&
	          strncmp(t.ex[17].text, "\n\r\r\r\nHELLO: THIS IS AN ADVERTISEMENT", 35) == 0,
	      "spam-2/00083: body with carriage returns kept as is");
	for (size_t i = 0; i < t.n; i++)
		hdr += strncmp(t.ex[i].text, "From ", 5) == 0 ||
		       strstr(t.ex[i].text, "Return-Path:") != NULL || strstr(t.ex[i].text, "X-Spam") != NULL;
	check(!hdr, "no text holds the mbox From line, Return-Path or X-Spam headers");
	load(&again, "spam", fixtures);
	check(same_task(&t, &again), "spam: loading twice gives the same examples in the same order");
	task_release(&again);
	task_release(&t);
}

/* A spam directory written here: files created in reverse order come back sorted; NUL bytes and
 * header forms. */
static void
test_spam_written(void)
{
	char *dir = esprintf("%s/sp", tmp);
	const char *const dirs[] = {dir, NULL};
	struct task t;

	put("sp/spam/spam-9/00002.bb.json", "{\"text\": \"Subject: b\\r\\n\\r\\nCRLF body\\r\\n\"}\n");
	put("sp/spam/spam-9/00001.aa.json", "{\"text\": \"Subject: a\\n\\nbody with a \\u0000NUL\"}");
	put("sp/spam/easy-ham-9/00003.cc.json", "{\"text\": \"Subject: no body at all\\n\"}");
	put("sp/spam/easy-ham-9/00003.cc.txt", "not read");
	put("sp/spam/notes/00004.dd.json", "{\"text\": \"not a group\\n\\nignored\"}");
	put("sp/spam/README", "ignored");
	load(&t, "spam", dirs);
	check(t.n == 3, "only *.json files in ham and spam groups are read (%zu)", t.n);
	check(t.n == 3 && t.ex[0].label == 0 && strcmp(t.ex[0].text, "") == 0,
	      "groups in strcmp order; a message without an empty line has an empty body");
	check(t.n == 3 && t.ex[1].label == 1 && strcmp(t.ex[1].text, "body with a NUL") == 0,
	      "files in strcmp order whatever the creation order; NUL bytes are removed");
	check(t.n == 3 && strcmp(t.ex[2].text, "CRLF body\r\n") == 0,
	      "\"\\r\\n\" alone also ends the headers");
	check(t.n == 3 && t.ex[0].split == task_split("00003.cc", 8) &&
	          t.ex[1].split == task_split("00001.aa", 8),
	      "the split key is the file name without .json");
	task_release(&t);

	put("sp/spam/spam-9/00005.ee.json", "{\"txt\": \"x\"}");
	expect_error("spam", dirs, esprintf("%s/spam/spam-9/00005.ee.json:1: missing field 'text'", dir),
	             "spam message without text");
	put("sp/spam/spam-9/00005.ee.json", "{\"text\": 5}");
	expect_error(
	    "spam", dirs,
	    esprintf("%s/spam/spam-9/00005.ee.json:1: field 'text': expected a string, got number", dir),
	    "spam message text of the wrong type");
	put("sp/spam/spam-9/00005.ee.json", "{\"text\": \"x\"");
	expect_error(
	    "spam", dirs,
	    esprintf("%s/spam/spam-9/00005.ee.json:1: malformed JSON at column 12: '}' expected near end of "
	             "file",
	             dir),
	    "spam message of malformed JSON");
	put("sp/spam/spam-9/00005.ee.json", "{\"text\": \"x\"}\n{\"text\": \"y\"}\n");
	expect_error(
	    "spam", dirs,
	    esprintf("%s/spam/spam-9/00005.ee.json:2: expected one JSON object in the file, found another "
	             "line",
	             dir),
	    "spam file of two objects");
	put("sp/spam/spam-9/00005.ee.json", "");
	expect_error(
	    "spam", dirs,
	    esprintf("'%s/spam/spam-9/00005.ee.json': empty file, expected a JSON object with a member "
	             "'text'",
	             dir),
	    "empty spam file");
	put("sp2/spam/README", "no groups");
	free(dir);
	dir = esprintf("%s/sp2", tmp);
	{
		const char *const d2[] = {dir, NULL};
		expect_error(
		    "spam", d2,
		    esprintf("task 'spam': no messages in '%s/spam' (expected directories easy-ham-1, "
		             "spam-1, ... of *.json files); run 'make data' to fetch them",
		             dir),
		    "a spam directory without messages");
	}
	free(dir);
}

static void
test_tsv(void)
{
	struct task t;

	load(&t, "tsv:tests/data/task/sst.tsv", NULL);
	check(t.n == 8 && t.nlabels == 2 && strcmp(t.labels[0], "0") == 0 && strcmp(t.labels[1], "1") == 0,
	      "sst.tsv: 8 rows after the header and a blank line, labels \"0\", \"1\"");
	check(t.n == 8 && strcmp(t.ex[0].text, "a gripping , beautifully acted story ") == 0 &&
	          t.ex[0].label == 1,
	      "text is the 'sentence' column as is, label \"1\" is id 1");
	check(t.n == 8 && strcmp(t.ex[3].text, "the ending falls flat ") == 0 && t.ex[3].label == 0 &&
	          t.ex[3].split == TASK_TEST,
	      "a CRLF line: the '\\r' is dropped; split by the text (test)");
	check(count_split(&t, TASK_TRAIN) == 5 && count_split(&t, TASK_VALID) == 1 &&
	          count_split(&t, TASK_TEST) == 2,
	      "splits 5 / 1 / 2 by md5 of the text");
	task_release(&t);

	load(&t, "tsv:tests/data/task/plain.tsv", NULL);
	check(t.n == 5 && t.nlabels == 3 && strcmp(t.labels[0], "neg") == 0 &&
	          strcmp(t.labels[1], "neutral") == 0 && strcmp(t.labels[2], "pos") == 0,
	      "plain.tsv without a header: labels in strcmp order neg, neutral, pos");
	check(t.n == 5 && strcmp(t.ex[0].text, "the service was quick") == 0 && t.ex[0].label == 2 &&
	          t.ex[2].label == 1 && t.ex[2].split == TASK_TEST,
	      "headerless: column 1 text, column 2 label, first line is data");
	task_release(&t);

	expect_error(
	    "tsv:tests/data/task/tab-in-text.tsv", NULL,
	    estrdup("tests/data/task/tab-in-text.tsv:3: expected 2 tab-separated fields, got 3 (a tab "
	            "inside the text?)"),
	    "a tab inside the text");

	put("bom.tsv", "\xef\xbb\xbfid\tlabel\ttext\n1\tb\tsecond\n2\ta\tfirst\n");
	{
		char *spec = esprintf("tsv:%s/bom.tsv", tmp);
		load(&t, spec, NULL);
		check(t.n == 2 && strcmp(t.ex[0].text, "second") == 0 && t.ex[0].label == 1 &&
		          strcmp(t.labels[0], "a") == 0,
		      "a header after a UTF-8 BOM, columns found by name ('text', 'label')");
		task_release(&t);
		free(spec);
	}

	static const struct {
		const char *content, *msg, *what;
	} bad[] = {
	    {"sentence\tlabel\nno tab here\n",
	     "2: missing column 'label': expected 2 tab-separated fields, got 1", "a line without a tab"},
	    {"good\t1\n\t0\n", "2: empty text", "empty text"},
	    {"good\t1\n   \t0\n", "2: empty text", "a text of blanks"},
	    {"good\t1\nalso good\t\n", "2: empty label", "empty label"},
	    {"sentence\tscore\nfine\t1\n", "1: header has no column 'label'", "a header without 'label'"},
	    {"idx\tlabel\n1\t0\n", "1: header has no column 'sentence' or 'text'",
	     "a header without a text column"},
	    {"id\tsentence\tlabel\n1\tgood\n",
	     "2: missing column 'label': expected 3 tab-separated fields, got 2",
	     "a row shorter than the header"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *spec = esprintf("tsv:%s/bad%zu.tsv", tmp, i), *rel = esprintf("bad%zu.tsv", i);
		put(rel, bad[i].content);
		expect_error(spec, NULL, esprintf("%s/bad%zu.tsv:%s", tmp, i, bad[i].msg), bad[i].what);
		free(spec);
		free(rel);
	}
	put("empty.tsv", "\n\n");
	{
		char *spec = esprintf("tsv:%s/empty.tsv", tmp);
		expect_error(spec, NULL, esprintf("'%s/empty.tsv': no examples", tmp),
		             "a tsv file of blank lines");
		free(spec);
	}
	expect_error("tsv:/nonexistent/x.tsv", NULL,
	             estrdup("cannot open '/nonexistent/x.tsv': No such file or directory"),
	             "a missing tsv file");
}

static void
test_jsonl(void)
{
	struct task t, again;

	load(&t, "jsonl:tests/data/task/small.jsonl", NULL);
	check(t.n == 6 && t.nlabels == 3 && strcmp(t.labels[0], "0") == 0 && strcmp(t.labels[1], "10") == 0 &&
	          strcmp(t.labels[2], "2") == 0,
	      "small.jsonl: 6 records, integer labels as strings in strcmp order \"0\", \"10\", \"2\"");
	check(t.n == 6 && t.ex[0].label == 2 && t.ex[1].label == 0 && t.ex[2].label == 1 &&
	          t.ex[3].label == 0,
	      "label 2 is id 2, 10 is id 1, 0 and \"0\" are both id 0");
	check(t.n == 6 && strcmp(t.ex[2].text, "meeting moved to Thursday") == 0,
	      "'sentence' stands for 'text'");
	check(t.n == 6 && strcmp(t.ex[3].text, "caf\xc3\xa9 au lait, s'il vous pla\xc3\xaet") == 0 &&
	          t.ex[3].split == TASK_VALID,
	      "\\u escapes decoded to UTF-8; split valid");
	check(t.n == 6 && t.ex[5].split == TASK_TEST && t.ex[0].split == t.ex[4].split,
	      "split by text: duplicates share a split");
	load(&again, "jsonl:tests/data/task/small.jsonl", NULL);
	check(same_task(&t, &again), "jsonl: loading twice gives the same examples");
	task_release(&again);
	task_release(&t);

	static const struct {
		const char *content, *msg, *what;
	} bad[] = {
	    {"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"}\n", "2: missing field 'label'",
	     "missing label"},
	    {"{\"label\": 1}\n", "1: missing field 'text' (or 'sentence')", "missing text"},
	    {"{\"text\": 3, \"label\": 1}\n", "1: field 'text': expected a string, got number",
	     "text of the wrong type"},
	    {"{\"sentence\": [\"a\"], \"label\": 1}\n", "1: field 'sentence': expected a string, got array",
	     "sentence of the wrong type"},
	    {"{\"text\": \"a\", \"label\": 1.5}\n",
	     "1: field 'label': expected a string or an integer, got number", "a real label"},
	    {"{\"text\": \"a\", \"label\": null}\n",
	     "1: field 'label': expected a string or an integer, got null", "a null label"},
	    {"{\"text\": \"a\", \"label\": \"\"}\n", "1: field 'label': empty", "an empty label"},
	    {"{\"text\": \"\", \"label\": 1}\n", "1: field 'text': empty text", "an empty text"},
	    {"{\"text\": \"a\", \"label\": 1}\n[1, 2]\n", "2: expected a JSON object, got array",
	     "not an object"},
	    {"{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": 1\n",
	     "3: malformed JSON at column 24: '}' expected near end of file", "invalid JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *spec = esprintf("jsonl:%s/bad%zu.jsonl", tmp, i), *rel = esprintf("bad%zu.jsonl", i);
		put(rel, bad[i].content);
		expect_error(spec, NULL, esprintf("%s/bad%zu.jsonl:%s", tmp, i, bad[i].msg), bad[i].what);
		free(spec);
		free(rel);
	}
}

static const char wn_header[] =
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  \n";
static const char *const wn_good[4][2] = {
    {"data.noun", "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04431553 n 0000 | "
                  "that which is perceived  \n"},
    {"data.verb", "00002325 29 v 01 respire 1 000 02 + 02 00 + 08 01 | undergo respiration  \n"},
    {"data.adj", "00001740 00 a 01 able 0 000 | having the necessary means  \n"
                 "00002312 00 s 02 abaxial 0 dorsal 4 001 & 00001740 a 0000 | facing away | from the axis\n"},
    {"data.adv", "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment  \n"},
};

/* A wordnet directory tmp/wnID/wordnet with the good files, file replaced by header + line (or
 * removed if line is NULL); returns tmp/wnID. */
static char *
wn_case(int id, const char *file, const char *line)
{
	for (int i = 0; i < 4; i++) {
		char *rel = esprintf("wn%d/wordnet/%s", id, wn_good[i][0]), *text;
		if (file && strcmp(file, wn_good[i][0]) == 0)
			text = line ? esprintf("%s%s", wn_header, line) : NULL;
		else
			text = esprintf("%s%s", wn_header, wn_good[i][1]);
		if (text)
			put(rel, text);
		free(rel);
		free(text);
	}
	return esprintf("%s/wn%d", tmp, id);
}

static void
test_wordnet_written(void)
{
	char *dir = wn_case(0, NULL, NULL);
	const char *const dirs[] = {dir, NULL};
	struct task t;

	load(&t, "wordnet-lex", dirs);
	check(t.n == 5 && strcmp(t.ex[0].text, "that which is perceived") == 0 &&
	          strcmp(t.ex[1].text, "undergo respiration") == 0 && t.ex[1].label == 29,
	      "hand-written wndb lines: glosses and labels");
	check(t.n == 5 && strcmp(t.ex[3].text, "facing away | from the axis") == 0 && t.ex[3].label == 0,
	      "an adjective satellite; the gloss runs from the first ' | ' to the end");
	check(t.n == 5 && t.ex[3].split == task_split("a00002312", 9) &&
	          t.ex[4].split == task_split("r00001740", 9),
	      "split keys a00002312 (satellite counts as a) and r00001740");
	task_release(&t);
	free(dir);

	static const struct {
		const char *file, *line, *msg, *what;
	} bad[] = {
	    {"data.noun", "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~\n",
	     "data.noun:3: truncated line: missing field 'synset_offset of pointer 2'", "a truncated line"},
	    {"data.noun", "00001740 03 n 01 entity 0 001 ~ 00001930 n 0000\n",
	     "data.noun:3: truncated line: missing the gloss (' | ')", "a line without its gloss"},
	    {"data.noun", "00001740 45 n 01 entity 0 000 | x\n",
	     "data.noun:3: field 'lex_filenum': expected 00..44, got 45", "lex_filenum 45"},
	    {"data.noun", "00001740 4x n 01 entity 0 000 | x\n",
	     "data.noun:3: field 'lex_filenum': expected 2 decimal digits, got '4x'", "lex_filenum 4x"},
	    {"data.noun", "00001740 3 n 01 entity 0 000 | x\n",
	     "data.noun:3: field 'lex_filenum': expected 2 decimal digits, got '3'",
	     "lex_filenum of one digit"},
	    {"data.noun", "00001740 29 n 01 entity 0 000 | x\n",
	     "data.noun:3: field 'lex_filenum': 29 is verb.body, expected a noun.* file",
	     "a verb lex_filenum in data.noun"},
	    {"data.noun", "00001740 03 v 01 entity 0 000 | x\n",
	     "data.noun:3: field 'ss_type': expected 'n', got 'v'", "ss_type v in data.noun"},
	    {"data.noun", "1740 03 n 01 entity 0 000 | x\n",
	     "data.noun:3: field 'synset_offset': expected 8 decimal digits, got '1740'", "a short offset"},
	    {"data.noun", "00001740 03 n 0g entity 0 000 | x\n",
	     "data.noun:3: field 'w_cnt': expected 2 hexadecimal digits, got '0g'", "w_cnt not hexadecimal"},
	    {"data.noun", "00001740 03 n 02 entity 0 000 | x\n",
	     "data.noun:3: field 'lex_id of word 2': expected 1 hexadecimal digit, got '|'",
	     "w_cnt too large"},
	    {"data.noun", "00001740 03 n 01 entity 0 001 ~ 00001930 q 0000 | x\n",
	     "data.noun:3: field 'pos of pointer 1': expected 'n', 'v', 'a', 's' or 'r', got 'q'",
	     "a bad pointer pos"},
	    {"data.noun", "00001740 03 n 01 entity 0 000 |   \n", "data.noun:3: field 'gloss': empty",
	     "an empty gloss"},
	    {"data.noun", "00001740 03 n 01 entity 0 000 x | y\n",
	     "data.noun:3: field 'gloss': expected '|' after 0 pointers, got 'x'", "junk before the gloss"},
	    {"data.noun", "\n", "data.noun:3: truncated line: missing field 'synset_offset'",
	     "an empty line"},
	    {"data.verb", "00002325 29 v 01 respire 1 000 01 02 00 | x\n",
	     "data.verb:3: field 'frame 1 of 1': expected '+', got '02'", "a verb frame without '+'"},
	    {"data.verb", "00002325 29 v 01 respire 1 000 | x\n",
	     "data.verb:3: field 'f_cnt': expected 2 decimal digits, got '|'", "a verb without frames"},
	    {"data.adj", "00001740 00 n 01 able 0 000 | x\n",
	     "data.adj:3: field 'ss_type': expected 'a' or 's', got 'n'", "ss_type n in data.adj"},
	    {"data.adv", "",
	     "'%s/wn%d/wordnet/data.adv': no synset lines (a truncated download? run 'make data')",
	     "a data file of only the licence"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *const d[] = {dir = wn_case((int)i + 1, bad[i].file, bad[i].line), NULL};
		char *want;
		if (bad[i].msg[0] == '\'')
			want = esprintf(bad[i].msg, tmp, (int)i + 1);
		else
			want = esprintf("%s/wordnet/%s", dir, bad[i].msg);
		expect_error("wordnet-lex", d, want, bad[i].what);
		free(dir);
	}

	dir = wn_case(99, "data.verb", NULL);
	{
		const char *const d[] = {dir, NULL};
		expect_error("wordnet-lex", d,
		             esprintf("cannot open '%s/wordnet/data.verb': No such file or directory", dir),
		             "data.noun without data.verb");
	}
	free(dir);
}

static void
test_missing(void)
{
	const char *const none[] = {"/nonexistent/a", "/nonexistent/b", NULL};

	expect_error(
	    "wordnet-lex", none,
	    estrdup(
	        "task 'wordnet-lex': data set not found: looked for data.noun, data.verb, data.adj and "
	        "data.adv in '/nonexistent/a/wordnet', '/nonexistent/b/wordnet' or '/nonexistent/wordnet'; "
	        "run 'make data' to fetch them"),
	    "wordnet-lex not found names where it looked");
	expect_error(
	    "spam", none,
	    estrdup("task 'spam': data set not found: looked for a directory '/nonexistent/a/spam' or "
	            "'/nonexistent/b/spam'; run 'make data' to fetch it"),
	    "spam not found names where it looked");
	expect_error("spam", NULL,
	             estrdup("task 'spam': data set not found: no directory was given to look in for spam/"),
	             "spam with no directories");
	expect_error("imdb", NULL,
	             estrdup("unknown task 'imdb': expected wordnet-lex, spam, tsv:PATH or jsonl:PATH"),
	             "an unknown task");
	expect_error("tsv:", NULL,
	             estrdup("unknown task 'tsv:': expected wordnet-lex, spam, tsv:PATH or jsonl:PATH"),
	             "tsv: without a path");
}

/* Write len bytes to tmp/rel. */
static void
put_bytes(const char *rel, const char *p, size_t len)
{
	char *path = esprintf("%s/%s", tmp, rel);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	free(path);
}

/* Load a mutated copy of good (stored as tmp/rel) n times: a byte replaced by one that matters to
 * the formats, a byte deleted, or the file cut short. Each load must succeed with sane examples
 * or fail with a one-line message and an empty task; ASan and UBSan watch the rest. */
static void
fuzz(const char *what, const char *spec, const char *const *dirs, const char *rel, const char *good, int n)
{
	static const char bytes[] = {' ', '|', '\t', '\n', '\r', '0',    'f', 'x',
	                             '"', '{', '}',  '\\', '\0', '\xff', '+'};
	size_t len = strlen(good);
	char *buf = emalloc(len + 1);
	struct rng r;
	int ok = 1, fails = 0;

	rng_seed(&r, 1);
	for (int k = 0; k < n; k++) {
		struct task t;
		struct tc_error err = {""};
		size_t m = len;
		int rc;

		memcpy(buf, good, len);
		for (int edits = 1 + (int)rng_below(&r, 3); edits > 0 && m > 0; edits--) {
			size_t at = (size_t)rng_below(&r, m);
			switch (rng_below(&r, 3)) {
			case 0:
				buf[at] = bytes[rng_below(&r, sizeof bytes)];
				break;
			case 1:
				memmove(buf + at, buf + at + 1, m - at - 1);
				m--;
				break;
			default:
				m = at + 1;
				break;
			}
		}
		put_bytes(rel, buf, m);
		rc = task_load(&t, spec, dirs, &err);
		if (rc == 0) {
			ok = ok && t.n > 0 && t.nlabels > 0;
			for (size_t i = 0; i < t.n; i++)
				ok = ok && t.ex[i].text && t.ex[i].label >= 0 && t.ex[i].label < t.nlabels &&
				     t.ex[i].split >= TASK_TRAIN && t.ex[i].split <= TASK_TEST;
			task_release(&t);
		} else {
			fails++;
			ok = ok && rc == -1 && err.msg[0] && !strchr(err.msg, '\n') && t.n == 0 && !t.ex;
		}
	}
	check(ok && fails > 0 && fails < n, "%d mutations of %s: loaded or refused in one line (%d refused)",
	      n, what, fails);
	free(buf);
}

static void
test_fuzz(void)
{
	char *dir = wn_case(200, NULL, NULL), *spec;
	const char *const dirs[] = {dir, NULL};
	char *noun = esprintf("%s%s", wn_header, wn_good[0][1]),
	     *verb = esprintf("%s%s", wn_header, wn_good[1][1]);

	fuzz("a data.noun", "wordnet-lex", dirs, "wn200/wordnet/data.noun", noun, 400);
	put("wn200/wordnet/data.noun", noun);
	fuzz("a data.verb", "wordnet-lex", dirs, "wn200/wordnet/data.verb", verb, 400);
	spec = esprintf("tsv:%s/fuzz.tsv", tmp);
	fuzz("a tsv file", spec, NULL, "fuzz.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\n", 400);
	free(spec);
	spec = esprintf("jsonl:%s/fuzz.jsonl", tmp);
	fuzz("a jsonl file", spec, NULL, "fuzz.jsonl",
	     "{\"text\": \"good\", \"label\": 1}\n{\"sentence\": \"bad\", \"label\": \"0\"}\n", 400);
	free(spec);
	free(dir);
	dir = esprintf("%s/sp", tmp);
	{
		const char *const d2[] = {dir, NULL};
		put("sp/spam/spam-9/00005.ee.json", "{\"text\": \"x\"}");
		fuzz("a spam message", "spam", d2, "sp/spam/spam-9/00005.ee.json",
		     "{\"id\": \"00005\", \"text\": \"Subject: a\\r\\n\\nbody\\n\"}\n", 400);
	}
	free(dir);
	free(noun);
	free(verb);
}

int
main(void)
{
	task_wordnet_sysdir = "/nonexistent/wordnet";
	if (!mkdtemp(tmp)) {
		printf("Bail out! cannot create %s\n", tmp);
		return 1;
	}
	test_split();
	test_wordnet();
	test_wordnet_written();
	test_spam();
	test_spam_written();
	test_tsv();
	test_jsonl();
	test_missing();
	test_fuzz();
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
