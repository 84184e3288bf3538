"""The cost of the translation-exact conv route in explanations (issue 15, item 1).

The explanation forward runs every conv ahead of a max-pool on the translation-exact route
(``conv2d_forward(..., exact=True)``: the direct kernel), so that ties in a pooling window
resolve alike on both backends. Prints, per network of ``benchmarks/_networks.py``, the
time of the gradient, PatternNet and LRP alpha-beta with that rule (the default) and with
every conv on its fastest route, interleaved in one run, and the ratio; then each conv
layer's forward pass alone on both routes.

Run from the repository root::

    python benchmarks/bench_exact.py            # 7 rounds
    python benchmarks/bench_exact.py --quick    # 3 rounds
"""

import _setup  # noqa: E402 - process settings, before NumPy

SETTINGS = _setup.configure()

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _networks import networks  # noqa: E402
from _timing import interleaved_times  # noqa: E402

import refnet  # noqa: E402
import refnet.attribution.backward as backward  # noqa: E402
from refnet import Conv2D, kernels  # noqa: E402


def fastest(net):
    """No conv on the exact route: what the explanation forward did before the tie rule."""
    return [False] * len(net.layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep-env", action="store_true", help="no process settings")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    print(*SETTINGS, f"kernel backend: {kernels.backend()}", sep="\n")
    exact_rule = backward._ahead_of_max_pool
    for name, (net, shape) in networks().items():
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        patterns = refnet.fit_patterns(net, x)
        print(f"\n== {name}: input {shape}, float32 (ms per batch, best of {rounds})")
        for method in ("gradient", "patternnet", "lrp.alpha_beta"):
            p = patterns if method == "patternnet" else None

            def run(rule, net=net, x=x, method=method, p=p):
                backward._ahead_of_max_pool = rule
                refnet.explain(net, x, method, patterns=p)

            t = interleaved_times(
                {"exact": lambda run=run: run(exact_rule), "fast": lambda run=run: run(fastest)},
                rounds,
            )
            print(
                f"  {method:16s} exact {1e3 * t['exact']:8.2f}  fastest {1e3 * t['fast']:8.2f}"
                f"  exact/fastest {t['exact'] / t['fast']:.2f}x"
            )
        backward._ahead_of_max_pool = exact_rule
        h = x
        for layer in net.layers:
            if isinstance(layer, Conv2D):
                t = interleaved_times(
                    {
                        "exact": lambda layer=layer, h=h: layer.forward(h, exact=True),
                        "fast": lambda layer=layer, h=h: layer.forward(h),
                    },
                    rounds,
                )
                print(
                    f"  {layer!r}: forward exact {1e3 * t['exact']:.2f} ms, fastest "
                    f"{1e3 * t['fast']:.2f} ms ({t['exact'] / t['fast']:.2f}x)"
                )
            h = layer.forward(h)[0]


if __name__ == "__main__":
    main()
