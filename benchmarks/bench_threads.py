"""Benchmark: does refnet need thread variables? Plain environment against tuned (issue 13).

Runs the gradient, PatternNet and ``fit_patterns(kind="relu")`` on the C32 and peer-anchor
networks of ``bench_explain.py`` (``benchmarks/_networks.py``), each in a fresh process,
once with no thread variable set and once with the spin-wait variables
``OPENBLAS_THREAD_TIMEOUT=4 GOMP_SPINCOUNT=10000`` (which must be set before the libraries
load, hence the fresh processes). The processes are interleaved (plain, tuned, plain, ...)
so that load from elsewhere on the machine hits both alike. Each child times its task
(best of ``--repeats``); the ratio plain / tuned of the best times over ``--rounds`` is
printed per network and task. Target: 0.9-1.1x.

Nothing else is set in the children: no allocator setting, no ``OMP_NUM_THREADS`` unless the
caller's environment has one (remove it for a truly plain run), no torch.

Run from the repository root::

    python benchmarks/bench_threads.py            # 3 rounds
    python benchmarks/bench_threads.py --quick    # 2 rounds, fewer repeats
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

TUNED = {"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "10000"}
#: The variables removed for the plain run.
SPIN_VARIABLES = (*TUNED, "OMP_WAIT_POLICY")
TASKS = ("gradient", "patternnet", "fit_patterns")
NETWORKS = ("c32", "anchor")
#: Samples per fit_patterns pass (batches of 256).
FIT_SAMPLES = 1024

_CHILD = """
import sys, time
import numpy as np
sys.path.insert(0, {bench_dir!r})
from _networks import networks
import refnet

net_name, task, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
net, shape = networks()[net_name]
rng = np.random.default_rng(0)
if task == "fit_patterns":
    x = rng.standard_normal(({n_fit}, *shape[1:])).astype(np.float32)
    run = lambda: refnet.fit_patterns(net, x, "relu", batch_size=256, minus=False)
else:
    x = rng.standard_normal(shape).astype(np.float32)
    patterns = [net.layers[i].W * 0.5 for i in net.kernel_layers()]
    explainer = refnet.Explainer(net, task, patterns=patterns)
    run = lambda: explainer(x)
run()
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t0)
print(best)
"""


def child_time(net: str, task: str, repeats: int, tuned: bool) -> float:
    """Best seconds of ``task`` on ``net`` in a fresh process, plain or tuned."""
    env = {k: v for k, v in os.environ.items() if k not in SPIN_VARIABLES}
    if tuned:
        env.update(TUNED)
    code = _CHILD.format(bench_dir=str(Path(__file__).parent), n_fit=FIT_SAMPLES)
    out = subprocess.run(
        [sys.executable, "-c", code, net, task, str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer repeats")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--repeats", type=int, default=None, help="timings per child")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    repeats = args.repeats or (3 if args.quick else 7)
    print(
        f"cores={os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"rounds={rounds}, repeats per child={repeats}, load average "
        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(f"tuned = {' '.join(f'{k}={v}' for k, v in TUNED.items())}; plain = neither set")
    best = {}
    for _ in range(rounds):
        for net in NETWORKS:
            for task in TASKS:
                for tuned in (False, True):
                    t = child_time(net, task, repeats, tuned)
                    key = (net, task, tuned)
                    best[key] = min(best.get(key, float("inf")), t)
    print(f"\n{'network':8s} {'task':14s} {'plain ms':>9s} {'tuned ms':>9s} {'plain/tuned':>12s}")
    for net in NETWORKS:
        for task in TASKS:
            plain, tuned = best[(net, task, False)], best[(net, task, True)]
            ratio = plain / tuned
            verdict = "ok" if 0.9 <= ratio <= 1.1 else "MISS (outside 0.9-1.1x)"
            print(
                f"{net:8s} {task:14s} {plain * 1e3:9.1f} {tuned * 1e3:9.1f} "
                f"{ratio:11.2f}x  {verdict}"
            )
    print(f"(fit_patterns: N={FIT_SAMPLES}, batches of 256, kind relu, a_+ only)")
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
