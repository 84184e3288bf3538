"""The ``refnet`` command line: ``demo``, ``fit-patterns`` and ``explain``.

Every command checks its input before doing any work. A bad input (a missing file, an
array of the wrong shape, a pattern file from another network, an unknown method) ends
the command with ONE line on stderr, ``refnet <command>: error: <what is wrong>``, and exit
status 2; a traceback is never shown (set ``REFNET_TRACEBACK=1`` to see one when debugging
refnet itself). ``main`` returns the exit status instead of calling ``sys.exit`` so that
tests can call it in-process.

The commands never destroy their inputs: an ``--out`` that names one of them (through any
path, symlink or hard link) or a folder is refused, and every output is written
atomically (:func:`refnet.fileio.atomic_write`), at exactly the name given: ``--out
H.NPY`` writes and prints ``H.NPY``. Input arrays are read with ``allow_pickle=False``
after their ``.npy`` header is checked; a text file or an ``.npz`` given as ``.npy`` gets
its own message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .attribution.methods import METHODS
from .fileio import atomic_write
from .patterns import KINDS

#: The first bytes of every .npy file.
NPY_MAGIC = b"\x93NUMPY"

#: Exit status of a refused input (argparse uses the same for usage errors).
EXIT_BAD_INPUT = 2

DESCRIPTION = """\
refnet: PatternNet and PatternAttribution (Kindermans et al., ICLR 2018) in NumPy.
Run 'refnet <command> --help' for the options of a command."""

DEMO_HELP = """\
Reproduce the paper's experiments offline on scikit-learn's 8x8 digits: the linear toy
(Fig. 2), a trained CNN with patterns of kind linear and relu, the quality rho of the
signal estimators per layer (Fig. 3), a heatmap grid of every method (Figs. 5-6) and the
image degradation curves with their AOPC (Fig. 4). Writes figures, report.md and
metrics.json into the output folder. Needs the 'demo' extra: pip install "refnet[demo]"."""

FIT_HELP = """\
Fit the patterns of every Dense and Conv2D layer of a saved network in one pass over
a data set, and save them. The data file is memory-mapped and read batch by batch, so it
may be larger than memory.

example:
  refnet fit-patterns --model net.npz --data X.npy --kind relu --out patterns.npz"""

EXPLAIN_HELP = """\
Explain a saved network's output for the inputs in an .npy file, with one method, and
write the heatmaps (same shape as the input) to .npy, or draw them to .png.

examples:
  refnet explain --model net.npz --input x.npy --method gradient --out heat.npy
  refnet explain --model net.npz --patterns patterns.npz --input x.npy \\
      --method patternattribution --target 3 --out heat.png
  refnet explain --model model.onnx --input x.npy --method gradient --out heat.npy"""


MODEL_HELP = (
    "network saved by refnet.save (.npz), or a model to import: .onnx (refnet.from_onnx, "
    "needs refnet[onnx]) or .keras (refnet.from_keras, needs refnet[keras]; NCHW input)"
)


class CommandError(Exception):
    """A refused input: its message is printed as the command's one error line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``refnet`` and its three subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="refnet", description=DESCRIPTION, formatter_class=fmt)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)

    demo = sub.add_parser(
        "demo",
        help="reproduce the paper's experiments on the 8x8 digits (figures, report)",
        description=DEMO_HELP,
        formatter_class=fmt,
    )
    demo.add_argument(
        "--out",
        default="refnet-demo",
        metavar="DIR",
        help="output folder (default: ./refnet-demo)",
    )
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run (fewer epochs, images and samples) in well under 30 s",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    fit = sub.add_parser(
        "fit-patterns",
        help="fit the patterns of your saved network on your data",
        description=FIT_HELP,
        formatter_class=fmt,
    )
    fit.add_argument("--model", required=True, metavar="NET", help=MODEL_HELP)
    fit.add_argument(
        "--data",
        required=True,
        metavar="X.npy",
        help="training inputs, shaped as the network's input (N, ...)",
    )
    fit.add_argument(
        "--kind",
        default="relu",
        metavar="KIND",
        help="pattern kind, one of: " + ", ".join(KINDS) + " (default: relu, PatternNet's a+)",
    )
    fit.add_argument("--out", required=True, metavar="PATTERNS.npz", help="where to save them")
    fit.add_argument(
        "--batch-size", type=int, default=256, metavar="B", help="samples per batch (default 256)"
    )
    fit.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    exp = sub.add_parser(
        "explain",
        help="explain your saved network's outputs with any method",
        description=EXPLAIN_HELP,
        formatter_class=fmt,
    )
    exp.add_argument("--model", required=True, metavar="NET", help=MODEL_HELP)
    exp.add_argument(
        "--patterns",
        metavar="PATTERNS.npz",
        help="patterns from 'refnet fit-patterns' (needed by patternnet, patternattribution)",
    )
    exp.add_argument(
        "--input",
        required=True,
        metavar="X.npy",
        help="one input or a batch (N, ...), shaped as the network's input",
    )
    exp.add_argument(
        "--method",
        required=True,
        metavar="M",
        help="explanation method, one of: " + ", ".join(_method_names()),
    )
    exp.add_argument(
        "--target",
        type=int,
        metavar="T",
        help="output neuron to explain (default: the predicted class of each input)",
    )
    exp.add_argument(
        "--out",
        required=True,
        metavar="HEAT.npy|HEAT.png",
        help="heatmaps as an array (.npy, input's shape) or a picture (.png)",
    )
    _add_groundtruth_parser(sub, fmt)
    return parser


def _add_groundtruth_parser(sub, fmt) -> None:
    """The ``groundtruth`` subcommand (:mod:`refnet.groundtruth`)."""
    description = """\
Score every explanation method against known signal pixels: the XAI-TRIS benchmarks (four
scenarios on white and correlated backgrounds) and Wilming et al. 2022's suppressor data.
Trains an llr, an mlp and a cnn per data set, explains the test samples every model
classifies correctly with all 11 methods and the baselines random, sobel, laplace and x,
and writes results.json, report.md and figures into the output folder (files there that
are not outputs of this command are never overwritten). Needs the 'groundtruth' extra:
pip install "refnet[groundtruth]"."""
    gt = sub.add_parser(
        "groundtruth",
        help="score the methods on ground-truth benchmarks (XAI-TRIS, Wilming et al. 2022)",
        description=description,
        formatter_class=fmt,
    )
    gt.add_argument(
        "--out",
        default="refnet-groundtruth",
        metavar="DIR",
        help="output folder (default: ./refnet-groundtruth)",
    )
    gt.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    gt.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples and epochs, every combination still covered (under a minute)",
    )
    gt.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    gt.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="samples per data set (a multiple of 4, at least 20), overriding the run's "
        "default of 10000 (2000 with --quick); for tests and trials",
    )


def _method_names() -> list[str]:
    """The method names ``refnet.explain`` accepts, from its registry."""
    return sorted(METHODS)


# ------------------------------------------------------------------------------ helpers


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise CommandError(f"{what} '{path}' is a folder, not a file")
    if not p.is_file():
        raise CommandError(f"{what} file '{path}' does not exist")
    return p


def _load_network(path: str):
    """A refnet ``.npz`` network, or an ``.onnx`` / ``.keras`` model imported on the fly."""
    from . import from_keras, from_onnx, load

    p = _existing_file(path, "model")
    suffix = p.suffix.lower()
    if suffix in (".onnx", ".keras"):
        importer = from_onnx if suffix == ".onnx" else from_keras
        try:
            return importer(p)
        except (ImportError, ValueError, TypeError, OSError) as exc:
            raise CommandError(f"cannot import the model '{path}': {exc}") from exc
    try:
        return load(p)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise CommandError(f"cannot read a refnet network from '{path}': {exc}") from exc


def _load_patterns(path: str, net):
    from .patterns import Patterns

    p = _existing_file(path, "patterns")
    try:
        patterns = Patterns.load(p)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise CommandError(f"cannot read patterns from '{path}': {exc}") from exc
    try:
        patterns.check_compatible(net)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"the patterns in '{path}' do not fit this network: {exc}") from exc
    return patterns


def _load_array(path: str, what: str, mmap: bool = False) -> np.ndarray:
    """The single array of the ``.npy`` file ``path``, its header checked before its data."""
    p = _existing_file(path, what)
    with open(p, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
        if magic[:2] == b"PK":
            raise CommandError(f"'{path}' is an .npz archive; give a single-array .npy file")
        if magic != NPY_MAGIC:
            raise CommandError(
                f"{what} '{path}' is not a NumPy .npy file (a text or CSV file must first be "
                "converted with numpy.save)"
            )
        try:
            f.seek(0)
            if np.lib.format.read_magic(f) == (1, 0):
                dtype = np.lib.format.read_array_header_1_0(f)[2]
            else:  # versions 2.0 and 3.0 share the header layout
                dtype = np.lib.format.read_array_header_2_0(f)[2]
        except (ValueError, OSError) as exc:
            raise CommandError(f"{what} '{path}' has a damaged .npy header: {exc}") from exc
    if dtype.kind not in "iuf":  # never an object array: nothing is unpickled
        raise CommandError(f"{what} '{path}' has dtype {dtype}; expected numbers")
    try:
        x = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, MemoryError) as exc:
        raise CommandError(f"cannot read a NumPy array from '{path}': {exc}") from exc
    return x


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one file (through any path, symlink or hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


def _check_output(out: Path, inputs: dict[str, str | None]) -> None:
    """``--out`` names a new or replaceable file in an existing folder, and no input."""
    if out.is_dir():
        raise CommandError(f"--out '{out}' is a folder; give a file name")
    if not out.parent.is_dir():
        raise CommandError(f"output folder '{out.parent}' does not exist")
    for flag, path in inputs.items():
        if path is not None and _same_file(out, path):
            raise CommandError(
                f"--out '{out}' is the same file as {flag} '{path}'; "
                "refusing to overwrite an input"
            )


class _NativeBatches:
    """The samples of ``X`` in batches, each read in native byte order.

    The compiled kernels need native byte order; converting one batch at a time keeps a
    big-endian data file memory-mapped instead of reading it whole. ``len`` is the number
    of batches (for the progress bar).
    """

    def __init__(self, X: np.ndarray, batch_size: int) -> None:
        self.X, self.batch_size = X, batch_size

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        native = self.X.dtype.newbyteorder("=")
        for start in range(0, len(self.X), self.batch_size):
            yield np.asarray(self.X[start : start + self.batch_size], dtype=native)


def _input_rank(net) -> int | None:
    """The number of dimensions (batch axis included) the network's first layer expects."""
    from .layers import AvgPool2D, Conv2D, Dense, GlobalAvgPool2D, MaxPool2D, ZeroPad2D

    first = net.layers[0]
    if isinstance(first, (Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, ZeroPad2D)):
        return 4
    if isinstance(first, Dense):
        return 2
    return None


def _float(x: np.ndarray, net) -> np.ndarray:
    dtype = net.dtype if net.dtype in (np.float32, np.float64) else np.float64
    return np.asarray(x, dtype=dtype)


def _check_runs(net, x: np.ndarray, what: str) -> int:
    """Run the network on a few rows of ``x``; return the number of outputs."""
    try:
        logits = net(_float(x[:2], net))
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{what} of shape {x.shape} does not fit the network: {exc}") from exc
    return logits.shape[1]


def _write_png(heat: np.ndarray, method: str, out: Path) -> None:
    """Draw the heatmaps (N, C, H, W) to the picture ``out``, atomically."""
    if heat.ndim != 4 or len(heat) == 0:
        raise CommandError(
            f"a .png needs image inputs (N, C, H, W) with N >= 1; the heatmaps have shape "
            f"{heat.shape}, write them to .npy instead"
        )
    from .demo import missing_dependencies

    if "matplotlib" in missing_dependencies():
        raise CommandError(
            'a .png needs matplotlib; install it with: pip install "refnet[demo]", or write .npy'
        )
    from .demo.figures import save_heatmap_png

    save_heatmap_png(heat, method, out)  # written atomically


# ----------------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import missing_dependencies, run_demo

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise CommandError(f"--out '{args.out}' is an existing file; the demo needs a folder")
    missing = missing_dependencies()
    if missing:
        raise CommandError(
            f"the demo needs {' and '.join(missing)}, which are not installed; "
            'install them with: pip install "refnet[demo]"'
        )
    run_demo(args.out, seed=args.seed, quick=args.quick, progress=not args.no_progress)
    return 0


def cmd_fit_patterns(args: argparse.Namespace) -> int:
    from .patterns import fit_patterns

    out = Path(args.out)
    if out.suffix.lower() != ".npz":  # the rule of Patterns.save
        out = out.with_name(out.name + ".npz")
    _check_output(out, {"--model": args.model, "--data": args.data})
    net = _load_network(args.model)
    X = _load_array(args.data, "data", mmap=True)
    if X.ndim < 2 or len(X) == 0:
        raise CommandError(
            f"data '{args.data}' must be a batch (N, ...) of inputs, got shape {X.shape}"
        )
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be positive, got {args.batch_size}")
    if not np.issubdtype(X.dtype, np.floating):
        raise CommandError(f"data '{args.data}' has dtype {X.dtype}; expected float32 or float64")
    _check_runs(net, X, f"data '{args.data}'")
    batches = _NativeBatches(X, args.batch_size)
    try:
        patterns = fit_patterns(net, batches, kind=args.kind, progress=not args.no_progress)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from exc
    out = patterns.save(out)
    print(
        f"refnet fit-patterns: {args.kind} patterns of {len(patterns.layer_indices)} layers "
        f"fitted on {len(X)} samples -> {out}"
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .attribution import explain

    names = _method_names()
    if args.method not in names:
        raise CommandError(f"unknown method '{args.method}'; choose one of: {', '.join(names)}")
    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise CommandError(f"--out must end in .npy or .png, got '{args.out}'")
    _check_output(out, {"--model": args.model, "--input": args.input, "--patterns": args.patterns})
    net = _load_network(args.model)
    patterns = _load_patterns(args.patterns, net) if args.patterns else None
    if args.method.startswith("pattern") and patterns is None:
        raise CommandError(
            f"method '{args.method}' needs --patterns (make them with 'refnet fit-patterns')"
        )
    x = _load_array(args.input, "input")
    rank = _input_rank(net)
    single = rank is not None and x.ndim == rank - 1
    batch = x[None] if single else x
    n_out = _check_runs(net, batch, f"input '{args.input}'")
    if args.target is not None and not 0 <= args.target < n_out:
        raise CommandError(
            f"--target {args.target} is out of range: the network has {n_out} outputs"
        )
    try:
        heat = explain(net, _float(batch, net), args.method, target=args.target, patterns=patterns)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from exc
    if out.suffix.lower() == ".npy":
        with atomic_write(out) as f:
            np.save(f, heat[0] if single else heat)
    else:
        _write_png(heat, args.method, out)
    print(f"refnet explain: {args.method} heatmaps of shape {heat.shape} -> {out}")
    return 0


def cmd_groundtruth(args: argparse.Namespace) -> int:
    from .groundtruth import GroundTruthSettings, missing_dependencies, run_groundtruth
    from .groundtruth.report import check_output

    missing = missing_dependencies()
    if missing:
        raise CommandError(
            f"groundtruth needs {' and '.join(missing)}, which are not installed; "
            'install them with: pip install "refnet[groundtruth]"'
        )
    settings = GroundTruthSettings.for_run(args.quick)
    if args.samples is not None:
        if args.samples < 20 or args.samples % 4:
            raise CommandError(
                f"--samples must be a multiple of 4, at least 20; got {args.samples}"
            )
        settings = settings.scaled(args.samples)
    try:
        check_output(Path(args.out))
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    run_groundtruth(
        args.out, args.seed, args.quick, progress=not args.no_progress, settings=settings
    )
    return 0


COMMANDS = {"demo": cmd_demo, "fit-patterns": cmd_fit_patterns, "explain": cmd_explain}
COMMANDS["groundtruth"] = cmd_groundtruth


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``refnet`` with the arguments ``argv`` (default ``sys.argv[1:]``); return the status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return int(exc.code or 0)
    if args.version:
        from . import __version__

        print(f"refnet {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except CommandError as exc:
        print(f"refnet {args.command}: error: {exc}".replace("\n", " "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 -- the CLI promises one line, never a traceback
        if os.environ.get("REFNET_TRACEBACK"):
            raise
        message = f"refnet {args.command}: error: {type(exc).__name__}: {exc}"
        print(message.replace("\n", " "), file=sys.stderr)
        return 1
