"""Render a result set: Markdown tables (printed, and written to RESULTS.md) and results.json."""
from __future__ import annotations

import json
import os

from .machine import REPRODUCE
from .targets import (
    DATA_STEP_LIMIT,
    DIGITS_GAN_LIMIT,
    GAN_STEP_LIMIT,
    OVERHEAD_LIMITS_US,
    SGD_STEP_LIMIT,
    SUM_GROUP,
    SUM_LIMITS,
    layer_limit,
    ratio_of_sums,
)

MIB = 2 ** 20


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} (<= {limit:g} {'pass' if value <= limit else 'FAIL'})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return lines + [""]


def _machine(results: dict) -> list[str]:
    m, peak = results["machine"], results["gemm_peak"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b['architecture'] or b['prefix']}, "
                     f"{b['num_threads']} threads)" for b in m["blas"] if b["user_api"] == "blas") or "unknown"
    if m.get("blas_thread_timeout") is not None:
        blas += f", idle threads spin 2^{m['blas_thread_timeout']} cycles (OPENBLAS_THREAD_TIMEOUT)"
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}",
             (f"- Threads: {m['threads']} requested; numpy's BLAS: {blas}; PyTorch: {m['torch_threads']} "
             f"(torch.get_num_threads()); ONNX Runtime: intra_op_num_threads={m['threads']}"),
             f"- Versions: {versions}",
             (f"- float32 GEMM peak (np.matmul {peak['n']}x{peak['n']}): {peak['gflops']:.1f} GFLOP/s "
             f"(start of run {peak['gflops_start']:.1f}, end {peak['gflops_end']:.1f})"),
             "- Load average (1, 5, 15 min) at start / end: "
             + " / ".join(", ".join(f"{v:.2f}" for v in results["load_average"][k]) for k in ("start", "end")),
             f"- Mode: {results['mode']} ({results['settings']}), measured {results['date']}",
             f"- Reproduce: `{REPRODUCE}` (or `make bench`); `--quick` for fewer repeats, `--only NAME` for a subset"]
    lines += [f"- **WARNING: {w}**" for w in m["env_warnings"]]
    return lines + [""]


def _speed(results: dict) -> list[str]:
    if not results["workloads"]:
        return []
    peak = results["gemm_peak"]["gflops"]
    has_ort = any("onnxruntime" in r["times"] for r in results["workloads"])
    header = ["workload", "geometry", "mg fwd ms", "torch fwd ms", "fwd ratio"]
    header += ["ORT fwd ms", "vs ORT"] if has_ort else []
    header += ["mg fwd+bwd ms", "torch fwd+bwd ms", "fwd+bwd ratio", "GFLOP/s fwd / fwd+bwd", "% GEMM peak"]
    rows = []
    for r in results["workloads"]:
        t, ratios = r["times"], r["ratios"]
        row = [r["name"], r["geometry"], _ms(t["minigraph"]["forward_s"]), _ms(t.get("torch", {}).get("forward_s")),
               _verdict(ratios.get("forward_vs_torch"), layer_limit(r, "forward"))]
        if has_ort:
            vs_ort = ratios.get("forward_vs_onnxruntime")
            row += [_ms(t.get("onnxruntime", {}).get("forward_s")), "-" if vs_ort is None else f"{vs_ort:.2f}"]
        g = r["gflops"]
        row += [_ms(t["minigraph"]["fwd_bwd_s"]), _ms(t.get("torch", {}).get("fwd_bwd_s")),
                _verdict(ratios.get("fwd_bwd_vs_torch"), layer_limit(r, "fwd_bwd")),
                f"{g['forward']:.1f} / {g['fwd_bwd']:.1f}",
                f"{100 * g['forward'] / peak:.0f}% / {100 * g['fwd_bwd'] / peak:.0f}%"]
        rows.append(row)
    summed = [r for r in results["workloads"] if r["group"] == SUM_GROUP]
    if summed:
        total = {k: sum(r["times"]["minigraph"][f"{k}_s"] for r in summed) for k in SUM_LIMITS}
        peer = {k: sum(r["times"].get("torch", {}).get(f"{k}_s", 0.0) for r in summed) for k in SUM_LIMITS}
        row = [f"**{SUM_GROUP} sum**", f"{len(summed)} layers", _ms(total["forward"]), _ms(peer["forward"] or None),
               _verdict(ratio_of_sums(summed, "forward"), SUM_LIMITS["forward"])]
        row += ["", ""] if has_ort else []
        row += [_ms(total["fwd_bwd"]), _ms(peer["fwd_bwd"] or None),
                _verdict(ratio_of_sums(summed, "fwd_bwd"), SUM_LIMITS["fwd_bwd"]), "", ""]
        rows.append(row)
    return ["## Transposed convolution: minigraph vs PyTorch (ratio = minigraph time / peer time, min of N)", ""] + \
        _table(header, rows)


def _memory(results: dict) -> list[str]:
    rows = []
    for r in results["workloads"]:
        if not r["memory"]:
            continue
        mem = r["memory"]
        rows.append([r["name"], f"{mem[0]['output_bytes'] / MIB:.2f}"]
                    + [f"{m['forward_peak_bytes'] / MIB:.2f} / {m['budget_bytes'] / MIB:.2f}"
                       f" {'pass' if m['forward_peak_bytes'] <= m['budget_bytes'] else 'FAIL'}" for m in mem]
                    + [" / ".join(f"{m['fwd_bwd_peak_bytes'] / MIB:.2f}" for m in mem),
                       f"{max(m['max_rel_diff'] for m in mem):.1e}"])
    if not rows:
        return []
    chunks = [m["max_temp_mem_size_in_samples"] for m in results["workloads"][0]["memory"]]
    header = ["workload", "output MiB"] + [f"fwd peak / budget MiB, max_temp={k}" for k in chunks]
    header += [f"fwd+bwd peak MiB ({'/'.join(map(str, chunks))})", "max rel diff across chunks"]
    return ["## Peak temporary memory (tracemalloc; budget = 2 x (output + GEMM buffer of one chunk))", ""] + \
        _table(header, rows)


def _overhead(results: dict) -> list[str]:
    def cell(o, kind):
        value = o[f"{kind}_us_per_node"]
        return _verdict(value, OVERHEAD_LIMITS_US[kind]) if o["target"] else f"{value:.2f} (reference)"

    rows = [[o["name"], o["function_nodes"], f"{o['graph_forward_s'] * 1e6:.1f}", f"{o['raw_forward_s'] * 1e6:.1f}",
             cell(o, "forward"), f"{o['graph_fwd_bwd_s'] * 1e6:.1f}", f"{o['raw_fwd_bwd_s'] * 1e6:.1f}",
             cell(o, "fwd_bwd")] for o in results.get("overhead", [])]
    if not rows:
        return []
    header = ["graph", "nodes", "graph fwd us", "numpy fwd us", "fwd overhead us/node",
              "graph fwd+bwd us", "numpy fwd+bwd us", "fwd+bwd overhead us/node"]
    return ["## Framework overhead (graph time minus plain numpy, per function node)", ""] + _table(header, rows)


def _sgd(results: dict) -> list[str]:
    s = results.get("sgd_step")
    if s is None:
        return []
    if "skipped" in s:
        return ["## Full SGD step", "", f"Not measured: {s['skipped']}", ""]
    rows = [[s["model"], s["batch"], _ms(s["minigraph_s"]), _ms(s.get("torch_s")),
             _verdict(s.get("ratio_vs_torch"), SGD_STEP_LIMIT)]]
    return ["## Full SGD step (forward, backward, momentum-SGD update)", ""] + \
        _table(["model", "batch", "minigraph ms", "torch ms", "ratio"], rows)


def _data(results: dict) -> list[str]:
    d = results.get("data")
    if d is None:
        return []
    if "skipped" in d:
        return ["## Data loading", "", f"Not measured: {d['skipped']}", ""]
    rows = [[f"{d['images']} x {d['size']}", d["batch"], f"{d['images_per_s_prefetch0']:.0f}",
             f"{d['images_per_s_prefetch2']:.0f}", _ms(d["gan_step_memory_s"]), _ms(d["gan_step_folder_s"]),
             _verdict(d["gan_step_ratio"], DATA_STEP_LIMIT)]]
    header = ["images", "batch", "ImageFolder images/s, prefetch 0", "prefetch 2", "GAN step ms, in memory",
              "from folder (prefetch 2)", "folder / memory"]
    return ["## Data loading (ImageFolder, MinibatchSource; the DCGAN of examples/gan_images.py at 32x32x3)", ""] + \
        _table(header, rows)


def _gan(results: dict) -> list[str]:
    """The GAN training steps (GANTrainer against PyTorch's DCGAN loop) and the digits runs' quality."""
    lines = []
    g = results.get("gan_step")
    if g is not None:
        rows = [[g["model"], g["batch"], _ms(g["minigraph_s"]), _ms(g.get("torch_s")),
                 _verdict(g.get("ratio_vs_torch"), GAN_STEP_LIMIT)]]
        lines += ["## GAN training step (one generator forward, D then G update; PyTorch's DCGAN loop)", ""] + \
            _table(["model", "batch", "minigraph ms", "torch ms", "ratio"], rows)
    d = results.get("digits_gan")
    if d is not None:
        rows = [[d["model"], f"{d['batch']}, {d['threads']} thread", _ms(d["minigraph_s"]), _ms(d.get("torch_s")),
                 _verdict(d.get("ratio_vs_torch"), DIGITS_GAN_LIMIT)]]
        lines += ["## Digits demo GAN step, one thread", ""] + \
            _table(["model", "batch", "minigraph ms", "torch ms", "ratio"], rows)
        runs = [[name, d["steps"], f"{r['seconds']:.1f}", f"{r['confidence']:.3f}", f"{r['classes']}/10",
                 f"{r['fid']:.3f}"] for name in ("minigraph", "torch") if (r := d.get(f"{name}_run"))]
        lines += [f"Same model, weights and minibatches; judged by the demo's judge (FID of 1,000 real digits: "
                  f"{d['real_digit_fid']:.3f}):", ""] + \
            _table(["framework", "steps", "seconds", "confidence", "classes covered", "FID"], runs)
    return lines


def limit_text(target: dict) -> str:
    """``limit 1.2`` for a ceiling, ``at least 0.75`` for a floor."""
    return f"{'at least' if target.get('at_least') else 'limit'} {target['limit']:g}"


def _summary(results: dict) -> list[str]:
    targets = results["targets"]
    failed = [t for t in targets if t["passed"] is False]
    missing = [t for t in targets if t["passed"] is None]
    passed = len(targets) - len(failed) - len(missing)
    lines = ["## Targets (issues 8, 13 and 15)", "", (f"{passed} of {len(targets)} targets pass, {len(failed)} fail, "
             f"{len(missing)} not measured."), ""]
    lines += [f"- FAIL: {t['what']}: {t['measured']:.2f} {t['unit']} ({limit_text(t)})" for t in failed]
    lines += [f"- not measured: {t['what']}" for t in missing]
    return lines + [""] if failed or missing else lines


def glance(results: dict) -> list[str]:
    """The ratios only, one line per workload (what the README shows)."""
    rows = []
    for r in results["workloads"]:
        ratios = r["ratios"]
        rows.append([r["name"], r["geometry"],
                     _verdict(ratios.get("forward_vs_torch"), layer_limit(r, "forward")),
                     _verdict(ratios.get("fwd_bwd_vs_torch"), layer_limit(r, "fwd_bwd")),
                     "-" if "forward_vs_onnxruntime" not in ratios else f"{ratios['forward_vs_onnxruntime']:.2f}"])
    summed = [r for r in results["workloads"] if r["group"] == SUM_GROUP]
    if summed:
        rows.append([f"{SUM_GROUP} layers summed", "",
                     _verdict(ratio_of_sums(summed, "forward"), SUM_LIMITS["forward"]),
                     _verdict(ratio_of_sums(summed, "fwd_bwd"), SUM_LIMITS["fwd_bwd"]), ""])
    step = results.get("sgd_step", {})
    if "minigraph_s" in step:
        rows.append(["SGD step, MNIST generator", f"batch {step['batch']}, {_ms(step['minigraph_s'])} ms",
                     "", _verdict(step.get("ratio_vs_torch"), SGD_STEP_LIMIT), ""])
    for key, what, limit in (("gan_step", "DCGAN D+G step", GAN_STEP_LIMIT),
                             ("digits_gan", "digits demo GAN step, 1 thread", DIGITS_GAN_LIMIT)):
        g = results.get(key, {})
        if "minigraph_s" in g:
            rows.append([what, f"batch {g['batch']}, {_ms(g['minigraph_s'])} ms", "",
                         _verdict(g.get("ratio_vs_torch"), limit), ""])
    if not rows:
        return []
    header = ["workload", "geometry", "forward / PyTorch", "fwd+bwd / PyTorch", "forward / ONNX Runtime"]
    return ["## At a glance (minigraph time / peer time; lower is better)", ""] + _table(header, rows)


def markdown(results: dict) -> str:
    lines = ["# minigraph benchmark results", ""] + _machine(results) + glance(results) + _speed(results) \
        + _memory(results) + _overhead(results) + _sgd(results) + _data(results) + _gan(results) + _summary(results)
    return "\n".join(lines).rstrip() + "\n"


def write(results: dict, out_dir: str) -> tuple[str, str]:
    """Write ``results.json`` and ``RESULTS.md`` into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, md_path = os.path.join(out_dir, "results.json"), os.path.join(out_dir, "RESULTS.md")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    with open(md_path, "w") as f:
        f.write(markdown(results))
    return json_path, md_path
