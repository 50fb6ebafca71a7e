"""Mutated model files: every one is refused with a ModelFileError naming the file, or loads into a
model that works (see ``file_oracle``). Counts go to the reliability tally."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from archive_mutations import MUTATIONS, entries, manifest_of, npy, pack, with_manifest
from file_oracle import MODELS, judge, results

import minigraph as mg

from tally import record, scaled

CASES_PER_KIND = {"bytes": 80, "zip": 100, "npy": 60, "manifest": 160}  # x 3 models: 1200 files


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Each model's file bytes and reference results."""
    folder = tmp_path_factory.mktemp("originals")
    out = {}
    for name, build in MODELS.items():
        _, model = build()
        model.save(folder / name)
        out[name] = ((folder / name).read_bytes(), results(mg.load_model(folder / name)))
    return out


@pytest.mark.parametrize("kind", sorted(CASES_PER_KIND))
def test_mutated_model_files_load_correctly_or_are_refused(kind, originals, tmp_path):
    rng = np.random.default_rng(["bytes", "zip", "npy", "manifest"].index(kind))
    mutations = MUTATIONS[kind]
    counts = {"clean": 0, "escape": 0, "garbage": 0, "ok": 0}
    failures = []
    path = str(tmp_path / "mutated.mgm")
    for case in range(scaled(CASES_PER_KIND[kind])):
        mutate = mutations[case % len(mutations)]
        for name, (data, reference) in originals.items():
            new, preserves = mutate(data, rng)
            with open(path, "wb") as fh:
                fh.write(new)
            outcome, detail = judge(mg.load_model, path, reference, preserves, str(tmp_path))
            counts[outcome] += 1
            if outcome == "clean" and "mutated.mgm" not in detail:
                failures.append((mutate.__name__, name, "message does not name the file: " + detail[:200]))
            elif outcome in ("escape", "garbage"):
                failures.append((mutate.__name__, name, detail[:600]))
    record(f"model files: {kind} mutations", sum(counts.values()), counts["clean"], counts["escape"],
           counts["garbage"])
    assert not failures, f"{len(failures)} bad outcomes, e.g. {failures[:3]}"
    assert counts["clean"] > 0


# the findings of the issue, one by one -------------------------------------------------------------
def _edit(data: bytes, edit) -> bytes:
    manifest = manifest_of(data)
    edit(manifest)
    return with_manifest(data, json.dumps(manifest))


def _node(manifest, op):
    return next(r for r in manifest["nodes"] if r.get("op") == op)


@pytest.mark.parametrize("edit, message", [
    (lambda m: _node(m, "Pooling")["attributes"].update(pooling_type="median"), "pooling_type must be"),
    (lambda m: _node(m, "BatchNormalization")["attributes"].update(epsilon=None), "epsilon must be a number"),
    (lambda m: _node(m, "BatchNormalization")["attributes"].update(epsilon=float("nan")), "epsilon must be"),
    (lambda m: _node(m, "Convolution")["attributes"].update(colour="red"), "unexpected keyword argument 'colour'"),
    (lambda m: _node(m, "Convolution")["attributes"].pop("groups"), "not those Convolution stores"),
    (lambda m: _node(m, "ReLU")["inputs"].append(0), "ReLU takes 1 input, the file gives 2"),
    (lambda m: _node(m, "Plus")["inputs"].pop(), "Plus takes 2 inputs, the file gives 1"),
    (lambda m: _node(m, "Convolution")["attributes"].update(strides=10**9), "rebuilt with shape"),
    (lambda m: m["nodes"][0].update(shape=["__import__('os').getcwd()"]), "does not rebuild"),
    (lambda m: m.update(root=-1), "root index -1"),
    (lambda m: m.update(extra=1), "a model manifest has the fields"),
])
def test_the_reported_garbage_files_are_refused(originals, tmp_path, edit, message):
    path = tmp_path / "bad.mgm"
    path.write_bytes(_edit(originals["conv"][0], edit))
    with pytest.raises(mg.ModelFileError, match=message) as info:
        mg.load_model(path)
    assert "bad.mgm" in str(info.value)
    record("model files: reported findings", 1, 1)


def _zip_with(data: bytes, name: str, payload: bytes) -> bytes:
    return pack([(n, payload if n == name else p) for n, p in entries(data)])


@pytest.mark.parametrize("make, message", [
    (lambda d: pack(entries(d) + [(entries(d)[-1][0], npy(np.zeros(3)))]), "more than once"),
    (lambda d: pack(entries(d) + [("manifest.json", b"{}")]), "more than once"),
    (lambda d: pack(entries(d) + [("../outside.npy", npy(np.zeros(1)))]), "unexpected entry"),
    (lambda d: _zip_with(d, "p1.npy", d), "not a valid .npy entry"),
    (lambda d: with_manifest(d, "[" * 100_000 + "]" * 100_000), "nest 100000 deep"),
])
def test_structural_findings_are_refused(originals, tmp_path, make, message):
    path = tmp_path / "bad.mgm"
    path.write_bytes(make(originals["conv"][0]))
    with pytest.raises(mg.ModelFileError, match=message):
        mg.load_model(path)
    record("model files: reported findings", 1, 1)


def test_a_huge_array_claim_is_refused_before_allocating(originals, tmp_path):
    from archive_mutations import raw_npy
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 10), }"
    path = tmp_path / "bad.mgm"
    path.write_bytes(_zip_with(originals["conv"][0], "p1.npy", raw_npy(header, b"\0" * 64)))
    with pytest.raises(mg.ModelFileError, match=r"claims shape \(100000, 100000, 10\)"):
        mg.load_model(path)
    record("model files: reported findings", 1, 1)


def test_the_memory_limit_applies_to_files(originals, tmp_path):
    path = tmp_path / "m.mgm"
    path.write_bytes(originals["conv"][0])
    mg.set_memory_limit(64)
    try:
        with pytest.raises(mg.ResourceError, match="m.mgm"):
            mg.load_model(path)
    finally:
        mg.set_memory_limit(None)
    record("model files: reported findings", 1, 1)


def test_encrypted_and_unknown_compression_entries_are_refused(originals, tmp_path):
    from archive_mutations import encrypted_flag, unknown_compression
    rng = np.random.default_rng(0)
    for mutate, message in ((encrypted_flag, "encrypted"), (unknown_compression, "compression method")):
        data, _ = mutate(originals["conv"][0], rng)
        (tmp_path / "bad.mgm").write_bytes(data)
        with pytest.raises(mg.ModelFileError, match=message):
            mg.load_model(tmp_path / "bad.mgm")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:  # the mutation is what it says
            assert any(i.flag_bits & 1 or i.compress_type not in (0, 8) for i in zf.infolist())
    record("model files: reported findings", 2, 2)


def _replaced(data: bytes, name: str, value: np.ndarray) -> bytes:
    """The archive with entry ``name`` holding ``value`` instead (same dtype and shape)."""
    return pack([(n, npy(value) if n == name else payload) for n, payload in entries(data)])


@pytest.mark.parametrize("entry, spoil, message", [
    ("c4.npy", lambda v: v - 1.5, r"running variance 'running_var' must be >= 0"),
    ("c4.npy", lambda v: np.where(np.arange(v.size).reshape(v.shape) == 1, -1e-30, v).astype(v.dtype), r"must be >= 0"),
    ("c3.npy", lambda v: np.full_like(v, np.inf), r"'c3'.*NaN or infinite"),
])
def test_batch_norm_statistics_a_run_could_not_produce_are_refused(tmp_path, entry, spoil, message):
    """A negative running variance (or a non-finite running mean) would load and give NaN in eval mode:
    batch normalization's own check refuses it, naming the file and the constant."""
    model = mg.layers.BatchNormalization()(mg.input_variable((2, 3, 3), name="x"))
    path = tmp_path / "bn.mgm"
    mg.save_model(model, path)
    data = path.read_bytes()
    value = np.load(io.BytesIO(dict(entries(data))[entry]))
    bad = tmp_path / "bad.mgm"
    bad.write_bytes(_replaced(data, entry, spoil(value)))
    with pytest.raises(mg.ModelFileError, match=message) as caught:
        mg.load_model(bad)
    assert str(bad) in str(caught.value)
    assert mg.load_model(path).eval({"x": np.ones((1, 2, 3, 3), np.float32)}).shape == (1, 2, 3, 3)
    record("model files: batch-norm statistics", 1, 1)
