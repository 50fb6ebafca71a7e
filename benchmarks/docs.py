"""The README's "Performance" section, written from a full run's results."""
from __future__ import annotations

from .report import MIB, glance, limit_text

INTRO = """\
minigraph runs on numpy alone, yet its transposed convolution stays close to PyTorch's on CPU.
The table gives minigraph's time divided by the peer's for the same layer (lower is better; below 1
means minigraph is faster), float32, the same number of threads for every framework, with the
strictest target on each ratio next to it (issue 8's per layer, issue 13's 1.5 for dcgan5, conv1d
and conv3d). "fwd+bwd" runs the graph the way a user does,
`y.grad({x: x}, wrt=[x, W])`, against `torch.autograd.grad` on `conv_transpose*d`; the SGD step is
`Trainer.train_minibatch` (forward, backward, momentum SGD) on the MNIST-size generator against the
same model under `torch.optim.SGD`."""

REPRODUCE = """\
Reproduce with

```
make bench          # = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks
.venv/bin/python -m benchmarks --quick            # fewer timing rounds
.venv/bin/python -m benchmarks --only dcgan sgd   # a subset: workload names, groups, or sections
```

It prints the tables and writes `benchmarks/results.json` and `benchmarks/RESULTS.md` (every time,
GFLOP/s, memory per chunk size, overhead, each target's verdict); a full run also rewrites this
section. `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` can halve OpenBLAS's speed, so the suite warns
loudly when either is set. PyTorch and ONNX Runtime are optional: without them their columns are
left out."""


def _targets(results: dict) -> str:
    targets = results["targets"]
    failed = [t for t in targets if t["passed"] is False]
    if not failed:
        return f"All {len(targets)} targets of issues 8, 13 and 15 are met in this run, including memory and overhead."
    listing = "; ".join(f"{t['what']} {t['measured']:.2f} {t['unit']} ({limit_text(t)})" for t in failed)
    return (f"{len(targets) - len(failed)} of {len(targets)} targets of issues 8, 13 and 15 are met in this run. "
            f"Missed: {listing}.")


def _memory(results: dict) -> str:
    rows = [r for r in results["workloads"] if r["memory"]]
    if not rows:
        return ""
    big = max(rows, key=lambda r: r["memory"][0]["forward_peak_bytes"])
    chunks = " / ".join(str(m["max_temp_mem_size_in_samples"]) for m in big["memory"])
    sizes = f"max_temp_mem_size_in_samples {chunks}: " + " / ".join(
        f"{m['forward_peak_bytes'] / MIB:.0f}" for m in big["memory"]) + " MiB"
    worst = max(m["forward_peak_bytes"] / m["budget_bytes"] for r in rows for m in r["memory"])
    diff = max(m["max_rel_diff"] for r in rows for m in r["memory"])
    return (f"- **Memory.** The peak temporary memory of a forward (tracemalloc) reaches at most {worst:.0%} of "
            f"the budget, twice the output plus one GEMM buffer per chunk, and shrinks with the chunk "
            f"({big['name']}: {sizes}). Results agree to float32 rounding (relative difference <= {diff:.1e}) "
            f"for every chunk size; the tests check every thread count too.")


def _overhead(results: dict) -> str:
    rows = [o for o in results.get("overhead", []) if o["target"]]
    if not rows:
        return ""
    parts = "; ".join(f"{o['name']}: {o['forward_us_per_node']:.1f} us per node forward, "
                      f"{o['fwd_bwd_us_per_node']:.1f} us forward+backward" for o in rows)
    return f"- **Framework overhead** beyond numpy's own kernels (targets 20 us and 50 us): {parts}."


def _kernels(results: dict) -> str:
    peak = results["gemm_peak"]["gflops"]
    rows = sorted(results["workloads"], key=lambda r: -r["gflops"]["forward"])[:3]
    if not rows:
        return ""
    best = ", ".join(f"{r['name']} {100 * r['gflops']['forward'] / peak:.0f}%" for r in rows)
    return (f"- **Kernels.** The busiest forwards reach this share of the machine's float32 GEMM peak: {best}. "
            "A forward is one GEMM over channels on the raw input, then a phase-by-phase col2im (no "
            "multiplications by inserted zeros); the backward is an im2col and GEMMs. The column and phase "
            "buffers are reused from call to call, and the copies split their channels over threads. Tiny "
            "geometries (the digits demo's 8x8 images) gather and scatter through one GEMM with a 0/1 "
            "selection matrix instead of a copy per kernel tap.")


def _machine(results: dict) -> str:
    m = results["machine"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernel)"
                     for b in m["blas"] if b["user_api"] == "blas")
    if m.get("blas_thread_timeout") is not None:
        blas += f", idle threads spinning 2^{m['blas_thread_timeout']} cycles after a GEMM"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    peak = results["gemm_peak"]
    return (f"Measured {results['date']} on {m['cpu']}, {m['cores']} cores, {m['platform']}; {versions}; "
            f"numpy's BLAS: {blas}; {m['threads']} threads for numpy's BLAS (threadpoolctl), minigraph's copy "
            f"passes (`mg.set_num_threads`), PyTorch "
            f"(`torch.set_num_threads`) and ONNX Runtime (`intra_op_num_threads`); float32 GEMM peak "
            f"{peak['gflops']:.0f} GFLOP/s (`np.matmul` {peak['n']}^2; {peak['gflops_start']:.0f} at the start "
            f"of the run, {peak['gflops_end']:.0f} at its end). "
            f"Ratios come from the minimum of {results['settings']['repeats']} timing rounds in one process, "
            f"the frameworks taking turns in every round. Load average at the start of the run: "
            f"{results['load_average']['start'][0]:.2f}; on a busy machine expect tens of percent of "
            "run-to-run variation.")


def performance_section(results: dict) -> str:
    """Markdown for the README's "Performance" section."""
    bullets = [b for b in (_memory(results), _overhead(results), _kernels(results)) if b]
    parts = ["## Performance", INTRO, "\n".join(glance(results)[2:]).rstrip(), _targets(results),
             "\n".join(bullets), _machine(results), REPRODUCE]
    return "\n\n".join(p for p in parts if p) + "\n"


def replace_section(readme: str, section: str) -> str:
    """``readme`` with its ``## Performance`` section (up to the next ``## `` heading) replaced by
    ``section``; appended when the README has none."""
    start = readme.find("\n## Performance\n")
    if start < 0:
        return readme.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    end = readme.find("\n## ", start + 1)
    tail = readme[end:] if end >= 0 else "\n"
    return readme[:start + 1] + section.rstrip("\n") + "\n" + tail
