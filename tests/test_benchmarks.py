"""Smoke test of the benchmark suite's machinery on tiny workloads (seconds; no timing assertions).

Checks the shape of results.json and RESULTS.md, that minigraph's results do not depend on
``max_temp_mem_size_in_samples``, and that peers (when installed) compute the same thing.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import ours, report, suite
from benchmarks.__main__ import main
from benchmarks.convs import MEMORY_CHUNKS
from benchmarks.docs import performance_section
from benchmarks.machine import SLOW_BLAS_VARIABLES, blas_environment_warnings, limit_threads
from benchmarks.peers import installed
from benchmarks.timing import SMOKE
from benchmarks.workloads import TINY_WORKLOADS, WORKLOADS, Workload, select

TIMES = ("forward_s", "fwd_bwd_s")


@pytest.fixture(scope="module")
def results():
    return suite.run(TINY_WORKLOADS, SMOKE, threads=2, sgd_batch=2, data_batch=4, gan_size=16, gan_batch=2,
                     digits_steps=3, mode="smoke", log=lambda *a: None)


def test_results_json_structure(results, tmp_path):
    json_path, md_path = report.write(results, str(tmp_path))
    loaded = json.loads(Path(json_path).read_text())
    assert set(loaded) >= {"mode", "settings", "date", "machine", "gemm_peak", "workloads", "overhead", "sgd_step",
                           "targets", "elapsed_s"}
    assert loaded["gemm_peak"]["gflops"] >= loaded["gemm_peak"]["gflops_start"] > 0
    assert len(loaded["load_average"]["start"]) == len(loaded["load_average"]["end"]) == 3
    assert {"cpu", "cores", "threads", "blas", "versions", "env_warnings"} <= set(loaded["machine"])
    assert any(b["user_api"] == "blas" for b in loaded["machine"]["blas"])
    assert [w["name"] for w in loaded["workloads"]] == [w.name for w in TINY_WORKLOADS]
    peers = [p for p in ("torch", "onnxruntime") if installed(p)]
    for row in loaded["workloads"]:
        assert all(row["times"]["minigraph"][k] > 0 for k in TIMES)
        assert set(row["times"]) == {"minigraph", *peers}
        if "torch" in peers:
            assert set(row["ratios"]) >= {"forward_vs_torch", "fwd_bwd_vs_torch"}
            assert max(row["max_rel_err"].values()) < 1e-4
        assert [m["max_temp_mem_size_in_samples"] for m in row["memory"]] == list(MEMORY_CHUNKS)
        for m in row["memory"]:
            assert m["forward_peak_bytes"] > 0 and m["fwd_bwd_peak_bytes"] > 0 and m["budget_bytes"] > 0
            assert m["max_rel_diff"] < 1e-5
    assert [(o["function_nodes"], o["target"]) for o in loaded["overhead"]] == [(1, True), (20, True), (1, False)]
    assert loaded["sgd_step"]["batch"] == 2 and loaded["sgd_step"]["minigraph_s"] > 0
    if "torch" in peers:
        assert loaded["sgd_step"]["max_rel_err_after_step"] < 1e-3 and loaded["sgd_step"]["ratio_vs_torch"] > 0
    gan, digits = loaded["gan_step"], loaded["digits_gan"]
    assert gan["batch"] == 2 and gan["size"] == 16 and gan["minigraph_s"] > 0
    assert digits["threads"] == 1 and digits["steps"] == 3 and digits["minigraph_s"] > 0
    assert digits["minigraph_run"]["classes"] >= 1 and digits["minigraph_run"]["fid"] > 0
    if "torch" in peers:
        assert gan["max_rel_loss_err"] < 1e-3 and gan["ratio_vs_torch"] > 0
        assert digits["max_rel_loss_err"] < 1e-3 and digits["ratio_vs_torch"] > 0
        assert abs(digits["torch_run"]["fid"] - digits["minigraph_run"]["fid"]) < 1e-2  # the same model and data
    data = loaded["data"]
    assert data["batch"] == 4 and data["images"] == 32 and data["gan_step_ratio"] > 0
    assert data["images_per_s_prefetch0"] > 0 and data["images_per_s_prefetch2"] > 0
    for t in loaded["targets"]:
        assert set(t) == {"what", "limit", "measured", "unit", "passed", "at_least"}
        assert (t["passed"] is None) == (t["measured"] is None)
    text = Path(md_path).read_text()
    for heading in ("Transposed convolution", "Peak temporary memory", "Framework overhead", "SGD step", "Data loading",
                    "Targets"):
        assert heading in text
    assert all(w.name in text for w in TINY_WORKLOADS)
    section = performance_section(loaded)
    assert section.startswith("## Performance") and "make bench" in section
    assert all(f"| {w.name} |" in section for w in TINY_WORKLOADS) and "targets of issues 8, 13 and 15" in section


@pytest.mark.parametrize("w", TINY_WORKLOADS, ids=lambda w: w.name)
def test_results_do_not_depend_on_chunk_size(w):
    x, W = w.arrays()
    outs = []
    for k in MEMORY_CHUNKS:
        runner = ours.build(w, x, W, k).runner()
        outs.append((runner.forward(), *runner.forward_backward()))
    assert outs[0][0].shape == w.y_shape
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_results_do_not_depend_on_thread_count():
    w = select(WORKLOADS, ["mnist2_k4"])[0]  # large enough for OpenBLAS to split its GEMMs over threads
    x, W = w.arrays()
    runner = ours.build(w, x, W).runner()
    outs = []
    for threads in (1, 2):
        with limit_threads(threads):
            outs.append((runner.forward(), *runner.forward_backward()))
    for a, b in zip(*outs):
        # BLAS may split a long reduction differently over threads: float32 rounding on the array's scale
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(a).max())))


def test_peer_geometry_matches_minigraph_shapes():
    """Every real workload builds in minigraph with the output shape its pads promise."""
    for w in WORKLOADS:
        x = np.zeros(w.x_shape[1:], np.float32)[None]
        assert tuple(ours.build(w, x, np.zeros(w.w_shape, np.float32)).y.shape) == w.y_shape[1:]


def test_select_by_name_group_and_pattern():
    assert [w.name for w in select(WORKLOADS, ["conv1d"])] == ["conv1d"]
    assert len(select(WORKLOADS, ["dcgan"])) == 5
    assert [w.name for w in select(WORKLOADS, ["mnist*_k5"])] == ["mnist1_k5", "mnist2_k5"]
    assert select(WORKLOADS, None) == WORKLOADS


def test_auto_padding_resolves_as_semantics_says():
    # docs/semantics.md worked cases: (n, K, s, output_shape) -> (lo, hi), read from the node
    for n, k, s, out, pads in [(4, 3, 2, None, (1, 1)), (4, 3, 2, 8, (1, 0)), (4, 4, 2, None, (1, 2)),
                               (4, 4, 2, 8, (1, 1)), (14, 5, 2, 28, (2, 1))]:
        w = Workload("w", "2d", 1, 1, 1, (n,), k, s, pad=None, output_shape=None if out is None else (out,))
        assert w.pads() == [pads]


def test_blas_environment_warning_names_the_variable():
    assert blas_environment_warnings({}) == []
    warnings = blas_environment_warnings({name: "Haswell" for name in SLOW_BLAS_VARIABLES})
    assert len(warnings) == 2
    assert all(name in w and "env -u" in w for name, w in zip(SLOW_BLAS_VARIABLES, warnings))


def test_command_line_writes_a_selection(tmp_path, capsys):
    assert main(["--quick", "--only", "overhead", "--out", str(tmp_path)]) == 0
    loaded = json.loads((tmp_path / "results.json").read_text())
    assert loaded["mode"] == "quick" and loaded["workloads"] == [] and len(loaded["overhead"]) == 3
    assert "Framework overhead" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--only", "no_such_workload"])


def test_a_full_run_replaces_only_the_readme_performance_section():
    from benchmarks.docs import replace_section
    readme = "# t\n\nintro\n\n## Performance\n\nold table\n\n## Next\n\nkept\n"
    assert replace_section(readme, "## Performance\n\nnew table\n") == (
        "# t\n\nintro\n\n## Performance\n\nnew table\n\n## Next\n\nkept\n")
    assert replace_section("# t\n", "## Performance\n\nx\n") == "# t\n\n## Performance\n\nx\n"


def test_issue_13_targets_check_the_strict_ratio_and_the_gemm_share():
    from benchmarks.targets import check, layer_limit
    row = {"name": "conv3d", "group": "3d", "ratios": {"forward_vs_torch": 2.0, "fwd_bwd_vs_torch": 1.4},
           "gflops": {"forward": 10.0, "fwd_bwd": 10.0}, "memory": []}
    dense = {"name": "dcgan3", "group": "dcgan", "ratios": {"forward_vs_torch": 1.0, "fwd_bwd_vs_torch": 1.0},
             "gflops": {"forward": 80.0, "fwd_bwd": 70.0}, "memory": [],
             "times": {peer: {"forward_s": 1.0, "fwd_bwd_s": 1.0} for peer in ("minigraph", "torch")}}
    verdicts = {t["what"]: t["passed"] for t in check({"workloads": [row, dense], "gemm_peak": {"gflops": 100.0}})}
    assert verdicts["conv3d forward"] and not verdicts["conv3d forward (issue 13)"]
    assert verdicts["conv3d fwd+bwd (issue 13)"]
    assert verdicts["dcgan3 forward share of the GEMM peak"] and not verdicts["dcgan3 fwd+bwd share of the GEMM peak"]
    assert layer_limit(row, "forward") == 1.5 and layer_limit(dense, "forward") == 2.5
