/* G.711 mu-law and A-law kernels: exact with CPython's audioop, and a mu-law
 * encoder exact with the ITU-T G.191 reference (g711.c) as a second mode.
 *
 * Encoding is arithmetic, with no table and no branch on the audio, written
 * so that gcc -O3 vectorises the loops:
 *
 *   - the sign folds the sample to a magnitude m (two's complement tricks);
 *   - the segment is the position of m's leading one and the mantissa the
 *     four bits below it. Converting m to float puts exactly that in the
 *     float's bits (m < 2^24 converts exactly): bits >> 19 is
 *     (biased exponent << 4) | mantissa, and one subtraction rebases the
 *     exponent to the segment. Count-leading-zeros by cvtdq2ps, which every
 *     x86-64 vector unit has (there is no vector lzcnt before AVX-512CD, and
 *     no per-lane variable shift before AVX2).
 *
 * audioop and G.191 differ only in how mu-law folds a negative sample:
 * audioop takes -(x >> 2), G.191 (~x) >> 2. They agree everywhere except 508
 * negative inputs, where audioop's code is one step smaller (-1..-4 give 0x7E
 * in audioop, 0x7F in G.191). A-law folds with ~ in both; decoders agree.
 *
 * Decoding is arithmetic too: a code's (segment, mantissa) bits placed in a
 * float's exponent and fraction read as (2 * mantissa + 33) << (segment + 2)
 * exactly; a truncating conversion brings it back to an integer.
 *
 * The same loops are compiled three times (baseline SSE2, AVX2, AVX-512BW,
 * through target attributes, so plain `gcc -O3` builds all of them) and
 * rt_g711_init() picks the widest the CPU runs: SSE2 lacks the 32 -> 8 bit
 * packs and 8/16-lane conversions, so it is several times slower per sample.
 * All loops are plain C on byte pointers (any alignment), so callers may run
 * them without the GIL.
 */
#ifndef RTFAST_G711CORE_H
#define RTFAST_G711CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RT_G711_X86 1
/* _Float16 and the avx512fp16 target: gcc >= 12, clang >= 14. */
#if defined(__FLT16_MAX__) && ((defined(__clang__) && __clang_major__ >= 14) || \
                               (!defined(__clang__) && __GNUC__ >= 12))
#define RT_G711_FP16 1
#endif
#endif

#if defined(__GNUC__)
#define RT_G711_INLINE static inline __attribute__((always_inline))
#else
#define RT_G711_INLINE static inline
#endif

/* (biased float exponent << 4) | top 4 fraction bits of w, for 0 < w < 2^16:
   the only step that needs 32-bit lanes. */
RT_G711_INLINE uint16_t rt_g711_expmant(uint16_t w)
{
    float f = (float)w;
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(b >> 19);
}

/* The sign bit of x, as 0x80. */
RT_G711_INLINE uint16_t rt_g711_sign(int16_t x)
{
    return ((uint16_t)x >> 8) & 0x80;
}

/* The encoders keep every other step in 16-bit types, so that gcc runs them
   on 16-bit lanes: twice as many per vector as int arithmetic would use. */

/* mu-law of one sample, audioop's st_14linear2ulaw(x >> 2). */
RT_G711_INLINE uint8_t rt_ulaw_1(int16_t x)
{
    int16_t q = x >> 2;
    uint16_t m = (uint16_t)(q < 0 ? -q : q);        /* audioop: -(x >> 2); <= 8192 */
    /* Both references clip the biased magnitude to 13 bits, m + 33 <= 0x1FFF
       (audioop clips m at 8159 and sends 8159 + 33 = 0x2000 to the top code,
       which is also what 8158 + 33 = 0x1FFF gives). */
    m = m < 8158 ? m : 8158;
    /* m + 33 >= 32: segment = exponent - 5, so the 7-bit code is
       em - (127 + 5) * 16. mu-law sends it inverted (127 - code) with the
       sign bit set for x >= 0: 0x80 + 127 + 132 * 16 = 2367 - em, and a
       negative x clears that bit again. */
    return (uint8_t)((uint16_t)(2367 - rt_g711_expmant(m + 33)) ^ rt_g711_sign(x));
}

/* mu-law of one sample as G.191's ulaw_compress: (~x) >> 2 for x < 0. */
RT_G711_INLINE uint8_t rt_ulaw_itu_1(int16_t x)
{
    int16_t s = x >> 15;                            /* 0, or -1 when negative */
    uint16_t m = (uint16_t)((int16_t)(x ^ s) >> 2); /* <= 8191 */
    m = m < 8158 ? m : 8158;
    return (uint8_t)((uint16_t)(2367 - rt_g711_expmant(m + 33)) ^ rt_g711_sign(x));
}

/* A-law of one sample: audioop's st_linear2alaw(x >> 3), which is G.191's. */
RT_G711_INLINE uint8_t rt_alaw_1(int16_t x)
{
    int16_t s = x >> 15;
    uint16_t m = (uint16_t)((int16_t)(x >> 3) ^ s); /* negative: -(x >> 3) - 1 */
    /* From m = 32 up the segment is the float's exponent - 4:
       code = em - (127 + 4) * 16. Below 64, segments 0 and 1 share the step 2:
       code = m >> 1. No select needed: for m < 32, em - 2096 <= m >> 1 (it
       is negative below 16), and for m >= 64, em - 2096 >= 32 > 31, so
       max(min(m >> 1, 31), em - 2096) is the code everywhere (the two agree
       on 32..63). */
    int16_t lo = (int16_t)(m >> 1);
    lo = lo < 31 ? lo : 31;
    int16_t hi = (int16_t)(rt_g711_expmant(m) - 2096);
    int16_t code = lo > hi ? lo : hi;
    return (uint8_t)((uint16_t)code ^ (uint16_t)(0xD5 ^ (s & 0x80)));  /* sign bit set when x >= 0 */
}

/* float 2^(seg + 7) * (1 + mant/16 + 1/32) = (8 * mant + 132) << seg, for the
   7 bits (seg << 4) | mant. */
RT_G711_INLINE int32_t rt_g711_expand(int32_t c7)
{
    int32_t b = (c7 << 19) + ((127 + 7) << 23) + (1 << 18);
    float f;
    memcpy(&f, &b, 4);
    return (int32_t)f;
}

RT_G711_INLINE int16_t rt_ulaw_to16(uint8_t code)
{
    int32_t t = rt_g711_expand(~code & 0x7F) - 0x84;
    return (int16_t)((code & 0x80) ? t : -t);       /* mu-law is sent inverted */
}

RT_G711_INLINE int16_t rt_alaw_to16(uint8_t code)
{
    int32_t a7 = (code ^ 0x55) & 0x7F;
    /* Segment 0: 16 * mant + 8; segment s >= 1: (8 * mant + 132) << s. */
    int32_t t = a7 < 16 ? (a7 << 4) + 8 : rt_g711_expand(a7);
    return (int16_t)((code & 0x80) ? t : -t);
}

/* The same steps with the float in half precision (AVX512-FP16), so that no
   step needs 32-bit lanes: twice the samples per instruction again. A 16-bit
   float keeps 11 significant bits and w up to 13, so the bits below the
   eleventh are cleared first (w & ~(w >> 11): bit 0 from 2048 up, bit 1 from
   4096 up, bits 0-1 from 6144 up; what is left is exact, in any rounding
   mode, and the four bits below the leading one are untouched). FP16
   exponents are biased by 15: em = ((15 + lead) << 4) | mant. */
#ifdef RT_G711_FP16
#define RT_G711_FP16_FN static inline __attribute__((always_inline, target("avx512fp16,avx512f,avx512bw,avx512vl")))

RT_G711_FP16_FN uint16_t rt_g711_expmant_h(uint16_t w)
{
    _Float16 h = (_Float16)(uint16_t)(w & ~(w >> 11));
    uint16_t b;
    memcpy(&b, &h, 2);
    return b >> 6;
}

RT_G711_FP16_FN uint8_t rt_ulaw_1_h(int16_t x)
{
    int16_t q = x >> 2;
    uint16_t m = (uint16_t)(q < 0 ? -q : q);
    m = m < 8158 ? m : 8158;
    /* segment = lead - 5: code = em - (15 + 5) * 16; 0x80 + 127 + 320 = 575 */
    return (uint8_t)((uint16_t)(575 - rt_g711_expmant_h(m + 33)) ^ rt_g711_sign(x));
}

RT_G711_FP16_FN uint8_t rt_ulaw_itu_1_h(int16_t x)
{
    int16_t s = x >> 15;
    uint16_t m = (uint16_t)((int16_t)(x ^ s) >> 2);
    m = m < 8158 ? m : 8158;
    return (uint8_t)((uint16_t)(575 - rt_g711_expmant_h(m + 33)) ^ rt_g711_sign(x));
}

RT_G711_FP16_FN uint8_t rt_alaw_1_h(int16_t x)
{
    int16_t s = x >> 15;
    uint16_t m = (uint16_t)((int16_t)(x >> 3) ^ s);
    int16_t lo = (int16_t)(m >> 1);
    lo = lo < 31 ? lo : 31;
    int16_t hi = (int16_t)(rt_g711_expmant_h(m) - (15 + 4) * 16);   /* as rt_alaw_1 */
    int16_t code = lo > hi ? lo : hi;
    return (uint8_t)((uint16_t)code ^ (uint16_t)(0xD5 ^ (s & 0x80)));
}

/* (2 * mant + 33) << (seg + 2) as a half: exponent seg + 7, fraction
   (2 * mant + 1) << 5; at most 32256, so it converts back to int16 exactly. */
RT_G711_FP16_FN int16_t rt_g711_expand_h(uint16_t c7)
{
    uint16_t b = (uint16_t)((c7 << 6) + ((15 + 7) << 10) + (1 << 5));
    _Float16 h;
    memcpy(&h, &b, 2);
    return (int16_t)h;
}

RT_G711_FP16_FN int16_t rt_ulaw_to16_h(uint8_t code)
{
    int16_t t = (int16_t)(rt_g711_expand_h((uint16_t)(~code & 0x7F)) - 0x84);
    return (code & 0x80) ? t : (int16_t)-t;
}

RT_G711_FP16_FN int16_t rt_alaw_to16_h(uint8_t code)
{
    uint16_t a7 = (uint16_t)((code ^ 0x55) & 0x7F);
    int16_t t = a7 < 16 ? (int16_t)((a7 << 4) + 8) : rt_g711_expand_h(a7);
    return (code & 0x80) ? t : (int16_t)-t;
}
#endif

/* One definition of every loop, compiled once per instruction set (attr) and
   per family of the one-sample steps (f: "" or "_h"). pcm and out may be
   unaligned; samples are native int16. */
#define RT_G711_LOOPS(sfx, attr, f)                                                     \
    static attr void rt_ulaw_encode_##sfx(const uint8_t *pcm, size_t n, uint8_t *out)   \
    {                                                                                   \
        size_t i;                                                                       \
        for (i = 0; i < n; i++) {                                                       \
            int16_t x;                                                                  \
            memcpy(&x, pcm + 2 * i, 2);                                                 \
            out[i] = rt_ulaw_1##f(x);                                                   \
        }                                                                               \
    }                                                                                   \
    static attr void rt_ulaw_encode_itu_##sfx(const uint8_t *pcm, size_t n, uint8_t *out) \
    {                                                                                   \
        size_t i;                                                                       \
        for (i = 0; i < n; i++) {                                                       \
            int16_t x;                                                                  \
            memcpy(&x, pcm + 2 * i, 2);                                                 \
            out[i] = rt_ulaw_itu_1##f(x);                                               \
        }                                                                               \
    }                                                                                   \
    static attr void rt_alaw_encode_##sfx(const uint8_t *pcm, size_t n, uint8_t *out)   \
    {                                                                                   \
        size_t i;                                                                       \
        for (i = 0; i < n; i++) {                                                       \
            int16_t x;                                                                  \
            memcpy(&x, pcm + 2 * i, 2);                                                 \
            out[i] = rt_alaw_1##f(x);                                                   \
        }                                                                               \
    }                                                                                   \
    static attr void rt_ulaw_decode_##sfx(const uint8_t *codes, size_t n, uint8_t *out) \
    {                                                                                   \
        size_t i;                                                                       \
        for (i = 0; i < n; i++) {                                                       \
            int16_t x = rt_ulaw_to16##f(codes[i]);                                      \
            memcpy(out + 2 * i, &x, 2);                                                 \
        }                                                                               \
    }                                                                                   \
    static attr void rt_alaw_decode_##sfx(const uint8_t *codes, size_t n, uint8_t *out) \
    {                                                                                   \
        size_t i;                                                                       \
        for (i = 0; i < n; i++) {                                                       \
            int16_t x = rt_alaw_to16##f(codes[i]);                                      \
            memcpy(out + 2 * i, &x, 2);                                                 \
        }                                                                               \
    }

RT_G711_LOOPS(base, , )
#ifdef RT_G711_X86
RT_G711_LOOPS(avx2, __attribute__((target("avx2"))), )
RT_G711_LOOPS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl"))), )
#endif
#ifdef RT_G711_FP16
RT_G711_LOOPS(avx512fp16, __attribute__((target("avx512fp16,avx512f,avx512bw,avx512vl"))), _h)
#endif

typedef void (*rt_g711_fn)(const uint8_t *src, size_t n, uint8_t *out);

/* The loops in use: ulaw enc, ulaw enc (G.191), alaw enc, ulaw dec, alaw dec.
   Filled by rt_g711_init() (the base loops until then, so never NULL). */
static rt_g711_fn rt_g711__fn[5] = {rt_ulaw_encode_base, rt_ulaw_encode_itu_base,
                                    rt_alaw_encode_base, rt_ulaw_decode_base,
                                    rt_alaw_decode_base};
static const char *rt_g711_isa = "sse2";

#define RT_G711_USE(sfx)                                                                \
    do {                                                                                \
        rt_g711__fn[0] = rt_ulaw_encode_##sfx;                                          \
        rt_g711__fn[1] = rt_ulaw_encode_itu_##sfx;                                      \
        rt_g711__fn[2] = rt_alaw_encode_##sfx;                                          \
        rt_g711__fn[3] = rt_ulaw_decode_##sfx;                                          \
        rt_g711__fn[4] = rt_alaw_decode_##sfx;                                          \
    } while (0)

/* Use the loops for isa ("sse2", "avx2", "avx512", "avx512fp16"); -1 if this CPU (or build)
   cannot run them. For tests, which check every path the machine has. */
static int rt_g711_use(const char *isa)
{
    if (strcmp(isa, "sse2") == 0) {
        RT_G711_USE(base);
        rt_g711_isa = "sse2";
        return 0;
    }
#ifdef RT_G711_X86
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        RT_G711_USE(avx2);
        rt_g711_isa = "avx2";
        return 0;
    }
    if (strcmp(isa, "avx512") == 0 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        RT_G711_USE(avx512);
        rt_g711_isa = "avx512";
        return 0;
    }
#endif
#ifdef RT_G711_FP16
    if (strcmp(isa, "avx512fp16") == 0 && __builtin_cpu_supports("avx512fp16") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        RT_G711_USE(avx512fp16);
        rt_g711_isa = "avx512fp16";
        return 0;
    }
#endif
    return -1;
}

/* Pick the widest loops the CPU runs. Idempotent; called at module import. */
static void rt_g711_init(void)
{
    if (rt_g711_use("avx512fp16") != 0 && rt_g711_use("avx512") != 0 &&
        rt_g711_use("avx2") != 0)
        rt_g711_use("sse2");
}

/* Encoders: n samples of native int16 (pcm may be unaligned) -> n codes. */
static void rt_ulaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
{
    rt_g711__fn[0](pcm, n, out);
}

static void rt_ulaw_encode_itu(const uint8_t *pcm, size_t n, uint8_t *out)
{
    rt_g711__fn[1](pcm, n, out);
}

static void rt_alaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
{
    rt_g711__fn[2](pcm, n, out);
}

/* Decoders: n codes -> n native int16 samples (out may be unaligned). */
static void rt_ulaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
{
    rt_g711__fn[3](codes, n, out);
}

static void rt_alaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
{
    rt_g711__fn[4](codes, n, out);
}

#endif
