r"""XAI-TRIS: non-linear 8x8 image benchmarks with known signal pixels (tetromino shapes).

Clark, Wilming and Haufe, "XAI-TRIS: non-linear image benchmarks to quantify false positive
post-hoc attribution of feature importance", *Machine Learning* 113 (2024). A "T" and an
"L" tetromino are placed on a noise background; the class is carried by the shapes in four
ways (the scenarios), on white or spatially correlated noise (the backgrounds). The
correlated background makes the pixels around a shape useful to a model for cancelling
noise (suppressors) although they carry no signal.

Where the published code and the paper differ, this module follows the code:

- the data are scaled by ONE global ``max |x|`` over the whole data set, not per sample;
- the background is drawn as ``normal(0, 0.5)``: the code's ``var_data = 0.5`` is passed to
  NumPy as the *standard deviation*, so the variance is 0.25;
- the multiplicative scenario uses the raw shapes (entries 0 and 1) in ``1 - alpha P``
  before the Frobenius normalisation (normalising ``P`` first would make the signal vanish);
- the EMD metric's normaliser is :math:`\sqrt{H^2 + W^2} = \sqrt{128}` for 8x8, not the
  paper's :math:`\sqrt{7^2 + 7^2} = \sqrt{98}` (see :func:`refnet.evaluate.emd_accuracy`).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .base import GroundTruthData, check_n, frobenius_normalised, labels

#: The two shapes (3 x 2), and the top-left corner at which each is placed (row, column).
T_SHAPE = np.array([[1, 0], [1, 1], [1, 0]], dtype=np.float64)
L_SHAPE = np.array([[1, 0], [1, 0], [1, 1]], dtype=np.float64)
T_CORNER = (1, 1)
L_CORNER = (4, 5)

SCENARIOS = ("linear", "multiplicative", "translations_rotations", "xor")
BACKGROUNDS = ("white", "correlated")

#: The signal weight alpha per scenario and background (the published 8x8 configuration).
DEFAULT_ALPHA = {
    ("linear", "white"): 0.18,
    ("linear", "correlated"): 0.0125,
    ("multiplicative", "white"): 0.7,
    ("multiplicative", "correlated"): 0.1,
    ("translations_rotations", "white"): 0.65,
    ("translations_rotations", "correlated"): 0.2,
    ("xor", "white"): 0.35,
    ("xor", "correlated"): 0.15,
}

#: Standard deviation of the white background, and the smoothing of the correlated one.
BACKGROUND_STD = 0.5
SMOOTHING_SIGMA = 3.0
SIZE = 8


def _placed(shape: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    """An (8, 8) image with ``shape`` at ``corner``."""
    image = np.zeros((SIZE, SIZE))
    r, c = corner
    image[r : r + shape.shape[0], c : c + shape.shape[1]] = shape
    return image


def tl_mask() -> np.ndarray:
    """The (8, 8) bool mask T∪L of the fixed-position scenarios (8 pixels)."""
    return (_placed(T_SHAPE, T_CORNER) + _placed(L_SHAPE, L_CORNER)) != 0


def _fixed(y: np.ndarray) -> np.ndarray:
    """Linear and multiplicative: T for class 0, L for class 1. Returns (n, 8, 8)."""
    T, L = _placed(T_SHAPE, T_CORNER), _placed(L_SHAPE, L_CORNER)
    return np.where((y == 0)[:, None, None], T, L)


def _xor(n: int) -> np.ndarray:
    """Both shapes in every sample, signs (+,+), (-,-) [class 0], (+,-), (-,+) [class 1]."""
    T, L = _placed(T_SHAPE, T_CORNER), _placed(L_SHAPE, L_CORNER)
    signs = np.repeat(np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]]), n // 4, axis=0)  # (n, 2)
    return signs[:, 0, None, None] * T + signs[:, 1, None, None] * L  # (n, 8, 8)


def _translations_rotations(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each sample's shape (T for class 0, L for 1) turned by ``rot90(., k)``, k ~ U{0..3},
    at a uniformly random position where it fits. Draws all ``k``, then all rows, then all
    columns."""
    n = len(y)
    k = rng.integers(0, 4, size=n)
    tall = k % 2 == 0  # 3 x 2 when k is even, 2 x 3 when odd
    h, w = np.where(tall, 3, 2), np.where(tall, 2, 3)
    rows = rng.integers(0, SIZE - h + 1)  # (n,), each in [0, 8 - h]
    cols = rng.integers(0, SIZE - w + 1)
    P = np.zeros((n, SIZE, SIZE))
    for i in range(n):
        shape = np.rot90(T_SHAPE if y[i] == 0 else L_SHAPE, k[i])
        P[i, rows[i] : rows[i] + h[i], cols[i] : cols[i] + w[i]] = shape
    return P


def _check_choice(func: str, name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{func}: unknown {name} {value!r}; choose one of {list(choices)}")
    return value


def xai_tris(
    scenario: str,
    background: str,
    n: int = 10000,
    alpha: float | None = None,
    seed: int = 0,
) -> GroundTruthData:
    r"""One XAI-TRIS data set (8x8): a scenario on a background, with its ground truth.

    Shapes ``T = [[1,0],[1,1],[1,0]]`` at (1, 1) and ``L = [[1,0],[1,0],[1,1]]`` at (4, 5).
    Scenarios (``P`` holds the pattern images):

    - ``"linear"``, ``"multiplicative"``: class 0 has T, class 1 has L;
    - ``"translations_rotations"``: as linear, but each sample's shape is turned by
      ``rot90(., k)``, :math:`k \sim \mathcal U\{0..3\}`, at a uniformly random valid
      position;
    - ``"xor"``: both shapes in every sample, with signs (+,+) or (-,-) for class 0 and
      (+,-) or (-,+) for class 1, a quarter of the samples each (in this order).

    Backgrounds ``B``: ``"white"`` is :math:`\mathcal N(0, 0.5^2)` per pixel; ``"correlated"``
    is the same white noise smoothed per sample by ``scipy.ndimage.gaussian_filter(., 3)``
    (so, for one seed, the correlated background is the smoothed white one). With ``P`` and
    ``B`` as ``n x 64`` matrices normalised by their Frobenius norms:

    .. math::

        \text{additive:}\quad x = \alpha \frac{P}{\|P\|_F} + (1 - \alpha) \frac{B}{\|B\|_F};
        \qquad
        \text{multiplicative:}\quad x = \frac{P'}{\|P'\|_F} \odot \frac{B}{\|B\|_F},
        \quad P' = 1 - \alpha P,

    then :math:`x \leftarrow x / \max |x|` over the whole data set. The mask is T∪L (8
    pixels) for linear, multiplicative and xor, and each sample's own placed shape (4 pixels)
    for translations_rotations. See the module docstring for where this follows the
    published code rather than the paper.

    Parameters
    ----------
    scenario : {"linear", "multiplicative", "translations_rotations", "xor"}
    background : {"white", "correlated"}
    n : int
        Number of samples: even, and a multiple of 4 for xor (default 10000).
    alpha : float in [0, 1], optional
        The signal weight; default :data:`DEFAULT_ALPHA` of the scenario and background
        (linear 0.18 / 0.0125, multiplicative 0.7 / 0.1, translations_rotations 0.65 / 0.2,
        xor 0.35 / 0.15 for white / correlated).
    seed : int
        Seeds ``numpy.random.default_rng``: the ``(n, 64)`` background first, then (for
        translations_rotations) the rotations, rows and columns.

    Returns
    -------
    GroundTruthData
        ``X (n, 1, 8, 8)`` float32 in [-1, 1], ``y (n,)`` int64, ``masks (n, 1, 8, 8)`` bool.

    Notes
    -----
    This follows the published code where it differs from the paper: one global
    ``max |x|`` over the data set (not one per sample); ``0.5`` is the background's standard
    deviation (the code's ``var_data = 0.5`` is passed to ``numpy.random.normal`` as its
    ``scale``); and the EMD metric is normalised by :math:`\sqrt{128}` for 8x8, not
    :math:`\sqrt{98}` (:func:`refnet.evaluate.emd_accuracy`). The multiplicative scenario
    applies ``1 - alpha P`` to the raw 0/1 shapes before normalising, as the code does.
    """
    func = "xai_tris"
    _check_choice(func, "scenario", scenario, SCENARIOS)
    _check_choice(func, "background", background, BACKGROUNDS)
    n = check_n(func, n, 4 if scenario == "xor" else 2)
    alpha = DEFAULT_ALPHA[scenario, background] if alpha is None else float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"{func}: alpha must lie in [0, 1], got {alpha!r}")
    rng = np.random.default_rng(seed)
    y = labels(n)
    B = rng.normal(0.0, BACKGROUND_STD, size=(n, SIZE, SIZE))  # (n, 8, 8)
    if background == "correlated":
        B = gaussian_filter(B, sigma=(0, SMOOTHING_SIGMA, SMOOTHING_SIGMA))  # per sample
    if scenario == "translations_rotations":
        P = _translations_rotations(y, rng)
        masks = P != 0
    else:
        P = _xor(n) if scenario == "xor" else _fixed(y)
        masks = np.broadcast_to(tl_mask(), (n, SIZE, SIZE))
    P, B = P.reshape(n, -1), B.reshape(n, -1)  # (n, 64)
    if scenario == "multiplicative":
        x = frobenius_normalised(1.0 - alpha * P) * frobenius_normalised(B)
    else:
        x = alpha * frobenius_normalised(P) + (1.0 - alpha) * frobenius_normalised(B)
    x /= np.abs(x).max()
    X = x.reshape(n, 1, SIZE, SIZE).astype(np.float32)  # (n, 1, 8, 8)
    masks = masks.reshape(n, 1, SIZE, SIZE).copy()  # (n, 1, 8, 8)
    params = {"scenario": scenario, "background": background, "n": n, "alpha": alpha}
    params["seed"] = seed
    return GroundTruthData(X, y, masks, f"xai_tris/{scenario}/{background}", params)
