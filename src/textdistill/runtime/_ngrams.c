/*
 * Fast path of textdistill's n-gram featurizer and linear student: one pass of C over a batch
 * from text to n-gram counts, TF-IDF rows or the logits of a linear model.
 *
 * It reproduces, code point for code point, what the pure-Python path in featurizer.py does on
 * lower-cased text:  re.sub(r"<[^>]{0,40}>", " ", text)  then
 * re.findall(r"[^\W_]+(?:'[^\W_]+)*|[!?]", ...), then word 1..max_n grams joined by a space.
 * A word character is what Python's re calls one minus "_", i.e. Py_UNICODE_ISALNUM.
 * Lower-casing: an ASCII text is lower-cased here, while it is read (A-Z only, which is all
 * str.lower does to ASCII); any other text goes through str.lower, whose full Unicode case
 * mapping (final sigma, "İ" -> "i̇") C lacks. Every entry point shares one tokenizer
 * (tokenize) and one n-gram key builder (document_keys): they differ only in what they do
 * with a document's sorted (id, count) pairs.
 *
 * With unspaced set, it follows featurizer.UNSPACED_TOKEN_PATTERN instead: a letter or digit of
 * a script written without spaces (featurizer.UNSPACED_BLOCKS) is a token of its own, with the
 * combining marks that follow it (UNSPACED_MARKS), and other words stop where one begins.
 *
 * With char_min..char_max set, the character n-grams of each token padded as "<token>" are
 * counted too (featurizer.token_char_ngrams); their vocabulary terms carry the prefix "#",
 * which no token contains, and their hashes start from another seed than word n-grams.
 *
 * An n-gram is identified by two independent hashes of its tokens (64 + 32 bits): building
 * the table refuses a vocabulary in which two terms share both (the featurizer then uses the
 * Python path), and an n-gram outside the vocabulary matches a term by chance with a
 * probability of about n_terms / 2^96 (below 1e-22 for 200,000 terms). Skipping an exact
 * string comparison on every hit is what makes this path fast (it avoids a cache miss).
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
#define NGRAMS_VERSION 3

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define FNV32_OFFSET 2166136261U
#define FNV32_PRIME 16777619U
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

static inline uint64_t fnv_step(uint64_t h, Py_UCS4 c) { return (h ^ (uint64_t)c) * FNV_PRIME; }
static inline uint32_t fnv32_step(uint32_t h, Py_UCS4 c) {
    return (h ^ (uint32_t)c) * FNV32_PRIME;
}
static inline uint64_t nonzero(uint64_t h) { return h ? h : 1; }

/* The key of an n-gram folds the FNV hashes of its tokens, so each token is hashed once. */
static inline uint64_t fold(uint64_t key, uint64_t token_hash) {
    key ^= token_hash + 0x9e3779b97f4a7c15ULL + (key << 6) + (key >> 2);
    return key * 0xff51afd7ed558ccdULL;
}
static inline uint32_t fold32(uint32_t check, uint32_t token_hash) {
    check ^= token_hash + 0x9e3779b9U + (check << 6) + (check >> 2);
    return check * 0x85ebca6bU;
}

/* Character n-grams fold their one FNV hash into these seeds instead of 0, so that the same
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
    Buffer spans, hashes, keys, found, scratch, counts;
    Py_ssize_t n_tokens, token_capacity; /* of spans and hashes (then the checks) */
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
    buffer_free(&w->spans);
    buffer_free(&w->hashes);
    buffer_free(&w->keys);
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
        uint64_t h = FNV_OFFSET, key = 0;
        uint32_t h2 = FNV32_OFFSET, check = 0;
        /* A character term ("#" + characters) hashes its characters as one piece. */
        int is_char = len > 1 && PyUnicode_READ(kind, data, 0) == CHAR_PREFIX;
        if (is_char) {
            key = CHAR_SEED;
            check = CHAR_SEED32;
        }
        for (Py_ssize_t j = is_char; j < len; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, j);
            if (c == ' ' && !is_char) {
                key = fold(key, h);
                check = fold32(check, h2);
                h = FNV_OFFSET;
                h2 = FNV32_OFFSET;
            } else {
                h = fnv_step(h, c);
                h2 = fnv32_step(h2, c);
            }
        }
        h = nonzero(fold(key, h));
        check = fold32(check, h2);
        Py_ssize_t slot = (Py_ssize_t)(h & (uint64_t)self->mask);
        while (self->slots[slot].key) {
            if (self->slots[slot].key == h && self->slots[slot].check == check) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_ValueError,
                             "terms %d and %zd share a 96-bit hash; use the Python path",
                             self->slots[slot].id, i);
                return -1;
            }
            slot = (slot + 1) & self->mask;
        }
        self->slots[slot].key = h;
        self->slots[slot].check = check;
        self->slots[slot].id = (int32_t)i;
    }
    Py_DECREF(seq);
    return 0;
}

/* ------------------------------------------------------------------ one document */
/* A text as read without the GIL: its code points, and whether to lower-case A-Z on reading
 * (an ASCII text, which str.lower would change in exactly that way). */
typedef struct {
    const void *data;
    Py_ssize_t len;
    int kind;
    int lower;
} TextView;

/* The code point at i, lower-cased for an ASCII text; with kind and lower known at compile
 * time (see the ALWAYS_INLINE callers) this is one load. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))
ALWAYS_INLINE Py_UCS4 read_char(int kind, int lower, const void *data, Py_ssize_t i) {
    Py_UCS4 c = kind == PyUnicode_1BYTE_KIND   ? ((const Py_UCS1 *)data)[i]
                : kind == PyUnicode_2BYTE_KIND ? ((const Py_UCS2 *)data)[i]
                                               : ((const Py_UCS4 *)data)[i];
    if (lower && c - 'A' < 26u) c += 'a' - 'A';
    return c;
}

/* What a code point below 256 is to the tokenizer; above, Py_UNICODE_ISALNUM decides, and in
 * unspaced mode a letter of a script without spaces is a LETTER, a token of its own. */
enum { OTHER = 0, WORD = 1, MARK = 2 /* ! or ? */, MARKUP_OPEN = 3, LETTER = 4 };
static unsigned char latin1_class[256]; /* filled when the module loads */

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

/* Token spans of one text and, with `hash`, each token's two hashes (w->spans, w->hashes):
 * the one tokenizer of every entry point. Markup is skipped as the regex does. Hashing while
 * splitting reads each character once; `hash` = 0 (a profile's "tokenize" stage) compiles the
 * same loop without it. Returns the number of tokens, -1 when out of memory. */
ALWAYS_INLINE Py_ssize_t tokenize_as(int kind, int lower, int hash, int unspaced,
                                     const void *data, Py_ssize_t len, Workspace *w) {
    Py_ssize_t i = 0, n = 0, capacity = 0;
    Span *spans = NULL;
    uint64_t *hashes = NULL;
    uint32_t *checks = NULL;
    while (i < len) {
        Py_UCS4 c = read_char(kind, lower, data, i);
        int cls = char_class(c, unspaced);
        if (cls == OTHER) {
            i++;
            continue;
        }
        if (cls == MARKUP_OPEN) {
            Py_ssize_t limit = i + MARKUP_MAX + 1, k = i + 1;
            while (k < len && k <= limit && read_char(kind, lower, data, k) != '>') k++;
            i = (k < len && k <= limit) ? k + 1 : i + 1;
            continue;
        }
        if (n == capacity) { /* grow the three arrays, kept in w's buffers */
            if (capacity)
                capacity *= 2;
            else { /* start from what earlier documents left: no move for most texts */
                capacity = w->spans.capacity / (Py_ssize_t)sizeof(Span);
                Py_ssize_t room = w->hashes.capacity /
                                  (Py_ssize_t)(sizeof(uint64_t) + sizeof(uint32_t));
                if (room < capacity) capacity = room;
                if (capacity < 256) capacity = 256;
            }
            w->spans.size = w->hashes.size = 0;
            if (buffer_reserve(&w->spans, capacity * (Py_ssize_t)sizeof(Span)) < 0 ||
                buffer_reserve(&w->hashes, capacity * (Py_ssize_t)(sizeof(uint64_t) +
                                                                  sizeof(uint32_t))) < 0)
                return -1;
            /* the hashes' capacity may have grown beyond `capacity`: move the checks up to
             * where the new capacity puts them */
            uint64_t *new_hashes = (uint64_t *)w->hashes.data;
            uint32_t *new_checks = (uint32_t *)(new_hashes + capacity);
            if (n && hash) memmove(new_checks, (uint32_t *)(new_hashes + capacity / 2),
                                   (size_t)n * sizeof(uint32_t));
            spans = (Span *)w->spans.data;
            hashes = new_hashes;
            checks = new_checks;
        }
        uint64_t h = FNV_OFFSET;
        uint32_t h2 = FNV32_OFFSET;
        Py_ssize_t start = i;
        if (cls == MARK) {
            if (hash) {
                h = fnv_step(h, c);
                h2 = fnv32_step(h2, c);
            }
            i++;
        } else if (cls == LETTER) { /* one letter, with the combining marks that follow it */
            do {
                if (hash) {
                    h = fnv_step(h, c);
                    h2 = fnv32_step(h2, c);
                }
                i++;
            } while (i < len && is_unspaced_mark(c = read_char(kind, lower, data, i)));
        } else {
            for (;;) { /* word characters, then maybe an apostrophe and more of them */
                while (i < len &&
                       char_class(c = read_char(kind, lower, data, i), unspaced) == WORD) {
                    if (hash) {
                        h = fnv_step(h, c);
                        h2 = fnv32_step(h2, c);
                    }
                    i++;
                }
                if (i + 1 < len && c == '\'' &&
                    char_class(read_char(kind, lower, data, i + 1), unspaced) == WORD) {
                    if (hash) {
                        h = fnv_step(h, '\'');
                        h2 = fnv32_step(h2, '\'');
                    }
                    i++;
                    continue;
                }
                break;
            }
        }
        spans[n] = (Span){start, i};
        if (hash) {
            hashes[n] = h;
            checks[n] = h2;
        }
        n++;
    }
    w->n_tokens = n;
    w->token_capacity = capacity;
    return n;
}

/* Every n-gram key of the text's tokens (from tokenize_as): word 1..max_n grams, then
 * character n-grams; 0 marks "no n-gram". Returns the number of keys, -1 when out of
 * memory. */
ALWAYS_INLINE Py_ssize_t keys_as(int kind, int lower, const Vocabulary *v, const void *data,
                                 Workspace *w) {
    const Span *tokens = (const Span *)w->spans.data;
    Py_ssize_t n_tokens = w->n_tokens;
    const uint64_t *token_hash = (const uint64_t *)w->hashes.data;
    const uint32_t *token_check = (const uint32_t *)(token_hash + w->token_capacity);
    const int max_n = v->max_n;
    const int char_min = v->char_min, char_max = v->char_max;
    Py_ssize_t n_word_keys = n_tokens * max_n, n_keys = n_word_keys;
    if (char_min) /* at most (padded length) x (number of lengths) per token */
        for (Py_ssize_t t = 0; t < n_tokens; t++)
            n_keys += (tokens[t].end - tokens[t].start + 2) * (char_max - char_min + 1);
    w->keys.size = 0;
    if (buffer_reserve(&w->keys, n_keys * (Py_ssize_t)(sizeof(uint64_t) + sizeof(uint32_t))) < 0)
        return -1;
    uint64_t *wanted = (uint64_t *)w->keys.data;
    uint32_t *wanted_check = (uint32_t *)(wanted + n_keys);
    for (Py_ssize_t t = 0; t < n_tokens; t++) {
        uint64_t key = 0;
        uint32_t check = 0;
        for (int n = 1; n <= max_n; n++) {
            Py_ssize_t i = t * max_n + n - 1;
            if (t + n <= n_tokens) {
                key = fold(key, token_hash[t + n - 1]);
                check = fold32(check, token_check[t + n - 1]);
                wanted[i] = nonzero(key);
                wanted_check[i] = check;
            } else {
                wanted[i] = 0;
            }
        }
    }
    Py_ssize_t next_key = n_word_keys;
    for (Py_ssize_t t = 0; char_min && t < n_tokens; t++) {
        Py_ssize_t padded = tokens[t].end - tokens[t].start + 2;
        for (Py_ssize_t first = 0; first + char_min <= padded; first++) {
            uint64_t h = FNV_OFFSET;
            uint32_t h2 = FNV32_OFFSET;
            for (Py_ssize_t j = first; j < padded && j - first < char_max; j++) {
                Py_UCS4 c = j == 0 ? '<'
                            : j == padded - 1
                                ? '>'
                                : read_char(kind, lower, data, tokens[t].start + j - 1);
                h = fnv_step(h, c);
                h2 = fnv32_step(h2, c);
                if (j - first + 1 >= char_min) {
                    wanted[next_key] = nonzero(fold(CHAR_SEED, h));
                    wanted_check[next_key] = fold32(CHAR_SEED32, h2);
                    next_key++;
                }
            }
        }
    }
    for (Py_ssize_t i = next_key; i < n_keys; i++) wanted[i] = 0;
    return n_keys;
}

/* The stages of a document, in order; a profile stops after one of them. */
enum { STAGE_TOKENIZE = 1, STAGE_HASH = 2, STAGE_LOOKUP = 3, STAGE_ALL = 4 };

/* The shared front half: text -> tokens -> keys, with kind and case folding specialised. */
static Py_ssize_t document_keys(const Vocabulary *v, const TextView *t, Workspace *w,
                                int stop_after) {
#define KEYS_AS(kind, lower)                                                                     \
    do {                                                                                        \
        if (stop_after == STAGE_TOKENIZE)                                                       \
            return tokenize_as(kind, lower, 0, v->unspaced, t->data, t->len, w) < 0 ? -1 : 0;   \
        if (tokenize_as(kind, lower, 1, v->unspaced, t->data, t->len, w) < 0) return -1;        \
        return keys_as(kind, lower, v, t->data, w);                                             \
    } while (0)
    if (t->lower) KEYS_AS(PyUnicode_1BYTE_KIND, 1);
    switch (t->kind) {
    case PyUnicode_1BYTE_KIND: KEYS_AS(PyUnicode_1BYTE_KIND, 0);
    case PyUnicode_2BYTE_KIND: KEYS_AS(PyUnicode_2BYTE_KIND, 0);
    default: KEYS_AS(PyUnicode_4BYTE_KIND, 0);
    }
#undef KEYS_AS
}

/* One document's sorted distinct vocabulary ids (w->found) and their counts (w->counts).
 * Returns how many, -1 when out of memory. */
static Py_ssize_t count_document(const Vocabulary *v, const TextView *t, Workspace *w,
                                 int stop_after) {
    Py_ssize_t n_keys = document_keys(v, t, w, stop_after);
    if (n_keys < 0) return -1;
    if (stop_after < STAGE_LOOKUP) return 0;
    const uint64_t *wanted = (const uint64_t *)w->keys.data;
    const uint32_t *wanted_check = (const uint32_t *)(wanted + n_keys);
    const Slot *slots = v->slots;
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
    for (Py_ssize_t i = 0; i < n_keys; i++) {
        if (i + PREFETCH_AHEAD < n_keys) __builtin_prefetch(&slots[wanted[i + PREFETCH_AHEAD] & mask]);
        uint64_t key = wanted[i];
        if (!key) continue;
        Py_ssize_t slot = (Py_ssize_t)(key & mask);
        while (slots[slot].key) {
            if (slots[slot].key == key && slots[slot].check == wanted_check[i]) {
                int32_t id = slots[slot].id;
                distinct += tally[id]++ == 0;
                seen[id >> 6] |= 1ULL << (id & 63); /* setting a set bit again is harmless */
                summary[id >> 12] |= 1ULL << ((id >> 6) & 63);
                break;
            }
            slot = (Py_ssize_t)((uint64_t)(slot + 1) & mask);
        }
    }
    /* The ids in ascending order, with their counts; every tally and bit is left zero. */
    int32_t *found = (int32_t *)w->found.data, *counts = (int32_t *)w->counts.data;
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
    return distinct;
}

/* ------------------------------------------------------------------ what a call makes */
enum { MODE_COUNT, MODE_TFIDF, MODE_LOGITS };

typedef struct {
    int mode, stop_after;
    /* MODE_TFIDF, MODE_LOGITS */
    const float *idf, *tf;
    Py_ssize_t tf_len;
    /* MODE_LOGITS */
    const float *coef, *bias;
    Py_ssize_t k;
    float *out;
    /* MODE_COUNT, MODE_TFIDF: the growing results */
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

/* Everything a block of texts needs, without the GIL. Returns 0, -1 when out of memory,
 * 1 when a longer tf table is needed. */
static int run_block(const Vocabulary *v, Workspace *w, Job *job, const TextView *views,
                     Py_ssize_t n_views, Py_ssize_t first_doc) {
    for (Py_ssize_t d = 0; d < n_views; d++) {
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
            /* A str subclass may lower-case its own way: ask it, as the Python path does. */
            int ascii = PyUnicode_CheckExact(text) && PyUnicode_IS_ASCII(text);
            PyObject *lowered = ascii ? Py_NewRef(text) : PyObject_CallMethod(text, "lower", NULL);
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
                                        PyUnicode_KIND(lowered), ascii};
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

PyMODINIT_FUNC PyInit__ngrams(void) {
    for (Py_UCS4 c = 0; c < 256; c++)
        latin1_class[c] = Py_UNICODE_ISALNUM(c) ? WORD
                          : c == '!' || c == '?' ? MARK
                          : c == '<'             ? MARKUP_OPEN
                                                 : OTHER;
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
