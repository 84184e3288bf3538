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
   with a_-), interleaved with a hand-written torch peer (when torch is installed) so that
   the ratio comes from one run.

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
from _timing import CONV_SHAPES, best_time, gemm_rate, interleaved_times  # noqa: E402

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
            routes = (
                (False, True) if _use_winograd_stats(3, 3, 1, C, H, W, x0, False) else (False,)
            )
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
    fns = {
        minus: (lambda m=minus: refnet.fit_patterns(net, x, "relu", batch_size=256, minus=m))
        for minus in (False, True)
    }
    peer = torch_relu_statistics(net, x, batch_size=256)
    if peer is not None:
        fns["torch"] = peer
    times = interleaved_times(fns, max(1, repeats // 2))
    for minus in (False, True):
        t = times[minus]
        label = "a_+ only (as iNNvestigate)" if minus is False else "a_+ and a_-"
        ratio = f", {times['torch'] / t:.2f}x torch" if peer is not None else ""
        head = f"  float32, N={N}, kind relu, {label:26s}"
        print(f"{head}: {N / t:7.0f} images/s ({t:.2f} s{ratio})")
    if peer is not None:
        t = times["torch"]
        label = "torch peer (a_+ statistics, 2 threads)"
        print(f"  {label:50s}: {N / t:7.0f} images/s ({t:.2f} s)")
    print("  (peers on this machine, from the issue: iNNvestigate ~700, torch ~540, NumPy ~110)")


def torch_relu_statistics(net: refnet.Sequential, x: np.ndarray, batch_size: int):
    """A hand-written torch peer (as in the issue): forward, then per kernel layer the
    float32 products ``X^T [M, M y]`` (for a conv, over its patches: torch's weight
    gradient with ``[M, M y]`` as ``dy``), summed in float64. Returns a function running
    one pass over ``x``, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    layers = []
    for layer in net:
        if isinstance(layer, refnet.Conv2D):
            W, b = torch.from_numpy(layer.W), torch.from_numpy(layer.b)
            layers.append(("conv", W, b, layer.padding))
        elif isinstance(layer, refnet.Dense):
            layers.append(("dense", torch.from_numpy(layer.W), torch.from_numpy(layer.b), 0))
        elif isinstance(layer, refnet.ReLU):
            layers.append(("relu", None, None, 0))
        elif isinstance(layer, refnet.MaxPool2D):
            layers.append(("pool", layer.size, layer.stride, 0))
        else:
            layers.append(("flatten", None, None, 0))
    xt = torch.from_numpy(x)

    def one_pass():
        sums = {}
        with torch.no_grad():
            for start in range(0, len(xt), batch_size):
                h = xt[start : start + batch_size]
                for i, (kind, a, b, pad) in enumerate(layers):
                    if kind == "conv":  # X^T R of the patches is a weight gradient
                        z = torch.nn.functional.conv2d(h, a, b, padding=pad)
                        M = (z > 0).to(z.dtype)
                        R = torch.cat([M, M * (z - b[:, None, None])], dim=1)  # (N, 2K, H, W)
                        shape = (R.shape[1], h.shape[1], *a.shape[2:])
                        dW = torch.nn.grad.conv2d_weight(h, shape, R, padding=pad)
                        sums[i] = sums.get(i, 0) + dW.double()  # (2K, C, kh, kw)
                        h = z
                        continue
                    if kind == "dense":
                        z = torch.nn.functional.linear(h, a, b)
                        X, Z = h, z
                    elif kind == "relu":
                        h = torch.relu(h)
                        continue
                    elif kind == "pool":
                        h = torch.nn.functional.max_pool2d(h, a, b)
                        continue
                    else:
                        h = h.flatten(1)
                        continue
                    M = (Z > 0).to(Z.dtype)
                    R = torch.cat([M, M * (Z - b)], dim=1)  # (n, 2K)
                    S = (X.T @ R).double()  # (D, 2K)
                    sums[i] = sums.get(i, 0) + S
                    h = z
        return sums

    return one_pass


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
