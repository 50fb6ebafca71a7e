"""The benchmark targets of issues 8, 13 and 15, checked against a result set (ratios are minigraph /
PyTorch, float32, same threads).

A target whose measurement is missing (peer not installed, section not run) is reported with
``passed = None`` rather than silently dropped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

SUM_GROUP = "dcgan"
PER_LAYER_LIMITS = {  # group -> (forward limit, forward+backward limit) per layer
    "dcgan": (2.5, 3.0),
    "mnist": (2.5, 3.0),
    "1d": (2.0, 2.0),
    "3d": (6.0, 6.0),
}
SUM_LIMITS = {"forward": 1.5, "fwd_bwd": 2.0}
SGD_STEP_LIMIT = 1.5
DATA_STEP_LIMIT = 1.10
"""GAN step fed from an image folder (prefetch 2) over the step fed from memory (issue 15)."""
OVERHEAD_LIMITS_US = {"forward": 20.0, "fwd_bwd": 50.0}
GAN_STEP_LIMIT = 1.2
"""The 64x64 DCGAN D+G training step, batch 64, over PyTorch's (issue 13)."""
DIGITS_GAN_LIMIT = 1.0
"""The digits demo's GAN step at one thread over PyTorch's: the demo keeps its lead (issue 13)."""
CLOSE_LAYERS, CLOSE_LIMIT = ("dcgan5", "conv1d", "conv3d"), 1.5
"""Memory-bound layers within 1.5x of PyTorch, forward and forward+backward (issue 13)."""
COMPUTE_BOUND_LAYERS, GEMM_SHARE_LIMIT = ("dcgan2", "dcgan3", "dcgan4", "mnist1_k4", "mnist1_k5"), 0.75
"""Compute-bound layers at >= 75 % of the run's float32 GEMM peak, forward and forward+backward (issue 13)."""


@dataclass
class Target:
    what: str
    limit: float
    measured: float | None
    unit: str = "x"
    passed: bool | None = None
    at_least: bool = False  # the limit is a floor (a share of the GEMM peak), not a ceiling

    def __post_init__(self):
        if self.measured is not None:
            self.passed = bool(self.measured >= self.limit if self.at_least else self.measured <= self.limit)


def ratio_of_sums(rows: list[dict], kind: str, peer: str = "torch") -> float | None:
    """Summed minigraph time over summed peer time (None when the peer was not measured)."""
    key = f"{kind}_s"
    if not rows or any(key not in r["times"].get(peer, {}) for r in rows):
        return None
    return sum(r["times"]["minigraph"][key] for r in rows) / sum(r["times"][peer][key] for r in rows)


def per_layer_limit(group: str, kind: str) -> float:
    return PER_LAYER_LIMITS[group][0 if kind == "forward" else 1]


def layer_limit(row: dict, kind: str) -> float:
    """The strictest ratio limit on a workload row: its group's (issue 8), or issue 13's for its layers."""
    limit = per_layer_limit(row["group"], kind)
    return min(limit, CLOSE_LIMIT) if row["name"] in CLOSE_LAYERS else limit


def check(results: dict) -> list[dict]:
    """Every target with its measurement and verdict, in report order."""
    targets = []
    convs = results.get("workloads", [])
    summed = [r for r in convs if r["group"] == SUM_GROUP]
    if summed:
        for kind, limit in SUM_LIMITS.items():
            targets.append(Target(f"{SUM_GROUP} layers summed, {kind.replace('_', '+')}", limit,
                                  ratio_of_sums(summed, kind)))
    for r in convs:
        for kind in ("forward", "fwd_bwd"):
            label, ratio = kind.replace("_", "+"), r["ratios"].get(f"{kind}_vs_torch")
            targets.append(Target(f"{r['name']} {label}", per_layer_limit(r["group"], kind), ratio))
            if r["name"] in CLOSE_LAYERS:
                targets.append(Target(f"{r['name']} {label} (issue 13)", CLOSE_LIMIT, ratio))
            if r["name"] in COMPUTE_BOUND_LAYERS and "gemm_peak" in results:
                targets.append(Target(f"{r['name']} {label} share of the GEMM peak", GEMM_SHARE_LIMIT,
                                      r["gflops"][kind] / results["gemm_peak"]["gflops"], unit="of peak",
                                      at_least=True))
        for m in r["memory"]:
            targets.append(Target(f"{r['name']} forward temp memory, max_temp={m['max_temp_mem_size_in_samples']}",
                                  1.0, m["forward_peak_bytes"] / m["budget_bytes"], unit="of budget"))
    if "data" in results:
        targets.append(Target("GAN step from an image folder / from memory", DATA_STEP_LIMIT,
                              results["data"].get("gan_step_ratio")))
    if "gan_step" in results:
        g = results["gan_step"]
        targets.append(Target(f"DCGAN {g['size']}x{g['size']} D+G step, batch {g['batch']}", GAN_STEP_LIMIT,
                              g.get("ratio_vs_torch")))
    if "digits_gan" in results:
        targets.append(Target("digits demo GAN step, 1 thread", DIGITS_GAN_LIMIT,
                              results["digits_gan"].get("ratio_vs_torch")))
    if "sgd_step" in results:
        targets.append(Target("MNIST generator SGD step", SGD_STEP_LIMIT, results["sgd_step"].get("ratio_vs_torch")))
    for o in (o for o in results.get("overhead", []) if o["target"]):
        for kind, limit in OVERHEAD_LIMITS_US.items():
            targets.append(Target(f"overhead {o['name']}, {kind.replace('_', '+')}", limit,
                                  o[f"{kind}_us_per_node"], unit="us/node"))
    return [asdict(t) for t in targets]
