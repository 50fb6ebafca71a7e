"""Measure one transposed-convolution workload: minigraph against its peers, speed and memory.

Frameworks take turns in every timing round (see :func:`~benchmarks.timing.best_times`), so a
busy spell on the shared machine hits all of them alike. Before timing, every peer's output and
gradients are compared with minigraph's: a ratio between different computations would mean nothing.
"""
from __future__ import annotations

import numpy as np

from . import ours
from .peers import onnxruntime_runner, torch_runner
from .timing import SETTLE_S, Settings, best_times, peak_bytes
from .workloads import Workload

MEMORY_CHUNKS = (0, 8, 1)
"""``max_temp_mem_size_in_samples`` values whose peak temporary memory is measured (0 = whole batch)."""


def _max_rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def measure_memory(w: Workload, x: np.ndarray, W: np.ndarray, chunks=MEMORY_CHUNKS) -> list[dict]:
    """Peak temporary bytes of forward and forward+backward for each chunk size, the issue's
    budget (2 x (output + the GEMM buffer of one chunk)), and the largest difference of the
    results from those of the first chunk size (they must agree: chunking changes no arithmetic)."""
    rows, reference = [], None
    out_bytes = int(np.prod(w.y_shape)) * x.itemsize
    for k in chunks:
        runner = ours.build(w, x, W, k).runner()
        y = runner.forward()
        dx, dw = runner.forward_backward()
        if reference is None:
            reference = (y, dx, dw)
        samples = w.batch if k == 0 else min(k, w.batch)
        rows.append({
            "max_temp_mem_size_in_samples": k,
            "forward_peak_bytes": peak_bytes(runner.forward),
            "fwd_bwd_peak_bytes": peak_bytes(runner.forward_backward),
            "output_bytes": out_bytes,
            "gemm_buffer_bytes": w.gemm_buffer_bytes(samples, x.itemsize),
            "budget_bytes": 2 * (out_bytes + w.gemm_buffer_bytes(samples, x.itemsize)),
            "max_rel_diff": max(_max_rel_err(a, b) for a, b in zip((y, dx, dw), reference)),
        })
    return rows


def measure_workload(w: Workload, settings: Settings, threads: int, memory: bool = True) -> dict:
    """Times (seconds per call, min of N), agreement with the peers, GFLOP/s and memory of ``w``."""
    x, W = w.arrays()
    runners = {"minigraph": ours.build(w, x, W).runner(), "torch": torch_runner(w, x, W),
               "onnxruntime": onnxruntime_runner(w, x, W, threads)}
    runners = {k: r for k, r in runners.items() if r is not None}
    y = runners["minigraph"].forward()
    dx, dw = runners["minigraph"].forward_backward()
    errors = {}
    for peer, runner in runners.items():
        if peer == "minigraph":
            continue
        errors[f"{peer}_forward"] = _max_rel_err(y, runner.forward())
        if runner.forward_backward is not None:
            pdx, pdw = runner.forward_backward()
            errors[f"{peer}_grad_x"] = _max_rel_err(dx, pdx)
            errors[f"{peer}_grad_W"] = _max_rel_err(dw, pdw)
    bad = {k: v for k, v in errors.items() if not v < 1e-3}
    if bad:
        raise AssertionError(f"{w.name}: minigraph disagrees with a peer (max relative error {bad})")

    fns = {(peer, "forward_s"): r.forward for peer, r in runners.items()}
    fns.update({(peer, "fwd_bwd_s"): r.forward_backward for peer, r in runners.items() if r.forward_backward})
    times: dict = {peer: {} for peer in runners}
    for (peer, key), seconds in best_times(fns, settings, SETTLE_S).items():
        times[peer][key] = seconds
    mine = times["minigraph"]
    ratios = {f"{kind}_vs_{peer}": mine[key] / t[key]
              for peer, t in times.items() if peer != "minigraph"
              for kind, key in (("forward", "forward_s"), ("fwd_bwd", "fwd_bwd_s")) if key in t}
    gflops = {"forward": w.flops / mine["forward_s"] / 1e9, "fwd_bwd": 3 * w.flops / mine["fwd_bwd_s"] / 1e9}
    return {
        "name": w.name, "group": w.group, "geometry": w.describe(), "rank": w.rank, "flops": w.flops,
        "pads": w.pads(), "times": times, "ratios": ratios, "gflops": gflops, "max_rel_err": errors,
        "memory": measure_memory(w, x, W) if memory else [],
    }
