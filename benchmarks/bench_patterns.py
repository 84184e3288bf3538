"""Benchmark pattern fitting: the statistics kernel, fit_patterns end to end, memory vs N.

Prints, in one run:

1. the machine's GEMM rate (a 2048^3 NumPy matmul, float32 and float64);
2. the accumulation kernel (``refnet.kernels.stats``) on dense rows (n=100000, D=576 and
   1152, K=64) and on conv patches (3x3, pad 1) of the foundation issue's shapes: GFLOP/s
   counted as the statistics GEMMs ``2 n D n_cols`` (``n_cols = 2K`` for ``a_+``; ``3K+1``
   with ``a_-``) and the fraction of the GEMM rate; conv layers by the patch GEMM and, where
   refnet uses it (stride-1 3x3, >= 8 channels), by Winograd, whose rate is "effective":
   the patch GEMM's flop count over Winograd's time;
3. ``fit_patterns`` on the digits CNN: seconds per 10k images, and peak traced memory in
   subprocesses for N = 2k, 8k, 32k memory-mapped images (flat in N);
4. the peer anchor: Conv(3->32)-ReLU-Conv(32->64)-ReLU-MaxPool2-Flatten-Dense(16384->10),
   float32 32x32x3 inputs, N=2048, kind relu: images/s (a_+ only, as iNNvestigate; and
   with a_-).

Run from the repository root::

    python benchmarks/bench_patterns.py            # everything
    python benchmarks/bench_patterns.py --quick    # fewer repeats and shapes

Like ``bench_conv.py`` this applies the settings of ``benchmarks/_setup.py`` before NumPy
is imported (``--keep-env`` leaves the process alone).
"""

import os
import sys

import _setup  # noqa: E402 - process settings, before NumPy

SETTINGS = _setup.configure()

import argparse  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
from _timing import CONV_SHAPES, best_time, gemm_rate  # noqa: E402

import refnet  # noqa: E402
from refnet import kernels  # noqa: E402
from refnet.kernels.stats import (  # noqa: E402
    _use_winograd_stats,
    n_columns,
    pattern_stats_conv,
    pattern_stats_dense,
)


def bench_kernel(rates: dict, dtypes, repeats: int, quick: bool) -> None:
    print("\n== accumulation kernel: GFLOP/s of the statistics GEMMs (fraction of GEMM rate)")
    rng = np.random.default_rng(0)
    K = 64
    for dtype in dtypes:
        name = np.dtype(dtype).name
        for D in (576, 1152):
            n = 100_000 if not quick else 30_000
            X = rng.standard_normal((n, D), dtype=np.float32).astype(dtype)
            Z = rng.standard_normal((n, K), dtype=np.float32).astype(dtype)
            b, x0, y0 = np.zeros(K, dtype), np.zeros(D), np.zeros(K)
            for minus in (False, True):
                nc = n_columns(K, True, minus)
                args = (X, Z, b, x0, y0, True, minus)
                t = best_time(lambda a=args: pattern_stats_dense(*a), repeats)
                g = 2 * n * D * nc / t / 1e9
                label = "a_+ and a_-" if minus else "a_+"
                print(
                    f"  dense {name} n={n} D={D} K={K} ({label:11s}): {g:7.1f} GFLOP/s "
                    f"= {g / rates[name]:.2f} of {name} GEMM"
                )
        for N, C, H, W, F in CONV_SHAPES[:2] if quick else CONV_SHAPES:
            x = rng.standard_normal((N, C, H, W), dtype=np.float32).astype(dtype)
            Z = rng.standard_normal((N, F, H, W), dtype=np.float32).astype(dtype)
            b, x0, y0 = np.zeros(F, dtype), np.zeros(C * 9), np.zeros(F)
            args = (x, Z, b, x0, y0, 3, 3, 1, 1, 1, True, False)
            routes = (False, True) if _use_winograd_stats(3, 3, 1, C, F, x0, False) else (False,)
            for winograd in routes:
                kernels.WINOGRAD = winograd  # the patch GEMM, then the default route
                t = best_time(lambda a=args: pattern_stats_conv(*a), repeats)
                g = 2 * N * H * W * C * 9 * 2 * F / t / 1e9
                route = "Winograd, effective" if winograd else "patch GEMM"
                print(
                    f"  conv  {name} (N{N},C{C},{H}x{W},F{F}) D={C * 9:4d} {route:19s}: "
                    f"{g:7.1f} GFLOP/s = {g / rates[name]:.2f} of {name} GEMM"
                )
            kernels.WINOGRAD = True


def peer_anchor(repeats: int, quick: bool) -> None:
    print("\n== peer anchor: Conv(3->32)-ReLU-Conv(32->64)-ReLU-MaxPool2-Flatten-Dense(16384->10)")
    net = refnet.Sequential(
        [
            refnet.Conv2D.create(3, 32, 3, padding=1, seed=0, dtype=np.float32),
            refnet.ReLU(),
            refnet.Conv2D.create(32, 64, 3, padding=1, seed=1, dtype=np.float32),
            refnet.ReLU(),
            refnet.MaxPool2D(2),
            refnet.Flatten(),
            refnet.Dense.create(64 * 16 * 16, 10, seed=2, dtype=np.float32),
        ]
    )
    N = 2048 if not quick else 512
    x = np.random.default_rng(0).random((N, 3, 32, 32), dtype=np.float32)
    for minus in (False, True):
        t = best_time(
            lambda m=minus: refnet.fit_patterns(net, x, "relu", batch_size=256, minus=m),
            max(1, repeats // 2),
        )
        label = "a_+ only (as iNNvestigate)" if minus is False else "a_+ and a_-"
        print(f"  float32, N={N}, kind relu, {label:26s}: {N / t:7.0f} images/s ({t:.2f} s)")
    print("  (peers on this machine, from the issue: iNNvestigate ~700, torch ~540, NumPy ~110)")


_MEMORY_CHILD = """
import sys, time, tracemalloc
import numpy as np
import refnet
from refnet.train.digits import digits_cnn
x = np.load(sys.argv[1], mmap_mode="r")
net = digits_cnn(seed=0)
tracemalloc.start()
t0 = time.perf_counter()
refnet.fit_patterns(net, x, kind="relu", batch_size=256)
t = time.perf_counter() - t0
print(tracemalloc.get_traced_memory()[1], t)
"""


def end_to_end(quick: bool) -> None:
    print("\n== fit_patterns end to end, digits CNN (1x8x8 inputs, float64, kind relu)")
    from refnet.train.digits import load_digits

    images = load_digits().X_train  # (n, 1, 8, 8)
    sizes = (2_000, 8_000) if quick else (2_000, 8_000, 32_000)
    with tempfile.TemporaryDirectory() as tmp:
        for N in sizes:
            path = os.path.join(tmp, f"x{N}.npy")
            reps = -(-N // len(images))
            np.save(path, np.concatenate([images] * reps)[:N])
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, path],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            peak, t = int(out[0]), float(out[1])
            print(
                f"  N={N:6d} (memory-mapped): {t / N * 1e4:6.2f} s per 10k images, "
                f"peak traced memory {peak / 2**20:6.1f} MiB"
            )
    print("  (weights are He-initialised; the cost does not depend on training)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, rows and shapes")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--keep-env", action="store_true", help="do not set thread env vars")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    dtypes = {"float32": [np.float32], "float64": [np.float64]}.get(
        args.dtype, [np.float32, np.float64]
    )
    print(f"refnet backend: {kernels.backend()}; cores: {os.cpu_count()}")
    print("\n".join(SETTINGS))
    rates = {np.dtype(d).name: gemm_rate(d, repeats) for d in (np.float32, np.float64)}
    for name, r in rates.items():
        print(f"GEMM rate {name}: {r:.1f} GFLOP/s")
    bench_kernel(rates, dtypes, repeats, args.quick)
    peer_anchor(repeats, args.quick)
    end_to_end(args.quick)


if __name__ == "__main__":
    main()
