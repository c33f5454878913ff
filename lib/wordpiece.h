/*
 * wordpiece.h: a WordPiece tokenizer as in BERT (uncased): basic tokenization, greedy longest-match-first
 * encoding against a vocabulary, a deterministic trainer, and the Hugging Face vocab.txt file form.
 *
 * Ownership: a struct wordpiece returned by wordpiece_train or wordpiece_load is the caller's, released with
 * wordpiece_free, and owns every token string it hands out (valid until then); a string returned by
 * wordpiece_split is the caller's to free(); texts, paths and tokens passed in are borrowed.
 *
 * Basic tokenization (wordpiece_split, and the first step of encoding and training), code point by code
 * point over UTF-8 text:
 *   - Invalid UTF-8 is dropped byte by byte, as if the byte were not there (a lead byte whose sequence is
 *     truncated, overlong, a surrogate or above U+10FFFF; a stray continuation byte): "ab\xffcd" is the
 *     word "abcd". This is BERT's decoding with errors="ignore".
 *   - Dropped, likewise without separating words: U+FFFD, controls U+0000-0008, 000B, 000C, 000E-001F,
 *     007F-009F (so \v, \f and U+0085 are dropped, not spaces, as in BERT), the format characters (Cf) of
 *     Unicode 14 (U+00AD soft hyphen, U+200B-200F, U+202A-202E, U+2060-206F, U+FEFF, ...), private use
 *     (U+E000-F8FF, planes 15 and 16) and the noncharacters (U+FDD0-FDEF, U+xFFFE, U+xFFFF).
 *   - Whitespace separates words: \t \n \r space, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F,
 *     U+205F, U+3000.
 *   - CJK ideographs are words of their own (BERT's ranges: U+4E00-9FFF, 3400-4DBF, F900-FAFF,
 *     20000-2A6DF, 2A700-2CEAF, 2F800-2FA1F).
 *   - Lowercasing and accent stripping: A-Z, and every code point in U+00C0-04FF (Latin-1 letters, Latin
 *     Extended-A and -B, IPA, combining diacritics, Greek, Cyrillic) and U+1E00-1EFF (Latin Extended
 *     Additional) maps to what Python's unicodedata.normalize("NFD", c.lower()) gives once its marks
 *     (category Mn) are removed: "É" -> "e", "Ł" -> "ł", "Ж" -> "ж", "й" -> "и", "ß" stays. Combining
 *     marks (Mn) in U+0300-036F, 0483-0487, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF and FE20-FE2F are dropped. No
 *     other normalisation is done: outside those ranges text is kept as is (Hangul syllables and CJK
 *     compatibility ideographs are not decomposed, other scripts' marks are kept, fullwidth letters are not
 *     lowercased), and capital sigma always becomes "σ" (no final-sigma rule).
 *   - Punctuation characters are words of their own: every ASCII character that is not a letter, digit or
 *     space (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~), U+00A1 ¡, 00A7 §, 00AB «, 00B6 ¶, 00B7 ·, 00BB », 00BF ¿,
 *     the rest of General Punctuation U+2000-206F and all of Supplemental Punctuation U+2E00-2E7F (whole
 *     blocks, so the symbols U+2044, 2052, 2E2F, 2E50 and 2E51 split too, where BERT keeps them), the CJK
 *     punctuation U+3001-3003, 3008-3011, 3014-301F, 3030, 303D, and the fullwidth and halfwidth
 *     punctuation (category P) in U+FF01-FF65. The test is made after lowercasing, so the Greek question
 *     mark U+037E (which NFD turns into ';') is punctuation.
 *   - Everything else belongs to the word it touches.
 *
 * Encoding a word: greedy longest-match-first, the first piece as is and the following ones with "##";
 * pieces end only on character boundaries. A word longer than WORDPIECE_MAX_WORD bytes, or one that the
 * vocabulary cannot cover, becomes the single id [UNK].
 *
 * Training: the vocabulary lists the specials [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4), then the alphabet,
 * then merges. The alphabet holds every character seen, as a word-initial token, in code point order, then
 * "##c" for every character seen inside a word, in code point order. Merges are BPE's, as in Hugging Face's
 * WordPieceTrainer: each distinct word, weighted by its count, starts as its first character followed by
 * "##"-prefixed characters; the adjacent pair with the highest count (its occurrences in every word,
 * overlapping ones included, times the word's count) is merged everywhere, left to right ("a" "##b" gives
 * "ab", "##a" "##b" gives "##ab"), and its token appended unless an earlier merge already made the same
 * string. Ties go to the pair whose left token is smaller in strcmp order, then whose right token is. It
 * stops when the vocabulary has vocab_size tokens or no pair occurs twice. If the alphabet alone does not
 * fit, the alphabet tokens kept are the most frequent ones (a token's frequency is its count in the initial
 * split of every word; ties by strcmp), listed in the order above, and there are no merges.
 */
#ifndef TC_WORDPIECE_H
#define TC_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

struct tc_error;

/* Words longer than this many bytes (after basic tokenization) encode as [UNK], as BERT's 100 characters. */
#define WORDPIECE_MAX_WORD 100
/* wordpiece_load refuses lines longer than this many bytes, and files of more tokens than this. */
#define WORDPIECE_MAX_TOKEN 1024
#define WORDPIECE_MAX_VOCAB (1 << 24)

/* Opaque: a vocabulary (id -> token, token -> id) and the ids of its specials. */
struct wordpiece;

/*
 * Train a vocabulary of at most vocab_size tokens (at least 5, the specials) from n NUL-terminated UTF-8
 * texts, by the rules above. The same texts in the same order and the same vocab_size give the same
 * vocabulary, byte for byte. Returns NULL with a message in err only if vocab_size < 5.
 */
struct wordpiece *wordpiece_train(const char *const *texts, size_t n, int vocab_size, struct tc_error *err);

/*
 * Load a Hugging Face style vocab.txt: one token per line, id = line number - 1, "\n" or "\r\n" line ends
 * (the last line may lack one). Returns NULL, with "path:line: ..." in err, for an empty line, a duplicate
 * token, a NUL byte, a '\r' inside a token, a line longer than WORDPIECE_MAX_TOKEN, more than
 * WORDPIECE_MAX_VOCAB tokens, a file without [UNK], or a file that cannot be read. The other specials may
 * be missing.
 */
struct wordpiece *wordpiece_load(const char *path, struct tc_error *err);

/* The same from the len bytes at buf (a checkpoint's copy of a vocab.txt), named what in messages. */
struct wordpiece *wordpiece_load_mem(const void *buf, size_t len, const char *what, struct tc_error *err);

/* The vocab.txt form, tokens one a line in id order, as a new string (caller frees); *len its length. */
char *wordpiece_text(const struct wordpiece *wp, size_t *len);

/* Write the tokens, one a line in id order, to path atomically (struct afile). Returns 0 or -1. */
int wordpiece_save(const struct wordpiece *wp, const char *path, struct tc_error *err);

/* Release wp and its tokens; NULL is a no-op. */
void wordpiece_free(struct wordpiece *wp);

/* The number of tokens; ids run from 0 to size - 1. */
int wordpiece_size(const struct wordpiece *wp);
/* The id of token (exact bytes, "##" included), or -1 if absent. */
int wordpiece_id(const struct wordpiece *wp, const char *token);
/* The token of id, or NULL if id is out of range. */
const char *wordpiece_token(const struct wordpiece *wp, int id);

/* The ids of "[PAD]", "[UNK]", "[CLS]", "[SEP]" and "[MASK]", or -1 if absent ([UNK] never is). */
int wordpiece_pad(const struct wordpiece *wp);
int wordpiece_unk(const struct wordpiece *wp);
int wordpiece_cls(const struct wordpiece *wp);
int wordpiece_sep(const struct wordpiece *wp);
int wordpiece_mask(const struct wordpiece *wp);

/*
 * Encode text as [CLS] pieces... [SEP] into ids[0..max), leaving out [CLS] or [SEP] if the vocabulary
 * lacks it. If it does not fit, the pieces are cut so that the whole fits max ids with [SEP] last (a word
 * may be cut between its pieces); with max == 1, [CLS] alone is written, or [SEP] if there is no [CLS].
 * Returns the number of ids written: at least 2 when max >= 2 and the vocabulary has both [CLS] and [SEP],
 * 0 when max <= 0.
 */
int wordpiece_encode(const struct wordpiece *wp, const char *text, int32_t *ids, int max);

/*
 * Basic tokenization alone: the words of text, by the rules above, joined by single spaces (words never
 * contain whitespace), as a new string the caller frees; "" if there are none.
 */
char *wordpiece_split(const char *text);

#endif
