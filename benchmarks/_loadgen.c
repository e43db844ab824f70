/* The bridge load benchmark's generator, compiled: N simulated Twilio callers and
 * the fake Realtime / GPT-Live peer in one single-threaded epoll loop.
 *
 * It does what bench_bridge_load.py's Python generator (Caller, drive(), Peer,
 * PeerCall, LivePeerCall) does, byte for byte on the wire; that one is the
 * reference, this one exists because on one core the Python one cannot keep
 * its 20 ms schedule past ~300 calls.
 *
 *   _loadgen --calls N --warmup S --measure S --data FILE [--live] [--rt]
 *
 * --rt: run as SCHED_FIFO if allowed (the result says whether it was), so that no other task
 * on the generator's core delays its ticks: a generator stalled for 20 ms makes every call
 * hear a gap at once, and those underruns would be the machine's, not the bridge's.
 *
 * FILE (written by bench_bridge_load.py): "payloads K", K base64 μ-law frames;
 * "deltas D", D base64 output deltas; "starts M", M numbers in [0, 1) (each peer
 * call's first response comes 1 s + that after it connects).
 * Protocol on stdout/stdin, one line each:
 *   -> "peer PORT"      listening for the bridge's model sockets on 127.0.0.1:PORT
 *   <- "go PORT"        the bridge listens on 127.0.0.1:PORT: connect the calls
 *   -> "measuring"      warmup over, the window opens (sample the bridge's CPU now)
 *   -> "ended"          the window closed (sample again)
 *   -> {...}            the results (one JSON line), then exit 0
 * Any failure: a message on stderr and exit 1. EOF on stdin ends the program.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK 0.005              /* the ticker: a quarter of the callers every 5 ms */
#define GROUPS 4
#define CONNECT_AHEAD 8         /* caller handshakes in flight at once */
#define CLOSE_TIMEOUT 2.0       /* as rtfast.websocket's close_timeout */
#define OUT_LIMIT (64u << 20)   /* a peer that stops reading is an error, not unbounded memory */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);    /* Python's time.monotonic() */
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        die("out of memory");
    return p;
}

/* A search in msg[0:n] (Python's bytes.find); -1 when absent. */
static long find(const uint8_t *msg, size_t n, size_t from, const char *s)
{
    size_t k = strlen(s);
    if (from > n)
        return -1;
    const uint8_t *p = memmem(msg + from, n - from, s, k);
    return p ? p - msg : -1;
}

/* The string value of the key that ends at msg[at] (Python: j = msg.index(b'"', msg.index(b":",
 * at) + 1) + 1; msg[j:msg.index(b'"', j)]): its offset, and its length in *len; -1 if none. */
static long value_at(const uint8_t *msg, size_t n, long at, size_t *len)
{
    long colon = at < 0 ? -1 : find(msg, n, at, ":");
    long q = colon < 0 ? -1 : find(msg, n, colon + 1, "\"");
    long e = q < 0 ? -1 : find(msg, n, q + 1, "\"");
    if (e < 0)
        return -1;
    *len = e - q - 1;
    return q + 1;
}

/* -- SHA-1 and base64, for Sec-WebSocket-Accept and Sec-WebSocket-Key ---------------------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const uint8_t *m, size_t len, uint8_t out[20])
{
    uint8_t buf[256];
    size_t n = (len + 9 + 63) / 64 * 64;
    if (n > sizeof buf)
        die("sha1 input too long");
    memset(buf, 0, n);
    memcpy(buf, m, len);
    buf[len] = 0x80;
    for (int i = 0; i < 8; i++)
        buf[n - 1 - i] = (uint8_t)(((uint64_t)len * 8) >> (8 * i));
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    for (size_t off = 0; off < n; off += 64) {
        uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 16; i++) {
            const uint8_t *q = buf + off + 4 * i;
            w[i] = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        }
        for (int i = 16; i < 80; i++)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    for (int i = 0; i < 20; i++)
        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void b64(const uint8_t *s, size_t n, char *o)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = i + 1 < n ? A[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? A[v & 63] : '=';
    }
    *o = 0;
}

/* Sec-WebSocket-Accept for a key (RFC 6455 4.2.2). */
static void ws_accept(const char *key, size_t klen, char out[29])
{
    uint8_t buf[128], digest[20];
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    if (klen > 64)
        die("Sec-WebSocket-Key too long");
    memcpy(buf, key, klen);
    memcpy(buf + klen, guid, 36);
    sha1(buf, klen + 36, digest);
    b64(digest, 20, out);
}

/* -- growable arrays ------------------------------------------------------------------------ */

typedef struct { double *v; size_t n, cap; } Vec;

static void vec_push(Vec *a, double x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4096;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default (linear interpolation); NaN for none. */
static double percentile(Vec *a, double q)
{
    if (!a->n)
        return NAN;
    qsort(a->v, a->n, sizeof *a->v, cmpd);
    double p = q / 100 * (a->n - 1);
    size_t lo = (size_t)p;
    return lo + 1 < a->n ? a->v[lo] + (a->v[lo + 1] - a->v[lo]) * (p - lo) : a->v[lo];
}

/* A FIFO of send times per distinct payload (Python: sent_at[payload], a deque). */
typedef struct { double *t; size_t head, n, cap; } Fifo;

static void fifo_push(Fifo *f, double x)
{
    if (f->n == f->cap) {               /* grow, unwrapping the ring */
        size_t cap = f->cap ? 2 * f->cap : 16;
        double *t = xrealloc(NULL, cap * sizeof *t);
        for (size_t i = 0; i < f->n; i++)
            t[i] = f->t[(f->head + i) % f->cap];
        free(f->t);
        f->t = t, f->head = 0, f->cap = cap;
    }
    f->t[(f->head + f->n++) % f->cap] = x;
}

/* -- the shared data: payloads, deltas, start offsets ----------------------------------------- */

typedef struct { char *s; size_t n; } Str;

static Str *payloads, *deltas;
static size_t n_payloads, n_deltas, n_starts;
static double *starts;
static int *canon;              /* payload i -> the first index with the same bytes */
static Fifo *sent_at;           /* by canonical index */
static int *htab;               /* open addressing: payload bytes -> index + 1 */
static size_t hmask;

static uint64_t hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {        /* a word at a time: appends are ~216 bytes */
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ^ (h >> 32);
}

static long payload_index(const uint8_t *p, size_t n)
{
    for (size_t s = hash(p, n) & hmask;; s = (s + 1) & hmask) {
        int i = htab[s];
        if (!i)
            return -1;
        if (payloads[i - 1].n == n && !memcmp(payloads[i - 1].s, p, n))
            return i - 1;
    }
}

static Str *read_section(FILE *f, const char *name, size_t *count)
{
    char *line = NULL, word[32];
    size_t cap = 0;
    long k;
    if (getline(&line, &cap, f) < 0 || sscanf(line, "%31s %ld", word, &k) != 2 || strcmp(word, name) || k < 1)
        die("data file: expected \"%s COUNT\"", name);
    Str *out = xrealloc(NULL, k * sizeof *out);
    for (long i = 0; i < k; i++) {
        ssize_t n = getline(&line, &cap, f);
        if (n < 1)
            die("data file: %s ends after %ld of %ld lines", name, i, k);
        if (line[n - 1] == '\n')
            line[--n] = 0;
        out[i].s = strdup(line);
        out[i].n = n;
    }
    free(line);
    *count = k;
    return out;
}

static void load_data(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    payloads = read_section(f, "payloads", &n_payloads);
    deltas = read_section(f, "deltas", &n_deltas);
    Str *s = read_section(f, "starts", &n_starts);
    fclose(f);
    starts = xrealloc(NULL, n_starts * sizeof *starts);
    for (size_t i = 0; i < n_starts; i++)
        starts[i] = strtod(s[i].s, NULL);
    size_t slots = 1024;
    while (slots < 2 * n_payloads)
        slots *= 2;
    hmask = slots - 1;
    htab = calloc(slots, sizeof *htab);
    canon = xrealloc(NULL, n_payloads * sizeof *canon);
    sent_at = calloc(n_payloads, sizeof *sent_at);
    for (size_t i = 0; i < n_payloads; i++) {
        long j = payload_index((uint8_t *)payloads[i].s, payloads[i].n);
        if (j >= 0) {
            canon[i] = (int)j;
            continue;
        }
        size_t h = hash((uint8_t *)payloads[i].s, payloads[i].n) & hmask;
        while (htab[h])
            h = (h + 1) & hmask;
        htab[h] = (int)i + 1;
        canon[i] = (int)i;
    }
}

/* -- connections ---------------------------------------------------------------------------- */

enum { K_CALLER, K_PEER, K_LISTEN, K_STDIN };
enum { S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSING, S_CLOSED };

typedef struct { double when; uint8_t len; char name[119]; } Mark;

typedef struct Conn {
    int kind, fd, state;
    uint32_t events;                    /* the epoll interest now */
    uint8_t *in, *out;
    size_t in_len, in_cap, out_off, out_len, out_cap;
    char key[32];                       /* caller: the Sec-WebSocket-Key sent */
    /* caller (Python: Caller) */
    int index, offset, k;
    char sid[16];
    double play_end, last;
    long underruns, frames;
    Mark *marks;
    size_t m_head, m_n, m_cap;
    /* peer side of one call (Python: PeerCall / LivePeerCall) */
    int n, step_k, heap_pos;
    double next_at, started;
} Conn;

static int ep;
static int live, n_calls;
static double warmup_s, measure_s;
static int measuring;
static Vec latencies, lateness;
static Conn *callers;
static uint32_t rng = 2463534242u;

static uint32_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void set_events(Conn *c, uint32_t ev)
{
    if (c->events == ev || c->fd < 0)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = ev;
}

static void lost(Conn *c);

static void flush(Conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            lost(c);
            return;
        }
        c->out_off += n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    set_events(c, EPOLLIN | (c->out_len ? EPOLLOUT : 0));
}

static void put_raw(Conn *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {               /* drop what was sent before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off, c->out_off = 0;
        }
        if (c->out_len + n > OUT_LIMIT)
            die("the bridge stopped reading its %s socket (%zu bytes unsent)",
                c->kind == K_CALLER ? "carrier" : "model", c->out_len);
        while (c->out_len + n > c->out_cap)
            c->out_cap = c->out_cap ? 2 * c->out_cap : 4096;
        c->out = xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* p[i] ^= key[i % 4], a word at a time. */
static void xor_mask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint32_t k4;
    memcpy(&k4, key, 4);
    uint64_t kw = (uint64_t)k4 << 32 | k4;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= kw;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 3];
}

/* One frame: masked from a caller (a client must mask), plain from the peer. */
static void put_frame(Conn *c, int op, const void *data, size_t n)
{
    uint8_t h[14];
    size_t hl = 2;
    int masked = c->kind == K_CALLER;
    h[0] = 0x80 | op;
    if (n < 126) {
        h[1] = (uint8_t)n;
    } else if (n < 65536) {
        h[1] = 126, h[2] = n >> 8, h[3] = n & 0xFF, hl = 4;
    } else {
        h[1] = 127, hl = 10;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (!masked) {
        put_raw(c, h, hl);
        put_raw(c, data, n);
        return;
    }
    /* A cheap key per frame (not os.urandom: nobody attacks a benchmark's loopback). */
    uint32_t key = xorshift();
    h[1] |= 0x80;
    memcpy(h + hl, &key, 4);
    put_raw(c, h, hl + 4);
    put_raw(c, data, n);
    xor_mask(c->out + c->out_len - n, n, h + hl);
}

static void send_text(Conn *c, const char *s, int n)
{
    if (n < 0)
        die("message format failed");
    put_frame(c, 1, s, (size_t)n);
}

/* -- the peer's timers: a binary heap of calls by next_at ------------------------------------ */

static Conn **heap;
static size_t heap_n, heap_cap;

static void heap_swap(size_t i, size_t j)
{
    Conn *t = heap[i];
    heap[i] = heap[j], heap[j] = t;
    heap[i]->heap_pos = (int)i, heap[j]->heap_pos = (int)j;
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < heap_n && heap[l]->next_at < heap[m]->next_at) m = l;
        if (l + 1 < heap_n && heap[l + 1]->next_at < heap[m]->next_at) m = l + 1;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_push(Conn *c)
{
    if (heap_n == heap_cap) {
        heap_cap = heap_cap ? 2 * heap_cap : 256;
        heap = xrealloc(heap, heap_cap * sizeof *heap);
    }
    size_t i = heap_n++;
    heap[i] = c, c->heap_pos = (int)i;
    while (i && heap[(i - 1) / 2]->next_at > heap[i]->next_at) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static Conn *heap_pop(void)
{
    Conn *top = heap[0];
    heap_swap(0, --heap_n);
    heap_down(0);
    return top;
}

/* -- the peer -------------------------------------------------------------------------------- */

static const char SESSION_CREATED[] =
    "{\"type\":\"session.created\",\"event_id\":\"e0\",\"session\":{\"type\":\"realtime\",\"id\":\"s\","
    "\"object\":\"realtime.session\",\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcmu\"}},"
    "\"output\":{\"format\":{\"type\":\"audio/pcmu\"}}}}}";
static const char SESSION_UPDATED[] =
    "{\"type\":\"session.updated\",\"event_id\":\"e0\",\"session\":{\"type\":\"realtime\",\"id\":\"s\","
    "\"object\":\"realtime.session\",\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcmu\"}},"
    "\"output\":{\"format\":{\"type\":\"audio/pcmu\"}}}}}";
static const char SESSION_STARTED[] =
    "{\"type\":\"session.started\",\"event_id\":\"e0\",\"session\":{\"id\":\"sess_1\",\"model\":\"gpt-live-1\","
    "\"status\":\"active\",\"audio\":{\"format\":{\"type\":\"audio/pcmu\",\"rate\":8000}}}}";

static char *scratch;                   /* one message being formatted */
#define SCRATCH 65536

static int peers_opened;

static void peer_open(Conn *c, double now)
{
    if (!live) {                        /* GPT-Live says nothing until session.start */
        send_text(c, SESSION_CREATED, sizeof SESSION_CREATED - 1);
        flush(c);
    }
    c->step_k = -1;
    c->next_at = now + 1.0 + starts[peers_opened++ % n_starts];
    heap_push(c);
}

/* One step of a call's script (Python: PeerCall.step / LivePeerCall.step). */
static void peer_step(Conn *c, double now)
{
    char *s = scratch;
    if (live) {
        if (c->step_k < 0)
            c->step_k = 0, c->started = now;
        if ((size_t)c->step_k < n_deltas) {
            int at = c->step_k * 100;
            send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"session.output_audio.delta\",\"delta\":\"%s\"}",
                                     deltas[c->step_k].s));
            send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"session.output_transcript.delta\",\"event_id\":\"e\","
                                     "\"delta\":\"word \",\"start_ms\":%d,\"end_ms\":%d}", at, at + 100));
            flush(c);
            c->step_k++;
            c->next_at = c->started + c->step_k * 0.1;
            return;
        }
        c->step_k = -1;
        c->next_at = now + 1.0;
        return;
    }
    if (c->step_k < 0) {                /* a new response */
        c->n++;
        send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"response.created\",\"event_id\":\"e\",\"response\":"
                                 "{\"id\":\"resp_%d\",\"object\":\"realtime.response\",\"status\":\"in_progress\","
                                 "\"output\":[]}}", c->n));
        flush(c);                       /* its own write, as the Python peer's ws.send() */
        c->step_k = 0, c->started = now;
    }
    if ((size_t)c->step_k < n_deltas) {
        /* Audio and its transcript, as the API sends them (a word or two per 100 ms). */
        send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"response.output_audio.delta\",\"event_id\":\"e\","
                                 "\"response_id\":\"resp_%d\",\"item_id\":\"item_%d\",\"output_index\":0,"
                                 "\"content_index\":0,\"delta\":\"%s\"}", c->n, c->n, deltas[c->step_k].s));
        send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"response.output_audio_transcript.delta\",\"event_id\":"
                                 "\"e\",\"response_id\":\"resp_%d\",\"item_id\":\"item_%d\",\"output_index\":0,"
                                 "\"content_index\":0,\"delta\":\"word \"}", c->n, c->n));
        flush(c);
        c->step_k++;
        c->next_at = c->started + c->step_k * 0.1;
        return;
    }
    int w = snprintf(s, SCRATCH, "{\"type\":\"response.output_audio_transcript.done\",\"event_id\":\"e\","
                     "\"response_id\":\"resp_%d\",\"item_id\":\"item_%d\",\"output_index\":0,\"content_index\":0,"
                     "\"transcript\":\"", c->n, c->n);
    for (size_t i = 0; i < n_deltas; i++)
        w += snprintf(s + w, SCRATCH - w, "word ");
    w += snprintf(s + w, SCRATCH - w, "\"}");
    send_text(c, s, w);
    send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"response.output_audio.done\",\"event_id\":\"e\","
                             "\"response_id\":\"resp_%d\",\"item_id\":\"item_%d\",\"output_index\":0,"
                             "\"content_index\":0}", c->n, c->n));
    send_text(c, s, snprintf(s, SCRATCH, "{\"type\":\"response.done\",\"event_id\":\"e\",\"response\":{\"id\":"
                             "\"resp_%d\",\"object\":\"realtime.response\",\"status\":\"completed\","
                             "\"output\":[]}}", c->n));
    flush(c);
    c->step_k = -1;
    c->next_at = now + 1.0;
}

static void arrived(const uint8_t *p, size_t n)
{
    long i = payload_index(p, n);
    if (i < 0)
        return;
    Fifo *f = &sent_at[canon[i]];
    if (!f->n)
        return;
    double sent = f->t[f->head];
    f->head = (f->head + 1) % f->cap, f->n--;
    if (measuring)
        vec_push(&latencies, mono() - sent);
}

/* What the bridge sends the model (Python: Peer.received). */
static void peer_message(Conn *c, const uint8_t *m, size_t n)
{
    size_t head = n < 80 ? n : 80, head40 = n < 40 ? n : 40;
    long i = find(m, n, 0, "\"audio\"");
    if (i > 0 && (find(m, head, 0, "input_audio_buffer.append") >= 0 ||
                  find(m, head, 0, "session.input_audio.append") >= 0)) {
        size_t len;
        long v = value_at(m, n, i + 7, &len);
        if (v >= 0)
            arrived(m + v, len);
    } else if (n >= 16 && !memcmp(m, "{\"event\":\"media\"", 16)) {
        /* the relay floor forwards the caller's frame as it is */
        long j = find(m, n, 0, "\"payload\":\"");
        long e = j < 0 ? -1 : find(m, n, j + 11, "\"");
        if (e >= 0)
            arrived(m + j + 11, e - j - 11);
    } else if (find(m, head40, 0, "session.update") >= 0) {
        send_text(c, SESSION_UPDATED, sizeof SESSION_UPDATED - 1);
        flush(c);
    } else if (find(m, head40, 0, "session.start") >= 0) {
        send_text(c, SESSION_STARTED, sizeof SESSION_STARTED - 1);
        flush(c);
    }
}

/* -- the callers ----------------------------------------------------------------------------- */

/* What the bridge sends a caller (Python: Caller.received). */
static void caller_message(Conn *c, const uint8_t *m, size_t n)
{
    size_t head = n < 30 ? n : 30;
    if (find(m, head, 0, "\"media\"") >= 0) {
        double now = mono();
        long i = find(m, n, 0, "\"payload\"");
        size_t len;
        if (i < 0 || value_at(m, n, i + 9, &len) < 0)
            return;
        double seconds = (double)(len * 3 / 4) / 8000;          /* μ-law: one byte per sample */
        int recent = now - c->last < 0.3;
        if (recent && now > c->play_end + 0.02 && measuring)
            c->underruns++;             /* the caller heard a gap mid-reply */
        c->play_end = (recent ? (now > c->play_end ? now : c->play_end) : now) + seconds;
        c->last = now;
        c->frames += measuring;         /* frames heard in the window */
    } else if (find(m, head, 0, "\"mark\"") >= 0) {
        long i = find(m, n, 0, "\"name\"");
        size_t len;
        long v = i < 0 ? -1 : value_at(m, n, i + 6, &len);
        if (v < 0)
            return;
        if (len > sizeof c->marks->name)
            die("a mark name of %zu bytes (at most %zu here)", len, sizeof c->marks->name);
        if (c->m_n == c->m_cap) {       /* grow the ring, unwrapping it */
            size_t cap = c->m_cap ? 2 * c->m_cap : 16;
            Mark *mk = xrealloc(NULL, cap * sizeof *mk);
            for (size_t j = 0; j < c->m_n; j++)
                mk[j] = c->marks[(c->m_head + j) % c->m_cap];
            free(c->marks);
            c->marks = mk, c->m_head = 0, c->m_cap = cap;
        }
        Mark *mk = &c->marks[(c->m_head + c->m_n++) % c->m_cap];
        mk->when = c->play_end;
        mk->len = (uint8_t)len;
        memcpy(mk->name, m + v, len);
    }
}

/* One caller's 20 ms: its next frame, and the marks whose audio has played, in one write. */
static void caller_tick(Conn *c, double t)
{
    char *s = scratch;
    size_t p = (size_t)(c->offset + c->k) % n_payloads;
    c->k++;
    fifo_push(&sent_at[canon[p]], t);
    send_text(c, s, snprintf(s, SCRATCH, "{\"event\":\"media\",\"sequenceNumber\":\"%d\",\"media\":{\"track\":"
                             "\"inbound\",\"chunk\":\"%d\",\"timestamp\":\"%d\",\"payload\":\"%s\"},"
                             "\"streamSid\":\"%s\"}", c->k, c->k, c->k * 20, payloads[p].s, c->sid));
    while (c->m_n && c->marks[c->m_head].when <= t) {
        Mark *mk = &c->marks[c->m_head];
        send_text(c, s, snprintf(s, SCRATCH, "{\"event\":\"mark\",\"sequenceNumber\":\"%d\",\"streamSid\":\"%s\","
                                 "\"mark\":{\"name\":\"%.*s\"}}", c->k, c->sid, mk->len, mk->name));
        c->m_head = (c->m_head + 1) % c->m_cap, c->m_n--;
    }
    flush(c);
}

/* -- websocket plumbing ---------------------------------------------------------------------- */

static int calls_open, calls_lost, ended;

static void lost(Conn *c)
{
    if (c->state == S_CLOSED)
        return;
    if (c->kind == K_CALLER) {
        if (c->state == S_CONNECTING || c->state == S_HANDSHAKE)
            die("call %d: the bridge closed the connection during the websocket handshake", c->index);
        if (c->state == S_OPEN && !ended)
            calls_lost++;
        calls_open--;
    }
    c->state = S_CLOSED;
    close(c->fd);                       /* also leaves the epoll set */
    c->fd = -1;
    c->in_len = c->out_len = c->out_off = 0;
}

static void on_close_frame(Conn *c, const uint8_t *p, size_t n)
{
    if (c->state == S_OPEN) {           /* echo the close */
        if (c->kind == K_CALLER && !ended)
            calls_lost++;               /* the bridge ended this call early */
        c->state = S_CLOSING;
        put_frame(c, 8, p, n < 2 ? n : 2);
        flush(c);
    }
    if (c->kind == K_PEER && c->state != S_CLOSED)
        lost(c);                        /* a server ends TCP after the closing handshake */
}

/* Parse and dispatch every complete frame in c->in; keep the rest. */
static void frames(Conn *c, size_t pos)
{
    uint8_t *b = c->in;
    while (c->state != S_CLOSED && c->in_len - pos >= 2) {
        int op = b[pos] & 0x0F, fin = b[pos] & 0x80, masked = b[pos + 1] & 0x80;
        uint64_t len = b[pos + 1] & 0x7F;
        size_t hl = 2;
        if (len == 126) {
            if (c->in_len - pos < 4)
                break;
            len = (uint64_t)b[pos + 2] << 8 | b[pos + 3], hl = 4;
        } else if (len == 127) {
            if (c->in_len - pos < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | b[pos + 2 + i];
            hl = 10;
        }
        if (masked)
            hl += 4;
        if (c->in_len - pos < hl + len)
            break;
        uint8_t *p = b + pos + hl;
        if (masked)
            xor_mask(p, len, p - 4);
        if (!fin || op == 0)
            die("a fragmented websocket message (not supported here)");
        if (op == 1 || op == 2) {
            if (c->state == S_OPEN) {
                if (c->kind == K_CALLER)
                    caller_message(c, p, len);
                else
                    peer_message(c, p, len);
            }
        } else if (op == 9) {
            if (c->state == S_OPEN) {
                put_frame(c, 10, p, len);
                flush(c);
            }
        } else if (op == 8) {
            on_close_frame(c, p, len);
        } else if (op != 10) {
            die("unknown websocket opcode %d", op);
        }
        pos += hl + len;
    }
    if (c->state == S_CLOSED)
        return;
    memmove(b, b + pos, c->in_len - pos);
    c->in_len -= pos;
}

static const char *header(const char *head, const char *name, size_t *len)
{
    size_t k = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, name, k) && l[2 + k] == ':') {
            const char *v = l + 3 + k;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *len = e - v;
            return v;
        }
    }
    return NULL;
}

static int start_calls(void);
static double run_start;

static void handshake(Conn *c)
{
    uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in_len > 16384)
            die("an HTTP head over 16 KiB");
        return;
    }
    size_t hlen = end + 4 - c->in;
    char head[16384 + 8];
    if (hlen > 16384)
        die("an HTTP head over 16 KiB");
    memcpy(head, c->in, hlen - 2);
    head[hlen - 2] = 0;
    size_t klen;
    char accept[29];
    if (c->kind == K_PEER) {
        const char *key = header(head, "Sec-WebSocket-Key", &klen);
        if (strncmp(head, "GET ", 4) || !key)
            die("the bridge's model socket sent no websocket upgrade: %.80s", head);
        ws_accept(key, klen, accept);
        char r[256];
        int n = snprintf(r, sizeof r, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
        put_raw(c, r, n);
        flush(c);
        if (c->state == S_CLOSED)
            return;
        c->state = S_OPEN;
        peer_open(c, mono());
    } else {
        const char *got = header(head, "Sec-WebSocket-Accept", &klen);
        ws_accept(c->key, strlen(c->key), accept);
        if (strncmp(head, "HTTP/1.1 101", 12) || !got || klen != 28 || memcmp(got, accept, 28))
            die("call %d: the bridge refused the websocket upgrade: %.200s", c->index, head);
        c->state = S_OPEN;
        calls_open++;
        char *s = scratch;
        send_text(c, s, sprintf(s, "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}"));
        flush(c);
        send_text(c, s, sprintf(s, "{\"event\":\"start\",\"sequenceNumber\":\"1\",\"streamSid\":\"%s\",\"start\":"
                                "{\"streamSid\":\"%s\",\"accountSid\":\"AC1\",\"callSid\":\"CA%s\",\"tracks\":"
                                "[\"inbound\"],\"customParameters\":{},\"mediaFormat\":{\"encoding\":"
                                "\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1}}}", c->sid, c->sid, c->sid));
        flush(c);
        start_calls();
    }
    if (c->state == S_OPEN)
        frames(c, hlen);
}

static void readable(Conn *c)
{
    if (c->in_cap - c->in_len < 65536) {
        c->in_cap = c->in_cap ? 2 * c->in_cap : 131072;
        c->in = xrealloc(c->in, c->in_cap);
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        lost(c);
        return;
    }
    c->in_len += n;
    if (c->state == S_HANDSHAKE)
        handshake(c);
    else
        frames(c, 0);
}

/* -- connecting the calls -------------------------------------------------------------------- */

static int bridge_port, next_call, connecting;

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* as asyncio does */
}

/* Open the next handshakes, a few at a time; returns 1 once every call is open. */
static int start_calls(void)
{
    if (calls_open == n_calls && next_call == n_calls) {
        if (run_start == 0)
            run_start = mono();
        return 1;
    }
    connecting = 0;
    for (int i = 0; i < next_call; i++)
        connecting += callers[i].state == S_CONNECTING || callers[i].state == S_HANDSHAKE;
    while (next_call < n_calls && connecting < CONNECT_AHEAD) {
        Conn *c = &callers[next_call++];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            die("socket: %s", strerror(errno));
        nodelay(c->fd);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(bridge_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
            die("cannot connect to the bridge at 127.0.0.1:%d: %s", bridge_port, strerror(errno));
        c->state = S_CONNECTING;
        set_events(c, EPOLLOUT);
        connecting++;
    }
    return 0;
}

static void connected(Conn *c)
{
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err)
        die("cannot connect to the bridge at 127.0.0.1:%d: %s", bridge_port, strerror(err));
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = xorshift();
        memcpy(raw + i, &r, 4);
    }
    b64(raw, 16, c->key);
    char r[512];
    int n = snprintf(r, sizeof r, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: rtfast\r\n\r\n", bridge_port, c->key);
    c->state = S_HANDSHAKE;
    put_raw(c, r, n);
    flush(c);
}

/* -- the run ------------------------------------------------------------------------------- */

static long tick;
static double window_t0, cpu0, window_s, cpu_s, closing_until;
static long preempted0;
static int rt;

static long preempted;                  /* involuntary context switches: another task took the core */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    preempted = ru.ru_nivcsw;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* The window is over: every caller sends stop and closes (Python: the end of drive()). */
static void end_calls(double now)
{
    window_s = now - window_t0, cpu_s = cpu_seconds() - cpu0;
    preempted -= preempted0;
    measuring = 0, ended = 1;
    say("ended");
    for (int i = 0; i < n_calls; i++) {
        Conn *c = &callers[i];
        if (c->state != S_OPEN)
            continue;
        char *s = scratch;
        send_text(c, s, sprintf(s, "{\"event\":\"stop\",\"sequenceNumber\":\"0\",\"streamSid\":\"%s\","
                                "\"stop\":{}}", c->sid));
        flush(c);
        if (c->state == S_CLOSED)
            continue;
        put_frame(c, 8, "\x03\xe8", 2);         /* 1000, normal closure */
        flush(c);
        if (c->state != S_CLOSED)
            c->state = S_CLOSING;
    }
    closing_until = now + CLOSE_TIMEOUT;
}

/* One 5 ms tick, if it is due (Python: one pass of drive()'s loop); returns when the next is. */
static double ticker(double now)
{
    double due = run_start + tick * TICK;
    if (now < due)
        return due;
    if (now >= run_start + warmup_s + measure_s) {
        end_calls(now);
        return INFINITY;
    }
    /* Every tick's lateness, not only (as the Python loop records) the ticks it reached
     * already behind: a sleep that overshoots is late too. */
    if (measuring)
        vec_push(&lateness, now - due);
    if (!measuring && now >= run_start + warmup_s) {
        measuring = 1;
        window_t0 = now, cpu0 = cpu_seconds(), preempted0 = preempted;
        say("measuring");
        for (int i = 0; i < n_calls; i++)
            callers[i].underruns = 0;
    }
    double t = mono();
    for (int i = (int)(tick % GROUPS); i < n_calls; i += GROUPS)     /* callers[g::4] */
        if (callers[i].state == S_OPEN)
            caller_tick(&callers[i], t);
    tick++;
    if (calls_lost == n_calls)
        die("the bridge closed every call (did it die? see its log)");
    return run_start + tick * TICK;
}

/* The peer's timers that are due (one per call); returns when the next one is. */
static double peer_timers(void)
{
    double now = mono();
    while (heap_n && heap[0]->next_at <= now) {
        Conn *c = heap_pop();
        if (c->state != S_OPEN)
            continue;                   /* the call ended */
        if (measuring)
            vec_push(&lateness, now - c->next_at);
        peer_step(c, now);
        if (c->state == S_OPEN)
            heap_push(c);
        now = mono();
    }
    return heap_n ? heap[0]->next_at : INFINITY;
}

static int listen_fd;
static char line[128];
static size_t line_n;

static void on_event(Conn *c, uint32_t e)
{
    if (c->kind == K_LISTEN) {
        int fd;
        while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            Conn *p = calloc(1, sizeof *p);   /* never freed: one per call, for one run */
            p->kind = K_PEER, p->fd = fd, p->state = S_HANDSHAKE, p->index = -1;
            nodelay(fd);
            set_events(p, EPOLLIN);
        }
    } else if (c->kind == K_STDIN) {
        ssize_t n = read(0, line + line_n, sizeof line - 1 - line_n);
        if (n <= 0)
            die("stdin closed: the benchmark went away");
        line_n += n;
        line[line_n] = 0;
        if (!bridge_port && strchr(line, '\n')) {
            if (sscanf(line, "go %d", &bridge_port) != 1 || bridge_port <= 0)
                die("expected \"go PORT\" on stdin, got %s", line);
            start_calls();
        }
        if (line_n >= sizeof line - 1)
            line_n = 0;                 /* anything after "go" is ignored; only EOF matters */
    } else if (c->state == S_CONNECTING) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(c);
    } else {
        if ((e & EPOLLOUT) && c->state != S_CLOSED)
            flush(c);
        if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != S_CLOSED)
            readable(c);
    }
}

static void report(void)
{
    if (calls_lost)
        fprintf(stderr, "loadgen: the bridge closed %d of %d calls before the end\n", calls_lost, n_calls);
    long underruns = 0, frames_out = 0;
    for (int i = 0; i < n_calls; i++)
        underruns += callers[i].underruns, frames_out += callers[i].frames;
    size_t matched = latencies.n;
    for (size_t i = 0; i < latencies.n; i++)
        latencies.v[i] *= 1000;
    double p50 = percentile(&latencies, 50), p99 = percentile(&latencies, 99);
    double late = lateness.n ? percentile(&lateness, 99) * 1000 : 0.0;
    char p50s[32], p99s[32];            /* NaN (no append matched) as Python's json reads it */
    snprintf(p50s, sizeof p50s, isnan(p50) ? "NaN" : "%.6f", p50);
    snprintf(p99s, sizeof p99s, isnan(p99) ? "NaN" : "%.6f", p99);
    say("{\"calls\": %d, \"latency_p50_ms\": %s, \"latency_p99_ms\": %s, \"appends_matched\": %zu, "
        "\"underruns\": %ld, \"frames_out\": %ld, \"generator_late_p99_ms\": %.6f, \"loadgen_cpu_pct\": %.3f, "
        "\"loadgen_window_s\": %.4f, \"loadgen_preempted\": %ld, \"loadgen_rt\": %s, \"calls_lost\": %d}",
        n_calls, p50s, p99s, matched, underruns, frames_out, late, window_s > 0 ? 100 * cpu_s / window_s : 0.0,
        window_s, preempted, rt ? "true" : "false", calls_lost);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *usage = "usage: %s --calls N --warmup S --measure S --data FILE [--live] [--rt]";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--live"))
            live = 1;
        else if (!strcmp(argv[i], "--rt"))
            rt = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--calls"))
            n_calls = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--warmup"))
            warmup_s = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--measure"))
            measure_s = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--data"))
            data = argv[++i];
        else
            die(usage, argv[0]);
    }
    if (n_calls < 1 || !data || measure_s <= 0)
        die(usage, argv[0]);
    char check[29];
    ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, check);       /* RFC 6455's example */
    if (strcmp(check, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        die("SHA-1 self-check failed");
    signal(SIGPIPE, SIG_IGN);
    if (rt) {
        /* Bounded by the kernel's RT throttling (95% of each second by default); it mostly sleeps. */
        struct sched_param sp = {.sched_priority = 10};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) {
            fprintf(stderr, "loadgen: --rt: no SCHED_FIFO (%s); running at normal priority\n", strerror(errno));
            rt = 0;
        }
    }
    load_data(data);
    scratch = xrealloc(NULL, SCRATCH);
    callers = calloc(n_calls, sizeof *callers);
    for (int i = 0; i < n_calls; i++) {
        Conn *c = &callers[i];
        c->kind = K_CALLER, c->fd = -1, c->index = i;
        snprintf(c->sid, sizeof c->sid, "MZ%06d", i);
        c->offset = (int)((long)i * (long)n_payloads / n_calls);
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    Conn listener = {.kind = K_LISTEN}, in = {.kind = K_STDIN, .fd = 0};
    listen_fd = listener.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listen_fd, 4096) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &al) < 0)
        die("cannot listen on 127.0.0.1: %s", strerror(errno));
    set_events(&listener, EPOLLIN);
    set_events(&in, EPOLLIN);
    say("peer %d", ntohs(a.sin_port));

    /* Bounded: "go" within 2 min, then every call open within 2 min more. */
    double give_up = mono() + 120;
    int went = 0;
    struct epoll_event evs[512];
    for (;;) {
        double now = mono(), next = now + 1.0;
        if (bridge_port && !went)
            went = 1, give_up = now + 120;
        if (!run_start && now > give_up)
            die(bridge_port ? "only %d of %d calls opened in time" : "no \"go PORT\" on stdin in time",
                calls_open, n_calls);
        if (run_start && !ended)
            next = fmin(next, ticker(now));
        if (ended && (calls_open == 0 || now >= closing_until))
            break;
        next = fmin(next, peer_timers());
        if (ended)
            next = fmin(next, closing_until);
        double wait = next - mono();
        struct timespec ts = {0, 0};
        if (wait > 0)
            ts.tv_sec = (time_t)wait, ts.tv_nsec = (long)((wait - (time_t)wait) * 1e9);
        int k = epoll_pwait2(ep, evs, 512, &ts, NULL);
        if (k < 0 && errno != EINTR)
            die("epoll_pwait2: %s", strerror(errno));
        for (int i = 0; i < k; i++)
            on_event(evs[i].data.ptr, evs[i].events);
    }
    report();
    return 0;
}
