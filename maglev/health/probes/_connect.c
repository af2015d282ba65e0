/* Connect checks in compiled code: the steady state of TCP health checking.
 *
 * At thousands of backends a Python connect check costs about 25 µs of
 * interpreter time on top of its system calls (docs/performance.md). Here a
 * check is: take an idle socket, connect(), wait in a private epoll set,
 * connect(AF_UNSPEC) to abort and keep the socket.
 *
 * Each socket joins the epoll set once, edge-triggered for reading and writing,
 * and stays in it while idle: a probe re-arms nothing (no epoll_ctl), and the
 * event's mask says whether the connect worked (getsockopt(SO_ERROR) only when it
 * did not). An event names the socket; the socket's owner (target and probe
 * generation, none while idle) says whose it is, so the hang-up of an abort or a
 * late answer to a probe that is over is ignored. epoll reads a socket's state
 * again when it reports it, so an event queued before the socket was reused
 * reports its state now (a connect in progress: nothing) or not at all.
 *
 * Two ways to use a target (one backend's address):
 *   start(tid, now)      one probe now; its result comes back to Python.
 *   autopilot(tid, ...)  probe again and again at an interval while the
 *                        answers are "connected": those are only counted
 *                        (stats()); the first other answer ends the autopilot
 *                        and goes back to Python, which runs the state machine.
 * So Python sees every probe of a backend that is not steadily up, and none of
 * one that is.
 *
 * A target with a request is a plain-HTTP check: once connected it sends the
 * request and reads the status line. Only a status in the accepted ranges counts
 * as a success here; anything else (another status, no status line, a closed
 * connection) goes back to Python with the bytes received, and Python's
 * HttpVerdict judges them, so there is one judge of record for failures.
 *
 * A target with TLS as well is an HTTPS check: OpenSSL (the system's libssl) runs
 * the handshake over the probe socket itself, no memory BIOs, and the target keeps
 * the last handshake's session so the next probe resumes it. A TLS failure drops
 * the session (the next probe is a full handshake that checks the certificate
 * again); a probe that never got that far keeps it. The judge is plain HTTP's.
 *
 * Time is never read here: every call that needs it is given `now` by the
 * caller (the reactor's clock), so tests can drive it with made-up times.
 * Timers are one binary heap with lazy deletion: an entry carries the
 * generation of its target, which changes whenever the target's probe does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_EVENTS 1024
#define MAX_IDLE 4096 /* idle sockets kept per pool: the peak of probes in flight */
#define ERR_TIMEOUT (-1)
#define ERR_SOCKET (-2)
#define ERR_L7 (-3)         /* HTTP: send() or recv() failed; detail says which and why */
#define ERR_JUDGE (-4)      /* HTTP: not clearly a success; the bytes go to Python's judge */
#define ERR_JUDGE_EOF (-5)  /* the same, and the backend closed the connection */
#define ERR_TLS (-6)        /* HTTPS: TLS failed (the handshake, a certificate, a record); detail says how */
#define ERR_TLS_TIMEOUT (-7) /* HTTPS: the handshake did not finish before the timeout */
#define HEAD_MAX 256        /* HTTP: status lines longer than this go to Python's judge */

enum phase { IDLE, WAITING, IN_FLIGHT };

/* An HTTPS check's TLS: what it was given, the session kept between probes, the probe's own. */
typedef struct {
    int verify;
    char *sni;          /* NULL: none (never an address) */
    char *name;         /* verified: the name or address the certificate must have */
    int name_is_ip;
    SSL_SESSION *session;
    SSL *ssl;           /* the probe in flight's, over its socket */
    int handshaken;
} Tls;

enum tls_end_how { TLS_DONE, TLS_FAILED, TLS_ABANDONED };
static void tls_end(Tls *tls, enum tls_end_how how);

typedef struct {
    int used;
    uint32_t gen;
    int pool;
    union { /* not a sockaddr_storage: 28 bytes, not 128, times 100,000 targets */
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    socklen_t addrlen;
    double timeout;
    enum phase phase;
    int autopilot;
    double interval;   /* autopilot: the base interval, jittered ±10% */
    double resolution; /* autopilot: the grid its starts wake on */
    double stall;      /* a start this much later than its grid allows: count from the start */
    double due;        /* the current or next probe was due then */
    double base;       /* the current probe's interval counts from here */
    double started;
    int fd;
    /* HTTP checks only */
    PyObject *request_obj; /* the caller's bytes, held: not a copy a target (100,000 targets) */
    char *request;         /* in request_obj */
    Py_ssize_t reqlen, written;
    int *statuses; /* accepted ranges: lo, hi, lo, hi, ... */
    Py_ssize_t nstatuses;
    int connected;
    int headlen;
    char *head; /* HEAD_MAX bytes while a probe is in flight (the engine's spares): none while idle */
    int last_status;
    Tls *tls; /* HTTPS checks only */
    /* counted by the autopilot since the last stats() */
    long sent;
    long ok;
    long *hist;
    double dur_sum;
    double last_duration;
    double last_time;
    double last_late;
} Target;

typedef struct {
    double wake; /* on the grid: fire when now >= wake */
    uint32_t tid;
    uint32_t gen;
} Entry;

typedef struct {
    int *fds;
    Py_ssize_t len, cap;
} Pool;

typedef struct {
    PyObject_HEAD
    int ep;
    PyObject *opener; /* opener(pool) -> a new non-blocking socket's fd, now ours */
    double timeout_resolution;
    double *bounds;
    Py_ssize_t nbounds;
    double *late_bounds; /* how late autopilot starts were: one histogram for the engine */
    Py_ssize_t nlate;
    long long *late_hist;
    double late_sum;
    Target *targets;
    Py_ssize_t ntargets, captargets;
    uint32_t *free_ids;
    Py_ssize_t nfree, capfree;
    Entry *heap;
    Py_ssize_t nheap, capheap;
    Pool *pools;
    Py_ssize_t npools, cappools;
    uint64_t *owners; /* by fd: the probe it serves (owner_of), or NO_OWNER while idle */
    Py_ssize_t capowners;
    SSL_CTX *tls_ctx[2]; /* without and with verification; made when first needed */
    char **heads;        /* spare HEAD_MAX buffers: as many as HTTP probes were in flight at once */
    Py_ssize_t nheads, capheads;
    uint64_t rng;
    long long opened;
    long long fired_wakes;
} Engine;

static int grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t size) {
    if (need <= *cap)
        return 0;
    Py_ssize_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = PyMem_Realloc(*p, (size_t)n * size);
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    memset((char *)q + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
    *p = q;
    *cap = n;
    return 0;
}

static double rand01(Engine *e) {
    /* xorshift64*: the jitter needs spread, not secrecy */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return (double)((e->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double on_grid(double t, double res) { return res > 0.0 ? ceil(t / res) * res : t; }

/* --- the timer heap ------------------------------------------------------------ */

static int heap_push(Engine *e, double wake, uint32_t tid, uint32_t gen) {
    if (grow((void **)&e->heap, &e->capheap, e->nheap + 1, sizeof(Entry)) < 0)
        return -1;
    Py_ssize_t i = e->nheap++;
    while (i > 0) {
        Py_ssize_t up = (i - 1) / 2;
        if (e->heap[up].wake <= wake)
            break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i].wake = wake;
    e->heap[i].tid = tid;
    e->heap[i].gen = gen;
    return 0;
}

static void heap_pop(Engine *e) {
    Entry last = e->heap[--e->nheap];
    Py_ssize_t i = 0, n = e->nheap;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && e->heap[c + 1].wake < e->heap[c].wake)
            c++;
        if (e->heap[c].wake >= last.wake)
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n)
        e->heap[i] = last;
}

static int live(Engine *e, const Entry *x) {
    if (x->tid >= (uint32_t)e->ntargets)
        return 0;
    Target *t = &e->targets[x->tid];
    return t->used && t->gen == x->gen && t->phase != IDLE;
}

static void drop_stale_top(Engine *e) {
    while (e->nheap && !live(e, &e->heap[0]))
        heap_pop(e);
}

/* --- sockets --------------------------------------------------------------------- */

#define NO_OWNER 0
#define SOCKET_EVENTS (EPOLLIN | EPOLLOUT | EPOLLET) /* for as long as the socket is ours */

static uint64_t owner_of(uint32_t tid, uint32_t gen) { return ((uint64_t)tid + 1) << 32 | gen; }

static void disown(Engine *e, int fd) {
    if (fd >= 0 && fd < e->capowners)
        e->owners[fd] = NO_OWNER;
}

/* Out of the set before close(): a copy of the descriptor (a child between fork and exec)
 * would keep the old registration alive, and its events would name the number's next socket. */
static void close_socket(Engine *e, int fd) {
    disown(e, fd);
    epoll_ctl(e->ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static int take_socket(Engine *e, Target *t) {
    Pool *p = &e->pools[t->pool];
    if (p->len)
        return p->fds[--p->len];
    if (!e->opener) {
        PyErr_SetString(PyExc_ValueError, "the connect-check engine is closed");
        return -1;
    }
    PyObject *r = PyObject_CallFunction(e->opener, "i", t->pool);
    if (!r)
        return -1;
    long fd = PyLong_AsLong(r);
    Py_DECREF(r);
    if (fd < 0 || fd > INT32_MAX) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "opener returned no file descriptor");
        return -1;
    }
    e->opened++;
    if (grow((void **)&e->owners, &e->capowners, fd + 1, sizeof(uint64_t)) < 0) {
        close((int)fd);
        return -1;
    }
    e->owners[fd] = NO_OWNER;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = SOCKET_EVENTS;
    ev.data.fd = (int)fd;
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, (int)fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close((int)fd);
        return -1;
    }
    return (int)fd;
}

/* The probe is over: disconnect and keep the socket (in the epoll set, owned by no one), or
 * close it. */
static void release_socket(Engine *e, Target *t, int reuse) {
    int fd = t->fd;
    t->fd = -1;
    if (fd < 0)
        return;
    disown(e, fd); /* the abort's hang-up, or a late answer, is no one's event */
    Pool *p = &e->pools[t->pool];
    if (reuse && p->len < MAX_IDLE) {
        struct sockaddr unspec;
        memset(&unspec, 0, sizeof unspec);
        unspec.sa_family = AF_UNSPEC;
        /* connect(AF_UNSPEC): abort (RST if a connection is open), ready to connect again */
        if (connect(fd, &unspec, sizeof unspec) == 0 &&
            grow((void **)&p->fds, &p->cap, p->len + 1, sizeof(int)) == 0) {
            p->fds[p->len++] = fd;
            return;
        }
        PyErr_Clear();
    }
    close_socket(e, fd);
}

/* --- results ----------------------------------------------------------------------- */

/* A result for Python: (tid, ok, err, duration, detail, base, late, data). err is 0, an
 * errno, or one of the ERR_ codes (with ERR_SOCKET and ERR_L7, detail says why). data is
 * what an HTTP check received once connected (None before that, or for connect checks). */
static int report(PyObject **out, uint32_t tid, int ok, int err, double duration, PyObject *detail,
                  double base, double late, PyObject *data) {
    if (!*out && !(*out = PyList_New(0)))
        return -1;
    PyObject *r = Py_BuildValue("(IiidOddO)", tid, ok, err, duration, detail ? detail : Py_None, base, late,
                                data ? data : Py_None);
    if (!r)
        return -1;
    int rc = PyList_Append(*out, r);
    Py_DECREF(r);
    return rc;
}

static void count_late(Engine *e, double late) {
    Py_ssize_t i = 0;
    while (i < e->nlate && e->late_bounds[i] < late)
        i++; /* as bisect_left */
    e->late_hist[i]++;
    e->late_sum += late;
}

static void count_ok(Engine *e, Target *t, double duration, double now) {
    Py_ssize_t i = 0;
    while (i < e->nbounds && e->bounds[i] < duration)
        i++; /* as bisect_left */
    t->hist[i]++;
    t->ok++;
    t->dur_sum += duration;
    t->last_duration = duration;
    t->last_time = now;
}

static int schedule_next(Engine *e, Target *t, uint32_t tid, double now) {
    double next = t->base + t->interval * (0.9 + 0.2 * rand01(e));
    t->due = next > now ? next : now;
    t->phase = WAITING;
    return heap_push(e, on_grid(t->due, t->resolution), tid, t->gen);
}

/* HTTP: a buffer for the status line, while a probe is in flight. Idle targets hold none: a
 * spare is taken when a probe begins and given back when it ends. */
static char *take_head(Engine *e) {
    if (e->nheads)
        return e->heads[--e->nheads];
    char *head = PyMem_Malloc(HEAD_MAX);
    if (!head)
        PyErr_NoMemory();
    return head;
}

static void give_head(Engine *e, Target *t) {
    if (!t->head)
        return;
    if (e->nheads == e->capheads && e->nheads < MAX_IDLE) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb); /* a spare not kept is no error, and the caller's stays */
        if (grow((void **)&e->heads, &e->capheads, e->nheads + 1, sizeof(char *)) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    if (e->nheads < e->capheads)
        e->heads[e->nheads++] = t->head;
    else
        PyMem_Free(t->head);
    t->head = NULL;
}

/* The probe of target tid ended: err 0 means connected (and for HTTP, an accepted status). */
static int finish(Engine *e, uint32_t tid, int err, double now, PyObject **out, PyObject *detail) {
    Target *t = &e->targets[tid];
    double duration = now - t->started;
    if (duration < 0.0)
        duration = 0.0;
    if (t->tls)
        tls_end(t->tls, err == ERR_TLS ? TLS_FAILED : TLS_DONE);
    release_socket(e, t, 1);
    t->gen++;
    t->phase = IDLE;
    if (t->autopilot && err == 0) {
        give_head(e, t);
        count_ok(e, t, duration, now);
        return schedule_next(e, t, tid, now);
    }
    t->autopilot = 0;
    PyObject *data = NULL;
    if (t->request && t->connected && t->head && !(data = PyBytes_FromStringAndSize(t->head, t->headlen))) {
        give_head(e, t);
        return -1;
    }
    give_head(e, t);
    int rc = report(out, tid, err == 0, err, duration, detail, t->base, t->last_late, data);
    Py_XDECREF(data);
    return rc;
}

/* HTTP: send() or recv() failed. */
static int finish_l7(Engine *e, uint32_t tid, const char *what, int err, double now, PyObject **out) {
    PyObject *detail = PyUnicode_FromFormat("%s: %s", what, strerror(err));
    if (!detail)
        return -1;
    int rc = finish(e, tid, ERR_L7, now, out, detail);
    Py_DECREF(detail);
    return rc;
}

/* HTTP: the status of the complete status line in head[0..end), or 0 when it is not one
 * (as HttpVerdict reads it: "HTTP/..." SP three digits, then SP or the end). */
static int status_of(const char *head, int end) {
    if (end < 9 || memcmp(head, "HTTP/", 5) != 0)
        return 0;
    const char *sp = memchr(head, ' ', (size_t)end);
    if (!sp || sp + 4 > head + end)
        return 0;
    for (int i = 1; i <= 3; i++)
        if (sp[i] < '0' || sp[i] > '9')
            return 0;
    if (sp + 4 < head + end && sp[4] != ' ')
        return 0;
    return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static int accepted(const Target *t, int status) {
    for (Py_ssize_t i = 0; i + 1 < t->nstatuses; i += 2)
        if (status >= t->statuses[i] && status <= t->statuses[i + 1])
            return 1;
    return 0;
}

/* HTTP: the head read so far decides once it holds the status line. 1: the probe is over,
 * 0: read on, -1: an exception. */
static int judge_head(Engine *e, uint32_t tid, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    const char *crlf = NULL;
    for (int i = 0; i + 1 < t->headlen; i++)
        if (t->head[i] == '\r' && t->head[i + 1] == '\n') {
            crlf = t->head + i;
            break;
        }
    int err;
    if (crlf) {
        int status = status_of(t->head, (int)(crlf - t->head));
        err = status && accepted(t, status) ? 0 : ERR_JUDGE;
        if (!err)
            t->last_status = status;
    } else if (t->headlen == HEAD_MAX) {
        err = ERR_JUDGE;
    } else {
        return 0;
    }
    return finish(e, tid, err, now, out, NULL) < 0 ? -1 : 1;
}

/* An HTTP check's socket is ready (``events``): send the request, or read the status line.
 * What is not done yet waits for the socket's next edge: more room to send (after a send
 * that could not take everything), or more bytes. */
static int http_step(Engine *e, uint32_t tid, uint32_t events, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    if (t->written < t->reqlen) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return 0;
        ssize_t n = send(t->fd, t->request + t->written, (size_t)(t->reqlen - t->written), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return finish_l7(e, tid, "send", errno, now, out);
        if (n > 0)
            t->written += n;
        return 0; /* the answer comes later */
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return 0; /* room to send, which a sent request no longer needs */
    ssize_t n = recv(t->fd, t->head + t->headlen, (size_t)(HEAD_MAX - t->headlen), 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return finish_l7(e, tid, "recv", errno, now, out);
    } else if (n == 0) {
        return finish(e, tid, ERR_JUDGE_EOF, now, out, NULL);
    } else {
        t->headlen += (int)n;
        if (judge_head(e, tid, now, out) < 0)
            return -1;
    }
    return 0;
}

/* --- TLS ----------------------------------------------------------------------------- */

/* One client context per kind of verification, made when a target first needs it; the
 * settings are tls.py's (the Python path's), so both paths offer the same handshake. */
static SSL_CTX *tls_context(Engine *e, int verify) {
    if (e->tls_ctx[verify])
        return e->tls_ctx[verify];
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    /* One classic key share: a health check has nothing to keep secret for years, and a
     * post-quantum hybrid costs more than the rest of a resumed handshake. */
    if (!ctx || SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 || SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn) ||
        (verify && SSL_CTX_set_default_verify_paths(ctx) != 1)) {
        unsigned long code = ERR_get_error();
        PyErr_Format(PyExc_RuntimeError, "OpenSSL could not make an HTTPS client context: %s",
                     code ? ERR_reason_error_string(code) : "no reason given");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* A backend that closes after its answer without close_notify is no protocol error to us. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_read_ahead(ctx, 1); /* a record in one read, not its header and then its body */
    e->tls_ctx[verify] = ctx;
    return ctx;
}

/* The probe's TLS is over: keep this handshake's session (TLS_DONE), drop the kept one
 * (TLS_FAILED: a resumed session is never verified again), or change nothing (TLS_ABANDONED:
 * cancelled, nothing learnt). The connection is let go as if shut down, or OpenSSL marks its
 * session as not resumable; the socket itself is reset, as every probe's. */
static void tls_end(Tls *tls, enum tls_end_how how) {
    SSL *ssl = tls->ssl;
    if (how == TLS_FAILED) {
        SSL_SESSION_free(tls->session);
        tls->session = NULL;
    }
    if (!ssl)
        return;
    tls->ssl = NULL;
    if (how == TLS_DONE && tls->handshaken) {
        SSL_SESSION *s = SSL_get1_session(ssl); /* in TLS 1.3, the newest ticket's */
        if (s) {
            SSL_SESSION_free(tls->session);
            tls->session = s;
        }
    }
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    tls->handshaken = 0;
    ERR_clear_error();
}

static void tls_free(Tls *tls) {
    if (!tls)
        return;
    tls_end(tls, TLS_FAILED);
    PyMem_Free(tls->sni);
    PyMem_Free(tls->name);
    PyMem_Free(tls);
}

static void append_lower(char *buf, size_t cap, size_t *len, const char *text) {
    for (; *text && *len + 1 < cap; text++)
        buf[(*len)++] = *text == '_' ? ' ' : (char)(*text >= 'A' && *text <= 'Z' ? *text - 'A' + 'a' : *text);
    buf[*len] = '\0';
}

/* "TLS: " and OpenSSL's reasons for what just failed, as tls.py words them: "TLS: certificate
 * verify failed", "TLS: wrong version number". */
static PyObject *tls_reasons(void) {
    char buf[320] = "TLS: ";
    size_t len = 5;
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        const char *reason = ERR_reason_error_string(code);
        if (!reason || strstr(buf + 5, reason))
            continue; /* no text, or said already */
        if (len > 5)
            append_lower(buf, sizeof buf, &len, "; ");
        append_lower(buf, sizeof buf, &len, reason);
    }
    if (len == 5)
        append_lower(buf, sizeof buf, &len, "failed, and OpenSSL gave no reason");
    return PyUnicode_FromString(buf);
}

static int finish_detail(Engine *e, uint32_t tid, int err, double now, PyObject **out, PyObject *detail) {
    if (!detail)
        return -1;
    int rc = finish(e, tid, err, now, out, detail);
    Py_DECREF(detail);
    return rc;
}

/* An SSL_ call returned ``r`` (``sys_err``: errno right after it): wait for the socket's next
 * edge, or end the probe as tls.py would judge it. */
static int tls_wait_or_end(Engine *e, uint32_t tid, int r, int sys_err, const char *call, double now,
                           PyObject **out) {
    Target *t = &e->targets[tid];
    Tls *tls = t->tls;
    int why = SSL_get_error(tls->ssl, r);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    char reason[128];
    size_t len = 0;
    reason[0] = '\0';
    if (why == SSL_ERROR_SYSCALL && sys_err)
        append_lower(reason, sizeof reason, &len, strerror(sys_err));
    if (tls->handshaken) {
        /* The peer's end (close_notify, or the connection's end without one); a failed
         * system call; or a TLS failure in a record. */
        if (why == SSL_ERROR_ZERO_RETURN || (why == SSL_ERROR_SYSCALL && !sys_err)) {
            ERR_clear_error();
            return finish(e, tid, ERR_JUDGE_EOF, now, out, NULL);
        }
        if (why == SSL_ERROR_SYSCALL) {
            ERR_clear_error();
            return finish_detail(e, tid, ERR_L7, now, out, PyUnicode_FromFormat("%s: %s", call, reason));
        }
        return finish_detail(e, tid, ERR_TLS, now, out, tls_reasons());
    }
    long verified = SSL_get_verify_result(tls->ssl);
    PyObject *detail;
    if (len) {
        detail = PyUnicode_FromFormat("TLS: %s during the handshake", reason);
    } else if (why == SSL_ERROR_ZERO_RETURN || why == SSL_ERROR_SYSCALL ||
               ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        detail = PyUnicode_FromString("TLS: connection closed during the handshake");
    } else if (tls->name && (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
        detail = PyUnicode_FromFormat("TLS: the certificate is not for %s", tls->name);
    } else {
        detail = tls_reasons();
    }
    ERR_clear_error();
    return finish_detail(e, tid, ERR_TLS, now, out, detail);
}

/* An HTTPS check's socket is ready: go on with the handshake, then send the request and
 * read the status line through TLS. Whatever TLS waits for (bytes, or room to send) comes
 * with the socket's next edge: OpenSSL reads until the socket has nothing more. */
static int tls_step(Engine *e, uint32_t tid, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    Tls *tls = t->tls;
    SSL *ssl = tls->ssl;
    size_t n;
    int r;
    ERR_clear_error();
    if (!tls->handshaken) {
        errno = 0;
        if ((r = SSL_do_handshake(ssl)) != 1)
            return tls_wait_or_end(e, tid, r, errno, "recv", now, out);
        tls->handshaken = 1;
    }
    while (t->written < t->reqlen) {
        errno = 0; /* a retry after WANT_WRITE is the same call: OpenSSL requires it */
        if ((r = SSL_write_ex(ssl, t->request + t->written, (size_t)(t->reqlen - t->written), &n)) != 1)
            return tls_wait_or_end(e, tid, r, errno, "send", now, out);
        t->written += (Py_ssize_t)n;
    }
    for (;;) {
        errno = 0;
        if ((r = SSL_read_ex(ssl, t->head + t->headlen, (size_t)(HEAD_MAX - t->headlen), &n)) != 1)
            return tls_wait_or_end(e, tid, r, errno, "recv", now, out);
        t->headlen += (int)n;
        int over = judge_head(e, tid, now, out);
        if (over)
            return over < 0 ? -1 : 0;
    }
}

/* An HTTPS check connected: its TLS starts over the socket, resuming the kept session. */
static int tls_begin(Engine *e, uint32_t tid, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    Tls *tls = t->tls;
    ERR_clear_error();
    SSL *ssl = SSL_new(e->tls_ctx[tls->verify]);
    int ok = ssl && SSL_set_fd(ssl, t->fd) == 1 && (!tls->sni || SSL_set_tlsext_host_name(ssl, tls->sni) == 1);
    if (ok && tls->name) {
        if (tls->name_is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tls->name) == 1;
        } else {
            /* the name must be a subject alternative name, as service_identity wants */
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, tls->name) == 1;
        }
    }
    if (ok && tls->session)
        ok = SSL_set_session(ssl, tls->session) == 1;
    if (!ok) {
        SSL_free(ssl);
        return finish_detail(e, tid, ERR_TLS, now, out, tls_reasons());
    }
    SSL_set_connect_state(ssl);
    tls->ssl = ssl;
    tls->handshaken = 0;
    return tls_step(e, tid, now, out);
}

/* The connect is over (``events`` without an error: connected). */
static int connected(Engine *e, uint32_t tid, uint32_t events, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    if (events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        /* a hang-up without an error is not a connection either (never seen from a connect) */
        return finish(e, tid, err ? err : ECONNABORTED, now, out, NULL);
    }
    if (!t->request)
        return finish(e, tid, 0, now, out, NULL);
    t->connected = 1;
    if (t->tls)
        return tls_begin(e, tid, now, out);
    return http_step(e, tid, EPOLLOUT, now, out);
}

/* Start the probe of target tid now; a failure before connect is reported at once. */
static int launch(Engine *e, uint32_t tid, double now, PyObject **out) {
    Target *t = &e->targets[tid];
    if (t->request && !t->head && !(t->head = take_head(e)))
        return -1;
    t->gen++;
    t->started = now;
    int fd = take_socket(e, t);
    if (fd < 0) {
        /* no socket (a namespace gone, out of files): a failed probe, not an exception */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *detail = value ? PyObject_Str(value) : NULL;
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        if (!detail) {
            PyErr_Clear();
            detail = PyUnicode_FromString("no socket");
            if (!detail)
                return -1;
        }
        t->phase = IDLE;
        t->autopilot = 0;
        give_head(e, t);
        int rc = report(out, tid, 0, ERR_SOCKET, 0.0, detail, t->base, t->last_late, NULL);
        Py_DECREF(detail);
        return rc;
    }
    t->fd = fd;
    e->owners[fd] = owner_of(tid, t->gen);
    t->phase = IN_FLIGHT;
    t->connected = 0;
    t->written = 0;
    t->headlen = 0;
    if (!t->request) {
        int zero = 0;
        /* Hold back the handshake's last ACK: the abort's RST goes out instead, so the
         * backend never has to accept (as HAProxy). A disconnect clears it: set per connect. */
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
    }
    /* the socket is in the epoll set already: its edge comes when the connect is over */
    int rc = connect(fd, (struct sockaddr *)&t->addr, t->addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS)
        return heap_push(e, on_grid(now + t->timeout, e->timeout_resolution), tid, t->gen);
    if (err == 0)
        return connected(e, tid, EPOLLOUT, now, out);
    return finish(e, tid, err, now, out, NULL);
}

/* Handle every socket that is ready. */
static int drain(Engine *e, double now, PyObject **out) {
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(e->ep, events, MAX_EVENTS, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint64_t owner = fd >= 0 && fd < e->capowners ? e->owners[fd] : NO_OWNER;
            if (owner == NO_OWNER)
                continue; /* an idle socket: the hang-up of its abort */
            uint32_t tid = (uint32_t)(owner >> 32) - 1, gen = (uint32_t)owner, ev = events[i].events;
            if (tid >= (uint32_t)e->ntargets)
                continue;
            Target *t = &e->targets[tid];
            if (!t->used || t->gen != gen || t->phase != IN_FLIGHT || t->fd != fd)
                continue; /* an event for a probe that is already over */
            int rc;
            if (t->connected && t->tls)
                rc = tls_step(e, tid, now, out);
            else if (t->connected)
                rc = http_step(e, tid, ev, now, out);
            else if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                rc = connected(e, tid, ev, now, out);
            else
                continue; /* still connecting */
            if (rc < 0)
                return -1;
        }
        if (n < MAX_EVENTS)
            return 0;
    }
}

/* --- the Python type ------------------------------------------------------------------ */

static Target *target(Engine *e, unsigned int tid) {
    if (tid >= (unsigned int)e->ntargets || !e->targets[tid].used) {
        PyErr_Format(PyExc_KeyError, "no connect-check target %u", tid);
        return NULL;
    }
    return &e->targets[tid];
}

static int check_open(Engine *e) {
    if (e->ep < 0) {
        PyErr_SetString(PyExc_ValueError, "the connect-check engine is closed");
        return -1;
    }
    return 0;
}

static PyObject *result_or_none(PyObject *out) {
    if (out)
        return out;
    Py_RETURN_NONE;
}

static PyObject *Engine_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Engine *e = (Engine *)PyType_GenericNew(type, args, kw);
    if (e)
        e->ep = -1; /* nothing to close until __init__ opens it */
    return (PyObject *)e;
}

/* A sequence of floats as a new array of n + 1 (the last slot is the +Inf bucket's). */
static double *read_bounds(PyObject *bounds, Py_ssize_t *n) {
    PyObject *seq = PySequence_Fast(bounds, "bounds must be a sequence of floats");
    if (!seq)
        return NULL;
    *n = PySequence_Fast_GET_SIZE(seq);
    double *out = PyMem_Calloc((size_t)*n + 1, sizeof(double));
    if (!out) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++)
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    if (PyErr_Occurred()) {
        PyMem_Free(out);
        return NULL;
    }
    return out;
}

static int Engine_init(Engine *e, PyObject *args, PyObject *kw) {
    static char *names[] = {"opener", "bounds", "timeout_resolution", "seed", "late_bounds", NULL};
    PyObject *opener, *bounds, *late_bounds = NULL;
    double res;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOdK|O", names, &opener, &bounds, &res, &seed, &late_bounds))
        return -1;
    if (e->ep >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "the connect-check engine is already initialised");
        return -1;
    }
    if (!PyCallable_Check(opener) || res < 0.0) {
        PyErr_SetString(PyExc_ValueError, "need a callable opener and a resolution >= 0");
        return -1;
    }
    e->bounds = read_bounds(bounds, &e->nbounds);
    if (!e->bounds)
        return -1;
    if (late_bounds) {
        e->late_bounds = read_bounds(late_bounds, &e->nlate);
        if (!e->late_bounds)
            return -1;
    } else {
        e->late_bounds = PyMem_Calloc(1, sizeof(double));
        if (!e->late_bounds) {
            PyErr_NoMemory();
            return -1;
        }
    }
    e->late_hist = PyMem_Calloc((size_t)e->nlate + 1, sizeof(long long));
    if (!e->late_hist) {
        PyErr_NoMemory();
        return -1;
    }
    e->timeout_resolution = res;
    e->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    if (e->ep < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    Py_INCREF(opener);
    e->opener = opener;
    return 0;
}

static void free_http(Target *t) {
    tls_free(t->tls);
    t->tls = NULL;
    Py_CLEAR(t->request_obj);
    PyMem_Free(t->head);
    PyMem_Free(t->statuses);
    t->request = NULL;
    t->head = NULL;
    t->statuses = NULL;
    t->reqlen = t->nstatuses = 0;
}

static void close_all(Engine *e) {
    for (Py_ssize_t i = 0; i < e->ntargets; i++) {
        Target *t = &e->targets[i];
        if (t->used && t->fd >= 0)
            close(t->fd);
        t->fd = -1;
        PyMem_Free(t->hist);
        t->hist = NULL;
        if (t->used)
            free_http(t);
        t->used = 0;
    }
    e->ntargets = 0;
    e->nfree = 0;
    e->nheap = 0;
    for (Py_ssize_t i = 0; i < e->npools; i++) {
        for (Py_ssize_t j = 0; j < e->pools[i].len; j++)
            close(e->pools[i].fds[j]);
        e->pools[i].len = 0;
    }
    if (e->ep >= 0)
        close(e->ep);
    e->ep = -1;
}

/* The opener is usually a bound method of the object that holds this engine: a cycle the
 * garbage collector must be able to see and break. */
static int Engine_traverse(Engine *e, visitproc visit, void *arg) {
    Py_VISIT(e->opener);
    return 0;
}

static int Engine_clear(Engine *e) {
    Py_CLEAR(e->opener);
    return 0;
}

static void Engine_dealloc(Engine *e) {
    PyObject_GC_UnTrack(e);
    close_all(e);
    for (Py_ssize_t i = 0; i < e->npools; i++)
        PyMem_Free(e->pools[i].fds);
    PyMem_Free(e->pools);
    PyMem_Free(e->targets);
    PyMem_Free(e->free_ids);
    PyMem_Free(e->heap);
    PyMem_Free(e->owners);
    PyMem_Free(e->bounds);
    PyMem_Free(e->late_bounds);
    PyMem_Free(e->late_hist);
    for (Py_ssize_t i = 0; i < e->nheads; i++)
        PyMem_Free(e->heads[i]);
    PyMem_Free(e->heads);
    for (int i = 0; i < 2; i++)
        SSL_CTX_free(e->tls_ctx[i]);
    Engine_clear(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

/* HTTP: the request (held, a new reference in *reqobj) and the accepted status ranges (copied). */
static int http_parts(PyObject *request, PyObject *statuses, PyObject **reqobj, char **req, Py_ssize_t *reqlen,
                      int **st, Py_ssize_t *nst) {
    *reqobj = NULL;
    *req = NULL;
    *st = NULL;
    *reqlen = *nst = 0;
    if (request == Py_None)
        return 0;
    char *buf;
    if (PyBytes_AsStringAndSize(request, &buf, reqlen) < 0)
        return -1;
    PyObject *seq = PySequence_Fast(statuses, "statuses must be a sequence of (low, high) pairs");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *st = PyMem_Calloc((size_t)n * 2 + 1, sizeof(int));
    if (!*st) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(request); /* bytes do not change: the target reads them where they are */
    *reqobj = request;
    *req = buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int lo, hi;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ii", &lo, &hi)) {
            Py_DECREF(seq);
            return -1;
        }
        (*st)[2 * i] = lo;
        (*st)[2 * i + 1] = hi;
    }
    *nst = n * 2;
    Py_DECREF(seq);
    if (*reqlen == 0 || n == 0) {
        PyErr_SetString(PyExc_ValueError, "an HTTP check needs a request and at least one status range");
        return -1;
    }
    return 0;
}

static char *copy_text(const char *text) {
    size_t n = strlen(text) + 1;
    char *c = PyMem_Malloc(n);
    if (c)
        memcpy(c, text, n);
    else
        PyErr_NoMemory();
    return c;
}

/* HTTPS: (verify, SNI or None, the name to verify or None, whether that name is an address). */
static int tls_parts(Engine *e, PyObject *spec, int http, Tls **out) {
    *out = NULL;
    if (spec == Py_None)
        return 0;
    int verify, name_is_ip;
    const char *sni, *name;
    if (!PyArg_ParseTuple(spec, "pzzp;tls must be (verify, server name, verified name, name is an address)", &verify,
                          &sni, &name, &name_is_ip))
        return -1;
    if (!http) {
        PyErr_SetString(PyExc_ValueError, "TLS needs an HTTP request and status ranges");
        return -1;
    }
    if ((verify != 0) != (name != NULL)) {
        PyErr_SetString(PyExc_ValueError, "a verified HTTPS check needs the name to verify, and only it has one");
        return -1;
    }
    if (!tls_context(e, verify))
        return -1;
    Tls *tls = PyMem_Calloc(1, sizeof(Tls));
    if (!tls) {
        PyErr_NoMemory();
        return -1;
    }
    tls->verify = verify;
    tls->name_is_ip = name_is_ip;
    if ((sni && !(tls->sni = copy_text(sni))) || (name && !(tls->name = copy_text(name)))) {
        tls_free(tls);
        return -1;
    }
    *out = tls;
    return 0;
}

static PyObject *Engine_add(Engine *e, PyObject *args) {
    int pool, family, port;
    unsigned int scope = 0;
    double timeout;
    Py_buffer ip;
    PyObject *request = Py_None, *statuses = Py_None, *tls_spec = Py_None;
    if (!PyArg_ParseTuple(args, "iiy*id|IOOO", &pool, &family, &ip, &port, &timeout, &scope, &request, &statuses,
                          &tls_spec))
        return NULL;
    PyObject *reqobj;
    char *req;
    int *st;
    Py_ssize_t reqlen, nst;
    Tls *tls = NULL;
    if (http_parts(request, statuses, &reqobj, &req, &reqlen, &st, &nst) < 0 ||
        tls_parts(e, tls_spec, req != NULL, &tls) < 0) {
        PyBuffer_Release(&ip);
        Py_XDECREF(reqobj);
        PyMem_Free(st);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int bad = pool < 0 || pool >= e->npools || port < 0 || port > 65535 || !(timeout > 0.0);
    if (!bad && family == AF_INET && ip.len == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        memcpy(&a->sin_addr, ip.buf, 4);
        len = sizeof *a;
    } else if (!bad && family == AF_INET6 && ip.len == 16) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        memcpy(&a->sin6_addr, ip.buf, 16);
        a->sin6_scope_id = scope;
        len = sizeof *a;
    } else {
        bad = 1;
        len = 0;
    }
    PyBuffer_Release(&ip);
    long *hist = bad ? NULL : PyMem_Calloc((size_t)e->nbounds + 1, sizeof(long));
    if (!hist) {
        Py_XDECREF(reqobj);
        PyMem_Free(st);
        tls_free(tls);
        if (bad)
            PyErr_SetString(PyExc_ValueError, "need a known pool, an IPv4 or IPv6 address, a port and a timeout > 0");
        else
            PyErr_NoMemory();
        return NULL;
    }
    uint32_t tid;
    if (e->nfree) {
        tid = e->free_ids[--e->nfree];
    } else {
        if (grow((void **)&e->targets, &e->captargets, e->ntargets + 1, sizeof(Target)) < 0) {
            PyMem_Free(hist);
            Py_XDECREF(reqobj);
            PyMem_Free(st);
            tls_free(tls);
            return NULL;
        }
        tid = (uint32_t)e->ntargets++;
    }
    Target *t = &e->targets[tid];
    uint32_t gen = t->gen + 1; /* a reused id never matches its predecessor's events */
    memset(t, 0, sizeof *t);
    t->used = 1;
    t->gen = gen;
    t->pool = pool;
    memcpy(&t->addr, &ss, len);
    t->addrlen = len;
    t->timeout = timeout;
    t->fd = -1;
    t->hist = hist;
    t->phase = IDLE;
    t->request_obj = reqobj;
    t->request = req;
    t->head = NULL;
    t->reqlen = reqlen;
    t->statuses = st;
    t->nstatuses = nst;
    t->tls = tls;
    return PyLong_FromUnsignedLong(tid);
}

/* Stop whatever the target is doing; an in-flight probe's socket is closed, not kept. */
static void halt(Engine *e, Target *t) {
    if (t->phase == IN_FLIGHT) {
        if (t->tls)
            tls_end(t->tls, TLS_ABANDONED);
        release_socket(e, t, 0);
    }
    give_head(e, t);
    t->gen++;
    t->phase = IDLE;
    t->autopilot = 0;
}

static PyObject *Engine_cancel(Engine *e, PyObject *arg) {
    Target *t = target(e, (unsigned int)PyLong_AsUnsignedLong(arg));
    if (!t)
        return NULL;
    halt(e, t);
    Py_RETURN_NONE;
}

static PyObject *Engine_remove(Engine *e, PyObject *arg) {
    unsigned int tid = (unsigned int)PyLong_AsUnsignedLong(arg);
    Target *t = target(e, tid);
    if (!t)
        return NULL;
    halt(e, t);
    if (grow((void **)&e->free_ids, &e->capfree, e->nfree + 1, sizeof(uint32_t)) < 0)
        return NULL;
    e->free_ids[e->nfree++] = tid;
    PyMem_Free(t->hist);
    t->hist = NULL;
    free_http(t);
    t->used = 0;
    Py_RETURN_NONE;
}

static PyObject *Engine_start(Engine *e, PyObject *args) {
    unsigned int tid;
    double now;
    if (!PyArg_ParseTuple(args, "Id", &tid, &now) || check_open(e) < 0)
        return NULL;
    Target *t = target(e, tid);
    if (!t)
        return NULL;
    if (t->phase != IDLE) {
        PyErr_Format(PyExc_RuntimeError, "target %u is busy", tid);
        return NULL;
    }
    t->base = t->due = now;
    t->last_late = 0.0;
    PyObject *out = NULL;
    if (launch(e, tid, now, &out) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    if (out) { /* finished at once: hand back the one result */
        PyObject *r = PyList_GET_ITEM(out, 0);
        Py_INCREF(r);
        Py_DECREF(out);
        return r;
    }
    Py_RETURN_NONE;
}

static PyObject *Engine_autopilot(Engine *e, PyObject *args) {
    unsigned int tid;
    double due, interval, resolution, stall;
    if (!PyArg_ParseTuple(args, "Idddd", &tid, &due, &interval, &resolution, &stall) || check_open(e) < 0)
        return NULL;
    Target *t = target(e, tid);
    if (!t)
        return NULL;
    if (t->phase != IDLE || !(interval > 0.0) || resolution < 0.0) {
        PyErr_Format(PyExc_ValueError, "target %u: busy, or not an interval > 0 and a resolution >= 0", tid);
        return NULL;
    }
    t->autopilot = 1;
    t->interval = interval;
    t->resolution = resolution;
    t->stall = stall;
    t->due = due;
    t->phase = WAITING;
    if (heap_push(e, on_grid(due, resolution), tid, t->gen) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Engine_poll(Engine *e, PyObject *arg) {
    double now = PyFloat_AsDouble(arg);
    if ((now == -1.0 && PyErr_Occurred()) || check_open(e) < 0)
        return NULL;
    PyObject *out = NULL;
    if (drain(e, now, &out) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    return result_or_none(out);
}

/* Everything due by `now`: answers already there first, then timeouts and starts. */
static PyObject *Engine_tick(Engine *e, PyObject *arg) {
    double now = PyFloat_AsDouble(arg);
    if ((now == -1.0 && PyErr_Occurred()) || check_open(e) < 0)
        return NULL;
    PyObject *out = NULL;
    if (drain(e, now, &out) < 0)
        goto fail;
    e->fired_wakes++;
    /* Take the due entries first: probes rescheduled while firing wait for another turn. */
    Py_ssize_t n = 0;
    Entry *due = NULL;
    Py_ssize_t capdue = 0;
    while (e->nheap && e->heap[0].wake <= now + 1e-9) {
        Entry x = e->heap[0];
        heap_pop(e);
        if (!live(e, &x))
            continue;
        if (grow((void **)&due, &capdue, n + 1, sizeof(Entry)) < 0)
            goto fail_due;
        due[n++] = x;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Entry x = due[i];
        if (!live(e, &x))
            continue; /* ended by an earlier one of this turn */
        Target *t = &e->targets[x.tid];
        if (t->phase == IN_FLIGHT) {
            int err = t->tls && t->connected && !t->tls->handshaken ? ERR_TLS_TIMEOUT : ERR_TIMEOUT;
            if (finish(e, x.tid, err, now, &out, NULL) < 0)
                goto fail_due;
        } else { /* WAITING: an autopilot start */
            double late = now - t->due;
            t->last_late = late > 0.0 ? late : 0.0;
            count_late(e, t->last_late);
            /* The next probe is due an interval after this one was due, so the grid's
             * rounding does not stretch the cadence; after a stall, after it started. */
            t->base = late <= t->resolution + t->stall ? t->due : now;
            t->sent++;
            if (launch(e, x.tid, now, &out) < 0)
                goto fail_due;
        }
    }
    PyMem_Free(due);
    return result_or_none(out);
fail_due:
    PyMem_Free(due);
fail:
    Py_XDECREF(out);
    return NULL;
}

static PyObject *Engine_next_wake(Engine *e, PyObject *Py_UNUSED(ignored)) {
    drop_stale_top(e);
    if (!e->nheap)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(e->heap[0].wake);
}

/* What the autopilot counted since the last call: (sent, ok, hits, duration sum, last
 * duration, last time, last lateness, next due or None, last HTTP status or 0), and start
 * counting anew. ``hits``: (bucket, probes) of the duration buckets that were hit, as a
 * backend probed once between two reads hits one: the reader adds in one step, not one per
 * bucket. */
static PyObject *Engine_stats(Engine *e, PyObject *arg) {
    Target *t = target(e, (unsigned int)PyLong_AsUnsignedLong(arg));
    if (!t)
        return NULL;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i <= e->nbounds; i++)
        n += t->hist[i] != 0;
    PyObject *hits = PyTuple_New(n);
    if (!hits)
        return NULL;
    for (Py_ssize_t i = 0, k = 0; i <= e->nbounds; i++) {
        if (!t->hist[i])
            continue;
        PyObject *hit = Py_BuildValue("(nl)", i, (long)t->hist[i]);
        if (!hit) {
            Py_DECREF(hits);
            return NULL;
        }
        PyTuple_SET_ITEM(hits, k++, hit);
    }
    PyObject *next = t->phase == WAITING ? PyFloat_FromDouble(t->due) : (Py_INCREF(Py_None), Py_None);
    PyObject *r = Py_BuildValue("(llNddddNi)", t->sent, t->ok, hits, t->dur_sum, t->last_duration, t->last_time,
                                t->last_late, next, t->last_status);
    if (!r)
        return NULL;
    memset(t->hist, 0, sizeof(t->hist[0]) * (size_t)(e->nbounds + 1));
    t->sent = t->ok = 0;
    t->dur_sum = 0.0;
    return r;
}

static PyObject *Engine_phase(Engine *e, PyObject *arg) {
    Target *t = target(e, (unsigned int)PyLong_AsUnsignedLong(arg));
    if (!t)
        return NULL;
    return Py_BuildValue("(ii)", (int)t->phase, t->autopilot);
}

static PyObject *Engine_flush_pool(Engine *e, PyObject *arg) {
    long pool = PyLong_AsLong(arg);
    if (pool == -1 && PyErr_Occurred())
        return NULL;
    if (pool < 0 || pool >= e->npools) {
        PyErr_Format(PyExc_KeyError, "no pool %ld", pool);
        return NULL;
    }
    Pool *p = &e->pools[pool];
    for (Py_ssize_t j = 0; j < p->len; j++)
        close_socket(e, p->fds[j]);
    p->len = 0;
    Py_RETURN_NONE;
}

static PyObject *Engine_add_pool(Engine *e, PyObject *Py_UNUSED(ignored)) {
    if (grow((void **)&e->pools, &e->cappools, e->npools + 1, sizeof(Pool)) < 0)
        return NULL;
    return PyLong_FromSsize_t(e->npools++);
}

static PyObject *Engine_fileno(Engine *e, PyObject *Py_UNUSED(ignored)) { return PyLong_FromLong(e->ep); }

static PyObject *Engine_close(Engine *e, PyObject *Py_UNUSED(ignored)) {
    close_all(e);
    Engine_clear(e);
    Py_RETURN_NONE;
}

static PyObject *Engine_counts(Engine *e, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t idle = 0;
    for (Py_ssize_t i = 0; i < e->npools; i++)
        idle += e->pools[i].len;
    return Py_BuildValue("{s:L,s:n,s:n,s:L,s:n}", "sockets_opened", e->opened, "idle_sockets", idle, "timers",
                         e->nheap, "wakes", e->fired_wakes, "spare_heads", e->nheads);
}

/* How late the autopilot's starts were, since the engine was made: (counts by late_bounds
 * as bisect_left, then +Inf; the sum of seconds). Not reset: a metric's counter. */
static PyObject *Engine_lateness(Engine *e, PyObject *Py_UNUSED(ignored)) {
    PyObject *hist = PyTuple_New(e->nlate + 1);
    if (!hist)
        return NULL;
    for (Py_ssize_t i = 0; i <= e->nlate; i++) {
        PyObject *v = PyLong_FromLongLong(e->late_hist ? e->late_hist[i] : 0);
        if (!v) {
            Py_DECREF(hist);
            return NULL;
        }
        PyTuple_SET_ITEM(hist, i, v);
    }
    return Py_BuildValue("(Nd)", hist, e->late_sum);
}

static PyMethodDef Engine_methods[] = {
    {"add_pool", (PyCFunction)Engine_add_pool, METH_NOARGS,
     "add_pool() -> a new pool id: idle sockets shared by targets (same family, source, netns)"},
    {"add", (PyCFunction)Engine_add, METH_VARARGS,
     "add(pool, family, packed_ip, port, timeout[, scope_id, request, statuses, tls]) -> target id"},
    {"remove", (PyCFunction)Engine_remove, METH_O, "remove(tid): stop and forget a target"},
    {"cancel", (PyCFunction)Engine_cancel, METH_O, "cancel(tid): stop its probe and autopilot"},
    {"start", (PyCFunction)Engine_start, METH_VARARGS, "start(tid, now) -> result at once, or None"},
    {"autopilot", (PyCFunction)Engine_autopilot, METH_VARARGS,
     "autopilot(tid, due, interval, resolution, stall): probe while connected"},
    {"poll", (PyCFunction)Engine_poll, METH_O, "poll(now) -> list of results, or None"},
    {"tick", (PyCFunction)Engine_tick, METH_O, "tick(now) -> list of results, or None"},
    {"next_wake", (PyCFunction)Engine_next_wake, METH_NOARGS, "the earliest timer, or None"},
    {"stats", (PyCFunction)Engine_stats, METH_O, "stats(tid): the autopilot's counts since the last call"},
    {"phase", (PyCFunction)Engine_phase, METH_O, "phase(tid) -> (0 idle | 1 waiting | 2 in flight, autopilot)"},
    {"flush_pool", (PyCFunction)Engine_flush_pool, METH_O, "flush_pool(pool): close its idle sockets"},
    {"fileno", (PyCFunction)Engine_fileno, METH_NOARGS, "the epoll fd, readable when a probe is ready"},
    {"close", (PyCFunction)Engine_close, METH_NOARGS, "close every socket"},
    {"counts", (PyCFunction)Engine_counts, METH_NOARGS, "sockets opened, idle, timers, wakes, spare status-line buffers"},
    {"lateness", (PyCFunction)Engine_lateness, METH_NOARGS, "(counts by late_bounds, sum) of autopilot starts"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "maglev.health.probes._connect.ConnectChecks",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Engine_traverse,
    .tp_clear = (inquiry)Engine_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "TCP connect checks on a private epoll set, with an autopilot for steady backends.",
    .tp_new = Engine_new,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_connect", "TCP connect checks in compiled code.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__connect(void) {
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "ConnectChecks", (PyObject *)&EngineType) < 0 ||
        PyModule_AddIntConstant(m, "ERR_TIMEOUT", ERR_TIMEOUT) < 0 ||
        PyModule_AddIntConstant(m, "ERR_SOCKET", ERR_SOCKET) < 0 || PyModule_AddIntConstant(m, "ERR_L7", ERR_L7) < 0 ||
        PyModule_AddIntConstant(m, "ERR_JUDGE", ERR_JUDGE) < 0 ||
        PyModule_AddIntConstant(m, "ERR_JUDGE_EOF", ERR_JUDGE_EOF) < 0 ||
        PyModule_AddIntConstant(m, "ERR_TLS", ERR_TLS) < 0 ||
        PyModule_AddIntConstant(m, "ERR_TLS_TIMEOUT", ERR_TLS_TIMEOUT) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
