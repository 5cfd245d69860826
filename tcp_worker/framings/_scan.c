/* The two hot loops of the length-prefixed framers, compiled; the pure
 * reference (and the fallback when this module is not importable) is
 * tcp_worker/framings/scan.py, and the tests check that both agree.
 *
 * Hand-written because no library frames RFC 6587 octet counts or 4-byte
 * length prefixes, and the pure-Python loop costs ~1 us per frame.
 *
 * Each function takes whole, well-formed frames from `data` at `pos` and
 * appends their payloads to `frames`; it stops, returning where it stopped,
 * at the first frame that is anything else (unfinished, empty, over the
 * limit, bad framing): the Python caller handles that frame by every rule.
 * Every read is at an index checked to be below the buffer's length. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* octet_frames(data, pos, limit, reach, frames) -> pos
 * Frames `LEN SP MSG`: LEN is 1..reach-1 ASCII digits, MSG exactly LEN
 * bytes; one counted trailing "\n" is dropped; taken only when MSG (without
 * it) is 1..limit bytes and does not end with "\r". */
static PyObject *
octet_frames(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, limit, reach;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "y*nnnO!", &view, &pos, &limit, &reach,
                          &PyList_Type, &frames))
        return NULL;
    const unsigned char *buf = view.buf;
    const Py_ssize_t size = view.len;
    if (pos < 0)
        pos = size; /* never from the framers; read nothing */
    while (pos < size) {
        Py_ssize_t stop = size - pos < reach ? size : pos + reach;
        Py_ssize_t sp = pos, length = 0;
        while (sp < stop && buf[sp] >= '0' && buf[sp] <= '9') {
            if (length > (size - buf[sp] + '0') / 10)
                goto done; /* longer than what is left: not taken here */
            length = length * 10 + (buf[sp] - '0');
            sp++;
        }
        if (sp == pos || sp >= stop || buf[sp] != ' ')
            break;
        Py_ssize_t start = sp + 1;
        if (length > size - start)
            break; /* unfinished */
        Py_ssize_t end = start + length; /* <= size */
        Py_ssize_t cut = (end > start && buf[end - 1] == '\n') ? end - 1 : end;
        if (cut <= start || cut - start > limit || buf[cut - 1] == '\r')
            break;
        PyObject *frame = PyBytes_FromStringAndSize((const char *)buf + start, cut - start);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_DECREF(frame);
        pos = end;
    }
done:
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
}

/* length32_frames(data, pos, limit, frames) -> pos
 * Frames of a 4-byte big-endian length, then that many bytes; taken only
 * when the length is 1..limit and the whole frame is in `data`. */
static PyObject *
length32_frames(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, limit;
    PyObject *frames;
    if (!PyArg_ParseTuple(args, "y*nnO!", &view, &pos, &limit, &PyList_Type, &frames))
        return NULL;
    const unsigned char *buf = view.buf;
    const Py_ssize_t size = view.len;
    if (pos < 0)
        pos = size;
    while (size - pos >= 4) {
        const unsigned char *h = buf + pos;
        Py_ssize_t length = ((Py_ssize_t)h[0] << 24) | ((Py_ssize_t)h[1] << 16)
                            | ((Py_ssize_t)h[2] << 8) | (Py_ssize_t)h[3];
        if (length == 0 || length > limit || length > size - pos - 4)
            break;
        PyObject *frame = PyBytes_FromStringAndSize((const char *)h + 4, length);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_DECREF(frame);
        pos += 4 + length;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
}

static PyMethodDef methods[] = {
    {"octet_frames", octet_frames, METH_VARARGS, "Octet-counted frames from pos; returns the new pos."},
    {"length32_frames", length32_frames, METH_VARARGS, "length32 frames from pos; returns the new pos."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tcp_worker.framings._scan",
    "Compiled scans of the octet-count and length32 framers (see scan.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&module);
}
