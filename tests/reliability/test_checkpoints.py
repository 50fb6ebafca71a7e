"""Mutated checkpoints: restoring is all or nothing. A refused file leaves every parameter, running
statistic, learner state, counter, history entry and random state as it was; a file that restores
must let training go on (finite loss), and a content-preserving mutation must restore exactly what
the original did."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from archive_mutations import MUTATIONS, entries, manifest_of, npy, pack, with_manifest

import minigraph as mg
from minigraph.errors import MinigraphError

from tally import record, scaled

L = mg.layers
CASES_PER_KIND = {"bytes": 40, "zip": 60, "npy": 40, "manifest": 100}  # 240 checkpoints


def _trainer():
    x = mg.input_variable((1, 4, 4), name="x")
    t = mg.input_variable((2,), name="t")
    init = mg.initializers.glorot_uniform
    features = L.Sequential([L.Convolution((3, 3), 2, pad=True, init=init(seed=1)), L.BatchNormalization()])(x)
    y = L.Dense(2, init=init(seed=2))(features)
    loss = mg.squared_error(y, t)
    conv_params = [p for p in y.parameters if p.shape[-2:] == (3, 3) or p.shape == (2,) and p in features.parameters]
    rest = [p for p in y.parameters if p not in conv_params]
    learners = [mg.learners.adam(conv_params, 0.01), mg.learners.momentum_sgd(rest, 0.01, 0.9)]
    trainer = mg.Trainer(y, loss, learners)
    rng = np.random.default_rng(0)
    data = {x: rng.standard_normal((8, 1, 4, 4)).astype(np.float32), t: rng.standard_normal((8, 2)).astype(np.float32)}
    return trainer, data


def _snapshot(trainer):
    """Everything restoring may change, as comparable plain values."""
    arrays = [p.value.copy() for p in trainer._all_params] + [c.value.copy() for c in trainer._constants]
    learners = []
    for lr in trainer.parameter_learners:
        state = lr.state_dict()
        slots = state.pop("slots")
        learners.append((json.dumps(state, sort_keys=True), [{k: v.copy() for k, v in s.items()} for s in slots]))
    plain = (trainer.step_count, trainer.total_number_of_samples_seen, trainer.epochs_done, trainer.seed,
             json.dumps(trainer.history), json.dumps(mg.rng.get_state(), default=str))
    return arrays, learners, plain


def _same(a, b) -> bool:
    (arrays_a, learners_a, plain_a), (arrays_b, learners_b, plain_b) = a, b
    return (plain_a == plain_b and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(arrays_a, arrays_b))
            and len(learners_a) == len(learners_b)
            and all(sa == sb and len(ka) == len(kb) and all(sorted(x) == sorted(y) and all(
                np.array_equal(x[k], y[k]) for k in x) for x, y in zip(ka, kb))
                for (sa, ka), (sb, kb) in zip(learners_a, learners_b)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    trainer, data = _trainer()
    trainer.fit(data, epochs=2, minibatch_size=4)
    trainer.save_checkpoint(folder / "ck")
    original = (folder / "ck").read_bytes()
    trainer.fit(data, epochs=1, minibatch_size=4)  # the trainer moves on: a restore must bring it back
    trainer.restore_from_checkpoint(folder / "ck")
    restored = _snapshot(trainer)
    return trainer, data, original, restored, folder


def _judge(trainer, data, path, restored, preserves, original_path) -> tuple[str, str]:
    before = _snapshot(trainer)
    try:
        trainer.restore_from_checkpoint(path)
    except MinigraphError as exc:
        if not _same(before, _snapshot(trainer)):
            return "garbage", f"refused ({exc}) but the trainer changed"
        return "clean", str(exc)
    except Exception as exc:  # noqa: BLE001 - what escapes is the measurement
        return "escape", f"{type(exc).__name__}: {exc}"
    try:
        if preserves and not _same(_snapshot(trainer), restored):
            return "garbage", "a content-preserving mutation restored another state"
        loss = trainer.train_minibatch({k: v[:4] for k, v in data.items()})
        if not np.isfinite(loss):
            return "garbage", f"restored, but the next step's loss is {loss}"
    except Exception as exc:  # noqa: BLE001
        return "garbage", f"restored, but training fails: {type(exc).__name__}: {exc}"
    finally:
        trainer.restore_from_checkpoint(original_path)  # the next case starts from the original again
    return "ok", ""


@pytest.mark.parametrize("kind", sorted(CASES_PER_KIND))
def test_mutated_checkpoints_restore_all_or_nothing(kind, setup):
    trainer, data, original, restored, folder = setup
    rng = np.random.default_rng(10 + ["bytes", "zip", "npy", "manifest"].index(kind))
    counts = {"clean": 0, "escape": 0, "garbage": 0, "ok": 0}
    failures = []
    path = folder / "mutated.ckpt"
    for case in range(scaled(CASES_PER_KIND[kind])):
        mutate = MUTATIONS[kind][case % len(MUTATIONS[kind])]
        new, preserves = mutate(original, rng)
        path.write_bytes(new)
        outcome, detail = _judge(trainer, data, path, restored, preserves, folder / "ck")
        counts[outcome] += 1
        if outcome == "clean" and "mutated.ckpt" not in detail:
            failures.append((mutate.__name__, "message does not name the file: " + detail[:200]))
        elif outcome in ("escape", "garbage"):
            failures.append((mutate.__name__, detail[:400]))
    record(f"checkpoints: {kind} mutations", sum(counts.values()), counts["clean"], counts["escape"],
           counts["garbage"])
    assert not failures, f"{len(failures)} bad outcomes, e.g. {failures[:3]}"


def _learner_slot(items, dtype):
    """Replace the first learner slot by an array of the same shape and another dtype."""
    out = []
    done = False
    for name, payload in items:
        if not done and name.startswith("learner0_p0_"):
            import io
            arr = np.load(io.BytesIO(payload))
            payload = npy(np.zeros(arr.shape, dtype)) if dtype != "structured" else npy(
                np.zeros(arr.shape, [("a", "<f4")]))
            done = True
        out.append((name, payload))
    return out


@pytest.mark.parametrize("spoil, message", [
    (lambda d: pack(_learner_slot(entries(d), np.complex64)), "dtype complex64"),
    (lambda d: pack(_learner_slot(entries(d), "<U3")), "dtype <U3"),
    (lambda d: pack(_learner_slot(entries(d), "structured")), "dtype"),
    (lambda d: pack(_learner_slot(entries(d), np.float64)), "is float64"),
    (lambda d: pack([e for e in entries(d) if not e[0].startswith("learner1_")]), "learner1_p0_velocity"),
    (lambda d: with_manifest(d, json.dumps(_with(manifest_of(d), lambda m: m["learners"][0]["extra"].update(
        b1_power=float("nan")))).encode()), "b1_power"),
    (lambda d: with_manifest(d, json.dumps(_with(manifest_of(d), lambda m: m["learners"][0]["extra"].update(
        b1_power=1.0)))), "b1_power"),
    (lambda d: with_manifest(d, json.dumps(_with(manifest_of(d), lambda m: m["rng"]["ops"]["state"].update(
        state=10**40)))), "does not fit this trainer"),
    (lambda d: with_manifest(d, json.dumps(_with(manifest_of(d), lambda m: m["rng"]["ops"].update(
        bit_generator="MT19937")))), "does not fit this trainer"),
])
def test_the_reported_checkpoint_findings_change_nothing(setup, spoil, message):
    trainer, data, original, restored, folder = setup
    path = folder / "bad.ckpt"
    path.write_bytes(spoil(original))
    trainer.fit(data, epochs=1, minibatch_size=4)
    before = _snapshot(trainer)
    with pytest.raises(mg.ModelFileError, match=message):
        trainer.restore_from_checkpoint(path)
    assert _same(before, _snapshot(trainer))
    trainer.restore_from_checkpoint(folder / "ck")
    record("checkpoints: reported findings", 1, 1)


@pytest.mark.parametrize("const, spoil, message", [
    (1, lambda v: v - 1.5, r"ck-bn: .*running variance 'running_var' must be >= 0"),
    (1, lambda v: np.where(np.arange(v.size).reshape(v.shape) == 0, -1e-30, v).astype(v.dtype), r"must be >= 0"),
])
def test_a_negative_running_variance_changes_nothing(setup, const, spoil, message):
    """Batch normalization's check on its running statistics runs before the restore changes anything."""
    trainer, data, original, restored, folder = setup
    name = f"const{const}.npy"
    value = spoil(np.load(io.BytesIO(dict(entries(original))[name])))
    path = folder / "ck-bn"
    path.write_bytes(pack([(n, npy(value) if n == name else p) for n, p in entries(original)]))
    trainer.fit(data, epochs=1, minibatch_size=4)
    before = _snapshot(trainer)
    with pytest.raises(mg.ModelFileError, match=message):
        trainer.restore_from_checkpoint(path)
    assert _same(before, _snapshot(trainer))
    record("checkpoints: batch-norm statistics", 1, 1)


def _with(manifest, edit):
    edit(manifest)
    return manifest
