/*
 * Fast path of the dense student's max-pooled branch over runs of words (runtime/dense.py,
 * strongest_runs): per text and per detector, the largest relu(bias + sum over the run's
 * offsets k of tables[k, word at i + k]) over every run of `window` consecutive slots that
 * touches the text, the text padded with the zero row at both ends.
 *
 * numpy computes it by gathering an [n, runs, m] block per offset and reducing it: three
 * passes over memory that is written once and read once. Here each run's sum lives in m
 * floats of scratch, so a sentence costs about window * runs * m additions and nothing else.
 *
 * Floats: the sums are made in the order numpy makes them (offset 0, then + offset 1, ...,
 * float32), the maximum is exact, and the bias and ReLU are applied once per text as numpy
 * does, so the result is bit-identical to the numpy path (compiled with -ffp-contract=off).
 * Texts without words get zeros. The work runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The interface dense.py expects. */
#define DENSE_VERSION 1
#ifndef PREFETCH_RUNS
#define PREFETCH_RUNS 1
#endif

/* A C-contiguous buffer of `items` (any count when -1) numbers of `itemsize` bytes: floats
 * when `floating`, else signed integers (numpy's int64 says "l" on some platforms, "q" on
 * others). 0, or -1 with an exception set. */
static int get_buffer(PyObject *obj, Py_buffer *view, int floating, Py_ssize_t itemsize,
                      Py_ssize_t items, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    int kind_ok = floating ? strcmp(f, "f") == 0 : f[1] == 0 && strchr("ilq", f[0]) != NULL;
    if (!kind_ok || view->itemsize != itemsize || (items >= 0 && view->len != items * itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous array of %zd-byte %s%s", name,
                     itemsize, floating ? "floats" : "integers",
                     items >= 0 ? " of the expected length" : "");
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

static void text_runs(const int32_t *ids, Py_ssize_t length, const float *tables,
                      Py_ssize_t window, Py_ssize_t n_rows, Py_ssize_t m, const float *bias,
                      float *sum, float *out) {
    const int32_t pad = (int32_t)(n_rows - 2);
    for (Py_ssize_t j = 0; j < m; j++) out[j] = -INFINITY;
    for (Py_ssize_t run = 0; run < length + window - 1; run++) {
        for (Py_ssize_t k = 0; k < window; k++) { /* the rows PREFETCH_RUNS runs ahead */
            Py_ssize_t slot = run + PREFETCH_RUNS - (window - 1) + k;
            if (slot >= 0 && slot < length) {
                const char *ahead = (const char *)(tables + ((Py_ssize_t)k * n_rows + ids[slot]) * m);
                for (Py_ssize_t b = 0; b < m * (Py_ssize_t)sizeof(float); b += 64)
                    __builtin_prefetch(ahead + b);
            }
        }
        for (Py_ssize_t k = 0; k < window; k++) {
            Py_ssize_t slot = run - (window - 1) + k;
            int32_t row = slot >= 0 && slot < length ? ids[slot] : pad;
            const float *share = tables + ((Py_ssize_t)k * n_rows + row) * m;
            if (k == 0)
                memcpy(sum, share, (size_t)m * sizeof(float));
            else
                for (Py_ssize_t j = 0; j < m; j++) sum[j] = sum[j] + share[j];
        }
        for (Py_ssize_t j = 0; j < m; j++) out[j] = sum[j] > out[j] ? sum[j] : out[j];
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        float v = out[j] + bias[j];
        out[j] = v > 0.0f ? v : 0.0f; /* as np.maximum(v, 0.0): +0 for -0 */
    }
}

static PyObject *strongest_runs(PyObject *self, PyObject *args) {
    PyObject *ids_obj, *indptr_obj, *tables_obj, *bias_obj, *out_obj;
    Py_ssize_t window, n_rows;
    if (!PyArg_ParseTuple(args, "OOOnnOO", &ids_obj, &indptr_obj, &tables_obj, &window, &n_rows,
                          &bias_obj, &out_obj))
        return NULL;
    Py_buffer ids = {0}, indptr = {0}, tables = {0}, bias = {0}, out = {0};
    PyObject *result = NULL;
    float *sum = NULL;
    if (window < 1 || n_rows < 2) {
        PyErr_SetString(PyExc_ValueError, "window must be >= 1 and the tables hold >= 2 rows");
        return NULL;
    }
    if (get_buffer(bias_obj, &bias, 1, 4, -1, 0, "bias") < 0) goto done;
    Py_ssize_t m = bias.len / (Py_ssize_t)sizeof(float);
    if (get_buffer(ids_obj, &ids, 0, 4, -1, 0, "ids") < 0 ||
        get_buffer(indptr_obj, &indptr, 0, 8, -1, 0, "indptr") < 0 ||
        get_buffer(tables_obj, &tables, 1, 4, window * n_rows * m, 0, "tables") < 0)
        goto done;
    Py_ssize_t n_texts = indptr.len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (n_texts < 0 || get_buffer(out_obj, &out, 1, 4, n_texts * m, 1, "out") < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "indptr must not be empty");
        goto done;
    }
    const int32_t *id = ids.buf;
    const int64_t *ptr = indptr.buf;
    Py_ssize_t n_ids = ids.len / (Py_ssize_t)sizeof(int32_t);
    for (Py_ssize_t i = 0; i < n_texts; i++)
        if (ptr[i] < 0 || ptr[i] > ptr[i + 1] || ptr[i + 1] > n_ids) {
            PyErr_Format(PyExc_ValueError, "indptr is not ascending within the %zd ids at %zd",
                         n_ids, i);
            goto done;
        }
    for (Py_ssize_t i = 0; i < n_ids; i++)
        if (id[i] < 0 || id[i] >= n_rows - 2) {
            PyErr_Format(PyExc_ValueError, "word row %d at %zd is outside the %zd rows",
                         (int)id[i], i, n_rows - 2);
            goto done;
        }
    sum = malloc((size_t)(m > 0 ? m : 1) * sizeof(float));
    if (!sum) {
        PyErr_NoMemory();
        goto done;
    }
    float *dest = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_texts; i++) {
        Py_ssize_t length = (Py_ssize_t)(ptr[i + 1] - ptr[i]);
        if (length == 0)
            memset(dest + i * m, 0, (size_t)m * sizeof(float));
        else
            text_runs(id + ptr[i], length, tables.buf, window, n_rows, m, bias.buf, sum,
                      dest + i * m);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(sum);
    if (ids.obj) PyBuffer_Release(&ids);
    if (indptr.obj) PyBuffer_Release(&indptr);
    if (tables.obj) PyBuffer_Release(&tables);
    if (bias.obj) PyBuffer_Release(&bias);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"strongest_runs", strongest_runs, METH_VARARGS,
     "strongest_runs(ids int32, indptr int64, tables float32 [window, rows, m], window, rows, "
     "bias float32 [m], out float32 [n, m]) -> None: dense.strongest_runs into out; the "
     "tables' row rows - 2 is the padding (zeros)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dense",
    "C fast path of the dense student's runs of words (optional; dense.py falls back to numpy "
    "with identical results).", -1, methods,
};

PyMODINIT_FUNC PyInit__dense(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "VERSION", DENSE_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
