/* The lb plugin's new-flow table fill, the loop only (maglev/lbtable.py has the rest and a
 * Python fallback): entries in the fill's order, each with its permutation's first bucket
 * and skip and the AS it stands for; round robin, each entry takes the first free bucket
 * along its permutation, until the table is full. Runs without the GIL. */
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

static PyMethodDef methods[] = {
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
