"""Benchmark refnet's AvgPool2D kernels against the NumPy twin and PyTorch.

Prints, in one run, the milliseconds per call of the average-pooling forward and backward
for the compiled (Cython) kernel, the NumPy reference and torch (``avg_pool2d`` and its
autograd backward, when importable), and the ratios Cython / NumPy and Cython / torch.

Run from the repository root::

    python benchmarks/bench_avgpool.py            # float32 and float64
    python benchmarks/bench_avgpool.py --quick    # fewer repeats, float32 only

The process settings of ``benchmarks/_setup.py`` are applied before NumPy is imported
(``--keep-env`` leaves the process alone).
"""

import os

import _setup  # noqa: E402 - process settings, before NumPy

SETTINGS = _setup.configure()

import argparse  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402
from _timing import interleaved_times  # noqa: E402

from refnet import kernels  # noqa: E402
from refnet.kernels import reference  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as torch_F  # noqa: E402
except ImportError:  # torch is optional
    torch = None

#: (N, C, H, W), window, stride: the usual 2x2 downsampling and an overlapping 3x3.
SHAPES = [
    ((64, 32, 32, 32), 2, 2),
    ((64, 64, 16, 16), 3, 1),
    ((16, 64, 56, 56), 2, 2),
]


def numpy_twin(op, x, dy, k, s):
    if op == "forward":
        out = np.empty(dy.shape, dtype=x.dtype)
        reference.avgpool2d_forward(x, k, k, s, s, out)
    else:
        out = np.empty(x.shape, dtype=x.dtype)
        reference.avgpool2d_backward(dy, k, k, s, s, out)
    return out


def refnet_call(op, x, dy, k, s):
    if op == "forward":
        return kernels.avgpool2d_forward(x, k, k, s, s)
    return kernels.avgpool2d_backward(dy, x.shape, k, k, s, s)


def torch_call(op, tx, tdy, k, s):
    if op == "forward":
        with torch.no_grad():
            return torch_F.avg_pool2d(tx, k, s)
    x = tx.detach().requires_grad_(True)
    torch_F.avg_pool2d(x, k, s).backward(tdy)
    return x.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, float32 only")
    parser.add_argument("--keep-env", action="store_true", help="do not set thread env vars")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    dtypes = ("float32",) if args.quick else ("float32", "float64")
    print(f"refnet kernels backend: {kernels.backend()}")
    print("\n".join(SETTINGS))
    print(f"OMP_NUM_THREADS: {os.environ.get('OMP_NUM_THREADS', 'not set')}")
    print(f"cpu count: {os.cpu_count()}, best of {repeats}")
    if torch is not None:
        torch.set_num_threads(2)
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    for dtype_name in dtypes:
        print(f"\n== {dtype_name}: milliseconds per call ==")
        head = f"{'shape, window/stride':<28}{'op':<10}{'cython':>9}{'numpy':>9}{'torch':>9}"
        print(head + f"{'np/cy':>8}{'torch/cy':>10}")
        for shape, k, s in SHAPES:
            x = rng.standard_normal(shape).astype(dtype_name)
            dy = kernels.avgpool2d_forward(x, k, k, s, s)
            tx, tdy = (torch.from_numpy(a) for a in (x, dy)) if torch is not None else (0, 0)
            for op in ("forward", "backward"):
                fns = {
                    "cython": partial(refnet_call, op, x, dy, k, s),
                    "numpy": partial(numpy_twin, op, x, dy, k, s),
                }
                if torch is not None:
                    fns["torch"] = partial(torch_call, op, tx, tdy, k, s)
                ms = {n: t * 1e3 for n, t in interleaved_times(fns, repeats).items()}
                t_torch = ms.get("torch", float("nan"))
                print(
                    f"{str(shape) + f', {k}/{s}':<28}{op:<10}{ms['cython']:9.2f}"
                    f"{ms['numpy']:9.2f}{t_torch:9.2f}{ms['numpy'] / ms['cython']:7.1f}x"
                    f"{t_torch / ms['cython']:9.2f}x"
                )


if __name__ == "__main__":
    main()
