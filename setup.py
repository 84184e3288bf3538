"""Build refnet's Cython kernels.

Every ``pyx/<name>.pyx`` becomes the extension module ``refnet.kernels._<name>``.
OpenMP is used when the compiler accepts ``-fopenmp`` and left out otherwise. If the
kernels cannot be compiled at all, the package is still installed and runs on its NumPy
reference path (``refnet.kernels.backend() == "numpy"``).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_has_openmp() -> bool:
    """Compile and link a tiny OpenMP program to see whether ``-fopenmp`` works."""
    if os.environ.get("REFNET_NO_OPENMP"):
        return False
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    src = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        cmd = [*cc.split(), "-fopenmp", path, "-o", os.path.join(tmp, "t")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


class OptionalBuildExt(build_ext):
    """Build the kernels, but let the install succeed on the NumPy path if they fail."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure falls back to NumPy
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc, ext.name)

    @staticmethod
    def _warn(exc, name="kernels"):
        sys.stderr.write(
            f"WARNING: refnet could not compile {name} ({exc}); "
            "it will run on the NumPy reference backend.\n"
        )


def _extensions():
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError:  # no Cython or numpy at build time: NumPy path only
        return []
    openmp = _compiler_has_openmp()
    flags = ["-O3"]
    omp = ["-fopenmp"] if openmp else []
    exts = [
        Extension(
            f"refnet.kernels._{os.path.splitext(os.path.basename(path))[0]}",
            [path],
            include_dirs=[numpy.get_include()],
            extra_compile_args=flags + omp,
            extra_link_args=omp,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for path in sorted(glob(os.path.join("pyx", "*.pyx")))
    ]
    try:
        return cythonize(
            exts,
            compiler_directives={
                "language_level": "3",
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
            },
        )
    except Exception as exc:  # noqa: BLE001 - Cython errors fall back to NumPy
        OptionalBuildExt._warn(exc, "the Cython sources")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
