"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: run, print, write results.

Run it as ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks`` (what
``make bench`` does): those variables can halve OpenBLAS's speed, and the suite warns when they are set.
"""
from __future__ import annotations

import argparse
import os

from .docs import performance_section, replace_section
from .report import markdown, write
from .suite import SECTIONS, run
from .timing import FULL, QUICK
from .workloads import WORKLOADS, select

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(os.path.dirname(HERE), "README.md")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about a third of the full run's time)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="workload names or groups (shell patterns: dcgan, 'mnist*', conv3d) and/or sections "
                             f"({', '.join(s for s in SECTIONS if s != 'convs')})")
    parser.add_argument("--threads", type=int, default=2, help="threads for every framework (default 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc memory measurements")
    parser.add_argument("--out", default=HERE, help="where results.json and RESULTS.md go (default: benchmarks/)")
    parser.add_argument("--readme", default=README, help="the README whose Performance section a full run rewrites "
                        "(default: the project's README.md; not written with --quick or --only)")
    args = parser.parse_args(argv)

    sections, workloads = SECTIONS, WORKLOADS
    if args.only:
        named = [s for s in args.only if s in SECTIONS]
        patterns = [p for p in args.only if p not in SECTIONS]
        workloads = select(WORKLOADS, patterns) if patterns else []
        if len(named) < len(args.only) and not workloads:
            parser.error(f"--only {' '.join(args.only)} matches no workload "
                         f"(names: {', '.join(w.name for w in WORKLOADS)}; groups: dcgan, mnist, 1d, 3d)")
        sections = tuple(named) + (("convs",) if workloads and "convs" not in named else ())
    results = run(workloads, QUICK if args.quick else FULL, threads=args.threads, sections=sections,
                  memory=not args.no_memory, mode="quick" if args.quick else "full")
    print()
    print(markdown(results))
    json_path, md_path = write(results, args.out)
    print(f"wrote {json_path} and {md_path} ({results['elapsed_s']:.0f} s)")
    if not (args.quick or args.only):
        with open(args.readme) as f:
            text = replace_section(f.read(), performance_section(results))
        with open(args.readme, "w") as f:
            f.write(text)
        print(f"rewrote the Performance section of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
