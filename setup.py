"""Build the Cython kernels in src/ into private modules rtfast._<name>.

Build switches (environment variables, read at build time):
  RTFAST_DEBUG=1     -O0 -g, C assertions on, Cython bounds/wraparound checks on
  RTFAST_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer (run with
                     LD_PRELOAD=$(gcc -print-file-name=libasan.so))
  RTFAST_ANNOTATE=1  write Cython's annotated HTML next to each .pyx
  RTFAST_ONLY=a,b    development: build only src/a.pyx, src/b.pyx
rtfast.build_info() reports what was built.
"""
import os
import sys
from glob import glob

from Cython import __version__ as cython_version
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


debug = flag("RTFAST_DEBUG")
sanitize = flag("RTFAST_SANITIZE")
annotate = flag("RTFAST_ANNOTATE")

if sys.byteorder != "little":
    # The kernels read and write PCM16 little-endian as native int16.
    sys.exit("rtfast needs a little-endian machine")

cflags = ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3"]
cflags += ["-fno-strict-aliasing", "-Wno-unused-function"]
ldflags = []
if sanitize:
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    cflags += san
    ldflags += san

mode = "debug" if debug else "release"
if sanitize:
    mode += "+asan+ubsan"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}

macros = [
    ("RTFAST_BUILD_MODE", f'"{mode}"'),
    ("RTFAST_CFLAGS", '"' + " ".join(cflags) + '"'),
    ("RTFAST_CYTHON_VERSION", f'"{cython_version}"'),
]

only = {n.strip() for n in os.environ.get("RTFAST_ONLY", "").split(",") if n.strip()}


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


extensions = [
    Extension(
        f"rtfast._{stem(pyx)}",
        [pyx],
        include_dirs=["src"],
        define_macros=macros,
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        libraries=["dl"] if sys.platform.startswith("linux") else [],
    )
    for pyx in sorted(glob("src/*.pyx"))
    if not only or stem(pyx) in only
]

jobs = os.cpu_count() or 1


class parallel_build_ext(build_ext):
    """Compile the extensions on every core: pip install and build call
    build_ext without -j, which would compile one module at a time."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # an explicit -j N wins
            self.parallel = jobs


setup(
    cmdclass={"build_ext": parallel_build_ext},
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives=directives,
        annotate=annotate,
        force=debug or sanitize,
        nthreads=jobs if jobs > 1 else 0,  # Cython -> C in parallel too
    ),
)
