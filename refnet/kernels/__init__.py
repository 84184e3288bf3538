"""Kernel dispatch: the compiled Cython kernels when present, else the NumPy twins.

Every public function here is a thin wrapper that validates shapes, dtypes and geometry,
makes its inputs C-contiguous, allocates the output, and then calls the kernel of the
active backend. The kernels themselves never validate; both backends share one signature
(see :mod:`refnet.kernels.reference`).

The backend is chosen once, at import (:mod:`refnet.kernels.compiled`).

Algorithms. Convolutions run as im2col + one BLAS GEMM per sample (OpenMP over the batch).
Stride-1 3x3 convolutions with at least :data:`WINOGRAD_MIN_CHANNELS` input and output
channels use Winograd instead (Lavin & Gray 2016): F(4x4, 3x3) for the forward pass and
the input gradient (:mod:`refnet.kernels.reference.winograd4`; 4x fewer multiplications)
and its transpose F(3x3, 4x4) for the weight gradient (the pattern-statistics kernel with
``dy`` as its right-hand side, float64 sums); :data:`WINOGRAD_TILE` ``= 2`` selects F(2x2,
3x3) and F(3x3, 2x2) (:mod:`refnet.kernels.reference.winograd`), :data:`WINOGRAD` ``=
False`` turns Winograd off. Its results differ from the direct convolution by rounding
only (relative to the largest entry, on the benchmark shapes, ``benchmarks/accuracy.py``:
F(4x4) 2e-6 to 1.1e-5 in float32, F(2x2) under 5e-7, like im2col; 1e-14 in float64).
Stride-1 layers with few input channels run on direct kernels that keep the outputs in
registers (forward, input gradient; weight gradient for tiny patches).

Threads: one OpenMP pool runs all parallel work inside a refnet call, with BLAS pinned to
one thread for the whole call; no environment variable is needed (the design, which pool
runs what and why: :mod:`refnet.kernels.threads`).
"""

from __future__ import annotations

import operator

import numpy as np

from . import reference
from .avgpool import avgpool2d_backward, avgpool2d_forward  # noqa: F401
from .compiled import backend
from .compiled import impl as _impl
from .reference.im2col import output_size
from .threads import BlasOneThread as _BlasOneThread

__all__ = [
    "backend",
    "col2im",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "output_size",
    "relu_backward",
    "relu_forward",
]

FLOATS = (np.float32, np.float64)


def _use_winograd(kh: int, kw: int, s: int, c_in: int, c_out: int) -> bool:
    """Winograd F(2x2, 3x3) for stride-1 3x3 convs with enough channels to pay off.

    Its transforms cost O(c_in + c_out) per tile against O(c_in c_out) for the GEMMs, so
    with few channels the plain im2col GEMM is faster. Compiled backend only: the NumPy
    backend stays on the im2col path a reader reads (the Winograd twins are tested).
    """
    return (
        WINOGRAD
        and _impl is not reference
        and kh == 3
        and kw == 3
        and s == 1
        and c_in >= WINOGRAD_MIN_CHANNELS
        and c_out >= WINOGRAD_MIN_CHANNELS
    )


def _use_winograd4(Ho: int, Wo: int, min_size: int | None = None) -> bool:
    """F(4x4, 3x3) tiles (else F(2x2, 3x3)) for an output of ``Ho x Wo`` pixels, at least
    ``min_size`` (default :data:`WINOGRAD4_MIN_SIZE`) a side."""
    least = WINOGRAD4_MIN_SIZE if min_size is None else min_size
    return WINOGRAD_TILE == 4 and min(Ho, Wo) >= least


def _use_direct_weight(kh: int, kw: int, s: int, c_in: int, Ho: int, Wo: int) -> bool:
    """Direct (tap-by-tap, no BLAS) weight gradient for stride-1 convs with tiny patches.

    With ``c_in kh kw <= DIRECT_MAX_TAPS`` the im2col GEMM has a tiny inner dimension and
    BLAS runs far below its peak; the direct kernel accumulates the taps in vector lanes
    (up to ``DIRECT_MAX_PIXELS_WEIGHT`` output pixels, beyond which the GEMM's inner
    dimension has grown). Compiled backend only (the NumPy backend stays on im2col; the
    twins are tested equal).
    """
    return (
        _impl is not reference
        and s == 1
        and c_in * kh * kw <= DIRECT_MAX_TAPS
        and Ho * Wo <= DIRECT_MAX_PIXELS_WEIGHT
    )


def _use_direct_forward(kh: int, kw: int, s: int, c_in: int) -> bool:
    """Direct (tap-by-tap, no BLAS) forward for stride-1 convs with few input channels.

    The direct kernel keeps 3 (or 1, 2, 4) output channels x 2-8 vectors of outputs in
    registers over all ``c_in kh kw`` taps and runs near the FMA peak whatever the patch
    size, while the im2col GEMM's inner dimension is the patch size. Measured on this
    machine (2 cores, best of 7, float32 and float64): 1.02-4x faster than im2col + GEMM
    for 3x3 kernels with ``c_in`` = 1-16 (``c_in kh kw`` up to 144; e.g. N64, C3, 32x32,
    F32: 0.63 against 0.9-1.1 ms in float32, 1.3 against 1.6-2.8 ms in float64) and 5x5
    with ``c_in`` = 2-5 (1.4-2.1x); 1x1 kernels 1.1-8x faster up to 8 channels but
    1.3-1.6x slower at 16 (the pointwise GEMM needs no im2col; at 32-63 even in float32,
    1.2x slower in float64): hence at most ``DIRECT_FORWARD_MAX_CHANNELS`` channels and
    ``DIRECT_FORWARD_MAX_TAPS`` taps. Layers with enough channels for Winograd take
    Winograd first. Compiled backend only.
    """
    return (
        _impl is not reference
        and s == 1
        and c_in <= DIRECT_FORWARD_MAX_CHANNELS
        and c_in * kh * kw <= DIRECT_FORWARD_MAX_TAPS
    )


def _use_direct_input(kh: int, kw: int, s: int, c_in: int, ph: int, pw: int) -> bool:
    """Direct kernel for the stride-1 input gradient of a layer with few input channels.

    The input gradient is then a convolution of ``dy`` with ``c_in`` output channels: the
    im2col route is a thin GEMM followed by col2im, Winograd's transforms outweigh its
    GEMMs, and the direct kernel keeps ``c_in`` outputs in registers over all
    ``F kh kw`` taps (register blocks of 3 channels, or 4, 2; one channel of a 3-row
    kernel runs in column blocks that share each loaded row between the kernel's rows).
    Measured on this machine (2 cores, 3x3 kernels, padding 1, best of 7): 1.2-2.5x
    faster than the im2col or Winograd path for ``3 <= c_in <= 8`` (N64, C3, 32x32,
    F32: 1.4 against 2.3 ms in float64) and for ``c_in = 1`` (N256, C1, 8x8, F16: 0.12
    against 0.24 ms in float64; 0.6-0.98x of im2col's time on 16x16 to 56x56 images
    with F = 32-64, except 1.1-1.35x for F64 on 28x28 in float32 and 56x56 in float64);
    ``c_in = 2`` stays on im2col (1.1-1.2x slower there for F >= 32 on 16x16 and larger
    images), as do ``c_in >= 16`` and other single-channel kernels. Compiled backend
    only; the twin is :func:`refnet.kernels.reference.conv.conv2d_backward_input_direct`.
    """
    return (
        _impl is not reference
        and s == 1
        and (
            DIRECT_INPUT_CHANNELS[0] <= c_in <= DIRECT_INPUT_CHANNELS[1] or (c_in == 1 and kh == 3)
        )
        and ph < kh
        and pw < kw
    )


#: Input channels ``(min, max)`` for which the stride-1 input gradient runs direct (and
#: ``c_in = 1`` with 3-row kernels; see :func:`_use_direct_input`).
DIRECT_INPUT_CHANNELS = (3, 8)
#: Largest patch size ``C kh kw`` for which the stride-1 weight gradient is direct.
DIRECT_MAX_TAPS = 16
#: Most input channels and largest patch size ``C kh kw`` for which the stride-1 forward
#: pass is direct (see :func:`_use_direct_forward`).
DIRECT_FORWARD_MAX_CHANNELS = 8
DIRECT_FORWARD_MAX_TAPS = 144
#: Largest output image ``H' W'`` for the direct weight gradient (beyond it the im2col GEMM,
#: whose inner dimension grows with the image, is faster; measured on 28x28 with 32 filters).
DIRECT_MAX_PIXELS_WEIGHT = 256

#: Use Winograd for stride-1 3x3 convolutions (see :data:`WINOGRAD_TILE`) and for the
#: pattern statistics of stride-1 3x3 conv layers.
WINOGRAD = True
#: Output tile of the Winograd forward pass and input gradient, and the dy tile of the
#: weight gradient: 4 for F(4x4, 3x3) and F(3x3, 4x4) (36
#: multiplications per 16 outputs, 4x fewer than direct; transforms touch 2.25 values per
#: output), 2 for F(2x2, 3x3) (2.25x fewer, 4 values per output). F(4x4) was 1.1-1.8x
#: faster on this machine in both dtypes; its rounding error is larger: relative to the
#: largest output, 2e-6 to 1.1e-5 in float32 against 2e-7 to 5e-7 for F(2x2)
#: (``benchmarks/accuracy.py``; 1e-14 either way in float64). Set 2 for the more accurate
#: float32 route.
WINOGRAD_TILE = 4
#: Smallest output height and width for F(4x4, 3x3) tiles; smaller outputs use F(2x2, 3x3):
#: on 4x4 and 6x6 images F(4x4) computed up to 3x longer (one or two tiles per row, much
#: of them past the image), from 8x8 it was up to 1.5x faster (forward, input gradient).
WINOGRAD4_MIN_SIZE = 8
#: The same for the weight gradient, whose F(3x3, 4x4) kernel beat F(3x3, 2x2) from 32x32
#: outputs (1.3x on 32x32 and 56x56 in float32) but lost below (0.86x on 16x16, 0.77x on
#: 8x8, with 64 channels in and 128 out).
WINOGRAD4_MIN_SIZE_WEIGHT = 32
#: Smallest number of input and of output channels for which Winograd is used.
WINOGRAD_MIN_CHANNELS = 8


# --------------------------------------------------------------------------- validation


def _check_float(name: str, what: str, a: np.ndarray) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.type not in FLOATS:
        raise TypeError(f"{name}: {what} must be float32 or float64, got dtype {a.dtype}")


def _check_rank(name: str, what: str, a: np.ndarray, rank: int) -> None:
    if a.ndim != rank:
        raise ValueError(f"{name}: {what} must have {rank} dimensions, got shape {a.shape}")


def _check_same_dtype(name: str, **arrays: np.ndarray) -> None:
    dtypes = {k: v.dtype for k, v in arrays.items()}
    if len(set(dtypes.values())) != 1:
        listed = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise TypeError(f"{name}: dtypes differ ({listed})")


def _check_geometry(
    name: str, H: int, W: int, kh: int, kw: int, s: int, ph: int, pw: int
) -> tuple[int, int]:
    for label, v in (("kh", kh), ("kw", kw), ("stride", s)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: {label} must be a positive integer, got {v!r}")
    for label, v in (("ph", ph), ("pw", pw)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name}: padding {label} must be a non-negative integer, got {v!r}")
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{name}: kernel ({kh}, {kw}) is larger than the padded input "
            f"({H + 2 * ph}, {W + 2 * pw}) (input (H, W) = ({H}, {W}), padding ({ph}, {pw}))"
        )
    return output_size(H, kh, s, ph), output_size(W, kw, s, pw)


#: Most elements of any array a kernel writes, and of one sample's patch matrix
#: ``(C kh kw, H' W')`` (issue 15, item 11): the compiled kernels' geometry then stays
#: within a C ``int``, and a huge padding or image is refused before anything is allocated.
MAX_ELEMENTS = 2**31 - 1


def _check_size(name: str, **shapes: tuple[int, ...]) -> None:
    """Refuse an output or workspace over :data:`MAX_ELEMENTS` elements."""
    for what, shape in shapes.items():
        if int(np.prod([int(d) for d in shape], dtype=object)) > MAX_ELEMENTS:
            raise ValueError(
                f"{name}: {what} of shape {tuple(shape)} would exceed {MAX_ELEMENTS} elements "
                "(check the padding and the stride, or split the batch)"
            )


def _shape(name: str, what: str, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A 4-tuple of non-negative integers (no silent truncation of floats)."""
    try:
        dims = tuple(operator.index(v) for v in shape)
    except TypeError:
        raise TypeError(f"{name}: {what} must hold integers, got {shape!r}") from None
    if len(dims) != 4 or min(dims) < 0:
        raise ValueError(f"{name}: {what} must be 4 non-negative integers, got {shape!r}")
    return dims


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------- im2col


def im2col(x: np.ndarray, kh: int, kw: int, s: int = 1, ph: int = 0, pw: int = 0) -> np.ndarray:
    """Patches of ``x`` (N, C, H, W) as columns, shape ``(N, C*kh*kw, H'*W')``."""
    _check_float("im2col", "x", x)
    _check_rank("im2col", "x", x, 4)
    N, C, H, W = x.shape
    Ho, Wo = _check_geometry("im2col", H, W, kh, kw, s, ph, pw)
    _check_size("im2col", columns=(N, C * kh * kw, Ho * Wo))
    out = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    _impl.im2col(_c(x), kh, kw, s, ph, pw, out)
    return out


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: columns ``(N, C*kh*kw, H'*W')`` back to ``x_shape``."""
    _check_float("col2im", "cols", cols)
    _check_rank("col2im", "cols", cols, 3)
    N, C, H, W = _shape("col2im", "x_shape", x_shape)
    Ho, Wo = _check_geometry("col2im", H, W, kh, kw, s, ph, pw)
    _check_size("col2im", output=(N, C, H, W))
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(
            f"col2im: cols has shape {cols.shape}, expected {(N, C * kh * kw, Ho * Wo)} "
            f"for x_shape {(N, C, H, W)}, kernel ({kh}, {kw}), stride {s}, padding ({ph}, {pw})"
        )
    out = np.empty((N, C, H, W), dtype=cols.dtype)
    _impl.col2im(_c(cols), kh, kw, s, ph, pw, out)
    return out


# --------------------------------------------------------------------------- convolution


def conv2d_forward(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
    *,
    exact: bool = False,
) -> np.ndarray:
    """Cross-correlation ``y = W * x + b``: x (N, C, H, W), W (F, C, kh, kw) -> (N, F, H', W').

    ``exact=True`` takes the translation-exact route: every output pixel is computed by the
    same sequence of floating-point operations, so equal input patches give bit-equal
    outputs, on both backends (the direct kernel and its tap-by-tap NumPy twin; a stride
    ``s > 1`` conv is the stride-1 one sampled every ``s`` pixels). The GEMM routes are not
    exact (BLAS computes the edge tiles of a matrix in another order) and Winograd adds
    position-dependent rounding. The explanation forward uses it for every conv ahead of a
    max-pool, so that ties in a pooling window resolve alike on both backends (MATH.md,
    MaxPool2D: the first maximum wins).
    """
    name = "conv2d_forward"
    for what, a in (("x", x), ("W", W), ("b", b)):
        _check_float(name, what, a)
    _check_rank(name, "x", x, 4)
    _check_rank(name, "W", W, 4)
    _check_same_dtype(name, x=x, W=W, b=b)
    N, C, H, Wd = x.shape
    F, Cw, kh, kw = W.shape
    if Cw != C:
        raise ValueError(f"{name}: x has {C} channels but W {W.shape} expects {Cw}")
    if b.shape != (F,):
        raise ValueError(f"{name}: b has shape {b.shape}, expected ({F},) for W {W.shape}")
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    _check_size(name, output=(N, F, Ho, Wo), patches=(C * kh * kw, Ho * Wo))
    if exact:
        _check_size(name, output=(N, F, Ho * s, Wo * s))
        return _conv2d_forward_exact(_c(x), _c(W), _c(b), s, ph, pw)
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    with _BlasOneThread():
        if _use_winograd(kh, kw, s, C, F) and _use_winograd4(Ho, Wo):
            _impl.conv2d_forward_winograd4(_c(x), _c(W), _c(b), ph, pw, out)
        elif _use_winograd(kh, kw, s, C, F):
            _impl.conv2d_forward_winograd(_c(x), _c(W), _c(b), ph, pw, out)
        elif _use_direct_forward(kh, kw, s, C):
            _impl.conv2d_forward_direct(_c(x), _c(W), _c(b), ph, pw, out)
        else:
            _impl.conv2d_forward(_c(x), _c(W), _c(b), s, ph, pw, out)
    return out


def _conv2d_forward_exact(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, s: int, ph: int, pw: int
) -> np.ndarray:
    """The translation-exact forward (see :func:`conv2d_forward`): the direct route.

    A stride-``s`` output is every ``s``-th row and column of the stride-1 one, whose
    ``H + 2 ph - kh + 1`` rows sample to ``(H + 2 ph - kh) // s + 1``.
    """
    N, _, H, Wd = x.shape
    F, _, kh, kw = W.shape
    full = np.empty((N, F, H + 2 * ph - kh + 1, Wd + 2 * pw - kw + 1), dtype=x.dtype)
    with _BlasOneThread():
        _impl.conv2d_forward_direct(x, W, b, ph, pw, full)  # (N, F, H1, W1), stride 1
    return full if s == 1 else np.ascontiguousarray(full[:, :, ::s, ::s])  # (N, F, H', W')


def conv2d_backward_input(
    dy: np.ndarray,
    W: np.ndarray,
    x_shape: tuple[int, int, int, int],
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Adjoint (transposed convolution) ``dy W``: dy (N, F, H', W') -> (N, C, H, W)."""
    name = "conv2d_backward_input"
    _check_float(name, "dy", dy)
    _check_float(name, "W", W)
    _check_rank(name, "dy", dy, 4)
    _check_rank(name, "W", W, 4)
    _check_same_dtype(name, dy=dy, W=W)
    N, C, H, Wd = _shape(name, "x_shape", x_shape)
    F, Cw, kh, kw = W.shape
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    if Cw != C or dy.shape != (N, F, Ho, Wo):
        raise ValueError(
            f"{name}: dy {dy.shape} and W {W.shape} do not fit x_shape {(N, C, H, Wd)} "
            f"(expected dy {(N, F, Ho, Wo)})"
        )
    _check_size(name, output=(N, C, H, Wd), patches=(C * kh * kw, Ho * Wo))
    out = np.empty((N, C, H, Wd), dtype=dy.dtype)
    with _BlasOneThread():
        if _use_direct_input(kh, kw, s, C, ph, pw):
            _impl.conv2d_backward_input_direct(_c(dy), _c(W), ph, pw, out)
        elif _use_winograd(kh, kw, s, F, C) and _use_winograd4(Ho, Wo):
            _impl.conv2d_backward_input_winograd4(_c(dy), _c(W), ph, pw, out)
        elif _use_winograd(kh, kw, s, F, C):
            _impl.conv2d_backward_input_winograd(_c(dy), _c(W), ph, pw, out)
        else:
            _impl.conv2d_backward_input(_c(dy), _c(W), s, ph, pw, out)
    return out


def conv2d_backward_weight(
    dy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Weight gradient ``sum_n dy_n cols_n^T``: returns an array of shape ``w_shape``."""
    name = "conv2d_backward_weight"
    _check_float(name, "dy", dy)
    _check_float(name, "x", x)
    _check_rank(name, "dy", dy, 4)
    _check_rank(name, "x", x, 4)
    _check_same_dtype(name, dy=dy, x=x)
    F, C, kh, kw = _shape(name, "w_shape", w_shape)
    N, Cx, H, Wd = x.shape
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    if Cx != C or dy.shape != (N, F, Ho, Wo):
        raise ValueError(
            f"{name}: dy {dy.shape} and x {x.shape} do not fit w_shape {(F, C, kh, kw)} "
            f"(expected dy {(N, F, Ho, Wo)})"
        )
    _check_size(name, output=(F, C, kh, kw), patches=(C * kh * kw, Ho * Wo))
    out = np.empty((F, C, kh, kw), dtype=x.dtype)
    with _BlasOneThread():
        if _use_winograd(kh, kw, s, C, F) and _use_winograd4(Ho, Wo, WINOGRAD4_MIN_SIZE_WEIGHT):
            _impl.conv2d_backward_weight_winograd4(_c(dy), _c(x), ph, pw, out)
        elif _use_winograd(kh, kw, s, C, F):
            _impl.conv2d_backward_weight_winograd(_c(dy), _c(x), ph, pw, out)
        elif _use_direct_weight(kh, kw, s, C, Ho, Wo):
            _impl.conv2d_backward_weight_direct(_c(dy), _c(x), ph, pw, out)
        else:
            _impl.conv2d_backward_weight(_c(dy), _c(x), s, ph, pw, out)
    return out


# --------------------------------------------------------------------------- max-pooling


def maxpool2d_forward(x: np.ndarray, size: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima and their flat ``h*W + w`` positions, both (N, C, H', W')."""
    name = "maxpool2d_forward"
    _check_float(name, "x", x)
    _check_rank(name, "x", x, 4)
    N, C, H, W = x.shape
    Ho, Wo = _check_geometry(name, H, W, size, size, s, 0, 0)
    _check_size(name, output=(N, C, Ho, Wo))
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    _impl.maxpool2d_forward(_c(x), size, s, out, argmax)
    return out, argmax


def maxpool2d_backward(
    dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """Route ``dy`` (N, C, H', W') to the argmax positions of an ``x_shape`` input."""
    name = "maxpool2d_backward"
    _check_float(name, "dy", dy)
    _check_rank(name, "dy", dy, 4)
    N, C, H, W = _shape(name, "x_shape", x_shape)
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"{name}: argmax must be a NumPy array, got {type(argmax).__name__}")
    if argmax.shape != dy.shape or dy.shape[:2] != (N, C) or argmax.dtype != np.int64:
        raise ValueError(
            f"{name}: dy {dy.shape} and argmax {argmax.shape} ({argmax.dtype}) do not fit "
            f"x_shape {(N, C, H, W)}"
        )
    _check_size(name, output=(N, C, H, W))
    if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W):
        raise ValueError(f"{name}: argmax holds positions outside an (H, W) = {(H, W)} channel")
    out = np.empty((N, C, H, W), dtype=dy.dtype)
    _impl.maxpool2d_backward(_c(dy), _c(argmax), out)
    return out


# --------------------------------------------------------------------------- ReLU


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)`` and the boolean mask ``[x > 0]``, both of ``x``'s shape, in one pass."""
    _check_float("relu_forward", "x", x)
    x = _c(x)
    out = np.empty_like(x)
    active = np.empty(x.shape, dtype=bool)
    _impl.relu_forward(x.reshape(-1), out.reshape(-1), active.reshape(-1).view(np.uint8))
    return out, active


def relu_backward(dy: np.ndarray, active: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``dy * active`` for the boolean mask ``active`` of ``dy``'s shape.

    ``out`` (optional) is an array of ``dy``'s shape and dtype to write into; it may be
    ``dy`` itself.
    """
    name = "relu_backward"
    _check_float(name, "dy", dy)
    if not isinstance(active, np.ndarray) or active.dtype != bool or active.shape != dy.shape:
        raise ValueError(
            f"{name}: active must be a boolean array of dy's shape {dy.shape}, got "
            f"{getattr(active, 'dtype', type(active).__name__)} {getattr(active, 'shape', '')}"
        )
    if out is not None and (
        not isinstance(out, np.ndarray) or out.shape != dy.shape or out.dtype != dy.dtype
    ):
        raise ValueError(
            f"{name}: out must be an array of dy's shape {dy.shape} and dtype {dy.dtype}, "
            f"got {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        )
    target = out if out is not None and out.flags.c_contiguous else np.empty_like(dy, order="C")
    mask = _c(active).reshape(-1).view(np.uint8)
    _impl.relu_backward(_c(dy).reshape(-1), mask, target.reshape(-1))
    if out is None or out is target:
        return target
    out[...] = target  # a non-contiguous out: computed aside, then copied in
    return out
