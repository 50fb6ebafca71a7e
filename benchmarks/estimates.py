"""``python -m benchmarks.estimates``: ``model.estimate``'s peak memory against tracemalloc, per workload.

For every transposed-convolution workload of the suite (:data:`benchmarks.workloads.WORKLOADS`) it
builds the layer, estimates the peak of an inference run and of a forward+backward run from the shape
pass (:func:`minigraph.costs.estimate`), then measures the peak that tracemalloc sees in a warm run
of each, and prints both with their ratio (estimate / measured).
"""
from __future__ import annotations

import argparse
import tracemalloc

import minigraph as mg

from .workloads import WORKLOADS, Workload, select


def layer(w: Workload):
    """The workload as a graph: ``(output node, feed)``."""
    x = mg.input_variable(w.x_shape[1:], name="x")
    xa, wa = w.arrays()
    kernel = mg.parameter(init=wa, name="W")
    if w.pad is None:
        y = mg.ops.convolution_transpose(kernel, x, strides=w.stride, auto_padding=True, output_shape=w.output_shape)
    else:
        y = mg.ops.convolution_transpose(kernel, x, strides=w.stride, auto_padding=False, lower_pad=w.pad[0],
                                         upper_pad=w.pad[1])
    return y, {x: xa}


def measured_peak(run) -> int:
    """tracemalloc's peak of a warm ``run()`` (plans and caches built by a first run; the kernels'
    reused buffers released, so that the run allocates and counts them)."""
    run()
    mg.empty_cache()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rows(workloads: list[Workload]) -> list[tuple]:
    """``(name, training, estimated bytes, measured bytes)`` per workload and mode."""
    out = []
    for w in workloads:
        y, feed = layer(w)
        for training in (False, True):
            estimate = y.estimate(w.batch, training=training).peak_bytes
            out.append((w.name, training, estimate, measured_peak(_run(y, feed, training))))
    return out


def _run(y, feed, training: bool):
    if training:
        return lambda: y.backward(y.forward(feed))
    return lambda: y.eval(feed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimates", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="workload names or groups (shell patterns)")
    args = parser.parse_args(argv)
    print(f"{'workload':10s} {'run':9s} {'estimate':>10s} {'measured':>10s}  ratio")
    for name, training, estimate, measured in rows(select(WORKLOADS, args.only)):
        mode = "train" if training else "inference"
        mib = f"{estimate / 2**20:7.1f} MiB {measured / 2**20:7.1f} MiB"
        print(f"{name:10s} {mode:9s} {mib}  {estimate / measured:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
