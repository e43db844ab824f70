/* Scanner for the hot inbound Realtime message: an audio delta.
 *
 *   {"type":"response.output_audio.delta","event_id":"...","response_id":"...",
 *    "item_id":"...","output_index":0,"content_index":0,"delta":"<base64>"}
 *
 * or GPT-Live's (start_ms/end_ms only on a sideband's reflected audio):
 *
 *   {"type":"session.output_audio.delta","delta":"<base64>","start_ms":0,"end_ms":20}
 *
 * It finds the spans of the string fields and the two indexes in the raw
 * frame, in any key order, without building anything.  It accepts only the
 * plain shape: exactly these keys (each at most once), strings without
 * escapes or non-ASCII bytes, small non-negative integers, JSON whitespace.
 * Anything else (escapes, extra keys, duplicates, other types, truncation,
 * garbage) makes it answer RT_SCAN_FALLBACK so the caller takes the full
 * orjson path, which gets every legal frame right and rejects illegal ones.
 */
#ifndef RTFAST_WIRESCAN_H
#define RTFAST_WIRESCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>     /* every x86-64 CPU has SSE2: no run-time choice needed */
#endif

#define RT_SCAN_OK 0          /* an audio delta of the plain shape */
#define RT_SCAN_OTHER 1       /* a plain frame whose type is not an audio delta */
#define RT_SCAN_FALLBACK 2    /* use the full parser */

enum { RT_F_TYPE, RT_F_EVENT_ID, RT_F_RESPONSE_ID, RT_F_ITEM_ID, RT_F_DELTA, RT_F_NSTR };

typedef struct {
    Py_ssize_t start[RT_F_NSTR];   /* string contents, without quotes; -1 if absent */
    Py_ssize_t end[RT_F_NSTR];
    long long output_index;        /* -1 if absent */
    long long content_index;
    long long start_ms;            /* GPT-Live only */
    long long end_ms;
    int generation;                /* 1 = GA (response.output_audio.delta), 2 = beta (response.audio.delta),
                                      3 = GPT-Live (session.output_audio.delta) */
} rt_scan_t;

static inline int rt_scan_ws(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

#define RT_KEY_IS(p, len, lit) ((len) == sizeof(lit) - 1 && memcmp((p), (lit), (len)) == 0)

/* Index of the string field named by key, -2 for the integers, -1 unknown. */
static inline int rt_scan_field(const uint8_t *k, Py_ssize_t len, long long **num, rt_scan_t *s)
{
    if (RT_KEY_IS(k, len, "type")) return RT_F_TYPE;
    if (RT_KEY_IS(k, len, "delta")) return RT_F_DELTA;
    if (RT_KEY_IS(k, len, "item_id")) return RT_F_ITEM_ID;
    if (RT_KEY_IS(k, len, "event_id")) return RT_F_EVENT_ID;
    if (RT_KEY_IS(k, len, "response_id")) return RT_F_RESPONSE_ID;
    if (RT_KEY_IS(k, len, "output_index")) { *num = &s->output_index; return -2; }
    if (RT_KEY_IS(k, len, "content_index")) { *num = &s->content_index; return -2; }
    if (RT_KEY_IS(k, len, "start_ms")) { *num = &s->start_ms; return -2; }
    if (RT_KEY_IS(k, len, "end_ms")) { *num = &s->end_ms; return -2; }
    return -1;
}

/* A plain string starting after its opening quote; returns the index of the
 * closing quote or -1 (escape, control or non-ASCII byte, or no end).
 * Deltas are kilobytes of base64, so whole blocks are checked at once for a
 * quote, backslash, byte < 0x20 or >= 0x80: 16 bytes with SSE2 (the first such
 * byte decides), then 8 with SWAR, and only the tail byte by byte. */
static inline Py_ssize_t rt_scan_string(const uint8_t *p, Py_ssize_t n, Py_ssize_t i)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        /* signed < 0x20 is also true for every byte >= 0x80 */
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                    _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(stop);
        if (mask) {
            i += __builtin_ctz((unsigned)mask);
            return p[i] == '"' ? i : -1;
        }
    }
#endif
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t v, q, b;
        memcpy(&v, p + i, 8);
        q = v ^ (ones * '"');
        b = v ^ (ones * '\\');
        if ((v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
            break;
    }
    for (; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"')
            return i;
        if (c == '\\' || c < 0x20 || c >= 0x80)
            return -1;
    }
    return -1;
}

static inline int rt_scan_audio_delta(const uint8_t *p, Py_ssize_t n, rt_scan_t *s)
{
    Py_ssize_t i = 0, ks, ke, ve;
    int f;
    long long *num;

    for (f = 0; f < RT_F_NSTR; f++)
        s->start[f] = s->end[f] = -1;
    s->output_index = s->content_index = s->start_ms = s->end_ms = -1;
    s->generation = 0;

    while (i < n && rt_scan_ws(p[i])) i++;
    if (i >= n || p[i] != '{')
        return RT_SCAN_FALLBACK;
    i++;
    for (;;) {
        while (i < n && rt_scan_ws(p[i])) i++;
        if (i >= n || p[i] != '"')
            return RT_SCAN_FALLBACK;
        ks = i + 1;
        ke = rt_scan_string(p, n, ks);
        if (ke < 0)
            return RT_SCAN_FALLBACK;
        i = ke + 1;
        while (i < n && rt_scan_ws(p[i])) i++;
        if (i >= n || p[i] != ':')
            return RT_SCAN_FALLBACK;
        i++;
        while (i < n && rt_scan_ws(p[i])) i++;
        if (i >= n)
            return RT_SCAN_FALLBACK;
        f = rt_scan_field(p + ks, ke - ks, &num, s);
        if (f == -1)
            return RT_SCAN_FALLBACK;          /* extra key: keep it, via the full parser */
        if (f == -2) {
            long long v = 0;
            Py_ssize_t d = i;
            if (*num != -1)
                return RT_SCAN_FALLBACK;      /* duplicate */
            while (i < n && p[i] >= '0' && p[i] <= '9' && i - d < 15)
                v = v * 10 + (p[i++] - '0');
            /* JSON forbids leading zeros; fractions, exponents, signs go the slow way. */
            if (i == d || (p[d] == '0' && i - d > 1) || (i < n && (p[i] >= '0' && p[i] <= '9')))
                return RT_SCAN_FALLBACK;
            if (i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'))
                return RT_SCAN_FALLBACK;
            *num = v;
        } else {
            if (p[i] != '"' || s->start[f] != -1)
                return RT_SCAN_FALLBACK;
            ve = rt_scan_string(p, n, i + 1);
            if (ve < 0)
                return RT_SCAN_FALLBACK;
            s->start[f] = i + 1;
            s->end[f] = ve;
            i = ve + 1;
            if (f == RT_F_TYPE) {
                const uint8_t *t = p + s->start[f];
                Py_ssize_t len = ve - s->start[f];
                if (RT_KEY_IS(t, len, "response.output_audio.delta"))
                    s->generation = 1;
                else if (RT_KEY_IS(t, len, "response.audio.delta"))
                    s->generation = 2;
                else if (RT_KEY_IS(t, len, "session.output_audio.delta"))
                    s->generation = 3;
                else
                    return RT_SCAN_OTHER;
            }
        }
        while (i < n && rt_scan_ws(p[i])) i++;
        if (i >= n)
            return RT_SCAN_FALLBACK;
        if (p[i] == ',') {
            i++;
            continue;
        }
        if (p[i] != '}')
            return RT_SCAN_FALLBACK;
        i++;
        break;
    }
    while (i < n && rt_scan_ws(p[i])) i++;
    if (i != n || s->generation == 0 || s->start[RT_F_DELTA] < 0)
        return RT_SCAN_FALLBACK;
    /* Each protocol's own keys only: another's is an extra key, kept by the full parser. */
    if (s->generation == 3) {
        if (s->start[RT_F_RESPONSE_ID] >= 0 || s->start[RT_F_ITEM_ID] >= 0 ||
            s->output_index >= 0 || s->content_index >= 0)
            return RT_SCAN_FALLBACK;
    } else if (s->start_ms >= 0 || s->end_ms >= 0) {
        return RT_SCAN_FALLBACK;
    }
    return RT_SCAN_OK;
}

#endif
