/*
 * wordpiece.c: BERT's WordPiece tokenizer. Basic tokenization is one pass over the UTF-8 bytes that
 * classifies each code point (drop, space, a word of its own, or part of a word) with ASCII, range tests
 * and two lowercase-and-strip-accents tables; encoding is greedy longest match against an open-addressing
 * hash of the tokens; training is BPE over distinct words with incremental pair counts.
 *
 * Training keeps, for every adjacent pair of tokens (a, b) ever seen, its count and a list of the words in
 * which it has occurred (a word can be listed twice or no longer hold the pair: the merge rescans it), and
 * a max-heap of (count, pair) with lazy deletion: an entry is pushed whenever a pair's count rises, and an
 * entry popped with a count that is no longer its pair's is pushed again with the current count if that is
 * lower, or dropped. Invariant: every pair with a positive count has an entry at least as high, so the
 * first entry popped that matches its pair is the pair to merge. A merge rewrites only the words listed for
 * its pair and adjusts the counts of the pairs around each occurrence, so the cost of a merge is that of
 * the words it changes. An 8,192-token vocabulary from the WordNet glosses (117,659 texts, 1.7 million
 * words, 55,425 distinct) takes 0.2 s on one core, most of it in basic tokenization; 30,522 tokens, 0.3 s.
 *
 * Within the ranges it handles, basic tokenization agrees with BERT's BasicTokenizer (Python, Unicode
 * 14) on "a" + c + "b" for every code point c up to U+2FFFF, except for the unassigned ones and the
 * deviations stated in wordpiece.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wordpiece.h"

/* ---- Basic tokenization ---- */

/*
 * Lowercase and strip accents for U+00C0-04FF and U+1E00-1EFF: the code point that
 * unicodedata.normalize("NFD", c.lower()) gives with its Mn marks removed (always one, or none: 0 here,
 * for the marks themselves). Generated with Python 3.11's unicodedata (Unicode 14.0.0):
 *   f = lambda c: "".join(x for x in normalize("NFD", chr(c).lower()) if category(x) != "Mn")
 *   [ord(f(c)) if f(c) else 0 for c in range(lo, hi)]
 */
static const uint16_t fold_latin[0x500 - 0xC0] = {
    0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x00e6, 0x0063, 0x0065, 0x0065, 0x0065, 0x0065, 0x0069,
    0x0069, 0x0069, 0x0069, 0x00f0, 0x006e, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x00d7, 0x00f8, 0x0075,
    0x0075, 0x0075, 0x0075, 0x0079, 0x00fe, 0x00df, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x00e6,
    0x0063, 0x0065, 0x0065, 0x0065, 0x0065, 0x0069, 0x0069, 0x0069, 0x0069, 0x00f0, 0x006e, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x00f7, 0x00f8, 0x0075, 0x0075, 0x0075, 0x0075, 0x0079, 0x00fe, 0x0079, 0x0061,
    0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0063, 0x0063, 0x0063, 0x0063, 0x0063, 0x0063, 0x0063, 0x0063,
    0x0064, 0x0064, 0x0111, 0x0111, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065,
    0x0065, 0x0067, 0x0067, 0x0067, 0x0067, 0x0067, 0x0067, 0x0067, 0x0067, 0x0068, 0x0068, 0x0127, 0x0127,
    0x0069, 0x0069, 0x0069, 0x0069, 0x0069, 0x0069, 0x0069, 0x0069, 0x0069, 0x0131, 0x0133, 0x0133, 0x006a,
    0x006a, 0x006b, 0x006b, 0x0138, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x0140, 0x0140, 0x0142,
    0x0142, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x0149, 0x014b, 0x014b, 0x006f, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x0153, 0x0153, 0x0072, 0x0072, 0x0072, 0x0072, 0x0072, 0x0072, 0x0073, 0x0073,
    0x0073, 0x0073, 0x0073, 0x0073, 0x0073, 0x0073, 0x0074, 0x0074, 0x0074, 0x0074, 0x0167, 0x0167, 0x0075,
    0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0077, 0x0077,
    0x0079, 0x0079, 0x0079, 0x007a, 0x007a, 0x007a, 0x007a, 0x007a, 0x007a, 0x017f, 0x0180, 0x0253, 0x0183,
    0x0183, 0x0185, 0x0185, 0x0254, 0x0188, 0x0188, 0x0256, 0x0257, 0x018c, 0x018c, 0x018d, 0x01dd, 0x0259,
    0x025b, 0x0192, 0x0192, 0x0260, 0x0263, 0x0195, 0x0269, 0x0268, 0x0199, 0x0199, 0x019a, 0x019b, 0x026f,
    0x0272, 0x019e, 0x0275, 0x006f, 0x006f, 0x01a3, 0x01a3, 0x01a5, 0x01a5, 0x0280, 0x01a8, 0x01a8, 0x0283,
    0x01aa, 0x01ab, 0x01ad, 0x01ad, 0x0288, 0x0075, 0x0075, 0x028a, 0x028b, 0x01b4, 0x01b4, 0x01b6, 0x01b6,
    0x0292, 0x01b9, 0x01b9, 0x01ba, 0x01bb, 0x01bd, 0x01bd, 0x01be, 0x01bf, 0x01c0, 0x01c1, 0x01c2, 0x01c3,
    0x01c6, 0x01c6, 0x01c6, 0x01c9, 0x01c9, 0x01c9, 0x01cc, 0x01cc, 0x01cc, 0x0061, 0x0061, 0x0069, 0x0069,
    0x006f, 0x006f, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x01dd,
    0x0061, 0x0061, 0x0061, 0x0061, 0x00e6, 0x00e6, 0x01e5, 0x01e5, 0x0067, 0x0067, 0x006b, 0x006b, 0x006f,
    0x006f, 0x006f, 0x006f, 0x0292, 0x0292, 0x006a, 0x01f3, 0x01f3, 0x01f3, 0x0067, 0x0067, 0x0195, 0x01bf,
    0x006e, 0x006e, 0x0061, 0x0061, 0x00e6, 0x00e6, 0x00f8, 0x00f8, 0x0061, 0x0061, 0x0061, 0x0061, 0x0065,
    0x0065, 0x0065, 0x0065, 0x0069, 0x0069, 0x0069, 0x0069, 0x006f, 0x006f, 0x006f, 0x006f, 0x0072, 0x0072,
    0x0072, 0x0072, 0x0075, 0x0075, 0x0075, 0x0075, 0x0073, 0x0073, 0x0074, 0x0074, 0x021d, 0x021d, 0x0068,
    0x0068, 0x019e, 0x0221, 0x0223, 0x0223, 0x0225, 0x0225, 0x0061, 0x0061, 0x0065, 0x0065, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x0079, 0x0079, 0x0234, 0x0235, 0x0236, 0x0237, 0x0238,
    0x0239, 0x2c65, 0x023c, 0x023c, 0x019a, 0x2c66, 0x023f, 0x0240, 0x0242, 0x0242, 0x0180, 0x0289, 0x028c,
    0x0247, 0x0247, 0x0249, 0x0249, 0x024b, 0x024b, 0x024d, 0x024d, 0x024f, 0x024f, 0x0250, 0x0251, 0x0252,
    0x0253, 0x0254, 0x0255, 0x0256, 0x0257, 0x0258, 0x0259, 0x025a, 0x025b, 0x025c, 0x025d, 0x025e, 0x025f,
    0x0260, 0x0261, 0x0262, 0x0263, 0x0264, 0x0265, 0x0266, 0x0267, 0x0268, 0x0269, 0x026a, 0x026b, 0x026c,
    0x026d, 0x026e, 0x026f, 0x0270, 0x0271, 0x0272, 0x0273, 0x0274, 0x0275, 0x0276, 0x0277, 0x0278, 0x0279,
    0x027a, 0x027b, 0x027c, 0x027d, 0x027e, 0x027f, 0x0280, 0x0281, 0x0282, 0x0283, 0x0284, 0x0285, 0x0286,
    0x0287, 0x0288, 0x0289, 0x028a, 0x028b, 0x028c, 0x028d, 0x028e, 0x028f, 0x0290, 0x0291, 0x0292, 0x0293,
    0x0294, 0x0295, 0x0296, 0x0297, 0x0298, 0x0299, 0x029a, 0x029b, 0x029c, 0x029d, 0x029e, 0x029f, 0x02a0,
    0x02a1, 0x02a2, 0x02a3, 0x02a4, 0x02a5, 0x02a6, 0x02a7, 0x02a8, 0x02a9, 0x02aa, 0x02ab, 0x02ac, 0x02ad,
    0x02ae, 0x02af, 0x02b0, 0x02b1, 0x02b2, 0x02b3, 0x02b4, 0x02b5, 0x02b6, 0x02b7, 0x02b8, 0x02b9, 0x02ba,
    0x02bb, 0x02bc, 0x02bd, 0x02be, 0x02bf, 0x02c0, 0x02c1, 0x02c2, 0x02c3, 0x02c4, 0x02c5, 0x02c6, 0x02c7,
    0x02c8, 0x02c9, 0x02ca, 0x02cb, 0x02cc, 0x02cd, 0x02ce, 0x02cf, 0x02d0, 0x02d1, 0x02d2, 0x02d3, 0x02d4,
    0x02d5, 0x02d6, 0x02d7, 0x02d8, 0x02d9, 0x02da, 0x02db, 0x02dc, 0x02dd, 0x02de, 0x02df, 0x02e0, 0x02e1,
    0x02e2, 0x02e3, 0x02e4, 0x02e5, 0x02e6, 0x02e7, 0x02e8, 0x02e9, 0x02ea, 0x02eb, 0x02ec, 0x02ed, 0x02ee,
    0x02ef, 0x02f0, 0x02f1, 0x02f2, 0x02f3, 0x02f4, 0x02f5, 0x02f6, 0x02f7, 0x02f8, 0x02f9, 0x02fa, 0x02fb,
    0x02fc, 0x02fd, 0x02fe, 0x02ff, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0371,
    0x0371, 0x0373, 0x0373, 0x02b9, 0x0375, 0x0377, 0x0377, 0x0378, 0x0379, 0x037a, 0x037b, 0x037c, 0x037d,
    0x003b, 0x03f3, 0x0380, 0x0381, 0x0382, 0x0383, 0x0384, 0x00a8, 0x03b1, 0x00b7, 0x03b5, 0x03b7, 0x03b9,
    0x038b, 0x03bf, 0x038d, 0x03c5, 0x03c9, 0x03b9, 0x03b1, 0x03b2, 0x03b3, 0x03b4, 0x03b5, 0x03b6, 0x03b7,
    0x03b8, 0x03b9, 0x03ba, 0x03bb, 0x03bc, 0x03bd, 0x03be, 0x03bf, 0x03c0, 0x03c1, 0x03a2, 0x03c3, 0x03c4,
    0x03c5, 0x03c6, 0x03c7, 0x03c8, 0x03c9, 0x03b9, 0x03c5, 0x03b1, 0x03b5, 0x03b7, 0x03b9, 0x03c5, 0x03b1,
    0x03b2, 0x03b3, 0x03b4, 0x03b5, 0x03b6, 0x03b7, 0x03b8, 0x03b9, 0x03ba, 0x03bb, 0x03bc, 0x03bd, 0x03be,
    0x03bf, 0x03c0, 0x03c1, 0x03c2, 0x03c3, 0x03c4, 0x03c5, 0x03c6, 0x03c7, 0x03c8, 0x03c9, 0x03b9, 0x03c5,
    0x03bf, 0x03c5, 0x03c9, 0x03d7, 0x03d0, 0x03d1, 0x03d2, 0x03d2, 0x03d2, 0x03d5, 0x03d6, 0x03d7, 0x03d9,
    0x03d9, 0x03db, 0x03db, 0x03dd, 0x03dd, 0x03df, 0x03df, 0x03e1, 0x03e1, 0x03e3, 0x03e3, 0x03e5, 0x03e5,
    0x03e7, 0x03e7, 0x03e9, 0x03e9, 0x03eb, 0x03eb, 0x03ed, 0x03ed, 0x03ef, 0x03ef, 0x03f0, 0x03f1, 0x03f2,
    0x03f3, 0x03b8, 0x03f5, 0x03f6, 0x03f8, 0x03f8, 0x03f2, 0x03fb, 0x03fb, 0x03fc, 0x037b, 0x037c, 0x037d,
    0x0435, 0x0435, 0x0452, 0x0433, 0x0454, 0x0455, 0x0456, 0x0456, 0x0458, 0x0459, 0x045a, 0x045b, 0x043a,
    0x0438, 0x0443, 0x045f, 0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437, 0x0438, 0x0438,
    0x043a, 0x043b, 0x043c, 0x043d, 0x043e, 0x043f, 0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446,
    0x0447, 0x0448, 0x0449, 0x044a, 0x044b, 0x044c, 0x044d, 0x044e, 0x044f, 0x0430, 0x0431, 0x0432, 0x0433,
    0x0434, 0x0435, 0x0436, 0x0437, 0x0438, 0x0438, 0x043a, 0x043b, 0x043c, 0x043d, 0x043e, 0x043f, 0x0440,
    0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447, 0x0448, 0x0449, 0x044a, 0x044b, 0x044c, 0x044d,
    0x044e, 0x044f, 0x0435, 0x0435, 0x0452, 0x0433, 0x0454, 0x0455, 0x0456, 0x0456, 0x0458, 0x0459, 0x045a,
    0x045b, 0x043a, 0x0438, 0x0443, 0x045f, 0x0461, 0x0461, 0x0463, 0x0463, 0x0465, 0x0465, 0x0467, 0x0467,
    0x0469, 0x0469, 0x046b, 0x046b, 0x046d, 0x046d, 0x046f, 0x046f, 0x0471, 0x0471, 0x0473, 0x0473, 0x0475,
    0x0475, 0x0475, 0x0475, 0x0479, 0x0479, 0x047b, 0x047b, 0x047d, 0x047d, 0x047f, 0x047f, 0x0481, 0x0481,
    0x0482, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0488, 0x0489, 0x048b, 0x048b, 0x048d, 0x048d, 0x048f,
    0x048f, 0x0491, 0x0491, 0x0493, 0x0493, 0x0495, 0x0495, 0x0497, 0x0497, 0x0499, 0x0499, 0x049b, 0x049b,
    0x049d, 0x049d, 0x049f, 0x049f, 0x04a1, 0x04a1, 0x04a3, 0x04a3, 0x04a5, 0x04a5, 0x04a7, 0x04a7, 0x04a9,
    0x04a9, 0x04ab, 0x04ab, 0x04ad, 0x04ad, 0x04af, 0x04af, 0x04b1, 0x04b1, 0x04b3, 0x04b3, 0x04b5, 0x04b5,
    0x04b7, 0x04b7, 0x04b9, 0x04b9, 0x04bb, 0x04bb, 0x04bd, 0x04bd, 0x04bf, 0x04bf, 0x04cf, 0x0436, 0x0436,
    0x04c4, 0x04c4, 0x04c6, 0x04c6, 0x04c8, 0x04c8, 0x04ca, 0x04ca, 0x04cc, 0x04cc, 0x04ce, 0x04ce, 0x04cf,
    0x0430, 0x0430, 0x0430, 0x0430, 0x04d5, 0x04d5, 0x0435, 0x0435, 0x04d9, 0x04d9, 0x04d9, 0x04d9, 0x0436,
    0x0436, 0x0437, 0x0437, 0x04e1, 0x04e1, 0x0438, 0x0438, 0x0438, 0x0438, 0x043e, 0x043e, 0x04e9, 0x04e9,
    0x04e9, 0x04e9, 0x044d, 0x044d, 0x0443, 0x0443, 0x0443, 0x0443, 0x0443, 0x0443, 0x0447, 0x0447, 0x04f7,
    0x04f7, 0x044b, 0x044b, 0x04fb, 0x04fb, 0x04fd, 0x04fd, 0x04ff, 0x04ff,
};
static const uint16_t fold_latin_add[0x1F00 - 0x1E00] = {
    0x0061, 0x0061, 0x0062, 0x0062, 0x0062, 0x0062, 0x0062, 0x0062, 0x0063, 0x0063, 0x0064, 0x0064, 0x0064,
    0x0064, 0x0064, 0x0064, 0x0064, 0x0064, 0x0064, 0x0064, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065,
    0x0065, 0x0065, 0x0065, 0x0065, 0x0066, 0x0066, 0x0067, 0x0067, 0x0068, 0x0068, 0x0068, 0x0068, 0x0068,
    0x0068, 0x0068, 0x0068, 0x0068, 0x0068, 0x0069, 0x0069, 0x0069, 0x0069, 0x006b, 0x006b, 0x006b, 0x006b,
    0x006b, 0x006b, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x006c, 0x006d, 0x006d, 0x006d,
    0x006d, 0x006d, 0x006d, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x006e, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x0070, 0x0070, 0x0070, 0x0070, 0x0072, 0x0072, 0x0072,
    0x0072, 0x0072, 0x0072, 0x0072, 0x0072, 0x0073, 0x0073, 0x0073, 0x0073, 0x0073, 0x0073, 0x0073, 0x0073,
    0x0073, 0x0073, 0x0074, 0x0074, 0x0074, 0x0074, 0x0074, 0x0074, 0x0074, 0x0074, 0x0075, 0x0075, 0x0075,
    0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0076, 0x0076, 0x0076, 0x0076, 0x0077, 0x0077,
    0x0077, 0x0077, 0x0077, 0x0077, 0x0077, 0x0077, 0x0077, 0x0077, 0x0078, 0x0078, 0x0078, 0x0078, 0x0079,
    0x0079, 0x007a, 0x007a, 0x007a, 0x007a, 0x007a, 0x007a, 0x0068, 0x0074, 0x0077, 0x0079, 0x1e9a, 0x017f,
    0x1e9c, 0x1e9d, 0x00df, 0x1e9f, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061,
    0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061, 0x0061,
    0x0061, 0x0061, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0065,
    0x0065, 0x0065, 0x0065, 0x0065, 0x0065, 0x0069, 0x0069, 0x0069, 0x0069, 0x006f, 0x006f, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f,
    0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x006f, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075,
    0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0075, 0x0079, 0x0079, 0x0079, 0x0079, 0x0079,
    0x0079, 0x0079, 0x0079, 0x1efb, 0x1efb, 0x1efd, 0x1efd, 0x1eff, 0x1eff,
};

struct range {
	uint32_t lo, hi;
};

/* Dropped (beyond the C0 and C1 controls, U+FFFD and the noncharacters): Unicode 14's format characters
 * (Cf, with the unassigned U+2065 among them) and the private use areas. */
static const struct range dropped[] = {
    {0x00ad, 0x00ad},   {0x0600, 0x0605},    {0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},
    {0x0890, 0x0891},   {0x08e2, 0x08e2},    {0x180e, 0x180e},   {0x200b, 0x200f},   {0x202a, 0x202e},
    {0x2060, 0x206f},   {0xe000, 0xf8ff},    {0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0x110bd, 0x110bd},
    {0x110cd, 0x110cd}, {0x13430, 0x13438},  {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
    {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
};

/* Combining marks (Mn) dropped outside the fold tables. */
static const struct range marks[] = {
    {0x1ab0, 0x1abd}, {0x1abf, 0x1ace}, {0x1dc0, 0x1dff}, {0x20d0, 0x20dc},
    {0x20e1, 0x20e1}, {0x20e5, 0x20f0}, {0xfe20, 0xfe2f},
};

static const struct range spaces[] = {
    {0x00a0, 0x00a0}, {0x1680, 0x1680}, {0x2000, 0x200a}, {0x2028, 0x2029},
    {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000},
};

/* BERT's _is_chinese_char. */
static const struct range cjk[] = {
    {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xf900, 0xfaff},   {0x20000, 0x2a6df},
    {0x2a700, 0x2b73f}, {0x2b740, 0x2b81f}, {0x2b820, 0x2ceaf}, {0x2f800, 0x2fa1f},
};

/* Non-ASCII punctuation; General Punctuation's spaces and format characters are caught before. */
static const struct range punct[] = {
    {0x00a1, 0x00a1}, {0x00a7, 0x00a7}, {0x00ab, 0x00ab}, {0x00b6, 0x00b7}, {0x00bb, 0x00bb},
    {0x00bf, 0x00bf}, {0x2000, 0x206f}, {0x2e00, 0x2e7f}, {0x3001, 0x3003}, {0x3008, 0x3011},
    {0x3014, 0x301f}, {0x3030, 0x3030}, {0x303d, 0x303d}, {0xff01, 0xff03}, {0xff05, 0xff0a},
    {0xff0c, 0xff0f}, {0xff1a, 0xff1b}, {0xff1f, 0xff20}, {0xff3b, 0xff3d}, {0xff3f, 0xff3f},
    {0xff5b, 0xff5b}, {0xff5d, 0xff5d}, {0xff5f, 0xff65},
};

static int
in_ranges(uint32_t c, const struct range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c >= r[i].lo && c <= r[i].hi)
			return 1;
	return 0;
}

#define IN(c, table) in_ranges(c, table, sizeof(table) / sizeof(table)[0])

enum { CH_DROP, CH_SPACE, CH_ALONE, CH_WORD };

/* The class of code point *c; a code point that belongs to a word is lowercased and stripped in place. */
static int
classify(uint32_t *c)
{
	uint32_t x = *c;

	if (x >= 0x80) {
		if (x <= 0x9f || x == 0xfffd || (x >= 0xfdd0 && x <= 0xfdef) || (x & 0xfffe) == 0xfffe ||
		    IN(x, dropped))
			return CH_DROP;
		if (IN(x, spaces))
			return CH_SPACE;
		if (IN(x, cjk))
			return CH_ALONE;
		if (x >= 0xc0 && x < 0x500)
			x = fold_latin[x - 0xc0];
		else if (x >= 0x1e00 && x < 0x1f00)
			x = fold_latin_add[x - 0x1e00];
		else if (IN(x, marks))
			x = 0;
		if (x == 0)
			return CH_DROP;
		*c = x;
		if (x >= 0x80)
			return IN(x, punct) ? CH_ALONE : CH_WORD;
	}
	/* ASCII, as read or folded (U+00C9 -> 'e', U+037E -> ';'). */
	if (x == ' ' || x == '\t' || x == '\n' || x == '\r')
		return CH_SPACE;
	if (x < 0x20 || x == 0x7f)
		return CH_DROP;
	if (x >= 'A' && x <= 'Z') {
		*c = x + ('a' - 'A');
		return CH_WORD;
	}
	if ((x >= 'a' && x <= 'z') || (x >= '0' && x <= '9'))
		return CH_WORD;
	return CH_ALONE;
}

/* Decode the code point at p into *c and return its length, or 0 if p does not start a well-formed UTF-8
 * sequence (overlong, surrogate, above U+10FFFF, truncated). p is NUL-terminated, and NUL is never a
 * continuation byte, so no byte past the terminator is read. */
static int
utf8_decode(const unsigned char *p, uint32_t *c)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n;

	if (p[0] < 0x80) {
		*c = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		*c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		*c = p[0] & 0x0f;
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		*c = p[0] & 0x07;
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		*c = (*c << 6) | (p[i] & 0x3f);
	}
	return n;
}

static int
utf8_encode(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/*
 * Basic tokenization of text: call fn(arg, w, n) on each word in order, w being n > 0 bytes of valid
 * UTF-8, not NUL-terminated. A non-zero return from fn stops the split; split_words returns it, or 0.
 * Words live in a stack buffer until one outgrows it.
 */
static int
split_words(const char *text, int (*fn)(void *arg, const char *w, size_t n), void *arg)
{
	const unsigned char *p = (const unsigned char *)text;
	char small[256], *buf = small, one[4];
	size_t len = 0, cap = sizeof small;
	uint32_t c;
	int k, rc = 0;

	while (*p && rc == 0) {
		if (!(k = utf8_decode(p, &c))) {
			p++;
			continue;
		}
		p += k;
		switch (classify(&c)) {
		case CH_DROP:
			break;
		case CH_WORD:
			if (len + 4 > cap) {
				if (buf == small) {
					buf = emalloc(cap * 2);
					memcpy(buf, small, len);
					cap *= 2;
				} else {
					buf = egrow(buf, &cap, len + 4, 1);
				}
			}
			len += (size_t)utf8_encode(buf + len, c);
			break;
		case CH_SPACE:
			if (len)
				rc = fn(arg, buf, len);
			len = 0;
			break;
		case CH_ALONE:
			if (len)
				rc = fn(arg, buf, len);
			len = 0;
			if (rc == 0)
				rc = fn(arg, one, (size_t)utf8_encode(one, c));
			break;
		}
	}
	if (len && rc == 0)
		rc = fn(arg, buf, len);
	if (buf != small)
		free(buf);
	return rc;
}

/* ---- The vocabulary ---- */

struct wordpiece {
	char **tok; /* (n) id -> token, NUL-terminated */
	int n;
	size_t cap;
	int32_t *slot; /* (nslot) open addressing over tok: an id, or -1 for an empty slot */
	size_t nslot;  /* a power of two, at least twice n */
	int maxlen;    /* the longest token, in bytes */
	int pad, unk, cls, sep, mask;
};

static uint64_t
hash_str(const char *s, size_t len)
{
	return tc_hash_final(tc_hash_bytes(TC_HASH_INIT, s, len));
}

/* The slot of token s (len bytes), holding its id or -1 where it would go. */
static size_t
vocab_slot(const struct wordpiece *wp, const char *s, size_t len)
{
	size_t mask = wp->nslot - 1, i = hash_str(s, len) & mask;
	int32_t id;

	while ((id = wp->slot[i]) >= 0) {
		if (strncmp(wp->tok[id], s, len) == 0 && wp->tok[id][len] == 0) /* s holds no NUL */
			break;
		i = (i + 1) & mask;
	}
	return i;
}

static int
vocab_find(const struct wordpiece *wp, const char *s, size_t len)
{
	return wp->slot[vocab_slot(wp, s, len)];
}

static void
vocab_rehash(struct wordpiece *wp)
{
	free(wp->slot);
	wp->nslot *= 2;
	wp->slot = emalloc(wp->nslot * sizeof *wp->slot);
	memset(wp->slot, 0xff, wp->nslot * sizeof *wp->slot);
	for (int id = 0; id < wp->n; id++)
		wp->slot[vocab_slot(wp, wp->tok[id], strlen(wp->tok[id]))] = id;
}

/* The id of s, appended as a new token if absent; *added tells which. */
static int
vocab_add(struct wordpiece *wp, const char *s, size_t len, int *added)
{
	size_t i = vocab_slot(wp, s, len);

	*added = wp->slot[i] < 0;
	if (!*added)
		return wp->slot[i];
	wp->tok = egrow(wp->tok, &wp->cap, (size_t)wp->n + 1, sizeof *wp->tok);
	wp->tok[wp->n] = emalloc(len + 1);
	memcpy(wp->tok[wp->n], s, len);
	wp->tok[wp->n][len] = 0;
	wp->slot[i] = wp->n;
	if ((int)len > wp->maxlen)
		wp->maxlen = (int)len;
	if ((size_t)++wp->n * 2 > wp->nslot)
		vocab_rehash(wp);
	return wp->n - 1;
}

static struct wordpiece *
vocab_new(void)
{
	struct wordpiece *wp = ecalloc(1, sizeof *wp);

	wp->nslot = 64;
	wp->slot = emalloc(wp->nslot * sizeof *wp->slot);
	memset(wp->slot, 0xff, wp->nslot * sizeof *wp->slot);
	return wp;
}

static void
vocab_specials(struct wordpiece *wp)
{
	wp->pad = wordpiece_id(wp, "[PAD]");
	wp->unk = wordpiece_id(wp, "[UNK]");
	wp->cls = wordpiece_id(wp, "[CLS]");
	wp->sep = wordpiece_id(wp, "[SEP]");
	wp->mask = wordpiece_id(wp, "[MASK]");
}

void
wordpiece_free(struct wordpiece *wp)
{
	if (!wp)
		return;
	for (int i = 0; i < wp->n; i++)
		free(wp->tok[i]);
	free(wp->tok);
	free(wp->slot);
	free(wp);
}

int
wordpiece_size(const struct wordpiece *wp)
{
	return wp->n;
}

int
wordpiece_id(const struct wordpiece *wp, const char *token)
{
	return vocab_find(wp, token, strlen(token));
}

const char *
wordpiece_token(const struct wordpiece *wp, int id)
{
	return id >= 0 && id < wp->n ? wp->tok[id] : NULL;
}

int
wordpiece_pad(const struct wordpiece *wp)
{
	return wp->pad;
}

int
wordpiece_unk(const struct wordpiece *wp)
{
	return wp->unk;
}

int
wordpiece_cls(const struct wordpiece *wp)
{
	return wp->cls;
}

int
wordpiece_sep(const struct wordpiece *wp)
{
	return wp->sep;
}

int
wordpiece_mask(const struct wordpiece *wp)
{
	return wp->mask;
}

/* ---- vocab.txt ---- */

/* Read a line of f into line (room for WORDPIECE_MAX_TOKEN + 2 bytes) without its "\n" or "\r\n", and
 * NUL-terminate it. Returns its length, -1 at the end of the file, -2 for a NUL byte, -3 for a line
 * longer than WORDPIECE_MAX_TOKEN bytes, -4 on a read error, -5 for a '\r' other than the line end's:
 * such a token would be written back ("tok\r" + "\n") as another line end, and Hugging Face reads a
 * lone '\r' as one. */
static long
read_line(FILE *f, char *line)
{
	size_t len = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == 0)
			return -2;
		if (len == WORDPIECE_MAX_TOKEN + 1) /* the token and a '\r' */
			return -3;
		line[len++] = (char)c;
	}
	if (c == EOF && ferror(f))
		return -4;
	if (c == EOF && len == 0)
		return -1;
	if (len && line[len - 1] == '\r')
		len--;
	if (len > WORDPIECE_MAX_TOKEN)
		return -3;
	if (memchr(line, '\r', len))
		return -5;
	line[len] = 0;
	return (long)len;
}

/* The vocabulary in f, named path in messages; closes f. */
static struct wordpiece *
read_vocab(FILE *f, const char *path, struct tc_error *err)
{
	char line[WORDPIECE_MAX_TOKEN + 2];
	struct wordpiece *wp;
	long len, lineno;
	int id, added;

	wp = vocab_new();
	for (lineno = 1; (len = read_line(f, line)) != -1; lineno++) {
		if (len > 0 && wp->n < WORDPIECE_MAX_VOCAB) {
			id = vocab_add(wp, line, (size_t)len, &added);
			if (added)
				continue;
			tc_error_set(err, "%s:%ld: duplicate token '%s' (first on line %d)", path, lineno,
			             line, id + 1);
		} else if (len == 0) {
			tc_error_set(err, "%s:%ld: empty line", path, lineno);
		} else if (len == -2) {
			tc_error_set(err, "%s:%ld: NUL byte in token", path, lineno);
		} else if (len == -3) {
			tc_error_set(err, "%s:%ld: line longer than %d bytes", path, lineno,
			             WORDPIECE_MAX_TOKEN);
		} else if (len == -4) {
			tc_error_set(err, "%s:%ld: read error: %s", path, lineno, strerror(errno));
		} else if (len == -5) {
			tc_error_set(err,
			             "%s:%ld: carriage return inside a token (lines end with \\n or \\r\\n)",
			             path, lineno);
		} else {
			tc_error_set(err, "%s:%ld: more than %d tokens", path, lineno, WORDPIECE_MAX_VOCAB);
		}
		goto fail;
	}
	fclose(f);
	vocab_specials(wp);
	if (wp->unk < 0) {
		tc_error_set(err, "%s: no [UNK] token", path);
		wordpiece_free(wp);
		return NULL;
	}
	return wp;
fail:
	fclose(f);
	wordpiece_free(wp);
	return NULL;
}

struct wordpiece *
wordpiece_load(const char *path, struct tc_error *err)
{
	FILE *f;

	if (!(f = fopen(path, "rb"))) {
		tc_error_set(err, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	return read_vocab(f, path, err);
}

struct wordpiece *
wordpiece_load_mem(const void *buf, size_t len, const char *what, struct tc_error *err)
{
	FILE *f;

	if (len == 0) {
		tc_error_set(err, "%s: no [UNK] token", what);
		return NULL;
	}
	if (!(f = fmemopen((void *)buf, len, "rb"))) {
		tc_error_set(err, "%s: %s", what, strerror(errno));
		return NULL;
	}
	return read_vocab(f, what, err);
}

char *
wordpiece_text(const struct wordpiece *wp, size_t *len)
{
	size_t n = 0, k = 0;
	char *s;

	for (int i = 0; i < wp->n; i++)
		n += strlen(wp->tok[i]) + 1;
	s = emalloc(n + 1);
	for (int i = 0; i < wp->n; i++) {
		size_t m = strlen(wp->tok[i]);
		memcpy(s + k, wp->tok[i], m);
		k += m;
		s[k++] = '\n';
	}
	s[k] = 0;
	*len = k;
	return s;
}

int
wordpiece_save(const struct wordpiece *wp, const char *path, struct tc_error *err)
{
	struct afile af;

	if (afile_open(&af, path, err) < 0)
		return -1;
	for (int i = 0; i < wp->n; i++)
		if (fputs(wp->tok[i], af.f) == EOF || putc('\n', af.f) == EOF) {
			tc_error_set(err, "write error on '%s': %s", path, strerror(errno));
			afile_abort(&af);
			return -1;
		}
	return afile_commit(&af, err);
}

/* ---- Encoding ---- */

/*
 * The pieces of word w (n bytes, at most WORDPIECE_MAX_WORD) into out (room for n ids), greedy longest
 * match first, pieces ending on character boundaries. Returns their number, or 0 if the vocabulary cannot
 * cover the word.
 */
static int
encode_word(int32_t *out, const struct wordpiece *wp, const char *w, size_t n)
{
	char piece[2 + WORDPIECE_MAX_WORD] = "##";
	size_t start = 0, end;
	int k = 0;

	while (start < n) {
		/* The first piece is looked up in w, the following ones as "##" + w[start..end) in piece. */
		const char *s = start ? piece : w;
		size_t pre = start ? 2 : 0, most = (size_t)wp->maxlen > pre ? (size_t)wp->maxlen - pre : 0;
		int id = -1;

		if (start)
			memcpy(piece + 2, w + start, n - start);
		for (end = start + (n - start < most ? n - start : most); end > start; end--) {
			if (end < n && ((unsigned char)w[end] & 0xc0) == 0x80)
				continue;
			if ((id = vocab_find(wp, s, pre + end - start)) >= 0)
				break;
		}
		if (id < 0)
			return 0;
		out[k++] = id;
		start = end;
	}
	return k;
}

struct encoding {
	const struct wordpiece *wp;
	int32_t *ids;
	int n, room; /* ids written, and the room for pieces (before a [SEP]) */
};

static int
encode_one(void *arg, const char *w, size_t n)
{
	struct encoding *e = arg;
	int32_t piece[WORDPIECE_MAX_WORD];
	int k = 0;

	if (n <= WORDPIECE_MAX_WORD)
		k = encode_word(piece, e->wp, w, n);
	if (k == 0)
		piece[k++] = e->wp->unk;
	for (int i = 0; i < k && e->n < e->room; i++)
		e->ids[e->n++] = piece[i];
	return e->n >= e->room;
}

int
wordpiece_encode(const struct wordpiece *wp, const char *text, int32_t *ids, int max)
{
	struct encoding e = {wp, ids, 0, max};

	if (max <= 0)
		return 0;
	if (wp->cls >= 0)
		ids[e.n++] = wp->cls;
	if (wp->sep >= 0)
		e.room--;
	if (e.n < e.room)
		split_words(text, encode_one, &e);
	if (wp->sep >= 0 && e.n < max)
		ids[e.n++] = wp->sep;
	return e.n;
}

struct joined {
	char *s;
	size_t len, cap;
};

static int
join_one(void *arg, const char *w, size_t n)
{
	struct joined *j = arg;

	j->s = egrow(j->s, &j->cap, j->len + n + 2, 1);
	if (j->len)
		j->s[j->len++] = ' ';
	memcpy(j->s + j->len, w, n);
	j->len += n;
	return 0;
}

char *
wordpiece_split(const char *text)
{
	struct joined j = {NULL, 0, 0};

	split_words(text, join_one, &j);
	if (!j.s)
		return estrdup("");
	j.s[j.len] = 0;
	return j.s;
}

/* ---- Training ---- */

struct pair {
	int32_t a, b;   /* token ids, left and right */
	int64_t count;  /* occurrences in every word, times the word's count */
	int64_t before; /* count when the current merge first touched it */
	uint32_t stamp; /* the merge that last touched it */
	int32_t *word;  /* (nword) words where it occurred since it was last merged, perhaps repeated */
	size_t nword, capword;
};

struct heapent {
	int64_t count;
	int32_t pair;
};

struct trainer {
	struct wordpiece *wp; /* the vocabulary being built */
	int32_t *sym; /* the token ids of every distinct word: word w is sym[off[w] .. off[w] + len[w]) */
	size_t *off;
	int32_t *len;
	int64_t *freq;    /* (nword) how often word w occurs in the texts */
	uint32_t *wstamp; /* (nword) the merge that last rewrote word w */
	size_t nword;
	struct pair *pair; /* (npair) every pair ever seen */
	size_t npair, cappair;
	int32_t *pslot; /* (npslot) open addressing over pair by (a, b): an index, or -1 */
	size_t npslot;
	struct heapent *heap; /* (nheap) max-heap by heap_before */
	size_t nheap, capheap;
	int32_t *touched; /* (ntouched) pairs touched by the current merge */
	size_t ntouched, captouched;
	uint32_t stamp; /* merges so far; 0 while counting the first pairs */
};

/* Distinct words of the texts (a token set, reusing the vocabulary's) and their counts. */
struct wordcount {
	struct wordpiece *set;
	int64_t *freq;
	size_t cap;
};

static int
count_word(void *arg, const char *w, size_t n)
{
	struct wordcount *wc = arg;
	int added, id = vocab_add(wc->set, w, n, &added);

	if (added) {
		wc->freq = egrow(wc->freq, &wc->cap, (size_t)wc->set->n, sizeof *wc->freq);
		wc->freq[id] = 0;
	}
	wc->freq[id]++;
	return 0;
}

static size_t
utf8_len(unsigned char lead)
{
	return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/* The alphabet token of the character at s: itself at the start of a word, "##" + itself inside. */
static size_t
char_token(char *out, const char *s, int inside)
{
	size_t k = utf8_len((unsigned char)*s), pre = inside ? 2 : 0;

	memcpy(out, "##", pre);
	memcpy(out + pre, s, k);
	return pre + k;
}

struct alpha {
	const char *tok;
	int64_t count;
	int32_t id;
};

static int
by_count(const void *x, const void *y)
{
	const struct alpha *p = x, *q = y;

	if (p->count != q->count)
		return p->count > q->count ? -1 : 1;
	return strcmp(p->tok, q->tok);
}

/* Word-initial tokens first, then "##" ones, each in strcmp (code point) order. */
static int
by_kind(const void *x, const void *y)
{
	const struct alpha *p = x, *q = y;
	int hp = strncmp(p->tok, "##", 2) == 0, hq = strncmp(q->tok, "##", 2) == 0;

	return hp != hq ? hp - hq : strcmp(p->tok, q->tok);
}

static void
alpha_count(struct wordpiece *set, int64_t **count, size_t *cap, const char *tok, size_t len, int64_t f)
{
	int added, id = vocab_add(set, tok, len, &added);

	*count = egrow(*count, cap, (size_t)set->n, sizeof **count);
	if (added)
		(*count)[id] = 0;
	(*count)[id] += f;
}

/*
 * Append the alphabet of the distinct words to t->wp, within vocab_size, and, if all of it fits, split
 * every word into its tokens in t. Returns 1 if it fit (merges may follow), 0 if not.
 */
static int
train_alphabet(struct trainer *t, const struct wordcount *wc, int vocab_size)
{
	struct wordpiece *set = vocab_new(); /* the alphabet, in order of appearance */
	int64_t *count = NULL;               /* (set->n) a token's count in the initial split */
	struct alpha *a;
	int32_t *map; /* (set->n) set's ids -> t->wp's */
	size_t cap = 0, nsym = 0, keep;
	char tok[6];
	int added, fit;

	for (int w = 0; w < wc->set->n; w++) {
		const char *s0 = wc->set->tok[w];
		for (const char *s = s0; *s; s += utf8_len((unsigned char)*s), nsym++) {
			alpha_count(set, &count, &cap, tok, char_token(tok, s, 0), s == s0 ? wc->freq[w] : 0);
			if (s != s0)
				alpha_count(set, &count, &cap, tok, char_token(tok, s, 1), wc->freq[w]);
		}
	}
	a = emalloc(((size_t)set->n + 1) * sizeof *a);
	for (int id = 0; id < set->n; id++)
		a[id] = (struct alpha){set->tok[id], count[id], id};
	keep = (size_t)set->n;
	fit = keep <= (size_t)(vocab_size - t->wp->n);
	if (!fit) {
		keep = (size_t)(vocab_size - t->wp->n);
		qsort(a, (size_t)set->n, sizeof *a, by_count);
	}
	qsort(a, keep, sizeof *a, by_kind);
	map = emalloc(((size_t)set->n + 1) * sizeof *map);
	for (size_t i = 0; i < keep; i++)
		map[a[i].id] = vocab_add(t->wp, a[i].tok, strlen(a[i].tok), &added);

	if (fit) {
		t->nword = (size_t)wc->set->n;
		t->sym = emalloc((nsym + 1) * sizeof *t->sym);
		t->off = emalloc((t->nword + 1) * sizeof *t->off);
		t->len = emalloc((t->nword + 1) * sizeof *t->len);
		t->freq = emalloc((t->nword + 1) * sizeof *t->freq);
		t->wstamp = ecalloc(t->nword + 1, sizeof *t->wstamp);
		nsym = 0;
		for (size_t w = 0; w < t->nword; w++) {
			const char *s0 = wc->set->tok[w];
			t->off[w] = nsym;
			for (const char *s = s0; *s; s += utf8_len((unsigned char)*s))
				t->sym[nsym++] = map[vocab_find(set, tok, char_token(tok, s, s != s0))];
			t->len[w] = (int32_t)(nsym - t->off[w]);
			t->freq[w] = wc->freq[w];
		}
	}
	free(map);
	free(a);
	free(count);
	wordpiece_free(set);
	return fit;
}

static size_t
pair_slot(const struct trainer *t, int32_t a, int32_t b)
{
	size_t mask = t->npslot - 1;
	size_t i = tc_hash_final((uint64_t)(uint32_t)a << 32 | (uint32_t)b) & mask;
	int32_t p;

	while ((p = t->pslot[i]) >= 0 && (t->pair[p].a != a || t->pair[p].b != b))
		i = (i + 1) & mask;
	return i;
}

/* The index of pair (a, b), created with a zero count if new. It may move t->pair. */
static int32_t
pair_get(struct trainer *t, int32_t a, int32_t b)
{
	size_t i = pair_slot(t, a, b);

	if (t->pslot[i] >= 0)
		return t->pslot[i];
	t->pair = egrow(t->pair, &t->cappair, t->npair + 1, sizeof *t->pair);
	t->pair[t->npair] = (struct pair){.a = a, .b = b};
	t->pslot[i] = (int32_t)t->npair++;
	if (t->npair * 2 > t->npslot) {
		free(t->pslot);
		t->npslot *= 2;
		t->pslot = emalloc(t->npslot * sizeof *t->pslot);
		memset(t->pslot, 0xff, t->npslot * sizeof *t->pslot);
		for (size_t p = 0; p < t->npair; p++)
			t->pslot[pair_slot(t, t->pair[p].a, t->pair[p].b)] = (int32_t)p;
	}
	return (int32_t)t->npair - 1;
}

/* Add d to the count of pair (a, b), which occurs in word w, noting what the current merge touched. */
static void
pair_add(struct trainer *t, int32_t a, int32_t b, int64_t d, int32_t w)
{
	int32_t p = pair_get(t, a, b);
	struct pair *q = &t->pair[p];

	if (q->stamp != t->stamp) {
		q->stamp = t->stamp;
		q->before = q->count;
		t->touched = egrow(t->touched, &t->captouched, t->ntouched + 1, sizeof *t->touched);
		t->touched[t->ntouched++] = p;
	}
	q->count += d;
	if (d > 0 && (q->nword == 0 || q->word[q->nword - 1] != w)) {
		q->word = egrow(q->word, &q->capword, q->nword + 1, sizeof *q->word);
		q->word[q->nword++] = w;
	}
}

/* Does x come out of the heap before y: the higher count, then the smaller left token, then right. */
static int
heap_before(const struct trainer *t, const struct heapent *x, const struct heapent *y)
{
	const struct pair *p = &t->pair[x->pair], *q = &t->pair[y->pair];
	char *const *tok = t->wp->tok;
	int r;

	if (x->count != y->count)
		return x->count > y->count;
	if ((r = strcmp(tok[p->a], tok[q->a])) != 0)
		return r < 0;
	return strcmp(tok[p->b], tok[q->b]) < 0;
}

static void
heap_push(struct trainer *t, int64_t count, int32_t p)
{
	struct heapent e = {count, p};
	size_t i = t->nheap++;

	t->heap = egrow(t->heap, &t->capheap, t->nheap, sizeof *t->heap);
	for (; i > 0 && heap_before(t, &e, &t->heap[(i - 1) / 2]); i = (i - 1) / 2)
		t->heap[i] = t->heap[(i - 1) / 2];
	t->heap[i] = e;
}

static struct heapent
heap_pop(struct trainer *t)
{
	struct heapent top = t->heap[0], e = t->heap[--t->nheap];
	size_t i = 0, k;

	while ((k = 2 * i + 1) < t->nheap) {
		if (k + 1 < t->nheap && heap_before(t, &t->heap[k + 1], &t->heap[k]))
			k++;
		if (!heap_before(t, &t->heap[k], &e))
			break;
		t->heap[i] = t->heap[k];
		i = k;
	}
	t->heap[i] = e;
	return top;
}

/* The pair with the highest count (ties as heap_before), or -1 if no pair occurs. Stale entries are
 * dropped or pushed again with their pair's current count. */
static int32_t
best_pair(struct trainer *t)
{
	while (t->nheap) {
		struct heapent e = heap_pop(t);
		int64_t now = t->pair[e.pair].count;
		if (now == e.count)
			return e.pair;
		if (now > 0 && now < e.count)
			heap_push(t, now, e.pair);
	}
	return -1;
}

/* Replace each (a, b) in word w by c, left to right, adjusting the counts of the pairs around each. */
static void
merge_word(struct trainer *t, int32_t w, int32_t a, int32_t b, int32_t c)
{
	int32_t *s = t->sym + t->off[w]; /* rewritten in place: s[0..j) is the new word */
	int32_t n = t->len[w], i = 0, j = 0;
	int64_t f = t->freq[w];

	while (i < n) {
		if (i + 1 < n && s[i] == a && s[i + 1] == b) {
			pair_add(t, a, b, -f, w);
			if (j > 0) {
				pair_add(t, s[j - 1], a, -f, w);
				pair_add(t, s[j - 1], c, f, w);
			}
			if (i + 2 < n) {
				pair_add(t, b, s[i + 2], -f, w);
				pair_add(t, c, s[i + 2], f, w);
			}
			s[j++] = c;
			i += 2;
		} else {
			s[j++] = s[i++];
		}
	}
	t->len[w] = j;
}

/* Merge pair p into token c in every word that holds it. */
static void
merge(struct trainer *t, int32_t p, int32_t c)
{
	int32_t a = t->pair[p].a, b = t->pair[p].b;

	t->stamp++;
	t->ntouched = 0;
	for (size_t k = 0; k < t->pair[p].nword; k++) {
		int32_t w = t->pair[p].word[k];
		if (t->wstamp[w] != t->stamp) {
			t->wstamp[w] = t->stamp;
			merge_word(t, w, a, b, c);
		}
	}
	free(t->pair[p].word);
	t->pair[p].word = NULL;
	t->pair[p].nword = t->pair[p].capword = 0;
	for (size_t k = 0; k < t->ntouched; k++) {
		struct pair *q = &t->pair[t->touched[k]];
		if (q->count > q->before)
			heap_push(t, q->count, t->touched[k]);
	}
}

/* Count the pairs of the initial split. */
static void
train_pairs(struct trainer *t)
{
	t->npslot = 1024;
	t->pslot = emalloc(t->npslot * sizeof *t->pslot);
	memset(t->pslot, 0xff, t->npslot * sizeof *t->pslot);
	for (size_t w = 0; w < t->nword; w++)
		for (size_t i = t->off[w]; i + 1 < t->off[w] + (size_t)t->len[w]; i++)
			pair_add(t, t->sym[i], t->sym[i + 1], t->freq[w], (int32_t)w);
	for (size_t p = 0; p < t->npair; p++)
		heap_push(t, t->pair[p].count, (int32_t)p);
}

static void
trainer_release(struct trainer *t)
{
	for (size_t p = 0; p < t->npair; p++)
		free(t->pair[p].word);
	free(t->pair);
	free(t->pslot);
	free(t->heap);
	free(t->touched);
	free(t->sym);
	free(t->off);
	free(t->len);
	free(t->freq);
	free(t->wstamp);
}

/* The id of the token that merging pair p makes, "a" "##b" -> "ab", "##a" "##b" -> "##ab", appended to
 * the vocabulary unless already there. buf (*cap bytes) is scratch space. */
static int
merged_token(struct trainer *t, int32_t p, char **buf, size_t *cap)
{
	const char *l = t->wp->tok[t->pair[p].a], *r = t->wp->tok[t->pair[p].b];
	size_t ll = strlen(l), lr;
	int added;

	if (strncmp(r, "##", 2) == 0)
		r += 2;
	lr = strlen(r);
	*buf = egrow(*buf, cap, ll + lr + 1, 1);
	memcpy(*buf, l, ll);
	memcpy(*buf + ll, r, lr);
	return vocab_add(t->wp, *buf, ll + lr, &added);
}

struct wordpiece *
wordpiece_train(const char *const *texts, size_t n, int vocab_size, struct tc_error *err)
{
	static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
	struct wordcount wc = {NULL, NULL, 0};
	struct trainer t = {0};
	char *buf = NULL;
	size_t cap = 0;
	int32_t p;
	int added;

	if (vocab_size < 5) {
		tc_error_set(err, "vocabulary size %d is less than 5, the number of special tokens",
		             vocab_size);
		return NULL;
	}
	wc.set = vocab_new();
	for (size_t i = 0; i < n; i++)
		split_words(texts[i], count_word, &wc);
	t.wp = vocab_new();
	for (int i = 0; i < 5; i++)
		vocab_add(t.wp, specials[i], strlen(specials[i]), &added);
	if (train_alphabet(&t, &wc, vocab_size)) {
		train_pairs(&t);
		while (t.wp->n < vocab_size && (p = best_pair(&t)) >= 0 && t.pair[p].count >= 2)
			merge(&t, p, merged_token(&t, p, &buf, &cap));
	}
	free(buf);
	free(wc.freq);
	wordpiece_free(wc.set);
	trainer_release(&t);
	vocab_specials(t.wp);
	return t.wp;
}
