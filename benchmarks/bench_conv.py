"""Benchmark refnet's Conv2D kernels against the NumPy twin and PyTorch.

Prints, in one run, GFLOP/s of the conv forward, input gradient and weight gradient for
the compiled (Cython) kernels, the NumPy reference and torch (when importable), the ratio
Cython / torch, and the fraction of the machine's GEMM rate (a large NumPy matmul measured
in the same run). FLOPs are counted as ``2 N F C kh kw H' W'`` for all three operations.

Run from the repository root::

    python benchmarks/bench_conv.py            # float32 and float64, all shapes
    python benchmarks/bench_conv.py --quick    # fewer repeats, skip the slow NumPy twin
    python benchmarks/bench_conv.py --dtype float32

On a 2-core machine OpenBLAS and OpenMP worker threads keep spinning after a call and
steal each other's core; this script therefore applies the settings of
``benchmarks/_setup.py`` before NumPy is imported (``--keep-env`` leaves the process
alone). See :mod:`refnet.kernels` for the same advice to users.
"""

import os

import _setup  # noqa: E402 - process settings, before NumPy

SETTINGS = _setup.configure()

import argparse  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402
from _timing import CONV_SHAPES, gemm_rate, interleaved_times  # noqa: E402

from refnet import kernels  # noqa: E402
from refnet.kernels import reference  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as torch_F  # noqa: E402
except ImportError:  # torch is optional
    torch = None

OPS = ("forward", "input-grad", "weight-grad")


def numpy_twin(op, x, W, b, dy, s, p):
    """Call the NumPy reference kernel of ``op`` (allocating its output like the wrapper)."""
    N, C, H, Wd = x.shape
    if op == "forward":
        out = np.empty(dy.shape, dtype=x.dtype)
        reference.conv2d_forward(x, W, b, s, p, p, out)
    elif op == "input-grad":
        out = np.empty(x.shape, dtype=x.dtype)
        reference.conv2d_backward_input(dy, W, s, p, p, out)
    else:
        out = np.empty(W.shape, dtype=x.dtype)
        reference.conv2d_backward_weight(dy, x, s, p, p, out)
    return out


def refnet_call(op, x, W, b, dy, s, p):
    if op == "forward":
        return kernels.conv2d_forward(x, W, b, s, p, p)
    if op == "input-grad":
        return kernels.conv2d_backward_input(dy, W, x.shape, s, p, p)
    return kernels.conv2d_backward_weight(dy, x, W.shape, s, p, p)


def torch_call(op, tx, tW, tb, tdy, s, p):
    with torch.no_grad():
        if op == "forward":
            return torch_F.conv2d(tx, tW, tb, stride=s, padding=p)
        if op == "input-grad":
            return torch.nn.grad.conv2d_input(tx.shape, tW, tdy, stride=s, padding=p)
        return torch.nn.grad.conv2d_weight(tx, tW.shape, tdy, stride=s, padding=p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no NumPy twin")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=None, help="best-of-k (default 7)")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy twin")
    parser.add_argument("--keep-env", action="store_true", help="do not set thread env vars")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    with_numpy = not (args.quick or args.no_numpy)

    print(f"refnet kernels backend: {kernels.backend()}")
    print("\n".join(SETTINGS))
    print(f"OMP_NUM_THREADS: {os.environ.get('OMP_NUM_THREADS', 'not set')}")
    print(f"cpu count: {os.cpu_count()}, best of {repeats}")
    if torch is not None:
        torch.set_num_threads(2)
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    else:
        print("torch: not importable (torch columns skipped)")

    s, p = 1, 1
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        peak = gemm_rate(dtype, repeats)
        gemm = "sgemm" if dtype == np.float32 else "dgemm"
        print(f"\n== {dtype_name}: NumPy {gemm} rate (2048^3) {peak:.1f} GFLOP/s ==")
        head = f"{'shape (N,C,HxW,F)':<22}{'op':<12}{'cython':>9}{'numpy':>9}{'torch':>9}"
        print(head + f"{'cy/torch':>10}{'cy/' + gemm:>10}")
        rng = np.random.default_rng(0)
        for N, C, H, Wd, F in CONV_SHAPES:
            x = rng.standard_normal((N, C, H, Wd)).astype(dtype)
            W = rng.standard_normal((F, C, 3, 3)).astype(dtype)
            b = rng.standard_normal(F).astype(dtype)
            Ho, Wo = (H + 2 * p - 3) // s + 1, (Wd + 2 * p - 3) // s + 1
            dy = rng.standard_normal((N, F, Ho, Wo)).astype(dtype)
            flops = 2.0 * N * F * C * 9 * Ho * Wo
            if torch is not None:
                tx, tW, tb, tdy = (torch.from_numpy(a) for a in (x, W, b, dy))
            label = f"({N},{C},{H}x{Wd},{F})"
            for op in OPS:
                fns = {"cython": partial(refnet_call, op, x, W, b, dy, s, p)}
                if with_numpy:
                    fns["numpy"] = partial(numpy_twin, op, x, W, b, dy, s, p)
                if torch is not None:
                    fns["torch"] = partial(torch_call, op, tx, tW, tb, tdy, s, p)
                gflops = {k: flops / t / 1e9 for k, t in interleaved_times(fns, repeats).items()}
                g_cy = gflops["cython"]
                g_np = gflops.get("numpy", float("nan"))
                g_t = gflops.get("torch", float("nan"))
                print(
                    f"{label:<22}{op:<12}{g_cy:9.1f}{g_np:9.1f}{g_t:9.1f}"
                    f"{g_cy / g_t:9.2f}x{g_cy / peak:9.0%}"
                )
                label = ""


if __name__ == "__main__":
    main()
