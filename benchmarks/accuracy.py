"""Float32 accuracy of each compiled convolution and statistics route, in one run.

For the foundation benchmark's conv shapes (3x3, padding 1; 8 samples each), float32
inputs from N(0, 1) and He-scaled weights, every route refnet can take is compared with the
float64 NumPy reference on the same float32 numbers:

- conv forward, input gradient and weight gradient by im2col + GEMM, the direct kernels,
  Winograd F(2x2, 3x3) / F(3x3, 2x2) and Winograd F(4x4, 3x3) / F(3x3, 4x4);
- the pattern statistics ``X'^T [M, M y']`` (kind relu) by the patch GEMM and by Winograd
  F(3x3, 4x4).

Errors are ``max |got - want| / max |want|``. Run from the repository root::

    python benchmarks/accuracy.py
"""

import numpy as np
from _timing import CONV_SHAPES

from refnet import kernels
from refnet.kernels import _BlasOneThread, reference
from refnet.kernels.stats import n_columns

K = kernels._impl  # the compiled kernels (main() checks that they are built)
#: route name -> kernel call on (x, W, b, dy, out), per pass; b is zero
ROUTES = {
    "forward": {
        "im2col GEMM": lambda x, W, b, dy, o: K.conv2d_forward(x, W, b, 1, 1, 1, o),
        "direct": lambda x, W, b, dy, o: K.conv2d_forward_direct(x, W, b, 1, 1, o),
        "F(2x2,3x3)": lambda x, W, b, dy, o: K.conv2d_forward_winograd(x, W, b, 1, 1, o),
        "F(4x4,3x3)": lambda x, W, b, dy, o: K.conv2d_forward_winograd4(x, W, b, 1, 1, o),
    },
    "input-grad": {
        "im2col GEMM": lambda x, W, b, dy, o: K.conv2d_backward_input(dy, W, 1, 1, 1, o),
        "direct": lambda x, W, b, dy, o: K.conv2d_backward_input_direct(dy, W, 1, 1, o),
        "F(2x2,3x3)": lambda x, W, b, dy, o: K.conv2d_backward_input_winograd(dy, W, 1, 1, o),
        "F(4x4,3x3)": lambda x, W, b, dy, o: K.conv2d_backward_input_winograd4(dy, W, 1, 1, o),
    },
    "weight-grad": {
        "im2col GEMM": lambda x, W, b, dy, o: K.conv2d_backward_weight(dy, x, 1, 1, 1, o),
        "direct": lambda x, W, b, dy, o: K.conv2d_backward_weight_direct(dy, x, 1, 1, o),
        "F(3x3,2x2)": lambda x, W, b, dy, o: K.conv2d_backward_weight_winograd(dy, x, 1, 1, o),
        "F(3x3,4x4)": lambda x, W, b, dy, o: K.conv2d_backward_weight_winograd4(dy, x, 1, 1, o),
    },
}


def _reference(op: str, x, W, dy) -> np.ndarray:
    """The float64 NumPy reference on the float32 numbers."""
    x, W, dy = (a.astype(np.float64) for a in (x, W, dy))
    if op == "forward":
        out = np.empty(dy.shape)
        reference.conv2d_forward(x, W, np.zeros(len(W)), 1, 1, 1, out)
    elif op == "input-grad":
        out = np.empty(x.shape)
        reference.conv2d_backward_input(dy, W, 1, 1, 1, out)
    else:
        out = np.empty(W.shape)
        reference.conv2d_backward_weight(dy, x, 1, 1, 1, out)
    return out


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def _stats(x, W, route: str) -> float:
    """Relative error of the relu statistics ``S`` of one conv layer, against float64."""
    F, C = W.shape[:2]
    z = np.empty((len(x), F, *x.shape[2:]), np.float32)  # (N, F, H, W)
    K.conv2d_forward(x, W, np.zeros(F, np.float32), 1, 1, 1, z)
    b, x0, y0 = np.zeros(F, np.float32), np.repeat(x.mean(axis=(0, 2, 3)), 9), z.mean((0, 2, 3))
    S = np.empty((9 * C, n_columns(F, True, False)))  # (C*9, 2F)
    want, ysum = S.copy(), np.empty((3, F))
    args = (b, x0.astype(np.float64), y0.astype(np.float64))
    reference.pattern_stats_conv(
        x.astype(np.float64), z.astype(np.float64), b.astype(np.float64), *args[1:],
        3, 3, 1, 1, 1, True, False, want, ysum, None,
    )  # fmt: skip
    if route == "patch GEMM":
        K.pattern_stats_conv(x, z, *args, 3, 3, 1, 1, 1, True, False, S, ysum, None)
    else:
        K.pattern_stats_conv_winograd(x, z, *args, 1, 1, True, False, S, ysum)
    return _rel(S, want)


def main() -> None:
    if kernels.backend() != "cython":
        raise SystemExit("accuracy.py compares the compiled kernels; they are not built")
    rng = np.random.default_rng(0)
    print("float32 error relative to the largest entry, against the float64 reference")
    for N, C, H, Wd, F in CONV_SHAPES:
        N = min(N, 8)
        x = rng.standard_normal((N, C, H, Wd), dtype=np.float32)
        W = (rng.standard_normal((F, C, 3, 3)) * np.sqrt(2 / (9 * C))).astype(np.float32)
        dy = rng.standard_normal((N, F, H, Wd), dtype=np.float32)
        print(f"\n(N{N},C{C},{H}x{Wd},F{F})")
        with _BlasOneThread():
            for op, routes in ROUTES.items():
                want = _reference(op, x, W, dy)
                cells = []
                for name, run in routes.items():
                    got = np.full(want.shape, np.nan, np.float32)
                    run(x, W, np.zeros(F, np.float32), dy, got)
                    cells.append(f"{name} {_rel(got, want):.1e}")
                print(f"  {op:12s} " + "  ".join(cells))
            cells = [f"{r} {_stats(x, W, r):.1e}" for r in ("patch GEMM", "Winograd F(3x3,4x4)")]
            print(f"  {'statistics':12s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
