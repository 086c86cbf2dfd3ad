/*
 * Fast path of textdistill's n-gram featurizer: tokenise, look n-grams up in the vocabulary and
 * count them per document, in one pass of C over a batch.
 *
 * It reproduces, code point for code point, what the pure-Python path in featurizer.py does on
 * lower-cased text:  re.sub(r"<[^>]{0,40}>", " ", text)  then
 * re.findall(r"[^\W_]+(?:'[^\W_]+)*|[!?]", ...), then word 1..max_n grams joined by a space.
 * A word character is what Python's re calls one minus "_", i.e. Py_UNICODE_ISALNUM.
 * Lower-casing stays in Python (str.lower), whose full Unicode case mapping C lacks.
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
 * The output is, per document, the sorted distinct vocabulary ids and their counts: integers,
 * so the float arithmetic that follows (numpy, shared by both paths) gives identical results.
 * No numpy headers are needed: arrays go back to Python as bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define MARKUP_MAX 40
#define PREFETCH_AHEAD 12

static inline uint64_t fnv_step(uint64_t h, Py_UCS4 c) {
    return (h ^ (uint64_t)c) * FNV_PRIME;
}

typedef struct {
    uint64_t key;        /* hash of the slot's term, 0 = empty (hashes are forced non-zero) */
    uint32_t check;      /* a second, independent hash of the term */
    int32_t id;          /* vocabulary id; key, check and id share a cache line */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;         /* open-addressing hash table of the terms */
    int32_t *tally;      /* per-term counts of the document being counted, kept all zero between
                            documents; safe because count() holds the GIL throughout */
    int radix_passes;    /* 8-bit passes needed to sort ids below n_terms */
    Py_ssize_t mask;     /* table size - 1 */
    Py_ssize_t n_terms;
    int max_n;
    int char_min, char_max; /* character n-gram lengths; 0, 0: none */
} Vocabulary;

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

static int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->size + extra <= b->capacity) return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 1 << 16;
    while (capacity < b->size + extra) capacity *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)capacity);
    if (!data) { PyErr_NoMemory(); return -1; }
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

static inline uint64_t nonzero(uint64_t h) { return h ? h : 1; }

#define FNV32_OFFSET 2166136261U
#define FNV32_PRIME 16777619U

static inline uint32_t fnv32_step(uint32_t h, Py_UCS4 c) { return (h ^ (uint32_t)c) * FNV32_PRIME; }

static inline uint32_t fold32(uint32_t check, uint32_t token_hash) {
    check ^= token_hash + 0x9e3779b9U + (check << 6) + (check >> 2);
    return check * 0x85ebca6bU;
}

/* The key of an n-gram folds the FNV hashes of its tokens, so each token is hashed once. */
static inline uint64_t fold(uint64_t key, uint64_t token_hash) {
    key ^= token_hash + 0x9e3779b97f4a7c15ULL + (key << 6) + (key >> 2);
    return key * 0xff51afd7ed558ccdULL;
}

/* Character n-grams fold their one FNV hash into these seeds instead of 0, so that the same
 * characters as a character term and as a word are two different keys. */
#define CHAR_PREFIX '#'
#define CHAR_SEED 0x2545f4914f6cdd1dULL
#define CHAR_SEED32 0x27d4eb2dU

static void Vocabulary_dealloc(Vocabulary *self) {
    PyMem_Free(self->slots);
    PyMem_Free(self->tally);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Vocabulary_init(Vocabulary *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"terms", "max_n", "char_min", "char_max", NULL};
    PyObject *terms;
    int max_n, char_min = 0, char_max = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi|ii", kwlist, &terms, &max_n, &char_min,
                                     &char_max))
        return -1;
    if (max_n < 1) { PyErr_SetString(PyExc_ValueError, "max_n must be at least 1"); return -1; }
    if (char_min < 0 || char_max < char_min || (char_min == 0 && char_max != 0)) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= char_min <= char_max, or both 0");
        return -1;
    }
    /* __init__ may run twice on one object: start from a clean slate. */
    PyMem_Free(self->slots);
    PyMem_Free(self->tally);
    self->slots = NULL;
    self->tally = NULL;
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
    self->slots = PyMem_Calloc((size_t)size, sizeof(Slot));
    self->tally = PyMem_Calloc((size_t)n + 1, sizeof(int32_t));
    if (!self->slots || !self->tally) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    self->n_terms = n;
    self->max_n = max_n;
    self->char_min = char_min;
    self->char_max = char_max;
    self->radix_passes = 1;
    while (self->radix_passes < 4 && (n >> (8 * self->radix_passes)) > 0) self->radix_passes++;
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

typedef struct { Py_ssize_t start, end; } Span;

static inline int is_word(Py_UCS4 c) {
    if (c < 128) return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALNUM(c);
}

/* Split one lower-cased text into token spans, skipping markup as the regex does. */
static int tokenize(PyObject *text, Buffer *spans) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), i = 0;
    spans->size = 0;
    while (i < len) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (is_word(c)) {
            Py_ssize_t j = i + 1;
            for (;;) {
                while (j < len && is_word(PyUnicode_READ(kind, data, j))) j++;
                if (j + 1 < len && PyUnicode_READ(kind, data, j) == '\'' &&
                    is_word(PyUnicode_READ(kind, data, j + 1))) {
                    j += 2;
                    continue;
                }
                break;
            }
            Span s = {i, j};
            if (buffer_append(spans, &s, sizeof s) < 0) return -1;
            i = j;
        } else if (c == '!' || c == '?') {
            Span s = {i, i + 1};
            if (buffer_append(spans, &s, sizeof s) < 0) return -1;
            i++;
        } else if (c == '<') {
            Py_ssize_t limit = i + MARKUP_MAX + 1, k = i + 1;
            while (k < len && k <= limit && PyUnicode_READ(kind, data, k) != '>') k++;
            i = (k < len && k <= limit) ? k + 1 : i + 1;
        } else {
            i++;
        }
    }
    return 0;
}

/* LSD radix sort of non-negative ids, 8 bits a pass: no comparisons, no function pointers. */
static void radix_sort(int32_t *values, int32_t *scratch, Py_ssize_t n, int passes) {
    for (int pass = 0; pass < passes; pass++) {
        Py_ssize_t start[257] = {0};
        int shift = 8 * pass;
        for (Py_ssize_t i = 0; i < n; i++) start[((values[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) start[b + 1] += start[b];
        for (Py_ssize_t i = 0; i < n; i++) scratch[start[(values[i] >> shift) & 0xff]++] = values[i];
        memcpy(values, scratch, (size_t)n * sizeof(int32_t));
    }
}

static PyObject *Vocabulary_count(Vocabulary *self, PyObject *texts) {
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n_docs = PySequence_Fast_GET_SIZE(seq);
    Buffer spans = {0}, hashes = {0}, keys = {0}, found = {0}, scratch = {0}, ids = {0}, counts = {0},
           lengths = {0};
    PyObject *result = NULL;
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        PyObject *text = PySequence_Fast_GET_ITEM(seq, d);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "text %zd is not a str", d);
            goto done;
        }
        found.size = 0;
        if (tokenize(text, &spans) < 0) goto done;
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        const Span *tokens = (const Span *)spans.data;
        Py_ssize_t n_tokens = spans.size / (Py_ssize_t)sizeof(Span);
        found.size = 0;
        if (buffer_reserve(&hashes, n_tokens * (Py_ssize_t)(sizeof(uint64_t) + sizeof(uint32_t))) <
            0)
            goto done;
        uint64_t *token_hash = (uint64_t *)hashes.data;
        uint32_t *token_check = (uint32_t *)(token_hash + n_tokens);
        for (Py_ssize_t t = 0; t < n_tokens; t++) {
            uint64_t h = FNV_OFFSET;
            uint32_t h2 = FNV32_OFFSET;
            for (Py_ssize_t j = tokens[t].start; j < tokens[t].end; j++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, j);
                h = fnv_step(h, c);
                h2 = fnv32_step(h2, c);
            }
            token_hash[t] = h;
            token_check[t] = h2;
        }
        /* All keys first, then the look-ups with the table slots prefetched a few keys ahead:
         * the table is megabytes, so hiding its cache misses is most of the speed. */
        const int max_n = self->max_n;
        const int char_min = self->char_min, char_max = self->char_max;
        Py_ssize_t n_word_keys = n_tokens * max_n, n_keys = n_word_keys;
        if (char_min) /* at most (padded length) x (number of lengths) per token */
            for (Py_ssize_t t = 0; t < n_tokens; t++)
                n_keys += (tokens[t].end - tokens[t].start + 2) * (char_max - char_min + 1);
        if (buffer_reserve(&keys, n_keys * (Py_ssize_t)(sizeof(uint64_t) + sizeof(uint32_t))) < 0)
            goto done;
        uint64_t *wanted = (uint64_t *)keys.data;
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
                                    : PyUnicode_READ(kind, data, tokens[t].start + j - 1);
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
        for (Py_ssize_t i = 0; i < n_keys; i++) {
            if (i + PREFETCH_AHEAD < n_keys)
                __builtin_prefetch(&self->slots[wanted[i + PREFETCH_AHEAD] & (uint64_t)self->mask]);
            uint64_t key = wanted[i];
            if (!key) continue;
            Py_ssize_t slot = (Py_ssize_t)(key & (uint64_t)self->mask);
            while (self->slots[slot].key) {
                if (self->slots[slot].key == key && self->slots[slot].check == wanted_check[i]) {
                    int32_t id = self->slots[slot].id;
                    if (self->tally[id]++ == 0 && buffer_append(&found, &id, sizeof(int32_t)) < 0)
                        goto done;
                    break;
                }
                slot = (slot + 1) & self->mask;
            }
        }
        int32_t *row = (int32_t *)found.data;
        Py_ssize_t distinct = found.size / (Py_ssize_t)sizeof(int32_t);
        if (buffer_reserve(&scratch, found.size) < 0 || buffer_reserve(&ids, found.size) < 0 ||
            buffer_reserve(&counts, found.size) < 0)
            goto done;
        radix_sort(row, (int32_t *)scratch.data, distinct, self->radix_passes);
        int32_t *ids_out = (int32_t *)(ids.data + ids.size);
        int32_t *counts_out = (int32_t *)(counts.data + counts.size);
        for (Py_ssize_t a = 0; a < distinct; a++) {
            ids_out[a] = row[a];
            counts_out[a] = self->tally[row[a]];
            self->tally[row[a]] = 0;
        }
        ids.size += found.size;
        counts.size += found.size;
        int64_t n_distinct = (int64_t)distinct;
        if (buffer_append(&lengths, &n_distinct, sizeof(int64_t)) < 0) goto done;
    }
    result = Py_BuildValue("(y#y#y#)", ids.data ? ids.data : "", ids.size,
                           counts.data ? counts.data : "", counts.size,
                           lengths.data ? lengths.data : "", lengths.size);
done:
    if (!result) { /* an error mid-document: leave the tally all zero for the next call */
        for (Py_ssize_t a = 0; a < found.size / (Py_ssize_t)sizeof(int32_t); a++)
            self->tally[((int32_t *)found.data)[a]] = 0;
    }
    PyMem_Free(spans.data);
    PyMem_Free(hashes.data);
    PyMem_Free(keys.data);
    PyMem_Free(found.data);
    PyMem_Free(scratch.data);
    PyMem_Free(ids.data);
    PyMem_Free(counts.data);
    PyMem_Free(lengths.data);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef Vocabulary_methods[] = {
    {"count", (PyCFunction)Vocabulary_count, METH_O,
     "count(lowercased_texts) -> (ids int32 bytes, counts int32 bytes, row lengths int64 "
     "bytes): per document, sorted distinct vocabulary ids of its n-grams and their counts."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "textdistill.runtime._ngrams.Vocabulary",
    .tp_doc = "Vocabulary(terms, max_n, char_min=0, char_max=0): an n-gram vocabulary for "
              "fast counting.",
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
    if (PyType_Ready(&VocabularyType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&VocabularyType);
    if (PyModule_AddObject(m, "Vocabulary", (PyObject *)&VocabularyType) < 0) {
        Py_DECREF(&VocabularyType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
