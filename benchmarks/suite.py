"""Run the whole suite (or a selection) and return one JSON-friendly result set."""
from __future__ import annotations

import datetime
import os
import sys
import time
from dataclasses import asdict

from .convs import measure_workload
from .data import measure_data
from .machine import blas_environment_warnings, gemm_peak, limit_threads, machine_info
from .overhead import measure_overhead
from .peers import set_torch_threads
from .sgd import measure_sgd_step
from .targets import check
from .timing import Settings
from .workloads import Workload

SECTIONS = ("convs", "overhead", "sgd", "data")


def warn_blas_environment() -> list[str]:
    """Print a loud warning for every BLAS-tuning variable that is set; returns the warnings."""
    warnings = blas_environment_warnings()
    for w in warnings:
        banner = "!" * 100
        print(f"{banner}\nWARNING: {w}\n{banner}", file=sys.stderr, flush=True)
    return warnings


def run(workloads: list[Workload], settings: Settings, *, threads: int = 2, sections=SECTIONS, memory: bool = True,
        mode: str = "full", sgd_batch: int = 64, data_batch: int = 64, log=print) -> dict:
    """Measure ``workloads`` and the other ``sections`` with ``threads`` threads everywhere."""
    warn_blas_environment()
    limiter = limit_threads(threads)  # noqa: F841  (the limit lasts as long as the limiter lives)
    set_torch_threads(threads)
    started = time.perf_counter()
    results = {"mode": mode, "settings": asdict(settings),
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine_info(threads), "load_average": {"start": os.getloadavg()}, "workloads": []}
    peak_start = gemm_peak(settings)
    log(f"float32 GEMM peak: {peak_start['gflops']:.1f} GFLOP/s; load average {results['load_average']['start']}")
    if "convs" in sections:
        for w in workloads:
            row = measure_workload(w, settings, threads, memory)
            results["workloads"].append(row)
            ratios = ", ".join(f"{k} {v:.2f}" for k, v in row["ratios"].items())
            log(f"{w.name:10s} {w.describe():40s} {ratios}")
    if "overhead" in sections:
        results["overhead"] = measure_overhead(settings)
        log("overhead measured")
    if "sgd" in sections:
        results["sgd_step"] = measure_sgd_step(settings, batch=sgd_batch)
        log("SGD step measured")
    if "data" in sections:
        results["data"] = measure_data(settings, batch=data_batch)
        log("data loading measured")
    # the GEMM peak is measured at both ends of the run and the better one kept: other processes on a
    # shared machine only ever lower it, and the two values show how much the machine's speed drifted
    peak_end = gemm_peak(settings)
    results["gemm_peak"] = {**max(peak_start, peak_end, key=lambda p: p["gflops"]),
                            "gflops_start": peak_start["gflops"], "gflops_end": peak_end["gflops"]}
    results["load_average"]["end"] = os.getloadavg()
    results["targets"] = check(results)
    results["elapsed_s"] = time.perf_counter() - started
    return results
