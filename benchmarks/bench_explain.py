"""Benchmark explanation throughput per method (issues 4 and 13).

For each network, prints images/s of every method and its cost as a multiple of one plain
gradient computation (``Explainer(net, "gradient")``) measured in the same run, with the
targets: at most 1.5x for every single-pass method (all but integrated gradients and
SmoothGrad), except LRP alpha-beta (at most 2.5x) and z+ (at most 1.7x); on the anchor
network PatternNet at least 3x torch's gradient. Networks (``benchmarks/_networks.py``),
all float32:

- ``digits``: the digits CNN, 1x8x8 input, Conv(1->16, 3x3, pad 1)-ReLU-MaxPool2-
  Conv(16->32, 3x3, pad 1)-ReLU-Flatten-Dense(->10), batch 256;
- ``c32``: the foundation benchmark's (N64, C32, 32x32) shape, Conv(32->64, 3x3, pad 1)-
  ReLU-MaxPool2-Flatten-Dense(16384->10), batch 64;
- ``anchor``: the peer-anchor network, Conv(3->32, 3x3, pad 1)-ReLU-Conv(32->64, 3x3, pad 1)-
  ReLU-MaxPool2-Flatten-Dense(16384->10), batch 64.

torch's plain input gradient (forward + backward to the input) runs in the same process
when torch is importable. Random weights: throughput does not depend on training.

Run from the repository root::

    python benchmarks/bench_explain.py            # all networks, all methods
    python benchmarks/bench_explain.py --quick    # fewer repeats, IG/SmoothGrad on digits only

No thread variable is set but ``OMP_NUM_THREADS=2``; the allocator setting of
``benchmarks/_setup.py`` applies (``--keep-env`` leaves the process alone).
"""

import os
import sys

import _setup  # noqa: E402 - process settings, before NumPy

if "--keep-env" not in sys.argv:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
SETTINGS = _setup.configure()

import argparse  # noqa: E402

import numpy as np  # noqa: E402
from _networks import networks  # noqa: E402
from _timing import interleaved_times  # noqa: E402

import refnet  # noqa: E402
from refnet import Conv2D, Dense, MaxPool2D, ReLU, Sequential  # noqa: E402
from refnet.attribution.methods import METHODS  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:  # torch is optional
    torch = None

#: Methods with one backward pass (all but integrated gradients and SmoothGrad).
SINGLE_PASS = tuple(m for m in METHODS if m not in ("integrated_gradients", "smoothgrad"))
TORCH = "torch gradient (2 threads)"
TARGET_RATIO = 1.5
#: Methods with their own cost target (x one gradient): the LRP pass-count floors.
TARGET_RATIOS = {"lrp.alpha_beta": 2.5, "lrp.z_plus": 1.7}
#: PatternNet on the anchor network, at least this multiple of torch's gradient throughput.
TARGET_TORCH = 3.0


def torch_gradient(net: Sequential, x: np.ndarray):
    """A function computing torch's plain input gradient of the argmax logit (or None)."""
    if torch is None:
        return None
    torch.set_num_threads(2)
    modules = []
    for layer in net:
        if isinstance(layer, Conv2D):
            F, C, kh, kw = layer.W.shape
            m = torch.nn.Conv2d(C, F, (kh, kw), stride=layer.stride, padding=layer.padding)
            m.weight.data, m.bias.data = torch.from_numpy(layer.W), torch.from_numpy(layer.b)
        elif isinstance(layer, Dense):
            m = torch.nn.Linear(layer.n_in, layer.n_out)
            m.weight.data, m.bias.data = torch.from_numpy(layer.W), torch.from_numpy(layer.b)
        elif isinstance(layer, ReLU):
            m = torch.nn.ReLU()
        elif isinstance(layer, MaxPool2D):
            m = torch.nn.MaxPool2d(layer.size, layer.stride)
        else:
            m = torch.nn.Flatten()
        modules.append(m)
    model = torch.nn.Sequential(*modules)
    for p in model.parameters():
        p.requires_grad_(False)
    xt = torch.from_numpy(x)

    def run():
        xg = xt.clone().requires_grad_(True)
        out = model(xg)
        out.gather(1, out.argmax(1, keepdim=True)).sum().backward()
        return xg.grad

    return run


def bench_network(name, net, shape, methods, repeats, options):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    N = shape[0]
    patterns = [net.layers[i].W * 0.5 for i in net.kernel_layers()]  # any A of W's shape
    explainers = {
        m: refnet.Explainer(net, m, patterns=patterns, **options.get(m, {})) for m in methods
    }
    fns = {m: (lambda e=e: e(x)) for m, e in explainers.items()}
    torch_fn = torch_gradient(net, x)
    if torch_fn is not None:
        fns[TORCH] = torch_fn
    times = interleaved_times(fns, repeats, min_time=0.2)
    t_grad = times["gradient"]
    t_torch = times.pop(TORCH, None)
    rows = list(times.items())
    print(f"\n== {name}: input {shape}, float32, backend {refnet.kernels.backend()} ==")
    print(f"{'method':40s} {'images/s':>10s} {'x gradient':>11s}  target")
    for method, t in rows:
        ratio = t / t_grad
        label = method + (f" {options[method]}" if method in options else "")
        verdict = ""
        if method in SINGLE_PASS:
            target = TARGET_RATIOS.get(method, TARGET_RATIO)
            verdict = "ok" if ratio <= target else f"MISS (> {target}x)"
        if name == "anchor" and method == "patternnet" and t_torch is not None:
            speedup = t_torch / t
            ok = "ok" if speedup >= TARGET_TORCH else f"MISS (< {TARGET_TORCH}x)"
            verdict += f"; {speedup:.2f}x torch's gradient {ok}"
        print(f"{label:40s} {N / t:10.0f} {ratio:10.2f}x  {verdict}")
    if t_torch is not None:
        print(f"{TORCH:40s} {N / t_torch:10.0f} {t_torch / t_grad:10.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--keep-env", action="store_true", help="do not set thread variables")
    parser.add_argument("--only", choices=["digits", "c32", "anchor"], help="one network")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7

    print("\n".join(SETTINGS))
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cores={os.cpu_count()}, "
        f"kernel backend: {refnet.kernels.backend()}"
    )
    for name, (net, shape) in networks().items():
        if args.only and name != args.only:
            continue
        methods = list(SINGLE_PASS)
        options = {}
        if name == "digits":
            methods += ["integrated_gradients", "smoothgrad"]
            options = {"smoothgrad": {"seed": 0}}
        elif not args.quick:  # cost grows linearly with steps / samples; fewer on big nets
            methods += ["integrated_gradients", "smoothgrad"]
            options = {
                "integrated_gradients": {"steps": 8},
                "smoothgrad": {"samples": 8, "seed": 0},
            }
        bench_network(name, net, shape, methods, repeats, options)


if __name__ == "__main__":
    main()
