"""Patterns remember the weights they were fitted on (issue 15, item 9).

Before the fingerprint, patterns of a sibling network of the same shapes, or of the network
before retraining, were accepted silently and gave finite but meaningless heatmaps.
"""

import numpy as np
import pytest

import refnet
from refnet import Conv2D, Dense, Flatten, ReLU, Sequential
from refnet.patterns import Patterns


def _net(seed: int) -> Sequential:
    return Sequential(
        [
            Conv2D.create(1, 3, 3, padding=1, seed=seed),
            ReLU(),
            Flatten(),
            Dense.create(3 * 4 * 4, 2, seed=seed + 1),
        ]
    )


@pytest.fixture
def fitted():
    net = _net(0)
    x = np.random.default_rng(0).standard_normal((40, 1, 4, 4))
    return net, x, refnet.fit_patterns(net, x)


@pytest.mark.parametrize("method", ["patternnet", "patternattribution"])
def test_a_sibling_networks_patterns_are_refused(fitted, method):
    net, x, patterns = fitted
    sibling = _net(10)
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D.*assume_fitted_on"):
        refnet.explain(sibling, x, method, patterns=patterns)
    with pytest.raises(ValueError, match="another model's patterns"):
        refnet.Explainer(sibling, method, patterns=patterns)(x)


def test_retraining_one_layer_is_noticed_and_named(fitted):
    net, x, patterns = fitted
    net.layers[3].W = net.layers[3].W + 1e-3
    with pytest.raises(ValueError, match=r"layer 3 \(Dense"):
        refnet.explain(net, x, "patternnet", patterns=patterns)


def test_the_same_network_and_its_other_dtype_are_accepted(fitted):
    net, x, patterns = fitted
    h = refnet.explain(net, x, "patternattribution", patterns=patterns)
    assert np.isfinite(h).all()
    net32 = net.astype(np.float32)
    refnet.explain(net32, x.astype(np.float32), "patternnet", patterns=patterns)


def test_assume_fitted_on_accepts_them_explicitly_and_still_checks_shapes(fitted):
    net, x, patterns = fitted
    sibling = _net(10)
    accepted = patterns.assume_fitted_on(sibling)
    h = refnet.explain(sibling, x, "patternnet", patterns=accepted)
    np.testing.assert_array_equal(h, refnet.explain(sibling, x, "patternnet", patterns=patterns.A))
    with pytest.raises(ValueError, match="kernel layers"):
        patterns.assume_fitted_on(Sequential([Flatten(), Dense.create(16, 2, seed=0)]))


def test_save_and_load_keep_the_fingerprint(fitted, tmp_path):
    net, x, patterns = fitted
    loaded = Patterns.load(patterns.save(tmp_path / "p.npz"))
    assert loaded.fingerprint == patterns.fingerprint
    with pytest.raises(ValueError, match="another model's patterns"):
        refnet.explain(_net(10), x, "patternnet", patterns=loaded)


def test_patterns_without_a_fingerprint_are_checked_by_shape_only(fitted, tmp_path):
    """Files written before fingerprints, and patterns made from statistics, have none."""
    net, x, patterns = fitted
    old = Patterns(patterns.kind, patterns.A, patterns.A_minus, patterns.report)
    loaded = Patterns.load(old.save(tmp_path / "old.npz"))
    assert loaded.fingerprint is None
    refnet.explain(_net(10), x, "patternnet", patterns=loaded)
