"""What this build of rtfast is (compiled-in facts for rtfast.build_info())."""

cdef extern from *:
    const char* RTFAST_BUILD_MODE
    const char* RTFAST_CFLAGS
    const char* RTFAST_CYTHON_VERSION
    const char* __VERSION__

def info():
    return {
        "mode": RTFAST_BUILD_MODE.decode(),
        "cflags": RTFAST_CFLAGS.decode(),
        "cython": RTFAST_CYTHON_VERSION.decode(),
        "compiler": __VERSION__.decode(),
    }
