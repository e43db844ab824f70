/* RFC 6455 websocket framing loops: masking and UTF-8 validation.
 *
 * Kept in C so the frame codec (wsframe.pyx) touches payloads with word-wide
 * loops and no Python objects. */
#ifndef RT_WSFRAME_H
#define RT_WSFRAME_H

#include <stdint.h>
#include <string.h>

/* dst[i] = src[i] ^ key[(i + phase) % 4]; dst may equal src. */
static inline void rt_ws_mask(uint8_t *dst, const uint8_t *src, size_t n,
                              const uint8_t key[4], size_t phase)
{
    uint8_t k[8];
    size_t i = 0;
    uint64_t kw;
    for (int j = 0; j < 8; j++)
        k[j] = key[(j + phase) & 3];
    memcpy(&kw, k, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= kw;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k[i & 7];
}

/* 1 if p[0:n] is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static inline int rt_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs, a word at a time: realtime JSON is almost all ASCII. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n)
            return 0;
        for (size_t j = 1; j < len; j++) {
            uint8_t cc = p[i + j];
            if ((cc & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

#endif
