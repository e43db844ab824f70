# Declarations of src/soxrapi.h (libsoxr taken from the loaded soxr wheel).
from libc.stdint cimport uint8_t

cdef extern from "soxrapi.h" nogil:
    ctypedef const char* rt_soxr_error_t
    enum:
        RT_SOXR_FLOAT32_I
        RT_SOXR_INT16_I
    const char* RT_RS_CAPSULE
    ctypedef struct rt_soxr_api:
        pass
    ctypedef struct rt_rs:
        size_t item
        size_t ncarry
    int rt_soxr_load(const char* path, rt_soxr_api* api)
    rt_soxr_error_t rt_rs_open(rt_rs* r, const rt_soxr_api* api, double in_rate, double out_rate,
                               unsigned long recipe, int low_latency, int dtype)
    void rt_rs_close(rt_rs* r)
    rt_soxr_error_t rt_rs_reset(rt_rs* r)
    double rt_rs_delay(const rt_rs* r)
    size_t rt_rs_bound(const rt_rs* r, size_t n)
    rt_soxr_error_t rt_rs_process(rt_rs* r, const uint8_t* data, size_t n, uint8_t* out,
                                  size_t* written)
    rt_soxr_error_t rt_rs_flush(rt_rs* r, uint8_t* out, size_t* written)
