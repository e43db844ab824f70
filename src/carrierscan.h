/* Scanner for the hot inbound carrier message: a JSON `media` event.
 *
 *   Twilio  {"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",
 *            "timestamp":"5","payload":"<base64>"},"streamSid":"MZ..."}
 *   Telnyx  the same in snake_case ("sequence_number", "stream_id"); Plivo ("streamId",
 *           integer chunk); Exotel ("stream_sid").
 *
 * It finds the spans of the string fields and the values of the numeric ones
 * (a JSON integer or a string of ASCII digits) in the raw frame, in any key
 * order, without building anything.  It accepts only the plain shape: the
 * known keys (each at most once; the stream id under any carrier's spelling),
 * up to RT_C_NEXTRA other top-level keys with plain string values, strings
 * without escapes or non-ASCII bytes, JSON whitespace.  Anything else makes it
 * answer RT_SCAN_FALLBACK so the caller takes the orjson path, which gets
 * every legal frame right and rejects illegal ones.
 */
#ifndef RTFAST_CARRIERSCAN_H
#define RTFAST_CARRIERSCAN_H

#include "wirescan.h"   /* rt_scan_ws, rt_scan_string, RT_KEY_IS, RT_SCAN_* */
#include "b64core.h"

enum { RT_C_EVENT, RT_C_STREAM, RT_C_TRACK, RT_C_PAYLOAD, RT_C_NSTR };
enum { RT_C_SEQ, RT_C_CHUNK, RT_C_TS, RT_C_NNUM };
#define RT_C_NEXTRA 4
#define RT_C_MAXDIGITS 15

typedef struct {
    Py_ssize_t start[RT_C_NSTR];        /* string contents, without quotes; -1 if absent */
    Py_ssize_t end[RT_C_NSTR];
    long long num[RT_C_NNUM];           /* -1 if absent */
    int nextra;                         /* other top-level keys with plain string values */
    Py_ssize_t xkey[RT_C_NEXTRA][2];    /* key span */
    Py_ssize_t xval[RT_C_NEXTRA][2];    /* value span */
} rt_cscan_t;

/* A JSON integer (no sign, no leading zero, no fraction) or a quoted string of
 * 1..RT_C_MAXDIGITS ASCII digits at p[*i]; advances *i past it.  -1: decline. */
static inline long long rt_cscan_number(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i)
{
    Py_ssize_t j = *i, d;
    long long v = 0;
    int quoted = p[j] == '"';
    j += quoted;
    d = j;
    while (j < n && p[j] >= '0' && p[j] <= '9' && j - d < RT_C_MAXDIGITS)
        v = v * 10 + (p[j++] - '0');
    if (j == d || j >= n || (p[j] >= '0' && p[j] <= '9'))
        return -1;
    if (quoted) {
        if (p[j] != '"')
            return -1;
        j++;
    } else if ((p[d] == '0' && j - d > 1) || p[j] == '.' || p[j] == 'e' || p[j] == 'E') {
        return -1;  /* JSON forbids leading zeros; fractions and exponents go the slow way */
    }
    *i = j;
    return v;
}

/* A key at p[*i] (after whitespace) followed by ':' and whitespace; returns
 * its span start (end in *ke) and leaves *i at the value, or -1. */
static inline Py_ssize_t rt_cscan_key(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i, Py_ssize_t *ke)
{
    Py_ssize_t j = *i, ks;
    while (j < n && rt_scan_ws(p[j])) j++;
    if (j >= n || p[j] != '"')
        return -1;
    ks = j + 1;
    *ke = rt_scan_string(p, n, ks);
    if (*ke < 0)
        return -1;
    j = *ke + 1;
    while (j < n && rt_scan_ws(p[j])) j++;
    if (j >= n || p[j] != ':')
        return -1;
    j++;
    while (j < n && rt_scan_ws(p[j])) j++;
    if (j >= n)
        return -1;
    *i = j;
    return ks;
}

/* After a value: skip whitespace, then ',' (returns 1) or '}' (returns 0); -1 otherwise. */
static inline int rt_cscan_next(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i)
{
    Py_ssize_t j = *i;
    while (j < n && rt_scan_ws(p[j])) j++;
    if (j >= n)
        return -1;
    *i = j + 1;
    if (p[j] == ',')
        return 1;
    return p[j] == '}' ? 0 : -1;
}

/* A plain string value at p[*i] into field f (which must be unset). */
static inline int rt_cscan_str(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i, rt_cscan_t *s, int f)
{
    Py_ssize_t ve;
    if (p[*i] != '"' || s->start[f] != -1)
        return -1;
    ve = rt_scan_string(p, n, *i + 1);
    if (ve < 0)
        return -1;
    s->start[f] = *i + 1;
    s->end[f] = ve;
    *i = ve + 1;
    return 0;
}

static inline int rt_cscan_num(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i, rt_cscan_t *s, int f)
{
    if (s->num[f] != -1)
        return -1;                      /* duplicate */
    s->num[f] = rt_cscan_number(p, n, i);
    return s->num[f] < 0 ? -1 : 0;
}

/* The nested "media" object, from its '{'. */
static inline int rt_cscan_media(const uint8_t *p, Py_ssize_t n, Py_ssize_t *i, rt_cscan_t *s)
{
    Py_ssize_t ks, ke, j = *i + 1;
    int more;
    while (j < n && rt_scan_ws(p[j])) j++;
    if (j < n && p[j] == '}') {
        *i = j + 1;
        return 0;
    }
    do {
        int rc;
        ks = rt_cscan_key(p, n, &j, &ke);
        if (ks < 0)
            return -1;
        if (RT_KEY_IS(p + ks, ke - ks, "payload"))
            rc = rt_cscan_str(p, n, &j, s, RT_C_PAYLOAD);
        else if (RT_KEY_IS(p + ks, ke - ks, "track"))
            rc = rt_cscan_str(p, n, &j, s, RT_C_TRACK);
        else if (RT_KEY_IS(p + ks, ke - ks, "chunk"))
            rc = rt_cscan_num(p, n, &j, s, RT_C_CHUNK);
        else if (RT_KEY_IS(p + ks, ke - ks, "timestamp"))
            rc = rt_cscan_num(p, n, &j, s, RT_C_TS);
        else
            return -1;
        if (rc < 0)
            return -1;
        more = rt_cscan_next(p, n, &j);
        if (more < 0)
            return -1;
    } while (more);
    *i = j;
    return 0;
}

/* The walk both hot messages share: the top-level keys in any order, the
 * event name, the sequence number and the stream id under any carrier's
 * spelling; `mark` (a constant at each call, so each caller gets its own
 * compiled loop) picks the message: 0 for media, 1 for an echoed mark. */
static inline int rt_scan_carrier_event(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s, int mark)
{
    Py_ssize_t i = 0, ks, ke;
    int f, more, seen_body = 0;

    for (f = 0; f < RT_C_NSTR; f++)
        s->start[f] = s->end[f] = -1;
    for (f = 0; f < RT_C_NNUM; f++)
        s->num[f] = -1;
    s->nextra = 0;

    while (i < n && rt_scan_ws(p[i])) i++;
    if (i >= n || p[i] != '{')
        return RT_SCAN_FALLBACK;
    i++;
    do {
        const uint8_t *k;
        Py_ssize_t len;
        int rc;
        ks = rt_cscan_key(p, n, &i, &ke);
        if (ks < 0)
            return RT_SCAN_FALLBACK;
        k = p + ks;
        len = ke - ks;
        if (RT_KEY_IS(k, len, "event")) {
            if (rt_cscan_str(p, n, &i, s, RT_C_EVENT) < 0)
                return RT_SCAN_FALLBACK;
            if (mark ? !RT_KEY_IS(p + s->start[RT_C_EVENT], s->end[RT_C_EVENT] - s->start[RT_C_EVENT], "mark")
                     : !RT_KEY_IS(p + s->start[RT_C_EVENT], s->end[RT_C_EVENT] - s->start[RT_C_EVENT], "media"))
                return RT_SCAN_OTHER;
            rc = 0;
        } else if (mark ? RT_KEY_IS(k, len, "mark") : RT_KEY_IS(k, len, "media")) {
            if (p[i] != '{' || seen_body)
                return RT_SCAN_FALLBACK;
            seen_body = 1;
            if (!mark) {
                rc = rt_cscan_media(p, n, &i, s);
            } else {
                /* exactly {"name":"<plain string>"} */
                i++;
                ks = rt_cscan_key(p, n, &i, &ke);
                if (ks < 0 || !RT_KEY_IS(p + ks, ke - ks, "name"))
                    return RT_SCAN_FALLBACK;
                rc = rt_cscan_str(p, n, &i, s, RT_C_PAYLOAD);
                if (rc == 0 && rt_cscan_next(p, n, &i) != 0)
                    return RT_SCAN_FALLBACK;    /* another key in "mark" */
            }
        } else if (RT_KEY_IS(k, len, "sequenceNumber") || RT_KEY_IS(k, len, "sequence_number")) {
            rc = rt_cscan_num(p, n, &i, s, RT_C_SEQ);
        } else if (RT_KEY_IS(k, len, "streamSid") || RT_KEY_IS(k, len, "stream_id")
                   || RT_KEY_IS(k, len, "streamId") || RT_KEY_IS(k, len, "stream_sid")) {
            rc = rt_cscan_str(p, n, &i, s, RT_C_STREAM);
        } else if (mark) {
            return RT_SCAN_FALLBACK;            /* a mark has no other keys */
        } else {
            Py_ssize_t ve;
            int x;
            if (s->nextra == RT_C_NEXTRA || p[i] != '"')
                return RT_SCAN_FALLBACK;
            for (x = 0; x < s->nextra; x++)     /* a duplicate key: orjson keeps the last */
                if (s->xkey[x][1] - s->xkey[x][0] == len && memcmp(p + s->xkey[x][0], k, len) == 0)
                    return RT_SCAN_FALLBACK;
            ve = rt_scan_string(p, n, i + 1);
            if (ve < 0)
                return RT_SCAN_FALLBACK;
            s->xkey[s->nextra][0] = ks;
            s->xkey[s->nextra][1] = ke;
            s->xval[s->nextra][0] = i + 1;
            s->xval[s->nextra][1] = ve;
            s->nextra++;
            i = ve + 1;
            rc = 0;
        }
        if (rc < 0)
            return RT_SCAN_FALLBACK;
        more = rt_cscan_next(p, n, &i);
        if (more < 0)
            return RT_SCAN_FALLBACK;
    } while (more);
    while (i < n && rt_scan_ws(p[i])) i++;
    if (i != n || s->start[RT_C_EVENT] < 0 || s->start[RT_C_PAYLOAD] < 0)
        return RT_SCAN_FALLBACK;
    return RT_SCAN_OK;
}

static inline int rt_scan_carrier_media(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
{
    return rt_scan_carrier_event(p, n, s, 0);
}

/* The other hot inbound message, an echoed mark (Twilio, Telnyx, Exotel):
 *
 *   {"event":"mark","sequenceNumber":"4","streamSid":"MZ...","mark":{"name":"0.12"}}
 *
 * in any key order, the sequence number and stream id under any carrier's
 * spelling, optional.  Only these keys, each once, and "mark" holding only a
 * plain string "name"; the name's span goes in s->start/end[RT_C_PAYLOAD].
 * Anything else: RT_SCAN_FALLBACK (RT_SCAN_OTHER for another event), and the
 * caller parses the frame with orjson. */
static inline int rt_scan_carrier_mark(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
{
    return rt_scan_carrier_event(p, n, s, 1);
}

/* Is p[0:n] strict base64?  Returns RT_B64_OK, or the error kind with the
 * offset of the first problem in *err.  Decodes block by block into scratch
 * (discarded); padding is only legal in the last block. */
#define RT_CHECK_BLOCK 4096
static inline int rt_b64_check(const uint8_t *p, size_t n, size_t *err)
{
    uint8_t scratch[RT_CHECK_BLOCK / 4 * 3];
    size_t pos = 0, written = 0, e = 0;
    for (;;) {
        size_t chunk = n - pos < RT_CHECK_BLOCK ? n - pos : RT_CHECK_BLOCK;
        int rc = rt_b64_decode_block(p + pos, chunk, pos + chunk == n, scratch, &written, &e);
        if (rc != RT_B64_OK) {
            *err = pos + e;
            return rc;
        }
        pos += chunk;
        if (pos >= n)
            return RT_B64_OK;
    }
}

#endif
