/* The lb plugin's new-flow table fill, its two hot parts (maglev/lbtable.py has the rest
 * and a Python fallback for both). The loop: entries in the fill's order, each with its permutation's first bucket
 * and skip and the AS it stands for; round robin, each entry takes the first free bucket
 * along its permutation, until the table is full. Runs without the GIL. And the
 * permutations themselves (VPP's one-word xxHash of each replica's seed), which in Python
 * cost about 2.5 µs each: 100 ASes of weight 100 are 10,000 of them. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *
lbfill_fill(PyObject *self, PyObject *args)
{
    Py_buffer nb, sb, ob;
    unsigned long length;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*k", &nb, &sb, &ob, &length))
        return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = nb.len / 4;
    if (nb.len % 4 || sb.len != nb.len || ob.len != nb.len || n == 0) {
        PyErr_SetString(PyExc_ValueError, "next, skip and owner must be equal, non-empty uint32 arrays");
        goto done;
    }
    if (length == 0 || (length & (length - 1)) || length > (1UL << 30)) {
        PyErr_SetString(PyExc_ValueError, "length must be a power of two up to 2^30");
        goto done;
    }
    uint32_t *next = malloc((size_t)nb.len);
    if (next == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(next, nb.buf, (size_t)nb.len);
    const uint32_t *skip = sb.buf, *owner = ob.buf;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length * 4);
    if (out == NULL) {
        free(next);
        goto done;
    }
    int32_t *table = (int32_t *)PyBytes_AS_STRING(out);
    uint32_t mask = (uint32_t)(length - 1);
    Py_BEGIN_ALLOW_THREADS
    for (unsigned long i = 0; i < length; i++)
        table[i] = -1;
    unsigned long left = length;
    for (;;) {
        for (Py_ssize_t j = 0; j < n; j++) {
            uint32_t c = next[j] & mask, s = skip[j] & mask;
            while (table[c] >= 0)
                c = (c + s) & mask;
            table[c] = (int32_t)owner[j];
            next[j] = (c + s) & mask;
            if (--left == 0)
                goto full;
        }
    }
full:
    Py_END_ALLOW_THREADS
    free(next);
done:
    PyBuffer_Release(&nb);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&ob);
    return out;
}

/* VPP's clib_xxhash of one 64-bit word (lbtable.xxhash64). */
static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t xxhash64(uint64_t key)
{
    const uint64_t p1 = 11400714785074694791ULL, p2 = 14029467366897019727ULL, p3 = 1609587929392839161ULL,
                   p4 = 9650029242287828579ULL, p5 = 2870177450012600261ULL;
    uint64_t h = (0x9E3779B97F4A7C13ULL + p5 + 8) ^ (rotl64(key * p2, 31) * p1);
    h = rotl64(h, 27) * p1 + p4;
    h ^= h >> 33;
    h *= p2;
    h ^= h >> 29;
    h *= p3;
    return h ^ (h >> 32);
}

static PyObject *
lbfill_permutations(PyObject *self, PyObject *args)
{
    unsigned long long base;
    unsigned long first, count, mask;
    (void)self;
    if (!PyArg_ParseTuple(args, "Kkkk", &base, &first, &count, &mask))
        return NULL;
    if (count > (1UL << 30) || mask > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_ValueError, "count must be at most 2^30 and mask a uint32");
        return NULL;
    }
    PyObject *nexts = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)count * 4);
    PyObject *skips = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)count * 4);
    if (nexts == NULL || skips == NULL) {
        Py_XDECREF(nexts);
        Py_XDECREF(skips);
        return NULL;
    }
    uint32_t *n = (uint32_t *)PyBytes_AS_STRING(nexts), *s = (uint32_t *)PyBytes_AS_STRING(skips);
    for (unsigned long i = 0; i < count; i++) {
        uint64_t x = xxhash64((uint64_t)base ^ (uint64_t)(first + i));
        n[i] = (uint32_t)(x >> 32) & (uint32_t)mask;
        s[i] = ((uint32_t)x | 1U) & (uint32_t)mask;
    }
    return Py_BuildValue("(NN)", nexts, skips);
}

static PyMethodDef methods[] = {
    {"permutations", lbfill_permutations, METH_VARARGS,
     "permutations(seed base, first replica, count, mask) -> (first buckets, skips) as bytes of uint32"},
    {"fill", lbfill_fill, METH_VARARGS,
     "fill(next, skip, owner, length) -> bytes of int32: bucket -> owner (next, skip, owner: uint32 arrays)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lbfill", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__lbfill(void)
{
    return PyModule_Create(&module);
}
