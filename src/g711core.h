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
 * through target attributes, so plain `gcc -O3` builds all of them), plus a
 * fourth set on AVX512-FP16 + VBMI (the encoders written with intrinsics, in
 * half precision), and rt_g711_init() picks the widest the CPU runs: SSE2
 * lacks the 32 -> 8 bit packs and 8/16-lane conversions, so it is several
 * times slower per sample.
 * All loops are plain C on byte pointers (any alignment), so callers may run
 * them without the GIL.
 */
#ifndef RTFAST_G711CORE_H
#define RTFAST_G711CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RT_G711_X86 1
/* _Float16 and the avx512fp16 target: gcc >= 12, clang >= 14 (64-bit: _bzhi_u64). */
#if defined(__x86_64__) && defined(__FLT16_MAX__) && ((defined(__clang__) && __clang_major__ >= 14) || \
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

/* The decoders with the float in half precision (AVX512-FP16), so that no
   step needs 32-bit lanes: twice the samples per instruction again. FP16
   exponents are biased by 15. (The encoders on this ISA follow, below.) */
#ifdef RT_G711_FP16
#define RT_G711_FP16_FN static inline __attribute__((always_inline, target("avx512fp16,avx512f,avx512bw,avx512vl")))

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
#define RT_G711_LOOPS(sfx, attr, f) RT_G711_ENCODERS(sfx, attr, f) RT_G711_DECODERS(sfx, attr, f)
#define RT_G711_ENCODERS(sfx, attr, f)                                                  \
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
    }
#define RT_G711_DECODERS(sfx, attr, f)                                                  \
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
RT_G711_DECODERS(avx512fp16, __attribute__((target("avx512fp16,avx512f,avx512bw,avx512vl"))), _h)

/* The encoders on AVX512-FP16 + VBMI, written with intrinsics: gcc's own
   vectorisation of the one-sample steps spent a third of its instructions
   narrowing 16-bit lanes to bytes (two vpmovwb per vector) and clearing low
   bits before the conversion. Here, per 64 samples:
     - the magnitude in 16-bit lanes (mu-law: |x >> 2| + 33; A-law: the
       signed sample with its low four bits set, see rt_alaw_v64), converted
       to half precision rounding toward zero, so the four bits below the
       leading one are exact whatever lies beneath them;
     - one vpermt2b takes bits 6..13 of the 64 halves (exponent low bits and
       the 4-bit mantissa, after a shift) into 64 bytes, another the high
       byte of every sample (its sign);
     - the code then costs one ternary-logic op for the sign, after a
       saturating subtract that inverts it and clips the top segment
       (mu-law) or before a xor for the even-bit inversion (A-law).
   Tails run the same steps under masks (masked-off lanes are never read). */
#define RT_G711_V_FN static __attribute__((target("avx512fp16,avx512f,avx512bw,avx512vl,avx512vbmi,bmi2")))
#define RT_G711_V_INLINE static inline __attribute__((always_inline, target("avx512fp16,avx512f,avx512bw,avx512vl,avx512vbmi,bmi2")))

/* Byte i of a vpermt2b source pair: the low byte of word i (0..63 across a, b). */
RT_G711_V_INLINE __m512i rt_g711_v_low_bytes(void)
{
    return _mm512_set_epi8(126, 124, 122, 120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100, 98, 96,
                           94, 92, 90, 88, 86, 84, 82, 80, 78, 76, 74, 72, 70, 68, 66, 64,
                           62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                           30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
}

/* (exponent << 4 | top 4 fraction bits) of w as a half, rounded toward zero. */
RT_G711_V_INLINE __m512i rt_g711_v_em(__m512i w)
{
    __m512h h = _mm512_cvt_roundepu16_ph(w, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    return _mm512_srli_epi16(_mm512_castph_si512(h), 6);
}

/* mu-law of 64 samples from (a, b): itu picks G.191's fold of negatives. */
RT_G711_V_INLINE __m512i rt_ulaw_v64(__m512i a, __m512i b, int itu, __m512i lo, __m512i hi)
{
    __m512i ma, mb;
    if (itu) {     /* (~x) >> 2 for x < 0 */
        ma = _mm512_xor_si512(_mm512_srai_epi16(a, 2), _mm512_srai_epi16(a, 15));
        mb = _mm512_xor_si512(_mm512_srai_epi16(b, 2), _mm512_srai_epi16(b, 15));
    } else {       /* audioop: -(x >> 2), at most 8192 */
        ma = _mm512_abs_epi16(_mm512_srai_epi16(a, 2));
        mb = _mm512_abs_epi16(_mm512_srai_epi16(b, 2));
    }
    const __m512i bias = _mm512_set1_epi16(33);
    /* Exponent 15 + lead, lead = 5 + segment (13 for m + 33 >= 8192, the
       clipped top): the byte is 0x40 + (segment << 4 | mantissa), at most 0xC0. */
    __m512i e = _mm512_permutex2var_epi8(rt_g711_v_em(_mm512_add_epi16(ma, bias)), lo,
                                         rt_g711_v_em(_mm512_add_epi16(mb, bias)));
    /* 0xBF - min(e, 0xBF) = 0x7F - (segment << 4 | mantissa), clipped: the
       inverted 7-bit code; bit 7 is set for x >= 0 (sign byte's bit 7 clear). */
    __m512i code = _mm512_subs_epu8(_mm512_set1_epi8((char)0xBF), e);
    __m512i sign = _mm512_permutex2var_epi8(a, hi, b);
    return _mm512_ternarylogic_epi32(code, sign, _mm512_set1_epi8((char)0x80), 0xF2);  /* a | (~b & c) */
}

/* A-law of 64 samples from (a, b). */
RT_G711_V_INLINE __m512i rt_alaw_v64(__m512i a, __m512i b, __m512i lo, __m512i hi)
{
    /* audioop's magnitude is n = (x >> 4) for x >= 0 and ~(x >> 4) for x < 0,
       and both are floor(|x | 15| / 16): or-ing in the low four bits makes a
       negative sample's |u| = 16 n + 1, so the sign needs no fold. |u| as a
       half rounded toward zero, times 2^-22 rounded toward zero (exact
       truncations at powers of two compose: floor(floor(z) / k) =
       floor(z / k)), is n * 2^-18 truncated to the code's precision: below
       16 a subnormal whose bits are n << 6, from 16 up a normal with
       exponent lead - 3 = the segment; bits 6..12 are the 7-bit code
       (segment << 4 | mantissa) in both ranges, segment 0's linear step
       included, and bits 13..14 are zero. The half's own sign (bit 15) is
       shifted out of the byte; the sign comes from each sample's high byte.
       FP16 arithmetic keeps subnormals whatever MXCSR's flush-to-zero and
       denormals-are-zero bits say. */
    const int rz = _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC;
    const __m512h scale = _mm512_set1_ph((_Float16)0.0000002384185791015625f);   /* 2^-22 */
    const __m512i low4 = _mm512_set1_epi16(15);
    __m512h ha = _mm512_cvt_roundepi16_ph(_mm512_or_si512(a, low4), rz);
    __m512h hb = _mm512_cvt_roundepi16_ph(_mm512_or_si512(b, low4), rz);
    ha = _mm512_mul_round_ph(ha, scale, rz);
    hb = _mm512_mul_round_ph(hb, scale, rz);
    __m512i code = _mm512_permutex2var_epi8(_mm512_srli_epi16(_mm512_castph_si512(ha), 6), lo,
                                            _mm512_srli_epi16(_mm512_castph_si512(hb), 6));
    __m512i sign = _mm512_permutex2var_epi8(a, hi, b);
    /* code | 0x80 for x >= 0, then A-law's even-bit inversion. */
    code = _mm512_ternarylogic_epi32(code, sign, _mm512_set1_epi8((char)0x80), 0xF2);  /* a | (~b & c) */
    return _mm512_xor_si512(code, _mm512_set1_epi8(0x55));
}

/* Large buffers are bound by memory, not by these few instructions per
   vector (a 60 s call streams 2.88 MB in, 1.44 MB out, mostly from L3):
     - the input is prefetched RT_G711_PF_BYTES ahead: the hardware prefetch
       alone left the loop waiting on L3 (a 60 s call ~25% faster);
     - from RT_G711_NT_MIN codes up, the codes go out with streaming stores:
       an ordinary store first reads each output line (read-for-ownership),
       a quarter of the traffic; with the prefetch this halved a 60 s call
       in a C loop, to the time of a plain read + streaming write of the
       same bytes. Below it the output would still sit in L2 for the
       caller, so it is stored normally (streaming there was no faster);
     - and the buffer is walked as RT_G711_STREAMS interleaved quarters:
       more lines in flight from L3 at once (~8% on a 60 s call; 2 streams
       gave half that, 8 were slower: write-combining buffers run out).
   Prefetches never reach past the input's end. Two threads were tried and
   left out: on a loaded machine the second core is rarely free, and they
   were slower in the median. */
#define RT_G711_PF_BYTES 4096
#define RT_G711_NT_MIN ((size_t)1 << 19)
#define RT_G711_STREAMS 4

/* Samples k .. k + 63 -> __m512i c. */
#define RT_G711_V_BLOCK(step, k)                                                        \
    __m512i a = _mm512_loadu_si512(pcm + 2 * (k));                                      \
    __m512i b = _mm512_loadu_si512(pcm + 2 * (k) + 64);                                 \
    __m512i c = (step)
#define RT_G711_V_PREFETCH(k)                                                           \
    _mm_prefetch((const char *)pcm + 2 * (k) + RT_G711_PF_BYTES, _MM_HINT_T0);          \
    _mm_prefetch((const char *)pcm + 2 * (k) + RT_G711_PF_BYTES + 64, _MM_HINT_T0)
/* Samples k .. k + r - 1 (r <= 64) under masks (masked-off lanes are never read). */
#define RT_G711_V_MASKED(step, k, r)                                                    \
    do {                                                                                \
        __mmask64 ko = _bzhi_u64(~0ULL, (unsigned)(r));                                 \
        __mmask32 ka = (__mmask32)ko, kb = (__mmask32)(ko >> 32);                       \
        __m512i a = _mm512_maskz_loadu_epi16(ka, pcm + 2 * (k));                        \
        __m512i b = _mm512_maskz_loadu_epi16(kb, pcm + 2 * (k) + 64);                   \
        _mm512_mask_storeu_epi8(out + (k), ko, (step));                                 \
    } while (0)

#define RT_G711_V_LOOP(name, step)                                                      \
    RT_G711_V_FN void name(const uint8_t *pcm, size_t n, uint8_t *out)                  \
    {                                                                                   \
        const __m512i lo = rt_g711_v_low_bytes();                                       \
        const __m512i hi = _mm512_add_epi8(lo, _mm512_set1_epi8(1));                    \
        (void)hi;                                                                       \
        size_t i = 0;                                                                   \
        /* A block at k prefetches inside the input (or its quarter) while */           \
        /* k + pf_end <= the end. */                                                    \
        const size_t pf_end = 64 + RT_G711_PF_BYTES / 2;                                \
        if (n >= RT_G711_NT_MIN) {                                                      \
            /* Up to out's next 64-byte boundary under masks: streaming stores */       \
            /* need whole aligned lines. */                                             \
            size_t head = (size_t)(-(uintptr_t)out & 63);                               \
            if (head) {                                                                 \
                RT_G711_V_MASKED(step, 0, head);                                        \
                i = head;                                                               \
            }                                                                           \
            /* Quarters of q codes from i (q a multiple of 64: each aligned). */        \
            const size_t q = (n - i) / RT_G711_STREAMS / 64 * 64;                       \
            size_t j = 0, s;                                                            \
            for (; j + pf_end <= q; j += 64) {                                          \
                for (s = 0; s < RT_G711_STREAMS; s++) {                                 \
                    RT_G711_V_PREFETCH(i + s * q + j);                                  \
                    RT_G711_V_BLOCK(step, i + s * q + j);                               \
                    _mm512_stream_si512((void *)(out + i + s * q + j), c);              \
                }                                                                       \
            }                                                                           \
            for (s = 0; s < RT_G711_STREAMS; s++) {                                     \
                size_t k;                                                               \
                for (k = i + s * q + j; k < i + (s + 1) * q; k += 64) {                 \
                    RT_G711_V_BLOCK(step, k);                                           \
                    _mm512_stream_si512((void *)(out + k), c);                          \
                }                                                                       \
            }                                                                           \
            for (i += RT_G711_STREAMS * q; i + 64 <= n; i += 64) {                      \
                RT_G711_V_BLOCK(step, i);                                               \
                _mm512_stream_si512((void *)(out + i), c);                              \
            }                                                                           \
            _mm_sfence();   /* order them before the caller's next stores */            \
        } else {                                                                        \
            for (; i + pf_end <= n; i += 64) {                                          \
                RT_G711_V_PREFETCH(i);                                                  \
                RT_G711_V_BLOCK(step, i);                                               \
                _mm512_storeu_si512(out + i, c);                                        \
            }                                                                           \
        }                                                                               \
        for (; i + 64 <= n; i += 64) {                                                  \
            RT_G711_V_BLOCK(step, i);                                                   \
            _mm512_storeu_si512(out + i, c);                                            \
        }                                                                               \
        if (i < n)                                                                      \
            RT_G711_V_MASKED(step, i, n - i);   /* 1..63 */                             \
    }

RT_G711_V_LOOP(rt_ulaw_encode_avx512fp16, rt_ulaw_v64(a, b, 0, lo, hi))
RT_G711_V_LOOP(rt_ulaw_encode_itu_avx512fp16, rt_ulaw_v64(a, b, 1, lo, hi))
RT_G711_V_LOOP(rt_alaw_encode_avx512fp16, rt_alaw_v64(a, b, lo, hi))
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
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("bmi2") &&
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
