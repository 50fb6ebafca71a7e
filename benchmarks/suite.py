"""Run the whole suite (or a selection) and return one JSON-friendly result set."""
from __future__ import annotations

import datetime
import os
import sys
import time
from dataclasses import asdict

import minigraph as mg

from .convs import measure_workload
from .data import measure_data
from .digits_gan import measure_digits_gan
from .gan import measure_dcgan_step
from .machine import blas_environment_warnings, gemm_peak, limit_threads, machine_info
from .overhead import measure_overhead
from .peers import set_torch_threads
from .sgd import measure_sgd_step
from .targets import check
from .timing import Settings
from .workloads import Workload

SECTIONS = ("convs", "overhead", "sgd", "data", "gan_step", "digits_gan")


def warn_blas_environment() -> list[str]:
    """Print a loud warning for every BLAS-tuning variable that is set; returns the warnings."""
    warnings = blas_environment_warnings()
    for w in warnings:
        banner = "!" * 100
        print(f"{banner}\nWARNING: {w}\n{banner}", file=sys.stderr, flush=True)
    return warnings


def run(workloads: list[Workload], settings: Settings, *, threads: int = 2, sections=SECTIONS, memory: bool = True,
        mode: str = "full", sgd_batch: int = 64, data_batch: int = 64, gan_size: int = 64, gan_batch: int = 64,
        digits_steps: int | None = None, log=print) -> dict:
    """Measure ``workloads`` and the other ``sections`` with ``threads`` threads everywhere (the digits
    GAN at one thread: the demo's setting). ``gan_size``/``gan_batch``: the DCGAN step's image size and
    batch; ``digits_steps``: steps of the digits GAN's quality runs (default: the demo's)."""
    warn_blas_environment()
    limiter = limit_threads(threads)  # noqa: F841  (the limit lasts as long as the limiter lives)
    set_torch_threads(threads)
    mg.set_num_threads(threads)  # minigraph's copy passes
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
    if "gan_step" in sections:
        results["gan_step"] = measure_dcgan_step(settings, batch=gan_batch, size=gan_size)
        log(f"DCGAN step measured: ratio {results['gan_step'].get('ratio_vs_torch', float('nan')):.2f}")
    if "digits_gan" in sections:
        results["digits_gan"] = measure_digits_gan(settings, steps=digits_steps)
        log(f"digits GAN measured: ratio {results['digits_gan'].get('ratio_vs_torch', float('nan')):.2f}")
    # the GEMM peak is measured at both ends of the run and the better one kept: other processes on a
    # shared machine only ever lower it, and the two values show how much the machine's speed drifted
    peak_end = gemm_peak(settings)
    results["gemm_peak"] = {**max(peak_start, peak_end, key=lambda p: p["gflops"]),
                            "gflops_start": peak_start["gflops"], "gflops_end": peak_end["gflops"]}
    results["load_average"]["end"] = os.getloadavg()
    results["targets"] = check(results)
    results["elapsed_s"] = time.perf_counter() - started
    return results
