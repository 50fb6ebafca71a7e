"""The ``minigraph`` command: draw and summarise networks written as specs.

    python -m minigraph plot spec.toml -o net.png [--format svg] [--rankdir LR] [--collapse-layers]
    python -m minigraph plot spec.toml              # DOT text on stdout
    python -m minigraph summary spec.toml [--batch 64]
    python -m minigraph explain spec.toml [--node up2] [--bind H=7 W=7]
    python -m minigraph data-info DIR              # images per class, sizes, modes, unreadable files
    python -m minigraph convert model.onnx -o model.mgz   # an ONNX model as a minigraph model file

Specs are TOML or JSON files read by :func:`minigraph.layers.from_spec`; ``plot``, ``summary`` and
``explain`` also take ONNX models (``.onnx``, read by :func:`minigraph.import_onnx`). Bad input (a missing or
malformed spec, an unknown format) prints one line ``minigraph <command>: error: ...`` and exits
with status 2; a picture that cannot be rendered (Graphviz missing) exits with status 1, and so does
``data-info`` when some files cannot be read as images.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .data import EXTENSIONS, folder_info
from .errors import GraphError, MinigraphError, RenderError
from .layers import from_spec, summary
from .plot import DPI_RANGE, FORMATS, RANKDIRS, plot


def _network(path: str):
    """The output node of a spec, or of an ONNX model (``.onnx``) with one output."""
    if not path.lower().endswith(".onnx"):
        return from_spec(path)
    from .onnx_import import import_onnx
    model = import_onnx(path)
    if isinstance(model, dict):
        raise GraphError(f"{path}: the ONNX model has {len(model)} outputs ({', '.join(model)}); this command "
                         f"takes a model with one output")
    return model


def _convert(args: argparse.Namespace) -> int:
    from .serialization import save_model
    save_model(_network(args.model), args.output)
    print(f"wrote {args.output}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    node = _network(args.spec)
    dot = plot(node, args.output, format=args.format, rankdir=args.rankdir,
               collapse_layers=args.collapse_layers, dpi=args.dpi)
    if args.output is None:
        sys.stdout.write(dot)
    else:
        print(f"wrote {args.output}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    print(summary(_network(args.spec), batch=args.batch))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain
    model = _network(args.spec)
    found = explain(model, bindings=dict(args.bind or []))
    if args.node is not None:
        try:
            found = found.layer(args.node)
        except KeyError:
            try:
                found = explain(model.find_by_name(args.node), bindings=dict(args.bind or []), chain=False)
            except GraphError as exc:
                raise GraphError(f"--node {args.node}: no layer of that name, and {exc}") from None
    print(found)
    return 0


def _binding(text: str) -> tuple[str, int]:
    """``--bind H=7``: a dimension name and a positive size."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=SIZE with a positive integer size (e.g. H=7)")
    return name, int(value)


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _data_info(args: argparse.Namespace) -> int:
    info = folder_info(args.folder, args.extensions)
    classes = {k: v for k, v in info["classes"].items() if k != "."}
    print(f"{info['root']}: {info['files']} image files" + (f" in {len(classes)} class folders" if classes else ""))
    if classes:
        width = max(len(k) for k in info["classes"])
        for name, count in info["classes"].items():
            print(f"  {name if name != '.' else '(no class folder)':<{width}}  {count}")
    for what in ("sizes", "modes"):
        print(f"{what}{' (width x height)' if what == 'sizes' else ''}: "
              + (", ".join(f"{k}: {n}" for k, n in info[what].items()) or "none"))
    bad = info["unreadable"]
    print(f"cannot read: {len(bad)} files" + "".join(f"\n  {path}: {why}" for path, why in bad))
    return 1 if bad else 0


def _dpi(text: str) -> float:
    """``--dpi``: a number in :data:`~minigraph.plot.DPI_RANGE` (NaN and infinities are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    low, high = DPI_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} is not a resolution from {low} to {high} dots per inch")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigraph", description="Draw and summarise minigraph networks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("plot", help="draw a spec's network as PNG, SVG, PDF or DOT",
                            description="Draw the network of a TOML/JSON spec with Graphviz.")
    p.add_argument("spec", help="network spec (.toml or .json) or ONNX model (.onnx)")
    p.add_argument("-o", "--output", help="picture to write (.png, .svg, .pdf, .dot); without it the DOT "
                                          "text goes to stdout")
    p.add_argument("--format", choices=FORMATS, help="picture format (default: from the output's extension)")
    p.add_argument("--rankdir", choices=RANKDIRS, default="TB", help="layout direction (default: TB)")
    p.add_argument("--collapse-layers", action="store_true", help="draw each layer as one box")
    p.add_argument("--dpi", type=_dpi, help=f"resolution of PNG output, {DPI_RANGE[0]} to {DPI_RANGE[1]}")
    p.set_defaults(run=_plot, parser=p)

    s = commands.add_parser("summary", help="print a table of a spec's layers, shapes and parameters",
                            description="Print the layers, output shapes and parameter counts of a spec.")
    s.add_argument("spec", help="network spec (.toml or .json) or ONNX model (.onnx)")
    s.add_argument("--batch", type=_positive, help="multiply-adds and memory for this many samples (default: "
                                                   "per sample) and the simulated peak of a run")
    s.set_defaults(run=_summary)

    e = commands.add_parser("explain", help="show how every shape, size and pad of a spec's network was derived",
                            description="Explain the shape pass of a spec's network: per-axis sizes, valid "
                                        "output_shape ranges and pads of convolutions and pooling, one-line rules "
                                        "of the other ops.")
    e.add_argument("spec", help="network spec (.toml or .json) or ONNX model (.onnx)")
    e.add_argument("--node", help="only this layer (or node) name, e.g. up2")
    e.add_argument("--bind", type=_binding, nargs="+", metavar="NAME=SIZE",
                   help="bind symbolic sizes to numbers, e.g. --bind H=7 W=7")
    e.set_defaults(run=_explain)

    d = commands.add_parser("data-info", help="count a folder's images per class, their sizes and modes, and the "
                                              "files that cannot be read",
                            description="Decode every image under a folder (class subfolders or flat) and report "
                                        "counts per class, sizes, Pillow modes and unreadable files (exit 1 if any).")
    d.add_argument("folder", help="folder of images (one subfolder per class, or flat)")
    d.add_argument("--extensions", nargs="+", default=list(EXTENSIONS), metavar="EXT",
                   help=f"file extensions to read (default: {' '.join(EXTENSIONS)})")
    d.set_defaults(run=_data_info)

    c = commands.add_parser("convert", help="write an ONNX model as a minigraph model file",
                            description="Import an ONNX model (mg.import_onnx) and save it (mg.save_model): "
                                        "trainable parameters named after the ONNX initializers.")
    c.add_argument("model", help="ONNX model (.onnx)")
    c.add_argument("-o", "--output", required=True, help="minigraph model file to write (e.g. model.mgz)")
    c.set_defaults(run=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 rendering failed, 2 bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "plot" and args.output is None and args.format not in (None, "dot"):
            args.parser.error(f"--format {args.format} needs an output file: add -o FILE")
    except SystemExit as exc:  # argparse has printed the usage error (status 2) or the help (0)
        return int(exc.code or 0)
    try:
        return args.run(args)
    except RenderError as exc:
        print(f"minigraph {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (MinigraphError, OSError, ValueError, ImportError) as exc:  # ImportError: an optional extra missing
        message = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else exc
        print(f"minigraph {args.command}: error: {message}", file=sys.stderr)
        return 2
