r"""Gradient-descent optimisers: SGD with momentum and Adam.

Both take the network's parameters as ``net.params()`` returns them — a list with one dict
``name -> array`` per layer — and the gradients in the same structure (the list returned
by ``Sequential.backward``). ``step`` updates every array **in place**, so the layers see the
new values without being rebuilt. State (velocity, moments) is kept per array, keyed by
``(layer index, name)``, in the array's own dtype.
"""

from __future__ import annotations

import numpy as np

Params = list[dict[str, np.ndarray]]


def _pairs(optimiser: str, params: Params, grads: Params):
    """Yield ``((layer, name), parameter, gradient)`` after checking the two structures agree."""
    if len(params) != len(grads):
        raise ValueError(
            f"{optimiser}.step: got parameters for {len(params)} layers "
            f"but gradients for {len(grads)}"
        )
    for i, (p_layer, g_layer) in enumerate(zip(params, grads, strict=True)):
        if set(p_layer) != set(g_layer):
            raise ValueError(
                f"{optimiser}.step: layer {i} has parameters {sorted(p_layer)} "
                f"but gradients {sorted(g_layer)}"
            )
        for name, p in p_layer.items():
            g = g_layer[name]
            if g.shape != p.shape:
                raise ValueError(
                    f"{optimiser}.step: layer {i} parameter {name!r} has shape {p.shape} "
                    f"but its gradient has shape {g.shape}"
                )
            if not np.isfinite(g).all():
                raise ValueError(
                    f"{optimiser}.step: layer {i} gradient {name!r} of shape {g.shape} "
                    "contains NaN or infinity"
                )
            yield (i, name), p, g


def _check_positive(optimiser: str, **values: float) -> None:
    for key, v in values.items():
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{optimiser}: {key} must be a positive number, got {v!r}")


def _check_fraction(optimiser: str, **values: float) -> None:
    for key, v in values.items():
        if not 0 <= v < 1:
            raise ValueError(f"{optimiser}: {key} must lie in [0, 1), got {v!r}")


class SGD:
    r"""Stochastic gradient descent with (heavy-ball) momentum.

    For every parameter :math:`\theta` with gradient :math:`g`, velocity :math:`v_0 = 0`:

    .. math::

        v_t = \mu\, v_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta\, v_t

    (Polyak 1964; the form used by PyTorch's ``torch.optim.SGD``). ``momentum=0`` is plain
    gradient descent.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta > 0`.
    momentum : float
        :math:`\mu \in [0, 1)`.
    """

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        _check_positive("SGD", lr=lr)
        _check_fraction("SGD", momentum=momentum)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocity: dict[tuple[int, str], np.ndarray] = {}

    def step(self, params: Params, grads: Params) -> None:
        """Update every array of ``params`` in place from ``grads`` (same structure)."""
        for key, theta, g in _pairs("SGD", params, grads):
            v = self.velocity.get(key)
            if v is None:
                v = self.velocity[key] = np.zeros_like(theta)
            v *= self.momentum
            v += g
            theta -= self.lr * v

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Adam:
    r"""Adam (Kingma & Ba 2015, Algorithm 1).

    For every parameter :math:`\theta` with gradient :math:`g`, moments
    :math:`m_0 = v_0 = 0`, step :math:`t = 1, 2, \dots`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,

        \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.

    The first step is therefore :math:`-\eta\, g / (|g| + \epsilon) \approx -\eta\,
    \mathrm{sign}(g)`. The step counter :math:`t` is shared by all parameters (one ``step``
    call = one :math:`t`).

    Parameters
    ----------
    lr : float
        Step size :math:`\eta > 0`.
    beta1, beta2 : float
        Decay rates of the first and second moments, in ``[0, 1)``.
    eps : float
        :math:`\epsilon > 0`, guards the division.
    """

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        _check_positive("Adam", lr=lr, eps=eps)
        _check_fraction("Adam", beta1=beta1, beta2=beta2)
        self.lr = float(lr)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.t = 0
        self.m: dict[tuple[int, str], np.ndarray] = {}
        self.v: dict[tuple[int, str], np.ndarray] = {}

    def step(self, params: Params, grads: Params) -> None:
        """Update every array of ``params`` in place from ``grads`` (same structure)."""
        pairs = list(_pairs("Adam", params, grads))  # validate everything before changing t
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        correction1 = 1.0 - b1**self.t
        correction2 = 1.0 - b2**self.t
        for key, theta, g in pairs:
            if key not in self.m:
                self.m[key] = np.zeros_like(theta)
                self.v[key] = np.zeros_like(theta)
            m, v = self.m[key], self.v[key]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * np.square(g)
            m_hat = m / correction1
            v_hat = v / correction2
            theta -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)  # m, v in theta's dtype

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"
