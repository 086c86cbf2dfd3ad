/*
 * Fast path of textdistill's n-gram featurizer and linear student: one pass of C over a batch
 * from text to n-gram counts, TF-IDF rows or the logits of a linear model.
 *
 * It reproduces, code point for code point, what the pure-Python path in featurizer.py does on
 * lower-cased text:  re.sub(r"<[^>]{0,40}>", " ", text)  then
 * re.findall(r"[^\W_]+(?:'[^\W_]+)*|[!?]", ...), then word 1..max_n grams joined by a space.
 * A word character is what Python's re calls one minus "_", i.e. Py_UNICODE_ISALNUM.
 * Lower-casing: a 1-byte (latin-1) text is lower-cased here, code point by code point from a
 * table str.lower filled (all str.lower does to such a text); any other text goes through
 * str.lower, whose full Unicode case mapping (final sigma, "İ" -> "i̇") C lacks. A 1-byte text,
 * nearly every text of a Western language, is then tokenized from bit masks of 64 bytes at a
 * time (tokenize_bytes); other texts one code point at a time (tokenize_as). Every entry
 * point shares these tokenizers and one n-gram key builder (document_keys): they differ only
 * in what they do with a document's sorted (id, count) pairs.
 *
 * With unspaced set, it follows featurizer.UNSPACED_TOKEN_PATTERN instead: a letter or digit of
 * a script written without spaces (featurizer.UNSPACED_BLOCKS) is a token of its own, with the
 * combining marks that follow it (UNSPACED_MARKS), and other words stop where one begins.
 *
 * With char_min..char_max set, the character n-grams of each token padded as "<token>" are
 * counted too (featurizer.token_char_ngrams); their vocabulary terms carry the prefix "#",
 * which no token contains, and their hashes start from another seed than word n-grams.
 *
 * An n-gram is identified by two independent hashes of its tokens (64 + 32 bits, each token
 * hashed 8 code points at a time: hash_word): building the table refuses a vocabulary in
 * which two terms share both (the featurizer then uses the Python path), and an n-gram
 * outside the vocabulary matches a term by chance with a probability of about n_terms / 2^96
 * (below 1e-22 for 200,000 terms). Skipping an exact string comparison on every hit is what
 * makes this path fast (it avoids a cache miss).
 *
 * Floats: the TF-IDF weights, norms and weighted sums are computed with the very operations,
 * precisions and order of featurizer.py's numpy code (float32 products, float64 sums in
 * ascending id order, a float32 division), so the results are bit-identical to it. The
 * sublinear tf, 1 + log(count), comes from a table numpy computed (numpy's log and C's may
 * differ in the last bit); a count beyond the table makes the call return the count it needs.
 * Compiled with -ffp-contract=off: a fused multiply-add would round differently.
 *
 * Threads: the work on each block of texts runs without the GIL, each call with its own
 * scratch space (a per-vocabulary pool, so no call pays for allocating it again), so Python
 * threads calling into one model run in parallel. No numpy headers are needed: arrays go back
 * to Python as bytes, or are written into buffers numpy allocated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The interface featurizer.py expects: 2 = count, tfidf and logits on raw texts; 3 adds
 * Vocabulary(..., unspaced=). */
#define NGRAMS_VERSION 5

#define MARKUP_MAX 40
#define PREFETCH_AHEAD 12
/* Texts per block: one block's texts are read (and lower-cased where needed) with the GIL,
 * then processed without it. A block also ends after BLOCK_CHARS code points, so the
 * lower-cased copies held at once stay small; blocks shorter than RELEASE_CHARS keep the GIL,
 * whose hand-over would cost more than the work. */
#define BLOCK_TEXTS 256
#define BLOCK_CHARS (1 << 20)
#define RELEASE_CHARS 2048
/* Free scratch spaces a vocabulary keeps for later calls (one per thread that used it). */
#define POOL_MAX 16

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static inline uint64_t nonzero(uint64_t h) { return h ? h : 1; }

/* ------------------------------------------------------------------ hashing a token */
/* A token (or a character n-gram) is hashed as 64-bit words, not character by character: a
 * word is 8 code points below 256 as bytes, little-endian, the last one zero-padded (no token
 * holds U+0000), which is also how a 1-byte text's bytes load from memory; a token with a
 * code point above 255 is instead the word WIDE_MARK, then 2 code points a word. Two lanes
 * with their own constants mix the same words into the 64 + 32 bits of the token (wyhash's
 * multiply-and-fold, one multiplication a word and lane). A lane is never zero before a
 * word: its seed has a zero byte below a non-zero one, and is above 0x10FFFF in both halves,
 * which no word of a token can be. */
#define LANE_A 0xa0761d6400bd642fULL
#define LANE_B 0xe7037ed100a0b428ULL
#define MULTIPLIER_A 0x8bb84b93962eacc9ULL
#define MULTIPLIER_B 0x4b33a62ed433d4a3ULL
#define WIDE_MARK 0x0100ULL

static inline uint64_t mum(uint64_t x, uint64_t y) {
#ifdef __SIZEOF_INT128__
    __uint128_t product = (__uint128_t)x * y;
    return (uint64_t)product ^ (uint64_t)(product >> 64);
#else /* the same 128-bit product from 32-bit halves */
    uint64_t ll = (x & 0xffffffffU) * (y & 0xffffffffU), lh = (x & 0xffffffffU) * (y >> 32);
    uint64_t hl = (x >> 32) * (y & 0xffffffffU), hh = (x >> 32) * (y >> 32);
    uint64_t middle = (ll >> 32) + (lh & 0xffffffffU) + (hl & 0xffffffffU);
    return ((middle << 32) | (ll & 0xffffffffU)) ^ (hh + (lh >> 32) + (hl >> 32) + (middle >> 32));
#endif
}

typedef struct { uint64_t a, b; } Hash; /* a: the token's 64-bit hash; b's low half: its check */

static inline Hash hash_word(Hash h, uint64_t word) {
    return (Hash){mum(h.a ^ word, MULTIPLIER_A), mum(h.b ^ word, MULTIPLIER_B)};
}

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

/* The hash of n >= 1 bytes (code points below 256); p must be readable up to n rounded up to
 * a multiple of 8. */
static inline Hash hash_bytes(const unsigned char *p, Py_ssize_t n) {
    Hash h = {LANE_A, LANE_B};
    for (; n > 8; p += 8, n -= 8) h = hash_word(h, load_le64(p));
    return hash_word(h, load_le64(p) & (~0ULL >> (64 - 8 * n)));
}

/* The same hash of the n code points from start of any str kind (terms, and texts that are not
 * 1-byte). */
static Hash hash_codepoints(int kind, const void *data, Py_ssize_t start, Py_ssize_t n) {
    Py_UCS4 bits = 0;
    for (Py_ssize_t i = 0; i < n; i++) bits |= PyUnicode_READ(kind, data, start + i);
    Hash h = {LANE_A, LANE_B};
    if (bits < 256) {
        for (Py_ssize_t i = 0; i < n; i += 8) {
            uint64_t word = 0;
            for (Py_ssize_t j = 0; j < 8 && i + j < n; j++)
                word |= (uint64_t)PyUnicode_READ(kind, data, start + i + j) << (8 * j);
            h = hash_word(h, word);
        }
        return h;
    }
    h = hash_word(h, WIDE_MARK);
    for (Py_ssize_t i = 0; i < n; i += 2) {
        uint64_t word = PyUnicode_READ(kind, data, start + i);
        if (i + 1 < n) word |= (uint64_t)PyUnicode_READ(kind, data, start + i + 1) << 32;
        h = hash_word(h, word);
    }
    return h;
}

/* The key of an n-gram folds the hashes of its tokens, so each token is hashed once: a
 * rotation (so that "a b" and "b a" differ) and an odd multiplication, each a bijection, over
 * token hashes that are already well mixed. */
static inline uint64_t fold(uint64_t key, uint64_t token_hash) {
    return ((key << 23 | key >> 41) ^ token_hash) * 0xff51afd7ed558ccdULL;
}
static inline uint32_t fold32(uint32_t check, uint32_t token_hash) {
    return ((check << 13 | check >> 19) ^ token_hash) * 0x85ebca6bU;
}

/* Character n-grams fold their one hash into these seeds instead of 0, so that the same
 * characters as a character term and as a word are two different keys. */
#define CHAR_PREFIX '#'
#define CHAR_SEED 0x2545f4914f6cdd1dULL
#define CHAR_SEED32 0x27d4eb2dU

/* ------------------------------------------------------------------ growable buffers */
/* PyMem_Raw*: safe without the GIL. */
typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

static int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->size + extra <= b->capacity) return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 1 << 12;
    while (capacity < b->size + extra) capacity *= 2;
    char *data = PyMem_RawRealloc(b->data, (size_t)capacity);
    if (!data) return -1;
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int buffer_append(Buffer *b, const void *item, Py_ssize_t size) {
    if (buffer_reserve(b, size) < 0) return -1;
    memcpy(b->data + b->size, item, (size_t)size);
    b->size += size;
    return 0;
}

static void buffer_free(Buffer *b) {
    PyMem_RawFree(b->data);
    b->data = NULL;
    b->size = b->capacity = 0;
}

/* ------------------------------------------------------------------ the vocabulary */
typedef struct {
    uint64_t key;        /* hash of the slot's term, 0 = empty (hashes are forced non-zero) */
    uint32_t check;      /* a second, independent hash of the term */
    int32_t id;          /* vocabulary id; key, check and id share a cache line */
} Slot;

/* One call's scratch space: reused document after document, and call after call. */
typedef struct Workspace {
    struct Workspace *next;
    Buffer text, spans, hashes, keys, key_checks, found, scratch, counts;
    Py_ssize_t n_tokens; /* of spans and hashes (then the checks) */
    int32_t *tally;      /* per-term counts of the document being counted, all zero between
                            documents */
    /* The document's distinct ids as a two-level bitmap, also all zero between documents:
     * bit i of seen is id i, bit j of summary is word j of seen. Reading the set bits in
     * order lists the ids sorted, for a few instructions an id, where a sort would pass over
     * every id several times. */
    uint64_t *seen, *summary;
} Workspace;

typedef struct {
    PyObject_HEAD
    Slot *slots;         /* open-addressing hash table of the terms */
    Py_ssize_t mask;     /* table size - 1 */
    Py_ssize_t n_terms;
    int max_n;
    int char_min, char_max; /* character n-gram lengths; 0, 0: none */
    int unspaced;        /* 1: scripts without spaces are read as characters */
    Workspace *pool;     /* free scratch spaces; taken and given back with the GIL held */
    int pooled;
    Py_ssize_t active;   /* calls running (maybe without the GIL): __init__ waits for none */
} Vocabulary;

static void workspace_free(Workspace *w) {
    buffer_free(&w->text);
    buffer_free(&w->spans);
    buffer_free(&w->hashes);
    buffer_free(&w->keys);
    buffer_free(&w->key_checks);
    buffer_free(&w->found);
    buffer_free(&w->scratch);
    buffer_free(&w->counts);
    PyMem_RawFree(w->tally);
    PyMem_RawFree(w->seen);
    PyMem_RawFree(w->summary);
    PyMem_RawFree(w);
}

static void pool_clear(Vocabulary *self) {
    while (self->pool) {
        Workspace *w = self->pool;
        self->pool = w->next;
        workspace_free(w);
    }
    self->pooled = 0;
}

static Workspace *workspace_take(Vocabulary *self) {
    Workspace *w = self->pool;
    if (w) {
        self->pool = w->next;
        self->pooled--;
        return w;
    }
    w = PyMem_RawCalloc(1, sizeof(Workspace));
    if (!w) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t seen_words = (size_t)self->n_terms / 64 + 1;
    w->tally = PyMem_RawCalloc((size_t)self->n_terms + 1, sizeof(int32_t));
    w->seen = PyMem_RawCalloc(seen_words, sizeof(uint64_t));
    w->summary = PyMem_RawCalloc(seen_words / 64 + 1, sizeof(uint64_t));
    if (!w->tally || !w->seen || !w->summary) {
        workspace_free(w);
        PyErr_NoMemory();
        return NULL;
    }
    return w;
}

static void workspace_give_back(Vocabulary *self, Workspace *w) {
    if (self->pooled >= POOL_MAX) {
        workspace_free(w);
        return;
    }
    w->next = self->pool;
    self->pool = w;
    self->pooled++;
}

/* The slot table, on 2 MB pages where the kernel allows: its look-ups are random, and with
 * 4 kB pages most of them would also miss the TLB. Zeroed. */
#define HUGE_PAGE ((size_t)2 << 20)
static Slot *slots_new(Py_ssize_t n) {
    size_t bytes = (size_t)n * sizeof(Slot);
    if (bytes < HUGE_PAGE) return calloc((size_t)n, sizeof(Slot));
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *table = NULL;
    if (posix_memalign(&table, HUGE_PAGE, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(table, bytes, MADV_HUGEPAGE); /* advice only: a refusal changes nothing */
#endif
    memset(table, 0, bytes);
    return table;
}

/* The id of the term with this key and check, or none (linear probing). Tried and measured
 * slower: buckets of 4 slots compared without branches (fewer mispredictions, more
 * instructions; the look-ups wait on memory, not on branches). */
ALWAYS_INLINE int32_t find_id(const Slot *slots, uint64_t mask, uint64_t key, uint32_t check,
                              int32_t none) {
    for (uint64_t slot = key & mask;; slot = (slot + 1) & mask) {
        if (slots[slot].key == key && slots[slot].check == check) return slots[slot].id;
        if (!slots[slot].key) return none;
    }
}

static void Vocabulary_dealloc(Vocabulary *self) {
    free(self->slots);
    pool_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Vocabulary_init(Vocabulary *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"terms", "max_n", "char_min", "char_max", "unspaced", NULL};
    PyObject *terms;
    int max_n, char_min = 0, char_max = 0, unspaced = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi|iip", kwlist, &terms, &max_n, &char_min,
                                     &char_max, &unspaced))
        return -1;
    if (max_n < 1) { PyErr_SetString(PyExc_ValueError, "max_n must be at least 1"); return -1; }
    if (char_min < 0 || char_max < char_min || (char_min == 0 && char_max != 0)) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= char_min <= char_max, or both 0");
        return -1;
    }
    if (self->active) {
        PyErr_SetString(PyExc_RuntimeError, "cannot re-initialise a vocabulary in use");
        return -1;
    }
    /* __init__ may run twice on one object: start from a clean slate. */
    free(self->slots);
    self->slots = NULL;
    pool_clear(self); /* their tallies have the old vocabulary's size */
    PyObject *seq = PySequence_Fast(terms, "terms must be a sequence of str");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(term)) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "term %zd is not a str", i);
            return -1;
        }
    }
    Py_ssize_t size = 1;
    while (size < 2 * n + 2) size *= 2;
    self->slots = slots_new(size);
    if (!self->slots) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    self->n_terms = n;
    self->max_n = max_n;
    self->char_min = char_min;
    self->char_max = char_max;
    self->unspaced = unspaced;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        int kind = PyUnicode_KIND(term);
        const void *data = PyUnicode_DATA(term);
        Py_ssize_t len = PyUnicode_GET_LENGTH(term);
        uint64_t key = 0;
        uint32_t check = 0;
        /* A character term ("#" + characters) hashes its characters as one piece; a word
         * n-gram, each of its space-separated tokens. */
        if (len > 1 && PyUnicode_READ(kind, data, 0) == CHAR_PREFIX) {
            Hash piece = hash_codepoints(kind, data, 1, len - 1);
            key = fold(CHAR_SEED, piece.a);
            check = fold32(CHAR_SEED32, (uint32_t)piece.b);
        } else {
            for (Py_ssize_t start = 0, j = 0; j <= len; j++) {
                if (j < len && PyUnicode_READ(kind, data, j) != ' ') continue;
                Hash piece = hash_codepoints(kind, data, start, j - start);
                key = fold(key, piece.a);
                check = fold32(check, (uint32_t)piece.b);
                start = j + 1;
            }
        }
        uint64_t h = nonzero(key);
        int32_t known = find_id(self->slots, (uint64_t)self->mask, h, check, -1);
        if (known >= 0) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError,
                         "terms %d and %zd share a 96-bit hash; use the Python path", known, i);
            return -1;
        }
        Py_ssize_t slot = (Py_ssize_t)(h & (uint64_t)self->mask);
        while (self->slots[slot].key) slot = (slot + 1) & self->mask; /* the first free slot */
        self->slots[slot].key = h;
        self->slots[slot].check = check;
        self->slots[slot].id = (int32_t)i;
    }
    Py_DECREF(seq);
    return 0;
}

/* ------------------------------------------------------------------ one document */
/* A text as read without the GIL: its code points, and for a 1-byte text whether to lower-case
 * it here (an exact str, which str.lower changes code point by code point: latin1_lower). */
typedef struct {
    const void *data;
    Py_ssize_t len;
    int kind;
    int lower;
} TextView;

/* The code point at i; with kind known at compile time (see the ALWAYS_INLINE callers) this is
 * one load. */
ALWAYS_INLINE Py_UCS4 read_char(int kind, const void *data, Py_ssize_t i) {
    return kind == PyUnicode_1BYTE_KIND   ? ((const Py_UCS1 *)data)[i]
           : kind == PyUnicode_2BYTE_KIND ? ((const Py_UCS2 *)data)[i]
                                          : ((const Py_UCS4 *)data)[i];
}

/* What a code point below 256 is to the tokenizer; above, Py_UNICODE_ISALNUM decides, and in
 * unspaced mode a letter of a script without spaces is a LETTER, a token of its own. */
enum { OTHER = 0, WORD = 1, MARK = 2 /* ! or ? */, MARKUP_OPEN = 3, LETTER = 4 };
static unsigned char latin1_class[256]; /* filled when the module loads */
/* str.lower of each code point below 256, which is one code point below 256 for all of them
 * (checked when the module loads; latin1_lower_exact = 0 would send such texts to str.lower). */
static unsigned char latin1_lower[256];
static int latin1_lower_exact;

/* The Unicode blocks and marks of featurizer.UNSPACED_BLOCKS and UNSPACED_MARKS (the tests
 * compare both paths at every block's and mark's boundaries). */
static const Py_UCS4 UNSPACED_BLOCKS[][2] = {
    {0x0E00, 0x0E7F}, {0x1100, 0x11FF}, {0x3000, 0x31FF}, {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF}, {0xA960, 0xA97F}, {0xAC00, 0xD7FF}, {0xF900, 0xFAFF},
    {0xFF66, 0xFFDC}, {0x1AFF0, 0x1B16F}, {0x20000, 0x323AF},
};
static const Py_UCS4 UNSPACED_MARKS[][2] = {
    {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
    {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xE0100, 0xE01EF},
};

static inline int in_ranges(Py_UCS4 c, const Py_UCS4 (*ranges)[2], size_t n) {
    for (size_t r = 0; r < n; r++)
        if (c >= ranges[r][0] && c <= ranges[r][1]) return 1;
    return 0;
}

static inline int is_unspaced_mark(Py_UCS4 c) {
    return c >= 0x0E31 &&
           in_ranges(c, UNSPACED_MARKS, sizeof UNSPACED_MARKS / sizeof UNSPACED_MARKS[0]);
}

ALWAYS_INLINE int char_class(Py_UCS4 c, int unspaced) {
    if (c < 256) return latin1_class[c];
    if (!Py_UNICODE_ISALNUM(c)) return OTHER;
    return unspaced && c >= 0x0E00 &&
                   in_ranges(c, UNSPACED_BLOCKS, sizeof UNSPACED_BLOCKS / sizeof UNSPACED_BLOCKS[0])
               ? LETTER
               : WORD;
}

typedef struct { Py_ssize_t start, end; } Span;

/* Room for n + extra spans in w->spans; NULL when out of memory. */
static Span *spans_room(Workspace *w, Py_ssize_t n, Py_ssize_t extra) {
    w->spans.size = n * (Py_ssize_t)sizeof(Span);
    if (buffer_reserve(&w->spans, extra * (Py_ssize_t)sizeof(Span)) < 0) return NULL;
    return (Span *)w->spans.data;
}

/* Token spans (w->spans) of a 2- or 4-byte text, one code point at a time; markup is skipped
 * as the regex does. Returns the number of tokens, -1 when out of memory. */
ALWAYS_INLINE Py_ssize_t tokenize_as(int kind, int unspaced, const void *data, Py_ssize_t len,
                                     Workspace *w) {
    Py_ssize_t i = 0, n = 0, capacity = 0;
    Span *spans = NULL;
    while (i < len) {
        Py_UCS4 c = read_char(kind, data, i);
        int cls = char_class(c, unspaced);
        if (cls == OTHER) {
            i++;
            continue;
        }
        if (cls == MARKUP_OPEN) {
            Py_ssize_t limit = i + MARKUP_MAX + 1, k = i + 1;
            while (k < len && k <= limit && read_char(kind, data, k) != '>') k++;
            i = (k < len && k <= limit) ? k + 1 : i + 1;
            continue;
        }
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            if (!(spans = spans_room(w, n, capacity - n))) return -1;
        }
        Py_ssize_t start = i;
        if (cls == MARK) {
            i++;
        } else if (cls == LETTER) { /* one letter, with the combining marks that follow it */
            do i++;
            while (i < len && is_unspaced_mark(read_char(kind, data, i)));
        } else {
            for (;;) { /* word characters, then maybe an apostrophe and more of them */
                while (i < len && char_class(c = read_char(kind, data, i), unspaced) == WORD) i++;
                if (i + 1 < len && c == '\'' &&
                    char_class(read_char(kind, data, i + 1), unspaced) == WORD) {
                    i++;
                    continue;
                }
                break;
            }
        }
        spans[n++] = (Span){start, i};
    }
    w->n_tokens = n;
    return n;
}

/* ---------------------------------------------------------- 1-byte texts, 64 bytes at a time */
/* Zero bytes after a prepared text: the masks of the block after the last one, and 8-byte
 * loads that start in the text, read them. */
#define TEXT_PAD 136

/* A 1-byte text as the regex reads it, into w->text: lower-cased (8 ASCII bytes at a time),
 * markup replaced by spaces (re.sub's single space and as many spaces split the same
 * way), then TEXT_PAD zero bytes. NULL when out of memory. */
static const unsigned char *prepare_bytes(const TextView *t, Workspace *w) {
    const Py_ssize_t len = t->len;
    const unsigned char *in = t->data;
    w->text.size = 0;
    if (buffer_reserve(&w->text, len + TEXT_PAD) < 0) return NULL;
    unsigned char *out = (unsigned char *)w->text.data;
    if (!t->lower) {
        memcpy(out, in, (size_t)len);
    } else {
        /* Bytes below 0x80 plus 0x3f reach 0x80 from 'A' on, plus 0x25 from '[' on, and never
         * carry into the next byte: upper has 0x80 on A-Z, and >> 2 makes it the case bit. */
        Py_ssize_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t x;
            memcpy(&x, in + i, 8);
            if (x & 0x8080808080808080ULL) {
                for (int j = 0; j < 8; j++) out[i + j] = latin1_lower[in[i + j]];
                continue;
            }
            uint64_t upper = (x + 0x3f3f3f3f3f3f3f3fULL) & ~(x + 0x2525252525252525ULL) &
                             0x8080808080808080ULL;
            x |= upper >> 2;
            memcpy(out + i, &x, 8);
        }
        for (; i < len; i++) out[i] = latin1_lower[in[i]];
    }
    memset(out + len, 0, TEXT_PAD);
    /* <[^>]{0,40}>, left to right: a '>' at most MARKUP_MAX + 1 bytes after the '<'. */
    unsigned char *open = memchr(out, '<', (size_t)len);
    while (open) {
        Py_ssize_t at = open - out, limit = at + MARKUP_MAX + 2 < len ? at + MARKUP_MAX + 2 : len;
        unsigned char *close = memchr(open + 1, '>', (size_t)(limit - at - 1));
        if (close) memset(open, ' ', (size_t)(close - open + 1));
        Py_ssize_t next = close ? close - out + 1 : at + 1;
        open = next < len ? memchr(out + next, '<', (size_t)(len - next)) : NULL;
    }
    return out;
}

/* Bit j: byte j of a block is a word character (letter or digit), an apostrophe, ! or ?. */
typedef struct { uint64_t word, apostrophe, mark; } Masks;
enum { BYTE_WORD = 1, BYTE_APOSTROPHE = 2, BYTE_MARK = 4 };
static unsigned char byte_bits[256]; /* filled when the module loads */

#if defined(__SSE2__)
#include <emmintrin.h>
/* 16 bytes a step; a byte above 0x7F (a latin-1 letter or not) is looked up in byte_bits. */
ALWAYS_INLINE Masks block_masks(const unsigned char *p) {
    Masks m = {0, 0, 0};
    uint64_t high = 0;
    const __m128i case_bit = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), zero = _mm_set1_epi8('0');
    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * q));
        __m128i letter = _mm_sub_epi8(_mm_or_si128(v, case_bit), a); /* A-Z, a-z: 0..25 */
        __m128i digit = _mm_sub_epi8(v, zero);
        __m128i word = _mm_or_si128(
            _mm_cmpeq_epi8(_mm_min_epu8(letter, _mm_set1_epi8(25)), letter),
            _mm_cmpeq_epi8(_mm_min_epu8(digit, _mm_set1_epi8(9)), digit));
        __m128i mark = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('!')),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('?')));
        int shift = 16 * q;
        m.word |= (uint64_t)(unsigned)_mm_movemask_epi8(word) << shift;
        m.apostrophe |= (uint64_t)(unsigned)_mm_movemask_epi8(
                            _mm_cmpeq_epi8(v, _mm_set1_epi8('\''))) << shift;
        m.mark |= (uint64_t)(unsigned)_mm_movemask_epi8(mark) << shift;
        high |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << shift;
    }
    for (; high; high &= high - 1) {
        int j = __builtin_ctzll(high);
        m.word |= (uint64_t)(byte_bits[p[j]] & BYTE_WORD) << j;
    }
    return m;
}
#else
ALWAYS_INLINE Masks block_masks(const unsigned char *p) {
    Masks m = {0, 0, 0};
    for (int j = 0; j < 64; j++) {
        unsigned bits = byte_bits[p[j]];
        m.word |= (uint64_t)(bits & BYTE_WORD) << j;
        m.apostrophe |= (uint64_t)((bits & BYTE_APOSTROPHE) != 0) << j;
        m.mark |= (uint64_t)((bits & BYTE_MARK) != 0) << j;
    }
    return m;
}
#endif

/* Token spans (w->spans) of a prepared 1-byte text, from bit masks of 64 bytes at a time: a
 * token is a run of word characters and of apostrophes with a word character on both sides
 * (the regex's words), or one ! or ?. A token is found with a few bit operations instead of a
 * branch a byte. Returns the number of tokens, -1 when out of memory. */
static Py_ssize_t tokenize_bytes(const unsigned char *text, Py_ssize_t len, Workspace *w) {
    Py_ssize_t n = 0, open = -1; /* open: the start of a token that reached the block's end */
    uint64_t word_before = 0;    /* the last byte of the block before is a word character */
    Span *spans = NULL;
    Masks m = block_masks(text);
    for (Py_ssize_t base = 0; base < len; base += 64) {
        if (!(spans = spans_room(w, n, 65))) return -1; /* a block ends 65 tokens at most */
        Masks next = block_masks(text + base + 64);
        uint64_t inner = m.apostrophe & (m.word << 1 | word_before) & (m.word >> 1 | next.word << 63);
        uint64_t token = m.word | inner;
        uint64_t starts = (token & ~(token << 1 | (uint64_t)(open >= 0))) | m.mark;
        word_before = m.word >> 63;
        if (open >= 0) {
            if (!~token) { /* the token goes on through this block */
                m = next;
                continue;
            }
            spans[n++] = (Span){open, base + __builtin_ctzll(~token)};
            open = -1;
        }
        for (; starts; starts &= starts - 1) {
            int j = __builtin_ctzll(starts);
            if (m.mark >> j & 1) {
                spans[n++] = (Span){base + j, base + j + 1};
                continue;
            }
            uint64_t after = ~token & (~0ULL << j);
            if (!after) { /* the last start of the block */
                open = base + j;
                break;
            }
            spans[n++] = (Span){base + j, base + __builtin_ctzll(after)};
        }
        m = next;
    }
    if (open >= 0) spans[n++] = (Span){open, len}; /* a text ending with a token at a block's end */
    w->n_tokens = n;
    return n;
}

/* Each token's hash and check (w->hashes: n_tokens hashes, then n_tokens checks); data is a
 * prepared text for a 1-byte text. -1 when out of memory. */
static int hash_tokens(int kind, const void *data, Workspace *w) {
    const Py_ssize_t n = w->n_tokens;
    const Span *spans = (const Span *)w->spans.data;
    w->hashes.size = 0;
    if (buffer_reserve(&w->hashes, n * (Py_ssize_t)(sizeof(uint64_t) + sizeof(uint32_t))) < 0)
        return -1;
    uint64_t *hashes = (uint64_t *)w->hashes.data;
    uint32_t *checks = (uint32_t *)(hashes + n);
    for (Py_ssize_t t = 0; t < n; t++) {
        Py_ssize_t start = spans[t].start, length = spans[t].end - start;
        Hash h = kind == PyUnicode_1BYTE_KIND
                     ? hash_bytes((const unsigned char *)data + start, length)
                     : hash_codepoints(kind, data, start, length);
        hashes[t] = h.a;
        checks[t] = (uint32_t)h.b;
    }
    return 0;
}

/* Every n-gram key of the text's tokens (from tokenize_* and hash_tokens) into w->keys, their
 * checks into w->key_checks: word 1..max_n grams, then character n-grams of "<token>". The
 * keys are followed by PREFETCH_AHEAD zeros, for the look-ups' prefetches to read. Returns the
 * number of keys, -1 when out of memory. */
static Py_ssize_t document_ngram_keys(int kind, const Vocabulary *v, const void *data,
                                      Workspace *w) {
    const Span *tokens = (const Span *)w->spans.data;
    Py_ssize_t n_tokens = w->n_tokens;
    const uint64_t *token_hash = (const uint64_t *)w->hashes.data;
    const uint32_t *token_check = (const uint32_t *)(token_hash + n_tokens);
    const int max_n = v->max_n;
    const int char_min = v->char_min, char_max = v->char_max;
    Py_ssize_t n_keys = n_tokens * max_n, longest = 0;
    if (char_min) /* at most (padded length) x (number of lengths) per token */
        for (Py_ssize_t t = 0; t < n_tokens; t++) {
            Py_ssize_t padded = tokens[t].end - tokens[t].start + 2;
            n_keys += padded * (char_max - char_min + 1);
            if (padded > longest) longest = padded;
        }
    w->keys.size = w->key_checks.size = w->scratch.size = 0;
    if (buffer_reserve(&w->keys, (n_keys + PREFETCH_AHEAD) * (Py_ssize_t)sizeof(uint64_t)) < 0 ||
        buffer_reserve(&w->key_checks, n_keys * (Py_ssize_t)sizeof(uint32_t)) < 0 ||
        buffer_reserve(&w->scratch, (longest + 8) * (Py_ssize_t)sizeof(Py_UCS4)) < 0)
        return -1;
    uint64_t *wanted = (uint64_t *)w->keys.data;
    uint32_t *wanted_check = (uint32_t *)w->key_checks.data;
    Py_ssize_t next_key = 0;
    for (Py_ssize_t t = 0; t < n_tokens; t++) {
        uint64_t key = 0;
        uint32_t check = 0;
        Py_ssize_t top = n_tokens - t < max_n ? n_tokens - t : max_n;
        for (Py_ssize_t n = 0; n < top; n++) {
            key = fold(key, token_hash[t + n]);
            check = fold32(check, token_check[t + n]);
            wanted[next_key] = nonzero(key);
            wanted_check[next_key++] = check;
        }
    }
    /* A token padded as "<token>" in scratch (bytes for a 1-byte text, which then hash 8 at a
     * time, else code points), each of its substrings of char_min..char_max hashed. */
    unsigned char *bytes = (unsigned char *)w->scratch.data;
    Py_UCS4 *codepoints = (Py_UCS4 *)w->scratch.data;
    for (Py_ssize_t t = 0; char_min && t < n_tokens; t++) {
        Py_ssize_t length = tokens[t].end - tokens[t].start, padded = length + 2;
        if (kind == PyUnicode_1BYTE_KIND) {
            bytes[0] = '<';
            memcpy(bytes + 1, (const unsigned char *)data + tokens[t].start, (size_t)length);
            bytes[padded - 1] = '>';
        } else {
            codepoints[0] = '<';
            for (Py_ssize_t j = 0; j < length; j++)
                codepoints[j + 1] = PyUnicode_READ(kind, data, tokens[t].start + j);
            codepoints[padded - 1] = '>';
        }
        for (Py_ssize_t first = 0; first + char_min <= padded; first++)
            for (Py_ssize_t n = char_min; n <= char_max && first + n <= padded; n++) {
                Hash h = kind == PyUnicode_1BYTE_KIND
                             ? hash_bytes(bytes + first, n)
                             : hash_codepoints(PyUnicode_4BYTE_KIND, codepoints, first, n);
                wanted[next_key] = nonzero(fold(CHAR_SEED, h.a));
                wanted_check[next_key] = fold32(CHAR_SEED32, (uint32_t)h.b);
                next_key++;
            }
    }
    memset(wanted + next_key, 0, PREFETCH_AHEAD * sizeof(uint64_t));
    return next_key;
}

/* The stages of a document, in order; a profile stops after one of them. */
enum { STAGE_TOKENIZE = 1, STAGE_HASH = 2, STAGE_LOOKUP = 3, STAGE_ALL = 4 };

/* Text -> tokens (w->spans, w->n_tokens); *characters: what the spans index (the text, or
 * its prepared bytes). Returns the number of tokens, -1 when out of memory. */
static Py_ssize_t document_tokens(const Vocabulary *v, const TextView *t, Workspace *w,
                                  const void **characters) {
    const void *data = t->data;
    Py_ssize_t n;
    switch (t->kind) {
    case PyUnicode_1BYTE_KIND:
        if (!(data = prepare_bytes(t, w))) return -1;
        n = tokenize_bytes(data, t->len, w);
        break;
    case PyUnicode_2BYTE_KIND:
        n = v->unspaced ? tokenize_as(PyUnicode_2BYTE_KIND, 1, data, t->len, w)
                        : tokenize_as(PyUnicode_2BYTE_KIND, 0, data, t->len, w);
        break;
    default:
        n = v->unspaced ? tokenize_as(PyUnicode_4BYTE_KIND, 1, data, t->len, w)
                        : tokenize_as(PyUnicode_4BYTE_KIND, 0, data, t->len, w);
    }
    *characters = data;
    return n;
}

/* The shared front half: text -> tokens -> keys. Returns the number of keys (0 after the
 * tokenize stage), -1 when out of memory. */
static Py_ssize_t document_keys(const Vocabulary *v, const TextView *t, Workspace *w,
                                int stop_after) {
    const void *data;
    if (document_tokens(v, t, w, &data) < 0) return -1;
    if (stop_after == STAGE_TOKENIZE) return 0;
    if (hash_tokens(t->kind, data, w) < 0) return -1;
    return document_ngram_keys(t->kind, v, data, w);
}

/* One document's sorted distinct vocabulary ids (w->found) and their counts (w->counts).
 * Returns how many, -1 when out of memory. */
static Py_ssize_t count_document(const Vocabulary *v, const TextView *t, Workspace *w,
                                 int stop_after) {
    Py_ssize_t n_keys = document_keys(v, t, w, stop_after);
    if (n_keys < 0) return -1;
    if (stop_after < STAGE_LOOKUP) return 0;
    const uint64_t *wanted = (const uint64_t *)w->keys.data;
    const uint32_t *wanted_check = (const uint32_t *)w->key_checks.data;
    const Slot *slots = v->slots;
    /* An n-gram outside the vocabulary counts as the id n_terms (tally, seen and summary have
     * room for it), dropped at the end: the count of a look-up needs no branch on its result. */
    const int32_t none = (int32_t)v->n_terms;
    const uint64_t mask = (uint64_t)v->mask;
    int32_t *tally = w->tally;
    uint64_t *seen = w->seen, *summary = w->summary;
    /* Reserved before counting, so that no failure leaves a tally or bit set. */
    w->found.size = w->counts.size = 0;
    if (buffer_reserve(&w->found, n_keys * (Py_ssize_t)sizeof(int32_t)) < 0 ||
        buffer_reserve(&w->counts, n_keys * (Py_ssize_t)sizeof(int32_t)) < 0)
        return -1;
    Py_ssize_t distinct = 0;
    /* The table is megabytes: prefetching its slots a few keys ahead hides most misses. */
    int32_t *found = (int32_t *)w->found.data, *counts = (int32_t *)w->counts.data;
    for (Py_ssize_t i = 0; i < n_keys; i++) {
        __builtin_prefetch(&slots[wanted[i + PREFETCH_AHEAD] & mask]);
        int32_t id = find_id(slots, mask, wanted[i], wanted_check[i], none);
        found[distinct] = id; /* kept when it is the document's first */
        distinct += tally[id]++ == 0;
    }
    for (Py_ssize_t a = 0; a < distinct; a++) {
        seen[found[a] >> 6] |= 1ULL << (found[a] & 63);
        summary[found[a] >> 12] |= 1ULL << ((found[a] >> 6) & 63);
    }
    /* The ids in ascending order, with their counts; every tally and bit is left zero. */
    Py_ssize_t a = 0;
    for (Py_ssize_t top = 0; a < distinct; top++) {
        uint64_t words = summary[top];
        summary[top] = 0;
        while (words) {
            Py_ssize_t word = top * 64 + __builtin_ctzll(words);
            words &= words - 1;
            uint64_t bits = seen[word];
            seen[word] = 0;
            do {
                int32_t id = (int32_t)(word * 64 + __builtin_ctzll(bits));
                bits &= bits - 1;
                found[a] = id;
                counts[a++] = tally[id];
                tally[id] = 0;
            } while (bits);
        }
    }
    return a && found[a - 1] == none ? a - 1 : a; /* none is the largest id */
}

/* ------------------------------------------------------------------ what a call makes */
enum { MODE_COUNT, MODE_TFIDF, MODE_LOGITS, MODE_WORDS };

typedef struct {
    int mode, stop_after;
    /* MODE_TFIDF, MODE_LOGITS */
    const float *idf, *tf;
    Py_ssize_t tf_len;
    /* MODE_LOGITS */
    const float *coef, *bias;
    Py_ssize_t k;
    float *out;
    /* MODE_COUNT, MODE_TFIDF, MODE_WORDS (ids, lengths, token counts): the growing results */
    Buffer ids, values, lengths;
    Py_ssize_t needed_tf; /* > 0: a count needed a longer tf table */
} Job;

/* TF-IDF of one document into values, before the L2 normalisation, and in *divisor what
 * each value is then divided by: the operations of NgramFeaturizer.transform. Returns 0, or 1
 * when a count is beyond the tf table. */
static int tfidf_document(Job *job, const int32_t *ids, const int32_t *counts, Py_ssize_t n,
                          float *values, float *divisor) {
    double squares = 0.0;
    for (Py_ssize_t a = 0; a < n; a++) {
        if (counts[a] >= job->tf_len) {
            if (counts[a] + 1 > job->needed_tf) job->needed_tf = counts[a] + 1;
            return 1;
        }
        float value = job->tf[counts[a]] * job->idf[ids[a]];
        values[a] = value;
        squares += (double)value * (double)value;
    }
    double norm = sqrt(squares);
    *divisor = (float)(norm < 1e-12 ? 1e-12 : norm); /* np.maximum: NaN stays NaN */
    return 0;
}

/* One document's tokens in reading order, repeats kept, as the vocabulary ids of the words
 * (the 1-gram keys of document_ngram_keys), a token outside the vocabulary left out: appended
 * to job->ids, their number to job->lengths, the number of all its tokens to job->values (so
 * a caller can tell the documents with unknown words). Returns 0, -1 when out of memory. */
static int words_document(const Vocabulary *v, const TextView *t, Workspace *w, Job *job) {
    const void *data;
    if (document_tokens(v, t, w, &data) < 0 || hash_tokens(t->kind, data, w) < 0) return -1;
    const Py_ssize_t n = w->n_tokens;
    const uint64_t *token_hash = (const uint64_t *)w->hashes.data;
    const uint32_t *token_check = (const uint32_t *)(token_hash + n);
    if (buffer_reserve(&job->ids, n * (Py_ssize_t)sizeof(int32_t)) < 0) return -1;
    int32_t *ids = (int32_t *)(job->ids.data + job->ids.size);
    const int32_t none = -1;
    int64_t kept = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t id = find_id(v->slots, (uint64_t)v->mask, nonzero(fold(0, token_hash[i])),
                             fold32(0, token_check[i]), none);
        ids[kept] = id;
        kept += id != none;
    }
    job->ids.size += (Py_ssize_t)kept * (Py_ssize_t)sizeof(int32_t);
    const int64_t all = (int64_t)n;
    if (buffer_append(&job->values, &all, sizeof all) < 0) return -1;
    return buffer_append(&job->lengths, &kept, sizeof kept);
}

/* Everything a block of texts needs, without the GIL. Returns 0, -1 when out of memory,
 * 1 when a longer tf table is needed. */
static int run_block(const Vocabulary *v, Workspace *w, Job *job, const TextView *views,
                     Py_ssize_t n_views, Py_ssize_t first_doc) {
    for (Py_ssize_t d = 0; d < n_views; d++) {
        if (job->mode == MODE_WORDS) {
            if (words_document(v, &views[d], w, job) < 0) return -1;
            continue;
        }
        Py_ssize_t n = count_document(v, &views[d], w, job->stop_after);
        if (n < 0) return -1;
        if (job->stop_after < STAGE_ALL) continue;
        const int32_t *ids = (const int32_t *)w->found.data;
        const int32_t *counts = (const int32_t *)w->counts.data;
        int64_t length = (int64_t)n;
        if (job->mode == MODE_COUNT) {
            if (buffer_append(&job->ids, ids, n * (Py_ssize_t)sizeof(int32_t)) < 0 ||
                buffer_append(&job->values, counts, n * (Py_ssize_t)sizeof(int32_t)) < 0 ||
                buffer_append(&job->lengths, &length, sizeof length) < 0)
                return -1;
        } else if (job->mode == MODE_TFIDF) {
            if (buffer_reserve(&job->values, n * (Py_ssize_t)sizeof(float)) < 0) return -1;
            float *values = (float *)(job->values.data + job->values.size), divisor;
            if (tfidf_document(job, ids, counts, n, values, &divisor)) return 1;
            for (Py_ssize_t a = 0; a < n; a++) values[a] /= divisor;
            job->values.size += n * (Py_ssize_t)sizeof(float);
            if (buffer_append(&job->ids, ids, n * (Py_ssize_t)sizeof(int32_t)) < 0 ||
                buffer_append(&job->lengths, &length, sizeof length) < 0)
                return -1;
        } else {
            /* The weighted sums of SparseRows.matmul: per class a float64 sum, in id order, of
             * float32 products of the normalised values; then float32 + the bias. */
            w->scratch.size = 0;
            if (buffer_reserve(&w->scratch, n * (Py_ssize_t)sizeof(float)) < 0) return -1;
            float *values = (float *)w->scratch.data, divisor;
            if (tfidf_document(job, ids, counts, n, values, &divisor)) return 1;
            const Py_ssize_t k = job->k;
            float *row = job->out + (first_doc + d) * k;
            if (k == 2) { /* the binary case, most models: one pass, both sums in registers */
                double sum0 = 0.0, sum1 = 0.0;
                for (Py_ssize_t a = 0; a < n; a++) {
                    const float *weights = job->coef + (Py_ssize_t)ids[a] * 2;
                    float value = values[a] / divisor;
                    sum0 += (double)(value * weights[0]);
                    sum1 += (double)(value * weights[1]);
                }
                row[0] = (float)sum0 + job->bias[0];
                row[1] = (float)sum1 + job->bias[1];
                continue;
            }
            for (Py_ssize_t a = 0; a < n; a++) values[a] /= divisor;
            double sums[8];
            for (Py_ssize_t c0 = 0; c0 < k; c0 += 8) {
                Py_ssize_t width = k - c0 < 8 ? k - c0 : 8;
                for (Py_ssize_t c = 0; c < width; c++) sums[c] = 0.0;
                for (Py_ssize_t a = 0; a < n; a++) {
                    const float *weights = job->coef + (Py_ssize_t)ids[a] * k + c0;
                    for (Py_ssize_t c = 0; c < width; c++)
                        sums[c] += (double)(values[a] * weights[c]);
                }
                for (Py_ssize_t c = 0; c < width; c++)
                    row[c0 + c] = (float)sums[c] + job->bias[c0 + c];
            }
        }
    }
    return 0;
}

/* The driver of every entry point: blocks of texts, read with the GIL, run without it. */
static int run_job(Vocabulary *self, PyObject *texts, Job *job) {
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return -1;
    Py_ssize_t n_docs = PySequence_Fast_GET_SIZE(seq);
    if (job->mode == MODE_LOGITS && job->out == NULL && n_docs) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "no output buffer");
        return -1;
    }
    Workspace *w = workspace_take(self);
    if (!w) {
        Py_DECREF(seq);
        return -1;
    }
    TextView views[BLOCK_TEXTS];
    PyObject *held[BLOCK_TEXTS];
    int status = 0;
    self->active++;
    for (Py_ssize_t start = 0; start < n_docs && status == 0;) {
        Py_ssize_t n_views = 0, chars = 0;
        while (start + n_views < n_docs && n_views < BLOCK_TEXTS && chars < BLOCK_CHARS) {
            PyObject *text = PySequence_Fast_GET_ITEM(seq, start + n_views);
            if (!PyUnicode_Check(text)) {
                PyErr_Format(PyExc_TypeError, "text %zd is not a str", start + n_views);
                status = -2;
                break;
            }
            /* A str subclass may lower-case its own way: ask it, as the Python path does. An
             * exact 1-byte str is lower-cased here, code point by code point, as str.lower
             * would; other texts by str.lower (its full Unicode mapping: final sigma,
             * "İ" -> "i̇"). */
            int here = PyUnicode_CheckExact(text) && PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND &&
                       (latin1_lower_exact || PyUnicode_IS_ASCII(text));
            PyObject *lowered = here ? Py_NewRef(text) : PyObject_CallMethod(text, "lower", NULL);
            if (lowered && !PyUnicode_Check(lowered)) {
                PyErr_Format(PyExc_TypeError, "text %zd: lower() did not return a str",
                             start + n_views);
                Py_CLEAR(lowered);
            }
            if (!lowered) {
                status = -2;
                break;
            }
            held[n_views] = lowered;
            views[n_views] = (TextView){PyUnicode_DATA(lowered), PyUnicode_GET_LENGTH(lowered),
                                        PyUnicode_KIND(lowered), here};
            chars += views[n_views].len;
            n_views++;
        }
        if (status == 0) {
            if (chars >= RELEASE_CHARS) {
                Py_BEGIN_ALLOW_THREADS
                status = run_block(self, w, job, views, n_views, start);
                Py_END_ALLOW_THREADS
            } else {
                status = run_block(self, w, job, views, n_views, start);
            }
            if (status == -1) PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n_views; i++) Py_DECREF(held[i]);
        start += n_views;
    }
    self->active--;
    workspace_give_back(self, w);
    Py_DECREF(seq);
    return status < 0 ? -1 : status;
}

/* A buffer argument of `itemsize`-byte items ("f" or "i" format), of exactly `count` items. */
static int get_array(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t count,
                     int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    if (strcmp(f, format) != 0 || view->itemsize != 4 ||
        (count >= 0 && view->len != count * 4)) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd C-contiguous %s items, got %zd of %s",
                     name, count, format[0] == 'f' ? "float32" : "int32",
                     view->len / (view->itemsize ? view->itemsize : 1), f);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

static void job_free(Job *job) {
    buffer_free(&job->ids);
    buffer_free(&job->values);
    buffer_free(&job->lengths);
}

static PyObject *job_result(Job *job) {
    return Py_BuildValue("(y#y#y#)", job->ids.data ? job->ids.data : "", job->ids.size,
                         job->values.data ? job->values.data : "", job->values.size,
                         job->lengths.data ? job->lengths.data : "", job->lengths.size);
}

static PyObject *Vocabulary_count(Vocabulary *self, PyObject *texts) {
    Job job = {.mode = MODE_COUNT, .stop_after = STAGE_ALL};
    PyObject *result = run_job(self, texts, &job) < 0 ? NULL : job_result(&job);
    job_free(&job);
    return result;
}

static PyObject *Vocabulary_words(Vocabulary *self, PyObject *texts) {
    Job job = {.mode = MODE_WORDS, .stop_after = STAGE_ALL};
    PyObject *result = NULL;
    if (run_job(self, texts, &job) == 0)
        result = Py_BuildValue("(y#y#y#)", job.ids.data ? job.ids.data : "", job.ids.size,
                               job.lengths.data ? job.lengths.data : "", job.lengths.size,
                               job.values.data ? job.values.data : "", job.values.size);
    job_free(&job);
    return result;
}

static PyObject *Vocabulary_tfidf(Vocabulary *self, PyObject *args) {
    PyObject *texts, *idf_obj, *tf_obj;
    if (!PyArg_ParseTuple(args, "OOO", &texts, &idf_obj, &tf_obj)) return NULL;
    Py_buffer idf = {0}, tf = {0};
    PyObject *result = NULL;
    Job job = {.mode = MODE_TFIDF, .stop_after = STAGE_ALL};
    if (get_array(idf_obj, &idf, "f", self->n_terms, 0, "idf") < 0 ||
        get_array(tf_obj, &tf, "f", -1, 0, "tf") < 0)
        goto done;
    job.idf = idf.buf;
    job.tf = tf.buf;
    job.tf_len = tf.len / 4;
    int status = run_job(self, texts, &job);
    if (status == 1)
        result = PyLong_FromSsize_t(job.needed_tf);
    else if (status == 0)
        result = job_result(&job);
done:
    if (idf.obj) PyBuffer_Release(&idf);
    if (tf.obj) PyBuffer_Release(&tf);
    job_free(&job);
    return result;
}

static PyObject *Vocabulary_logits(Vocabulary *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"texts", "idf", "tf", "coef", "bias", "out", "stop_after", NULL};
    PyObject *texts, *idf_obj, *tf_obj, *coef_obj, *bias_obj, *out_obj;
    int stop_after = STAGE_ALL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|i", kwlist, &texts, &idf_obj, &tf_obj,
                                     &coef_obj, &bias_obj, &out_obj, &stop_after))
        return NULL;
    if (stop_after < STAGE_TOKENIZE || stop_after > STAGE_ALL) {
        PyErr_SetString(PyExc_ValueError, "stop_after must be 1 (tokenize), 2 (hash), "
                                          "3 (lookup) or 4 (everything)");
        return NULL;
    }
    Py_buffer idf = {0}, tf = {0}, coef = {0}, bias = {0}, out = {0};
    PyObject *result = NULL;
    Job job = {.mode = MODE_LOGITS, .stop_after = stop_after};
    Py_ssize_t n_docs = PyObject_Length(texts);
    if (n_docs < 0) return NULL;
    if (get_array(bias_obj, &bias, "f", -1, 0, "bias") < 0) goto done;
    job.k = bias.len / 4;
    if (job.k < 1) {
        PyErr_SetString(PyExc_ValueError, "bias must have at least one class");
        goto done;
    }
    if (get_array(idf_obj, &idf, "f", self->n_terms, 0, "idf") < 0 ||
        get_array(tf_obj, &tf, "f", -1, 0, "tf") < 0 ||
        get_array(coef_obj, &coef, "f", self->n_terms * job.k, 0, "coef") < 0 ||
        get_array(out_obj, &out, "f", n_docs * job.k, 1, "out") < 0)
        goto done;
    job.idf = idf.buf;
    job.tf = tf.buf;
    job.tf_len = tf.len / 4;
    job.coef = coef.buf;
    job.bias = bias.buf;
    job.out = out.buf;
    int status = run_job(self, texts, &job);
    if (status == 1)
        result = PyLong_FromSsize_t(job.needed_tf);
    else if (status == 0)
        result = Py_NewRef(Py_None);
done:
    if (idf.obj) PyBuffer_Release(&idf);
    if (tf.obj) PyBuffer_Release(&tf);
    if (coef.obj) PyBuffer_Release(&coef);
    if (bias.obj) PyBuffer_Release(&bias);
    if (out.obj) PyBuffer_Release(&out);
    job_free(&job);
    return result;
}

static PyMethodDef Vocabulary_methods[] = {
    {"count", (PyCFunction)Vocabulary_count, METH_O,
     "count(texts) -> (ids int32 bytes, counts int32 bytes, row lengths int64 bytes): per "
     "document, the sorted distinct vocabulary ids of its n-grams and their counts."},
    {"words", (PyCFunction)Vocabulary_words, METH_O,
     "words(texts) -> (ids int32 bytes, row lengths int64 bytes, token counts int64 bytes): "
     "per document, the vocabulary id of each token in reading order, repeats kept, tokens "
     "outside the vocabulary left out, and how many tokens it has in all."},
    {"tfidf", (PyCFunction)Vocabulary_tfidf, METH_VARARGS,
     "tfidf(texts, idf, tf) -> (ids int32 bytes, values float32 bytes, row lengths int64 "
     "bytes): NgramFeaturizer.transform's rows; tf[c] = float32(1 + log(c)). An int instead "
     "means a count needs a tf table of that length."},
    {"logits", (PyCFunction)(void (*)(void))Vocabulary_logits, METH_VARARGS | METH_KEYWORDS,
     "logits(texts, idf, tf, coef, bias, out, stop_after=4) -> None: writes "
     "transform(texts) @ coef + bias into out (float32 [n, k]). An int instead means a count "
     "needs a tf table of that length. stop_after < 4 stops each document after tokenizing "
     "(1), hashing (2) or looking up (3), to time the stages."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "textdistill.runtime._ngrams.Vocabulary",
    .tp_doc = "Vocabulary(terms, max_n, char_min=0, char_max=0, unspaced=False): an n-gram "
              "vocabulary for fast counting.",
    .tp_basicsize = sizeof(Vocabulary),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Vocabulary_init,
    .tp_dealloc = (destructor)Vocabulary_dealloc,
    .tp_methods = Vocabulary_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ngrams",
    "C fast path of textdistill's n-gram featurizer (optional; featurizer.py falls back to "
    "pure Python with identical results).", -1, NULL,
};

/* latin1_lower from str.lower itself; 0, or -1 with an exception set. */
static int fill_latin1_lower(void) {
    latin1_lower_exact = 1;
    for (Py_UCS4 c = 0; c < 256; c++) {
        PyObject *one = PyUnicode_FromOrdinal((int)c);
        PyObject *lowered = one ? PyObject_CallMethod(one, "lower", NULL) : NULL;
        Py_XDECREF(one);
        if (!lowered) return -1;
        if (PyUnicode_GET_LENGTH(lowered) == 1 && PyUnicode_READ_CHAR(lowered, 0) < 256)
            latin1_lower[c] = (unsigned char)PyUnicode_READ_CHAR(lowered, 0);
        else
            latin1_lower_exact = 0;
        Py_DECREF(lowered);
    }
    return 0;
}

PyMODINIT_FUNC PyInit__ngrams(void) {
    for (Py_UCS4 c = 0; c < 256; c++) {
        latin1_class[c] = Py_UNICODE_ISALNUM(c) ? WORD
                          : c == '!' || c == '?' ? MARK
                          : c == '<'             ? MARKUP_OPEN
                                                 : OTHER;
        byte_bits[c] = latin1_class[c] == WORD   ? BYTE_WORD
                       : latin1_class[c] == MARK ? BYTE_MARK
                       : c == '\''              ? BYTE_APOSTROPHE
                                                 : 0;
    }
    if (fill_latin1_lower() < 0) return NULL;
    if (PyType_Ready(&VocabularyType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* featurizer.py refuses a build of another version (a stale .so in a checkout). */
    if (PyModule_AddIntConstant(m, "VERSION", NGRAMS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&VocabularyType);
    if (PyModule_AddObject(m, "Vocabulary", (PyObject *)&VocabularyType) < 0) {
        Py_DECREF(&VocabularyType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
