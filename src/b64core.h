/*
 * b64core.h - header-only RFC 4648 base64 (standard alphabet, '=' padding).
 *
 * Scalar code everywhere, plus SSSE3 and AVX2 paths on x86 picked at run time
 * (compiled through target attributes, so plain `gcc -O3` is enough).
 * SIMD algorithms: W. Mula, D. Lemire, "Faster Base64 Encoding and Decoding
 * using AVX2 Instructions" (ACM TOW 2018).
 *
 * No Python API, no allocation, no global constructors: safe to call from
 * Cython `nogil` code. All functions are `static inline` so that including the
 * header without using every function does not trigger -Wunused-function.
 */
#ifndef RT_B64CORE_H
#define RT_B64CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RT_B64_OK 0
#define RT_B64_BAD_CHAR 1    /* a byte outside the alphabet (or '=' where data must be) */
#define RT_B64_BAD_PADDING 2 /* '=' misplaced, or data after the padding */
#define RT_B64_BAD_LENGTH 3  /* length not a multiple of 4 (padding is required) */

#if defined(__x86_64__) || defined(__i386__)
#define RT_B64_X86 1
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */
/* ------------------------------------------------------------------------ */

/* Sized 65 (not 64) so that the literal's NUL also fits when compiled as C++. */
static const uint8_t rt_b64__enc_tab[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* char -> 6-bit value; 0xFF for everything outside the alphabet (incl. '='). */
static const uint8_t rt_b64__dec_tab[256] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0xFF, 0xFF, 0xFF, 0x3F,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

/* ------------------------------------------------------------------------ */
/* Scalar code (non-x86, short inputs, and the tails of the SIMD loops)     */
/* ------------------------------------------------------------------------ */

/* Big-endian 64-bit load through memcpy: no alignment UB. */
static inline uint64_t rt_b64__load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return __builtin_bswap64(v);
#endif
}

/* Encodes all n bytes (with padding); returns the number of chars written. */
static inline size_t rt_b64__enc_scalar(const uint8_t *s, size_t n, uint8_t *o)
{
    const uint8_t *T = rt_b64__enc_tab;
    uint8_t *o0 = o;
    /* 8-byte loads, 6 bytes consumed: 8 chars per step, half the loads. */
    while (n >= 8) {
        uint64_t v = rt_b64__load_be64(s);
        o[0] = T[(v >> 58) & 63];
        o[1] = T[(v >> 52) & 63];
        o[2] = T[(v >> 46) & 63];
        o[3] = T[(v >> 40) & 63];
        o[4] = T[(v >> 34) & 63];
        o[5] = T[(v >> 28) & 63];
        o[6] = T[(v >> 22) & 63];
        o[7] = T[(v >> 16) & 63];
        s += 6;
        n -= 6;
        o += 8;
    }
    while (n >= 3) {
        uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
        o[0] = T[v >> 18];
        o[1] = T[(v >> 12) & 63];
        o[2] = T[(v >> 6) & 63];
        o[3] = T[v & 63];
        s += 3;
        n -= 3;
        o += 4;
    }
    if (n) {
        uint32_t v = (uint32_t)s[0] << 16 | (n == 2 ? (uint32_t)s[1] << 8 : 0);
        o[0] = T[v >> 18];
        o[1] = T[(v >> 12) & 63];
        o[2] = n == 2 ? T[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - o0);
}

/*
 * Reference validator: scans s[i..n) left to right and reports the first byte
 * that is invalid at its position (kind + offset), or BAD_LENGTH at n.
 * Only called once something is known to be wrong (and for n % 4 != 0), so it
 * favours clarity over speed. Callers guarantee s[0..i) is valid data.
 */
static inline int rt_b64__scan(const uint8_t *s, size_t n, size_t i, size_t *err)
{
    /* Start of the only quantum that may hold padding; n if none may. */
    size_t fq = (n % 4 == 0 && n >= 4) ? n - 4 : n;
    for (; i < n; i++) {
        uint8_t c = s[i];
        int alpha = rt_b64__dec_tab[c] != 0xFF;
        if (i < fq + 2) {
            if (alpha)
                continue;
        } else if (i == fq + 2) {
            if (alpha || c == '=')
                continue;
        } else if (s[fq + 2] == '=') {
            /* "xx=?": only '=' may follow the first pad. */
            if (c == '=')
                continue;
            if (alpha) {
                *err = i;
                return RT_B64_BAD_PADDING;
            }
        } else if (alpha || c == '=') {
            continue;
        }
        *err = i;
        return c == '=' ? RT_B64_BAD_PADDING : RT_B64_BAD_CHAR;
    }
    if (n % 4) {
        *err = n;
        return RT_B64_BAD_LENGTH;
    }
    return RT_B64_OK;
}

/*
 * Decodes s[i..n) (n % 4 == 0, n >= 4, i % 4 == 0, i <= n - 4) into o, which
 * corresponds to output offset i / 4 * 3. Handles the padded final quantum.
 */
static inline int rt_b64__dec_tail(const uint8_t *s, size_t n, size_t i, uint8_t *o,
                                   size_t *written, size_t *err)
{
    const uint8_t *D = rt_b64__dec_tab;
    const size_t last = n - 4;
    uint32_t a, b, c, d, v;
    for (; i < last; i += 4) {
        a = D[s[i]];
        b = D[s[i + 1]];
        c = D[s[i + 2]];
        d = D[s[i + 3]];
        if ((a | b | c | d) & 0x80)
            return rt_b64__scan(s, n, i, err);
        v = a << 18 | b << 12 | c << 6 | d;
        o[0] = (uint8_t)(v >> 16);
        o[1] = (uint8_t)(v >> 8);
        o[2] = (uint8_t)v;
        o += 3;
    }
    a = D[s[last]];
    b = D[s[last + 1]];
    /* Padding turns into a 0 digit; the 0x80 check still rejects '=' elsewhere. */
    c = s[last + 2] == '=' && s[last + 3] == '=' ? 0 : D[s[last + 2]];
    d = s[last + 3] == '=' ? 0 : D[s[last + 3]];
    if ((a | b | c | d) & 0x80)
        return rt_b64__scan(s, n, last, err);
    /* Unused low bits of the last data char are ignored, as binascii does. */
    v = a << 18 | b << 12 | c << 6 | d;
    o[0] = (uint8_t)(v >> 16);
    if (s[last + 2] != '=') {
        o[1] = (uint8_t)(v >> 8);
        if (s[last + 3] != '=')
            o[2] = (uint8_t)v;
    }
    *written = n / 4 * 3 - (s[last + 3] == '=') - (s[last + 2] == '=');
    return RT_B64_OK;
}

/* ------------------------------------------------------------------------ */
/* x86 SIMD                                                                  */
/* ------------------------------------------------------------------------ */
#ifdef RT_B64_X86

#define RT_B64_SSSE3_FN static inline __attribute__((target("ssse3")))
#define RT_B64_AVX2_FN static inline __attribute__((target("avx2")))
/* Block helpers must inline into their (same or wider ISA) callers. */
#define RT_B64_SSSE3_BLK static inline __attribute__((always_inline, target("ssse3")))
#define RT_B64_AVX2_BLK static inline __attribute__((always_inline, target("avx2")))

/* 12 bytes in lanes 0..11 -> 16 base64 chars. */
RT_B64_SSSE3_BLK __m128i rt_b64__enc_blk128(__m128i in)
{
    /* Each dword gets bytes [b1 b0 b2 b1] so both 16-bit halves hold 12 of
       the 24 bits in big-endian order; mulhi/mullo then shift each 6-bit
       field into its own byte. */
    in = _mm_shuffle_epi8(in, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    __m128i t0 = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)),
                                 _mm_set1_epi32(0x04000040));
    __m128i t1 = _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)),
                                 _mm_set1_epi32(0x01000010));
    __m128i idx = _mm_or_si128(t0, t1);
    /* 6-bit -> ASCII: pick an offset by range (0..25, 26..51, 52..61, 62, 63). */
    __m128i r = _mm_subs_epu8(idx, _mm_set1_epi8(51));
    r = _mm_sub_epi8(r, _mm_cmpgt_epi8(idx, _mm_set1_epi8(25)));
    const __m128i off = _mm_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    return _mm_add_epi8(idx, _mm_shuffle_epi8(off, r));
}

/* 16 chars -> 12 bytes in lanes 0..11 (lanes 12..15 zero). Sets *bad to a
   non-zero vector iff some char is outside the alphabet. */
RT_B64_SSSE3_BLK __m128i rt_b64__dec_blk128(__m128i s, __m128i *bad)
{
    /* Classify by nibbles: a char is valid iff lut_lo[lo] & lut_hi[hi] == 0.
       0x2F doubles as the '/' constant; pshufb ignores index bit 5. */
    const __m128i m2f = _mm_set1_epi8(0x2f);
    const __m128i lut_lo = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                         0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
    const __m128i lut_hi = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m128i lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71,
                                           0, 0, 0, 0, 0, 0, 0, 0);
    __m128i hi_n = _mm_and_si128(_mm_srli_epi32(s, 4), m2f);
    __m128i lo_n = _mm_and_si128(s, m2f);
    *bad = _mm_and_si128(_mm_shuffle_epi8(lut_lo, lo_n), _mm_shuffle_epi8(lut_hi, hi_n));
    /* ASCII -> 6-bit: offset by high nibble, '/' shares nibble 2 with '+'. */
    __m128i roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(_mm_cmpeq_epi8(s, m2f), hi_n));
    s = _mm_add_epi8(s, roll);
    /* Pack 4x6 bits -> 24 bits per dword, then gather 3 bytes per dword. */
    s = _mm_maddubs_epi16(s, _mm_set1_epi32(0x01400140));
    s = _mm_madd_epi16(s, _mm_set1_epi32(0x00011000));
    return _mm_shuffle_epi8(s, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12,
                                             -1, -1, -1, -1));
}

RT_B64_SSSE3_BLK int rt_b64__any128(__m128i bad)
{
    return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) != 0xFFFF;
}

/* 256-bit versions: each 128-bit lane does the same as above. */
RT_B64_AVX2_BLK __m256i rt_b64__enc_blk256(__m256i in)
{
    in = _mm256_shuffle_epi8(in, _mm256_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
                                                 14, 15, 13, 14, 11, 12, 10, 11, 8, 9, 7, 8, 5, 6, 4, 5));
    __m256i t0 = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
                                    _mm256_set1_epi32(0x04000040));
    __m256i t1 = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
                                    _mm256_set1_epi32(0x01000010));
    __m256i idx = _mm256_or_si256(t0, t1);
    __m256i r = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
    r = _mm256_sub_epi8(r, _mm256_cmpgt_epi8(idx, _mm256_set1_epi8(25)));
    const __m256i off = _mm256_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0,
                                         65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    return _mm256_add_epi8(idx, _mm256_shuffle_epi8(off, r));
}

/* 32 chars -> 24 bytes in lanes 0..23 (lanes 24..31 garbage). */
RT_B64_AVX2_BLK __m256i rt_b64__dec_blk256(__m256i s, __m256i *bad)
{
    const __m256i m2f = _mm256_set1_epi8(0x2f);
    const __m256i lut_lo = _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A,
                                            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                            0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A);
    const __m256i lut_hi = _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
                                            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                                            0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i lut_roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71,
                                              0, 0, 0, 0, 0, 0, 0, 0,
                                              0, 16, 19, 4, -65, -65, -71, -71,
                                              0, 0, 0, 0, 0, 0, 0, 0);
    __m256i hi_n = _mm256_and_si256(_mm256_srli_epi32(s, 4), m2f);
    __m256i lo_n = _mm256_and_si256(s, m2f);
    *bad = _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo_n), _mm256_shuffle_epi8(lut_hi, hi_n));
    __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(s, m2f), hi_n));
    s = _mm256_add_epi8(s, roll);
    s = _mm256_maddubs_epi16(s, _mm256_set1_epi32(0x01400140));
    s = _mm256_madd_epi16(s, _mm256_set1_epi32(0x00011000));
    s = _mm256_shuffle_epi8(s, _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                                2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    /* Close the 4-byte gap between the two 12-byte lane results. */
    return _mm256_permutevar8x32_epi32(s, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
}

/*
 * SIMD encoders: consume a multiple of 12 (or 24) bytes from the front and
 * return how many; the caller encodes the rest with the scalar code. Every
 * load stays inside [s, s + n).
 */
RT_B64_SSSE3_FN size_t rt_b64__enc_ssse3(const uint8_t *s, size_t n, uint8_t *o)
{
    size_t i = 0;
    /* 16-byte loads of which 12 bytes are used. */
    for (; i + 16 <= n; i += 12, o += 16)
        _mm_storeu_si128((__m128i *)o,
                         rt_b64__enc_blk128(_mm_loadu_si128((const __m128i *)(s + i))));
    return i;
}

RT_B64_AVX2_FN size_t rt_b64__enc_avx2(const uint8_t *s, size_t n, uint8_t *o)
{
    size_t i = 0;
    if (n >= 32) {
        /* The kernel wants bytes 0..11 at lane offsets 4..15 and 12..23 at
           16..27, i.e. a load from s - 4. The first block cannot read before
           s, so it loads from s and moves dwords 0..5 up into place. */
        __m256i v = _mm256_loadu_si256((const __m256i *)s);
        v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6));
        _mm256_storeu_si256((__m256i *)o, rt_b64__enc_blk256(v));
        i = 24;
        o += 32;
        /* Two blocks per iteration; the load of s[i-4 .. i+28) must fit. */
        for (; i + 52 <= n; i += 48, o += 64) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(s + i - 4));
            __m256i b = _mm256_loadu_si256((const __m256i *)(s + i + 20));
            _mm256_storeu_si256((__m256i *)o, rt_b64__enc_blk256(a));
            _mm256_storeu_si256((__m256i *)(o + 32), rt_b64__enc_blk256(b));
        }
        for (; i + 28 <= n; i += 24, o += 32)
            _mm256_storeu_si256((__m256i *)o,
                                rt_b64__enc_blk256(_mm256_loadu_si256((const __m256i *)(s + i - 4))));
    }
    for (; i + 16 <= n; i += 12, o += 16)
        _mm_storeu_si128((__m128i *)o,
                         rt_b64__enc_blk128(_mm_loadu_si128((const __m128i *)(s + i))));
    return i;
}

/*
 * SIMD decoders: decode whole blocks from the front of the data part of s
 * (everything but the final quantum, which may hold padding) and return how
 * many chars they consumed. They stop early at the first block holding an
 * invalid char; the scalar tail then re-reads it and pinpoints the error.
 * Stores are full vectors (a few garbage bytes past the block's output), so
 * each store must end within cap = the caller's output size.
 */
RT_B64_SSSE3_FN size_t rt_b64__dec_ssse3(const uint8_t *s, size_t n, uint8_t *o, size_t cap)
{
    size_t i = 0, oi = 0;
    __m128i bad;
    for (; i + 16 <= n - 4 && oi + 16 <= cap; i += 16, oi += 12) {
        __m128i r = rt_b64__dec_blk128(_mm_loadu_si128((const __m128i *)(s + i)), &bad);
        if (rt_b64__any128(bad))
            break;
        _mm_storeu_si128((__m128i *)(o + oi), r);
    }
    return i;
}

RT_B64_AVX2_FN size_t rt_b64__dec_avx2(const uint8_t *s, size_t n, uint8_t *o, size_t cap)
{
    size_t i = 0, oi = 0;
    __m256i bad_a, bad_b;
    /* Two blocks per iteration with a single (rarely taken) validity branch. */
    for (; i + 64 <= n - 4 && oi + 56 <= cap; i += 64, oi += 48) {
        __m256i a = rt_b64__dec_blk256(_mm256_loadu_si256((const __m256i *)(s + i)), &bad_a);
        __m256i b = rt_b64__dec_blk256(_mm256_loadu_si256((const __m256i *)(s + i + 32)), &bad_b);
        if (!_mm256_testz_si256(bad_a, bad_a) || !_mm256_testz_si256(bad_b, bad_b))
            break;
        _mm256_storeu_si256((__m256i *)(o + oi), a);
        _mm256_storeu_si256((__m256i *)(o + oi + 24), b);
    }
    for (; i + 32 <= n - 4 && oi + 32 <= cap; i += 32, oi += 24) {
        __m256i a = rt_b64__dec_blk256(_mm256_loadu_si256((const __m256i *)(s + i)), &bad_a);
        if (!_mm256_testz_si256(bad_a, bad_a))
            break;
        _mm256_storeu_si256((__m256i *)(o + oi), a);
    }
    for (; i + 16 <= n - 4 && oi + 16 <= cap; i += 16, oi += 12) {
        __m128i bad;
        __m128i r = rt_b64__dec_blk128(_mm_loadu_si128((const __m128i *)(s + i)), &bad);
        if (!_mm_testz_si128(bad, bad))
            break;
        _mm_storeu_si128((__m128i *)(o + oi), r);
    }
    return i;
}

#endif /* RT_B64_X86 */

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

#define RT_B64__SCALAR 1
#define RT_B64__SSSE3 2
#define RT_B64__AVX2 3

/* Active level; 0 = not resolved yet. Resolving is idempotent, so racing
   threads at worst both compute the same value (relaxed atomics keep that
   free of data-race UB). */
static int rt_b64__level_v;

static inline int rt_b64__best(void)
{
#ifdef RT_B64_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return RT_B64__AVX2;
    if (__builtin_cpu_supports("ssse3"))
        return RT_B64__SSSE3;
#endif
    return RT_B64__SCALAR;
}

static inline int rt_b64__level(void)
{
    int l = __atomic_load_n(&rt_b64__level_v, __ATOMIC_RELAXED);
    if (l == 0) {
        l = rt_b64__best();
        __atomic_store_n(&rt_b64__level_v, l, __ATOMIC_RELAXED);
    }
    return l;
}

/* 0 = auto, 1 = scalar, 2 = ssse3, 3 = avx2; capped at what the CPU has. */
static inline void rt_b64_force(int level)
{
    int best = rt_b64__best();
    if (level <= 0 || level > best)
        level = best;
    __atomic_store_n(&rt_b64__level_v, level, __ATOMIC_RELAXED);
}

static inline const char *rt_b64_impl(void)
{
    switch (rt_b64__level()) {
    case RT_B64__AVX2:
        return "avx2";
    case RT_B64__SSSE3:
        return "ssse3";
    default:
        return "scalar";
    }
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

/* 4 * ceil(n / 3) */
static inline size_t rt_b64_encoded_len(size_t n)
{
    return (n / 3 + (n % 3 != 0)) * 4;
}

/* Writes rt_b64_encoded_len(n) chars (padded) to out and returns that count. */
static inline size_t rt_b64_encode(const uint8_t *src, size_t n, uint8_t *out)
{
    size_t i = 0;
#ifdef RT_B64_X86
    switch (rt_b64__level()) {
    case RT_B64__AVX2:
        i = rt_b64__enc_avx2(src, n, out);
        break;
    case RT_B64__SSSE3:
        i = rt_b64__enc_ssse3(src, n, out);
        break;
    default:
        break;
    }
#endif
    return i / 3 * 4 + rt_b64__enc_scalar(src + i, n - i, out + i / 3 * 4);
}

/* n/4*3, minus the trailing '=' count (0..2) when n % 4 == 0. An upper
   bound (and the exact size) for valid input; decode never writes more. */
static inline size_t rt_b64_decoded_len(const uint8_t *src, size_t n)
{
    size_t m = n / 4 * 3;
    if (n % 4 == 0 && n >= 4)
        m -= (src[n - 1] == '=') + (src[n - 1] == '=' && src[n - 2] == '=');
    return m;
}

/*
 * Strict decode. Returns RT_B64_OK and sets *written, or an error kind with
 * *err_offset = offset of the first byte invalid at its position (BAD_CHAR /
 * BAD_PADDING), or n for BAD_LENGTH when every byte is otherwise fine.
 * out needs rt_b64_decoded_len(src, n) bytes; on error its content is
 * unspecified.
 */
static inline int rt_b64_decode(const uint8_t *src, size_t n, uint8_t *out, size_t *written,
                                size_t *err_offset)
{
    size_t i = 0;
    if (n % 4)
        return rt_b64__scan(src, n, 0, err_offset);
    if (n == 0) {
        *written = 0;
        return RT_B64_OK;
    }
#ifdef RT_B64_X86
    switch (rt_b64__level()) {
    case RT_B64__AVX2:
        i = rt_b64__dec_avx2(src, n, out, rt_b64_decoded_len(src, n));
        break;
    case RT_B64__SSSE3:
        i = rt_b64__dec_ssse3(src, n, out, rt_b64_decoded_len(src, n));
        break;
    default:
        break;
    }
#endif
    return rt_b64__dec_tail(src, n, i, out + i / 4 * 3, written, err_offset);
}

/*
 * One block of a longer input decoded piecewise (a fixed scratch buffer).
 * last != 0 for the input's final block, which is decoded as rt_b64_decode
 * does. Any other block holds data only: padding may close only the whole
 * input, so the first byte outside the alphabet is the error, '=' included.
 * (rt_b64_decode alone would take the block's last quantum for the final one
 * and name the byte after a "xx=" one byte late.) Offsets are block-relative.
 */
static inline int rt_b64_decode_block(const uint8_t *src, size_t n, int last, uint8_t *out,
                                      size_t *written, size_t *err_offset)
{
    int rc = rt_b64_decode(src, n, out, written, err_offset);
    if (last || (rc == RT_B64_OK && *written == n / 4 * 3))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (rt_b64__dec_tab[src[i]] == 0xFF) {
            *err_offset = i;
            return src[i] == '=' ? RT_B64_BAD_PADDING : RT_B64_BAD_CHAR;
        }
    }
    return rc;  /* not reached: a failed or short block holds a non-alphabet byte */
}

#endif /* RT_B64CORE_H */
