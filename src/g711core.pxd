# Declarations of src/g711core.h (G.711 loops: audioop-exact, and G.191 mu-law).
from libc.stdint cimport uint8_t, int16_t

ctypedef void (*g711_kernel)(const uint8_t *src, size_t n, uint8_t *out) noexcept nogil

cdef extern from "g711core.h" nogil:
    void rt_g711_init()
    int rt_g711_use(const char *isa)
    const char *rt_g711_isa
    void rt_ulaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
    void rt_ulaw_encode_itu(const uint8_t *pcm, size_t n, uint8_t *out)
    void rt_alaw_encode(const uint8_t *pcm, size_t n, uint8_t *out)
    void rt_ulaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
    void rt_alaw_decode(const uint8_t *codes, size_t n, uint8_t *out)
