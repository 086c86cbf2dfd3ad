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

static inline uint64_t fnv_step(uint64_t h, Py_UCS4 c) {
    return (h ^ (uint64_t)c) * FNV_PRIME;
}

typedef struct {
    PyObject_HEAD
    uint64_t *keys;      /* hash of each slot's term, 0 = empty (hash forced non-zero) */
    int32_t *ids;        /* vocabulary id of each slot */
    Py_ssize_t mask;     /* table size - 1 */
    Py_UCS4 *chars;      /* all terms' code points, back to back */
    Py_ssize_t *offsets; /* term i is chars[offsets[i]:offsets[i+1]] */
    Py_ssize_t n_terms;
    int max_n;
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

static void Vocabulary_dealloc(Vocabulary *self) {
    PyMem_Free(self->keys);
    PyMem_Free(self->ids);
    PyMem_Free(self->chars);
    PyMem_Free(self->offsets);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Vocabulary_init(Vocabulary *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"terms", "max_n", NULL};
    PyObject *terms;
    int max_n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi", kwlist, &terms, &max_n)) return -1;
    if (max_n < 1) { PyErr_SetString(PyExc_ValueError, "max_n must be at least 1"); return -1; }
    /* __init__ may run twice on one object: start from a clean slate. */
    PyMem_Free(self->keys);
    PyMem_Free(self->ids);
    PyMem_Free(self->chars);
    PyMem_Free(self->offsets);
    self->keys = NULL;
    self->ids = NULL;
    self->chars = NULL;
    self->offsets = NULL;
    PyObject *seq = PySequence_Fast(terms, "terms must be a sequence of str");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(term)) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "term %zd is not a str", i);
            return -1;
        }
        total += PyUnicode_GET_LENGTH(term);
    }
    Py_ssize_t size = 1;
    while (size < 2 * n + 2) size *= 2;
    self->keys = PyMem_Calloc((size_t)size, sizeof(uint64_t));
    self->ids = PyMem_Calloc((size_t)size, sizeof(int32_t));
    self->chars = PyMem_Malloc((size_t)(total + 1) * sizeof(Py_UCS4));
    self->offsets = PyMem_Malloc((size_t)(n + 1) * sizeof(Py_ssize_t));
    if (!self->keys || !self->ids || !self->chars || !self->offsets) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    self->n_terms = n;
    self->max_n = max_n;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        int kind = PyUnicode_KIND(term);
        const void *data = PyUnicode_DATA(term);
        Py_ssize_t len = PyUnicode_GET_LENGTH(term);
        uint64_t h = FNV_OFFSET;
        self->offsets[i] = at;
        for (Py_ssize_t j = 0; j < len; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, j);
            self->chars[at++] = c;
            h = fnv_step(h, c);
        }
        h = nonzero(h);
        Py_ssize_t slot = (Py_ssize_t)(h & (uint64_t)self->mask);
        while (self->keys[slot]) slot = (slot + 1) & self->mask;
        self->keys[slot] = h;
        self->ids[slot] = (int32_t)i;
    }
    self->offsets[n] = at;
    Py_DECREF(seq);
    return 0;
}

typedef struct { Py_ssize_t start, end; } Span;

/* Is term `id` equal to tokens[first .. first+n) joined by single spaces? */
static int term_equals(const Vocabulary *v, int32_t id, int kind, const void *data,
                       const Span *tokens, Py_ssize_t first, int n) {
    const Py_UCS4 *term = v->chars + v->offsets[id];
    Py_ssize_t len = v->offsets[id + 1] - v->offsets[id], at = 0;
    for (int k = 0; k < n; k++) {
        if (k) {
            if (at >= len || term[at] != ' ') return 0;
            at++;
        }
        const Span *s = &tokens[first + k];
        if (len - at < s->end - s->start) return 0;
        for (Py_ssize_t j = s->start; j < s->end; j++)
            if (term[at++] != PyUnicode_READ(kind, data, j)) return 0;
    }
    return at == len;
}

static inline int is_word(Py_UCS4 c) { return Py_UNICODE_ISALNUM(c); }

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

static int compare_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static PyObject *Vocabulary_count(Vocabulary *self, PyObject *texts) {
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!seq) return NULL;
    Py_ssize_t n_docs = PySequence_Fast_GET_SIZE(seq);
    Buffer spans = {0}, found = {0}, ids = {0}, counts = {0}, lengths = {0};
    PyObject *result = NULL;
    for (Py_ssize_t d = 0; d < n_docs; d++) {
        PyObject *text = PySequence_Fast_GET_ITEM(seq, d);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "text %zd is not a str", d);
            goto done;
        }
        if (tokenize(text, &spans) < 0) goto done;
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        const Span *tokens = (const Span *)spans.data;
        Py_ssize_t n_tokens = spans.size / (Py_ssize_t)sizeof(Span);
        found.size = 0;
        for (Py_ssize_t t = 0; t < n_tokens; t++) {
            uint64_t h = FNV_OFFSET;
            for (int n = 1; n <= self->max_n && t + n <= n_tokens; n++) {
                if (n > 1) h = fnv_step(h, ' ');
                const Span *s = &tokens[t + n - 1];
                for (Py_ssize_t j = s->start; j < s->end; j++)
                    h = fnv_step(h, PyUnicode_READ(kind, data, j));
                uint64_t key = nonzero(h);
                Py_ssize_t slot = (Py_ssize_t)(key & (uint64_t)self->mask);
                while (self->keys[slot]) {
                    if (self->keys[slot] == key &&
                        term_equals(self, self->ids[slot], kind, data, tokens, t, n)) {
                        if (buffer_append(&found, &self->ids[slot], sizeof(int32_t)) < 0)
                            goto done;
                        break;
                    }
                    slot = (slot + 1) & self->mask;
                }
            }
        }
        int32_t *row = (int32_t *)found.data;
        Py_ssize_t n_found = found.size / (Py_ssize_t)sizeof(int32_t);
        if (n_found > 1) qsort(row, (size_t)n_found, sizeof(int32_t), compare_int32);
        int64_t distinct = 0;
        for (Py_ssize_t a = 0; a < n_found;) {
            Py_ssize_t b = a + 1;
            while (b < n_found && row[b] == row[a]) b++;
            int32_t count = (int32_t)(b - a);
            if (buffer_append(&ids, &row[a], sizeof(int32_t)) < 0 ||
                buffer_append(&counts, &count, sizeof(int32_t)) < 0)
                goto done;
            distinct++;
            a = b;
        }
        if (buffer_append(&lengths, &distinct, sizeof(int64_t)) < 0) goto done;
    }
    result = Py_BuildValue("(y#y#y#)", ids.data ? ids.data : "", ids.size,
                           counts.data ? counts.data : "", counts.size,
                           lengths.data ? lengths.data : "", lengths.size);
done:
    PyMem_Free(spans.data);
    PyMem_Free(found.data);
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
    .tp_doc = "Vocabulary(terms, max_n): an n-gram vocabulary for fast counting.",
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
