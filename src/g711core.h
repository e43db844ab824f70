/* G.711 mu-law and A-law kernels, bit-exact with CPython's audioop.
 *
 * audioop encodes a 16-bit sample by shifting it to 14 bits (mu-law) or
 * 13 bits (A-law) and running the Sun/CCITT segment search.  We run that
 * search once per possible shifted value at init and keep the answers in
 * tables (16 KiB + 8 KiB, L1-resident), so encoding is one load per sample
 * and no branch depends on the audio.  Decoding is the usual 256-entry
 * table.  All loops are plain C so callers may run them without the GIL.
 */
#ifndef RTFAST_G711CORE_H
#define RTFAST_G711CORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint8_t rt_ulaw_enc[1 << 14];   /* index: (uint16_t)sample >> 2 */
static uint8_t rt_alaw_enc[1 << 13];   /* index: (uint16_t)sample >> 3 */
static int16_t rt_ulaw_dec[256];
static int16_t rt_alaw_dec[256];
static int rt_g711_ready = 0;

/* Index of the first segment end >= val (8 when above all), as audioop. */
static int rt_g711_search(int val, const int *ends)
{
    int i;
    for (i = 0; i < 8; i++)
        if (val <= ends[i])
            return i;
    return 8;
}

/* audioop's st_14linear2ulaw: 14-bit two's complement in. */
static uint8_t rt_ulaw_from14(int v)
{
    static const int seg_uend[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
    int mask, seg;
    if (v < 0) {
        v = -v;
        mask = 0x7F;
    } else {
        mask = 0xFF;
    }
    if (v > 8159)
        v = 8159;
    v += 0x84 >> 2;
    seg = rt_g711_search(v, seg_uend);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask);
}

/* audioop's st_linear2alaw: 13-bit two's complement in. */
static uint8_t rt_alaw_from13(int v)
{
    static const int seg_aend[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
    int mask, seg, aval;
    if (v >= 0) {
        mask = 0xD5;
    } else {
        mask = 0x55;
        v = -v - 1;
    }
    seg = rt_g711_search(v, seg_aend);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    aval = seg << 4;
    aval |= (seg < 2 ? (v >> 1) : (v >> seg)) & 0xF;
    return (uint8_t)(aval ^ mask);
}

static int16_t rt_ulaw_to16(uint8_t code)
{
    int u = ~code & 0xFF;
    int t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

static int16_t rt_alaw_to16(uint8_t code)
{
    int a = code ^ 0x55;
    int t = (a & 0x0F) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

static void rt_g711_init(void)
{
    int i;
    if (rt_g711_ready)
        return;
    for (i = 0; i < (1 << 14); i++)
        rt_ulaw_enc[i] = rt_ulaw_from14(i < (1 << 13) ? i : i - (1 << 14));
    for (i = 0; i < (1 << 13); i++)
        rt_alaw_enc[i] = rt_alaw_from13(i < (1 << 12) ? i : i - (1 << 13));
    for (i = 0; i < 256; i++) {
        rt_ulaw_dec[i] = rt_ulaw_to16((uint8_t)i);
        rt_alaw_dec[i] = rt_alaw_to16((uint8_t)i);
    }
    rt_g711_ready = 1;
}

/* Encoders: n samples of native int16 (pcm may be unaligned) -> n codes. */
static inline void rt_g711_encode(const uint8_t *pcm, size_t n, uint8_t *out,
                                  const uint8_t *table, int shift)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint16_t s;
        memcpy(&s, pcm + 2 * i, 2);
        out[i] = table[s >> shift];
    }
}

static void rt_ulaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
{
    rt_g711_encode(pcm, n, out, rt_ulaw_enc, 2);
}

static void rt_alaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
{
    rt_g711_encode(pcm, n, out, rt_alaw_enc, 3);
}

/* Decoders: n codes -> n native int16 samples (out may be unaligned). */
static inline void rt_g711_decode(const uint8_t *codes, size_t n, uint8_t *out,
                                  const int16_t *table)
{
    size_t i;
    for (i = 0; i < n; i++)
        memcpy(out + 2 * i, &table[codes[i]], 2);
}

static void rt_ulaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
{
    rt_g711_decode(codes, n, out, rt_ulaw_dec);
}

static void rt_alaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
{
    rt_g711_decode(codes, n, out, rt_alaw_dec);
}

#endif
