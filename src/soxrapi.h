/* libsoxr, called directly through the copy the `soxr` wheel already loaded.
 *
 * python-soxr links libsoxr statically into soxr/soxr_ext*.so and exports its
 * public C API. rt_soxr_load() takes those entry points from the loaded module
 * (dlopen RTLD_NOLOAD + dlsym), so rtfast resamples with exactly the engine
 * and filters python-soxr uses, without a second copy of libsoxr and without
 * Python calls per frame. Prototypes and structs follow libsoxr 0.1.3 soxr.h.
 *
 * rt_rs is one mono stream: a soxr_t plus the bytes of a partial trailing
 * sample carried to the next call. Output is never dithered (SOXR_NO_DITHER):
 * libsoxr salts its int16 TPDF dither with the size of each output call and
 * with the FPU's sticky FE_INVALID flag, so dithered bytes depend on how the
 * stream was chunked; undithered int16 output is round-to-nearest-even of the
 * same float result, identical whatever the chunking.
 *
 * No Python API in here: every function may run without the GIL.
 */
#ifndef RTFAST_SOXRAPI_H
#define RTFAST_SOXRAPI_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef const char *rt_soxr_error_t;
typedef struct rt_soxr *rt_soxr_t;

/* soxr_datatype_t values (interleaved). */
#define RT_SOXR_FLOAT32_I 0
#define RT_SOXR_INT16_I 3
/* soxr_io_spec_t.flags */
#define RT_SOXR_NO_DITHER 8u
/* soxr_quality_spec recipe bits (soxr.h) */
#define RT_SOXR_HQ 4u
#define RT_SOXR_MINIMUM_PHASE 0x30u

typedef struct {
    int itype, otype;
    double scale;
    void *e;
    unsigned long flags;
} rt_soxr_io_spec_t;

typedef struct {
    double precision, phase_response, passband_end, stopband_begin;
    void *e;
    unsigned long flags;
} rt_soxr_quality_spec_t;

/* struct soxr_runtime_spec (libsoxr 0.1.3): DFT sizes as log2, in [8, 20]. */
typedef struct {
    unsigned log2_min_dft_size, log2_large_dft_size, coef_size_kbytes, num_threads;
    void *e;
    unsigned long flags;
} rt_soxr_runtime_spec_t;

typedef struct {
    rt_soxr_io_spec_t (*io_spec)(int itype, int otype);
    rt_soxr_runtime_spec_t (*runtime_spec)(unsigned num_threads);
    rt_soxr_quality_spec_t (*quality_spec)(unsigned long recipe, unsigned long flags);
    rt_soxr_t (*create)(double irate, double orate, unsigned channels, rt_soxr_error_t *err,
                        const rt_soxr_io_spec_t *io, const rt_soxr_quality_spec_t *q,
                        const rt_soxr_runtime_spec_t *runtime);
    rt_soxr_error_t (*process)(rt_soxr_t p, const void *in, size_t ilen, size_t *idone,
                               void *out, size_t olen, size_t *odone);
    double (*delay)(rt_soxr_t p);
    rt_soxr_error_t (*clear)(rt_soxr_t p);
    void (*del)(rt_soxr_t p);
} rt_soxr_api;

/* Fill api from the already-loaded shared object at path. 0 on success, else
   -1 (not loaded, or a symbol missing) and api is left unusable. */
static int rt_soxr_load(const char *path, rt_soxr_api *api)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return -1;
    /* The handle is never closed: soxr_ext stays loaded for the process anyway. */
    *(void **)&api->io_spec = dlsym(h, "soxr_io_spec");
    *(void **)&api->quality_spec = dlsym(h, "soxr_quality_spec");
    *(void **)&api->runtime_spec = dlsym(h, "soxr_runtime_spec");
    *(void **)&api->create = dlsym(h, "soxr_create");
    *(void **)&api->process = dlsym(h, "soxr_process");
    *(void **)&api->delay = dlsym(h, "soxr_delay");
    *(void **)&api->clear = dlsym(h, "soxr_clear");
    *(void **)&api->del = dlsym(h, "soxr_delete");
    return (api->io_spec && api->quality_spec && api->runtime_spec && api->create && api->process && api->delay &&
            api->clear && api->del) ? 0 : -1;
}

typedef struct {
    const rt_soxr_api *api;
    rt_soxr_t s;
    double ratio;      /* out_rate / in_rate */
    size_t item;       /* bytes per sample: 2 (int16) or 4 (float32) */
    size_t ncarry;     /* bytes of a partial sample held for the next call */
    uint8_t carry[4];
} rt_rs;

/* Capsule name under which a Resampler hands its rt_rs to rtfast._transcode. */
#define RT_RS_CAPSULE "rtfast._resample.rt_rs"

/* Feed misaligned or carry-joined input through this many bytes at a time. */
#define RT_RS_BLOCK 4096

/* Low latency (low_latency != 0): the recipe's filter made minimum phase, run
   in the smallest DFT blocks libsoxr has (2^8 points). A linear-phase filter
   delays everything by half its length, and soxr's default blocks (2^10 up to
   2^17 points) make it emit in bursts: HQ 8 kHz -> 24 kHz holds back 12-73 ms
   of a 20 ms-framed stream (median 42) and answers every third frame.
   Minimum phase keeps the magnitude response (passband, stopband, so the
   alias rejection) and puts the impulse's energy first; small blocks emit
   every frame: 0.5-18.5 ms held back, median 9.5. The cost is phase (not
   audible on speech) and more, smaller FFTs per second. */
#define RT_RS_LL_LOG2_DFT 8

static rt_soxr_error_t rt_rs_open(rt_rs *r, const rt_soxr_api *api, double in_rate,
                                  double out_rate, unsigned long recipe, int low_latency,
                                  int dtype)
{
    rt_soxr_error_t err = NULL;
    rt_soxr_io_spec_t io = api->io_spec(dtype, dtype);
    rt_soxr_quality_spec_t q;
    rt_soxr_runtime_spec_t rt = api->runtime_spec(1);  /* one thread, as python-soxr */
    if (low_latency) {
        q = api->quality_spec(recipe | RT_SOXR_MINIMUM_PHASE, 0);
        rt.log2_min_dft_size = RT_RS_LL_LOG2_DFT;
        rt.log2_large_dft_size = RT_RS_LL_LOG2_DFT;
    } else {
        q = api->quality_spec(recipe, 0);  /* as python-soxr */
    }
    io.flags |= RT_SOXR_NO_DITHER;
    memset(r, 0, sizeof(*r));
    r->api = api;
    r->ratio = out_rate / in_rate;
    r->item = dtype == RT_SOXR_INT16_I ? 2 : 4;
    r->s = api->create(in_rate, out_rate, 1, &err, &io, &q, &rt);
    if (!r->s && !err)
        err = "soxr_create failed";
    return err;
}

static void rt_rs_close(rt_rs *r)
{
    if (r->s)
        r->api->del(r->s);
    r->s = NULL;
}

/* Forget the filter's history and any carried bytes: a new utterance. */
static rt_soxr_error_t rt_rs_reset(rt_rs *r)
{
    r->ncarry = 0;
    return r->api->clear(r->s);
}

static double rt_rs_delay(const rt_rs *r)
{
    return r->api->delay(r->s);
}

/* Output samples that feeding n more bytes can produce at most: what the
   filter holds (soxr_delay, in output samples) plus the new input at the
   output rate, plus slack for rounding. Flush uses n = 0. */
static size_t rt_rs_bound(const rt_rs *r, size_t n)
{
    size_t samples = (r->ncarry + n) / r->item;
    return (size_t)(r->api->delay(r->s) + (double)samples * r->ratio) + 2;
}

/* Feed n bytes; out has room for rt_rs_bound(r, n) samples. *written gets the
   output byte count. A partial trailing sample is kept for the next call. */
static rt_soxr_error_t rt_rs_process(rt_rs *r, const uint8_t *in, size_t n, uint8_t *out,
                                     size_t *written)
{
    union { uint8_t b[RT_RS_BLOCK]; int16_t i16; float f32; } blk;  /* aligned */
    size_t cap = rt_rs_bound(r, n), done = 0, odone, take;
    rt_soxr_error_t err = NULL;
    while (!err) {
        if (r->ncarry == 0 && ((uintptr_t)in % r->item) == 0) {
            /* Fast path (every frame in practice): soxr reads the caller's buffer. */
            err = r->api->process(r->s, in, n / r->item, NULL, out + done * r->item,
                                  cap - done, &odone);
            done += odone;
            in += n / r->item * r->item;
            n %= r->item;
            break;
        }
        /* Carried bytes first, then input, copied to an aligned block. */
        memcpy(blk.b, r->carry, r->ncarry);
        take = RT_RS_BLOCK - r->ncarry < n ? RT_RS_BLOCK - r->ncarry : n;
        memcpy(blk.b + r->ncarry, in, take);
        in += take;
        n -= take;
        take += r->ncarry;
        r->ncarry = take % r->item;
        memcpy(r->carry, blk.b + take - r->ncarry, r->ncarry);
        if (take >= r->item) {
            err = r->api->process(r->s, blk.b, take / r->item, NULL, out + done * r->item,
                                  cap - done, &odone);
            done += odone;
        }
        if (n == 0)
            break;
    }
    if (!err && n) {  /* a partial sample left after the fast path */
        memcpy(r->carry, in, n);
        r->ncarry = n;
    }
    *written = done * r->item;
    return err;
}

/* End of utterance: write everything the filter still holds (out has room for
   rt_rs_bound(r, 0) samples), then reset for a new utterance. A carried
   partial sample is dropped: it is not audio. */
static rt_soxr_error_t rt_rs_flush(rt_rs *r, uint8_t *out, size_t *written)
{
    size_t odone = 0;
    rt_soxr_error_t err = r->api->process(r->s, NULL, 0, NULL, out, rt_rs_bound(r, 0), &odone);
    *written = odone * r->item;
    return err ? err : rt_rs_reset(r);
}

#endif /* RTFAST_SOXRAPI_H */
