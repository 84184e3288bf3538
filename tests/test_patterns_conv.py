"""Conv2D patterns equal the patterns of the equivalent Dense layer on the extracted patches.

A convolution is a Dense layer applied to every patch (MATH.md section 0), so fitting a
Conv2D on images must give exactly the Dense patterns fitted on the im2col rows, for any
stride (1-3), padding (0-2) and non-square kernel that hypothesis builds.
"""

import numpy as np
from conftest import conv_geometries, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet.patterns import layer_input_rows

CONV = settings(max_examples=30, deadline=None)


@CONV
@given(conv_geometries(max_n=6, max_c=3, max_hw=9), seeds, st.sampled_from(refnet.patterns.KINDS))
def test_conv_equals_dense_on_patches(g, seed, kind):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=g.x_shape) + rng.uniform(-1, 1, size=(1, g.C, 1, 1))
    conv = refnet.Conv2D(rng.normal(size=g.w_shape), rng.normal(size=g.F) * 0.3, g.s, (g.ph, g.pw))
    rows = layer_input_rows(conv, x)  # (N*H'*W', C*kh*kw)
    dense = refnet.Dense(conv.weight_matrix(), conv.b)
    Pc = refnet.fit_patterns(refnet.Sequential([conv]), x, kind=kind, batch_size=2)
    Pd = refnet.fit_patterns(refnet.Sequential([dense]), rows, kind=kind, batch_size=10**6)
    A_conv = Pc[0].reshape(g.F, -1)  # (F, C*kh*kw)
    scale = max(1.0, np.abs(Pd[0]).max())
    np.testing.assert_allclose(A_conv, Pd[0], rtol=1e-8, atol=1e-9 * scale)
    assert Pc.report.rows[0] == len(rows) == g.N * g.Ho * g.Wo
    np.testing.assert_array_equal(Pc.report.active[0], Pd.report.active[0])
    np.testing.assert_array_equal(Pc.report.degenerate[0], Pd.report.degenerate[0])
    if kind != "linear":
        m_scale = max(1.0, np.abs(Pd.A_minus[0]).max())
        np.testing.assert_allclose(
            Pc.A_minus[0].reshape(g.F, -1), Pd.A_minus[0], rtol=1e-8, atol=1e-9 * m_scale
        )


def test_layer_input_rows_give_the_pre_activations():
    rng = np.random.default_rng(0)
    conv = refnet.Conv2D.create(2, 3, (2, 3), stride=2, padding=(1, 2), seed=1)
    x = rng.normal(size=(3, 2, 7, 6))
    rows = layer_input_rows(conv, x)  # (N*H'*W', C*kh*kw)
    z = conv(x)  # (N, F, H', W')
    z_rows = z.transpose(0, 2, 3, 1).reshape(-1, 3)  # (N*H'*W', F)
    np.testing.assert_allclose(rows @ conv.weight_matrix().T + conv.b, z_rows, rtol=1e-12)
    dense = refnet.Dense.create(5, 2, seed=0)
    X = rng.normal(size=(4, 5))
    assert layer_input_rows(dense, X) is X


def test_fit_forward_pools_before_rectifying_and_leaves_data_alone():
    """fit_stats forwards ReLU -> MaxPool as MaxPool -> ReLU and rectifies its own arrays in
    place; the statistics equal those of the layer inputs of ``Sequential.forward``, and
    the caller's data (here fed straight into a ReLU) is not modified."""
    rng = np.random.default_rng(3)
    net = refnet.Sequential(
        [
            refnet.ReLU(),
            refnet.Conv2D.create(2, 4, 3, padding=1, seed=0),
            refnet.ReLU(),
            refnet.MaxPool2D(2),
            refnet.Flatten(),
            refnet.Dense.create(4 * 3 * 3, 3, seed=1),
        ]
    )
    x = rng.normal(size=(20, 2, 6, 6))
    x_before = x.copy()
    stats, _ = refnet.patterns.fit_stats(net, x, kind="relu", batch_size=7)
    np.testing.assert_array_equal(x, x_before)
    h = x
    want = {
        i: refnet.patterns.LayerStats(layer, "relu") for i, layer in enumerate(net) if i in stats
    }
    for start in range(0, len(x), 7):
        h = x[start : start + 7]
        for i, layer in enumerate(net):
            z = layer.forward(h)[0]
            if i in want:
                want[i].update(h, z)
            h = z
    for i in stats:
        got, ref = stats[i].patterns(), want[i].patterns()
        np.testing.assert_allclose(got.A, ref.A, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got.active, ref.active)
