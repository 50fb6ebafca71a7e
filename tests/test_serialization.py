"""Model files and checkpoints: round trips, bit-for-bit resume, bad files, atomic writes."""
import json
import os
import zipfile

import numpy as np
import pytest

import minigraph as mg
from minigraph import learners as L
from minigraph import serialization
from minigraph.graph import name_scope


def _mlp(dtype=np.float32):
    mg.set_seed(0)
    x = mg.input_variable((2, "H"), dtype=dtype, name="x")
    with name_scope("block", "Dense"):
        W = mg.parameter((2, 4), name="W")
        h = mg.relu(mg.times(mg.transpose(x, (1, 0)), W), name="h")
    y = mg.reduce_mean(mg.dropout(h, 0.5) * mg.constant(np.arange(4.0), dtype=dtype), axis=1, name="y")
    return x, y


def test_round_trip_keeps_structure_values_and_outputs(tmp_path):
    x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    z = mg.load_model(path)
    assert z is not y and z.name == "y" and z.shape == y.shape and z.dtype == y.dtype
    assert [v.name for v in z.arguments] == ["x"] and str(z.arguments[0].shape[1]) == "H"
    assert [n.op_name for n in z.topological_order()] == [n.op_name for n in y.topological_order()]
    assert [n.attributes for n in z.topological_order() if hasattr(n, "op")] == \
           [n.attributes for n in y.topological_order() if hasattr(n, "op")]
    h = z.find_by_name("h")
    assert [(s.name, s.kind) for s in h.scope] == [("block", "Dense")]
    data = np.random.default_rng(0).standard_normal((3, 2, 5)).astype(np.float32)
    np.testing.assert_array_equal(z.eval({"x": data}), y.eval({x: data}))
    np.testing.assert_array_equal(z.eval({"x": data}, training=True, seed=4), y.eval({x: data}, training=True, seed=4))
    for a, b in zip(z.parameters, y.parameters):
        assert a.name == b.name and a.value.dtype == b.value.dtype
        np.testing.assert_array_equal(a.value, b.value)


def test_float64_and_tuple_attributes_survive(tmp_path):
    x = mg.input_variable((1, 6, 6), np.float64)
    w = mg.parameter((2, 1, 3, 3), init=mg.initializers.glorot_uniform(seed=1), dtype=np.float64)
    y = mg.convolution(w, x, strides=(2, 1), auto_padding=[True, False])  # tuples must come back as tuples
    mg.serialization.save_model(y, tmp_path / "m")
    z = mg.load_model(tmp_path / "m")
    assert z.dtype == np.float64 and z.op_attributes == y.op_attributes
    assert z.op_attributes["strides"] == (2, 1) and z.op_attributes["auto_padding"] == (True, False)


def test_an_attribute_its_op_does_not_store_is_rejected(tmp_path):
    _x, y = _mlp(np.float64)
    s = mg.slice(y, 0, 1, 3)
    s.op_attributes["note"] = (1, (2.5, "a"), [None, True])
    mg.serialization.save_model(s, tmp_path / "m")
    with pytest.raises(mg.ModelFileError, match="unexpected keyword argument 'note'"):
        mg.load_model(tmp_path / "m")


def test_save_rejects_unsavable_attributes_and_keeps_old_file(tmp_path):
    _x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    before = path.read_bytes()
    y.op_attributes["bad"] = object()
    with pytest.raises(TypeError, match="cannot be saved"):
        y.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.mgz"]


def test_failed_write_never_destroys_the_previous_file(tmp_path, monkeypatch):
    _x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(serialization.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        y.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.mgz"]


def _edit_manifest(path, edit, keep=lambda member: True):
    """Rewrite the model file at ``path`` with ``edit(manifest)`` applied and only the members ``keep`` accepts."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if keep(n)}
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, v in members.items():
            zf.writestr(n, v)


def _corrupt(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "foreign":
        path.write_bytes(b"GIF89a not a model at all")
    elif how == "foreign zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("hello.txt", "hi")
    elif how == "newer":
        _edit_manifest(path, lambda m: m.update(version=99))
    elif how == "checkpoint":
        _edit_manifest(path, lambda m: m.update(format="minigraph-checkpoint"))
    elif how == "missing array":
        _edit_manifest(path, lambda m: None, keep=lambda member: not member.startswith("p"))
    elif how == "flipped byte":
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("manifest.json")
        raw = bytearray(data)
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 2
        raw[offset] ^= 0xFF
        path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how, message", [
    ("truncated", "truncated"), ("empty", "truncated"), ("foreign", "not a minigraph model file"),
    ("foreign zip", "without manifest.json"), ("newer", "version 99 was written by a newer minigraph"),
    ("checkpoint", "not a 'minigraph-model' file"), ("missing array", "is missing"),
    ("flipped byte", "corrupted|truncated"),
])
def test_bad_files_give_clear_errors(tmp_path, how, message):
    _x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    _corrupt(path, how)
    with pytest.raises(mg.ModelFileError, match=message):
        mg.load_model(path)


def test_unknown_op_in_file(tmp_path):
    _x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    _edit_manifest(path, lambda m: next(r for r in m["nodes"] if r.get("op") == "ReLU").update(op="Frobnicate"))
    with pytest.raises(mg.ModelFileError, match="'Frobnicate'"):
        mg.load_model(path)


def _set(key, value, node=None):
    """An edit of the manifest entry ``key`` (of node record ``node`` when given)."""
    return lambda m: (m if node is None else m["nodes"][node]).__setitem__(key, value)


# _mlp's nodes: 0 x, 1 W, 2 Transpose, 3 Times, 4 ReLU 'h', 5 Dropout, 6 Constant, 7 ElementTimes, 8 ReduceMean 'y'
@pytest.mark.parametrize("edit, message", [
    (_set("nodes", 5), "manifest entry 'nodes' must be a list, got 5"),
    (_set("scopes", {"a": 1}), r"scope table is malformed \(it must be a list"),
    (_set("root", True), "root index True does not name a node"),
    (_set("dtype", "int8", node=0), "node 0 does not rebuild"),
    (_set("inputs", [1, 2], node=3), r"node 3 does not rebuild \(ShapeError: Times"),
    (_set("attributes", {"perm": [0, 0]}, node=2), "node 2 does not rebuild"),
    (_set("attributes", {"axis": [7], "keepdims": True}, node=8), "node 8 does not rebuild"),
    (_set("attributes", "perm", node=2), "node 2 does not rebuild .*'attributes' must be an object"),
    (_set("inputs", [-1], node=4), r"node 4 does not rebuild .*'inputs' must list positions of earlier nodes \(0 to 3"),
    (_set("scope", [-1], node=4), "node 4 does not rebuild .*'scope' must list positions of the scope table"),
    (lambda m: m["nodes"].__setitem__(4, "ReLU"), "node 4 does not rebuild .*must be an object, got 'ReLU'"),
])
def test_malformed_manifests_raise_model_file_errors_naming_the_node(tmp_path, edit, message):
    _x, y = _mlp()
    path = tmp_path / "m.mgz"
    y.save(path)
    _edit_manifest(path, edit)
    with pytest.raises(mg.ModelFileError, match=message) as info:
        mg.load_model(path)
    assert str(info.value).startswith(str(path))


def test_a_float32_model_saved_before_any_run_reloads_as_float32(tmp_path):
    p = mg.parameter((3,), init=1.0)
    y = mg.reduce_sum(p * 2.0)
    assert y.dtype is None   # nothing has met a dtype yet; a run would settle on float32
    y.save(tmp_path / "m")
    z = mg.load_model(tmp_path / "m")
    assert z.dtype == y.dtype == np.float32 and z.eval().dtype == np.float32 and z.eval() == 6.0


def test_missing_file_or_a_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        mg.load_model(tmp_path / "nope.mgz")
    with pytest.raises(IsADirectoryError):
        mg.load_model(tmp_path)


# checkpoints ----------------------------------------------------------------------------------
def _training_setup(init_seed):
    """A small net with dropout (random op) and batch normalization (running statistics)."""
    mg.set_seed(init_seed)
    x = mg.input_variable(3, name="x")
    t = mg.input_variable(1, name="t")
    h = mg.times(x, mg.parameter((3, 8), name="W1"))
    h = mg.batch_normalization(h, mg.parameter((8,), init=1.0), mg.parameter((8,), init=0.0),
                               mg.constant(np.zeros(8, np.float32)), mg.constant(np.ones(8, np.float32)),
                               spatial=False, momentum=0.1)
    y = mg.times(mg.dropout(mg.tanh(h), 0.2), mg.parameter((8, 1), name="W2"))
    loss = mg.squared_error(y, t)
    trainer = mg.Trainer(y, loss, [L.adam([p for p in y.parameters if p.name == "W1"], 0.01),
                                   L.momentum_sgd([p for p in y.parameters if p.name != "W1"], 0.05, 0.9)])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    data = {x: X, t: np.sin(X.sum(1, keepdims=True))}
    return trainer, y, data


def _state(y):
    return [p.value.copy() for p in y.parameters] + [c.value.copy() for c in y.constants]


def test_checkpoint_resume_is_bit_for_bit(tmp_path):
    mg.set_seed(11)
    trainer, y, data = _training_setup(0)
    trainer.fit(data, epochs=2, minibatch_size=8)
    trainer.save_checkpoint(tmp_path / "ck")
    trainer.fit(data, epochs=2, minibatch_size=8)
    uninterrupted, history = _state(y), trainer.history

    resumed, y2, data2 = _training_setup(5)      # different initial values: all must come from the file
    resumed.restore_from_checkpoint(tmp_path / "ck")
    resumed.fit(data2, epochs=2, minibatch_size=8)
    for a, b in zip(uninterrupted, _state(y2)):
        np.testing.assert_array_equal(a, b)
    for key in ("loss", "minibatch_loss"):
        assert resumed.history[key] == history[key]
    assert resumed.step_count == trainer.step_count == 20


def test_checkpoint_does_not_fit_another_graph(tmp_path):
    trainer, y, _data = _training_setup(0)
    trainer.save_checkpoint(tmp_path / "ck")
    x = mg.input_variable(3)
    w = mg.parameter((3, 1))
    other = mg.Trainer(None, mg.squared_error(mg.times(x, w), mg.input_variable(1)), L.sgd([w], 0.1))
    with pytest.raises(mg.ModelFileError, match="do not match"):
        other.restore_from_checkpoint(tmp_path / "ck")
    y.save(tmp_path / "model")
    with pytest.raises(mg.ModelFileError, match="not a 'minigraph-checkpoint' file"):
        trainer.restore_from_checkpoint(tmp_path / "model")


def _everything(trainer, y):
    """All that restoring a checkpoint may set."""
    return {"values": _state(y), "learners": [lr.state_dict() for lr in trainer.parameter_learners],
            "counters": (trainer.step_count, trainer.total_number_of_samples_seen, trainer.epochs_done, trainer.seed),
            "history": json.dumps(trainer.history), "rng": json.dumps(mg.rng.get_state())}


@pytest.mark.parametrize("edit, keep, message", [
    (lambda m: m.pop("counters"), None, "KeyError: 'counters'"),
    (lambda m: m["counters"].update(seed=-1), None, "counters .* are not ints"),
    (lambda m: m.update(history=5), None, "history must hold the lists"),
    (lambda m: m["rng"].update(init="garbage"), None, "does not fit this trainer"),
    (lambda m: m["learners"][1].update(count=-1), None, "count and samples_seen must be ints"),
    (lambda m: m["learners"][0].update(extra={}), None, "extra entries b1_power and b2_power"),
    (lambda m: m["learners"][0]["extra"].update(b1_power=1.0), None, "b1_power after .* must be in"),
    (lambda m: m["learners"][1]["slot_names"][0].clear(), None, "a MomentumSGD after .* updates has \\['velocity'\\]"),
    (lambda m: None, lambda member: not member.startswith("learner1"), "'learner1_p0_velocity' is missing"),
])
def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path, edit, keep, message):
    trainer, y, data = _training_setup(0)
    trainer.fit(data, epochs=1, minibatch_size=8)
    trainer.save_checkpoint(tmp_path / "ck")
    _edit_manifest(tmp_path / "ck", edit, keep or (lambda member: True))
    trainer.fit(data, epochs=1, minibatch_size=8)
    before = _everything(trainer, y)
    with pytest.raises(mg.ModelFileError, match=message):
        trainer.restore_from_checkpoint(tmp_path / "ck")
    after = _everything(trainer, y)
    for a, b in zip(before.pop("values"), after.pop("values")):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(before.pop("learners"), after.pop("learners")):
        assert {k: v for k, v in a.items() if k != "slots"} == {k: v for k, v in b.items() if k != "slots"}
        for sa, sb in zip(a["slots"], b["slots"]):
            assert sorted(sa) == sorted(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert before == after


# every layer type -----------------------------------------------------------------------------
LAYER_CASES = {   # layer type -> (factory, input shape); symbolic sizes where the layer allows them
    "Activation": (lambda L: L.Activation(mg.tanh), (3, 5)),
    "AveragePooling": (lambda L: L.AveragePooling((2, 2), strides=2, pad=True), (2, "H", 5)),
    "BatchNormalization": (lambda L: L.BatchNormalization(map_rank=1), (3, 4, 4)),
    "Convolution": (lambda L: L.Convolution((3, 3), 4, pad=True, strides=2, activation=mg.relu), (2, "H", "W")),
    "Convolution1D": (lambda L: L.Convolution1D(3, 4), (2, 9)),
    "Convolution2D": (lambda L: L.Convolution2D((2, 3), 3, pad=True), (2, 5, 6)),
    "Convolution3D": (lambda L: L.Convolution3D(2, 2), (1, 3, 4, 4)),
    "ConvolutionTranspose": (lambda L: L.ConvolutionTranspose((3, 3), 2, strides=2, pad=True, output_shape=8),
                             (3, 4, 4)),
    "ConvolutionTranspose1D": (lambda L: L.ConvolutionTranspose1D(5, 2, strides=2), (3, "T")),
    "ConvolutionTranspose2D": (lambda L: L.ConvolutionTranspose2D((3, 2), num_filters=(), reduction_rank=0), (4, 3)),
    "ConvolutionTranspose3D": (lambda L: L.ConvolutionTranspose3D(2, 2, strides=2), (2, 2, 3, 2)),
    "Dense": (lambda L: L.Dense((4, 2, 2), activation=mg.sigmoid), (6,)),
    "Dropout": (lambda L: L.Dropout(0.5), (10,)),
    "Flatten": (lambda L: L.Flatten(), (2, 3, 4)),
    "Identity": (lambda L: L.Identity(), (3,)),
    "LayerNormalization": (lambda L: L.LayerNormalization(), (5,)),
    "MaxPooling": (lambda L: L.MaxPooling((2, 2), strides=2), (2, 6, 6)),
    "Reshape": (lambda L: L.Reshape((4, 3)), (2, 6)),
    "Sequential": (lambda L: L.Sequential([L.Dense(8, activation=mg.relu), L.Dense((2, 2))]), (5,)),
}


def test_every_layer_type_has_a_round_trip_case():
    assert sorted(LAYER_CASES) == sorted(mg.layers.LAYER_TYPES)


def _concrete(shape):
    return tuple(d if isinstance(d, int) else 4 for d in shape)


@pytest.mark.parametrize("kind", sorted(LAYER_CASES))
def test_layer_round_trip_gives_identical_outputs(kind, tmp_path):
    mg.set_seed(1)
    factory, shape = LAYER_CASES[kind]
    x = mg.input_variable(shape, name="x")
    y = factory(mg.layers)(x)
    for p in y.parameters:   # move away from initial values (e.g. zero biases, unit scales)
        p.value = p.value + np.random.default_rng(p.uid).normal(0, 0.1, p.value.shape)
    y.save(tmp_path / "m")
    z = mg.load_model(tmp_path / "m")
    data = np.random.default_rng(0).standard_normal((3, *_concrete(shape))).astype(np.float32)
    for training in (False, True):
        np.testing.assert_array_equal(z.eval({"x": data}, training=training, seed=2),
                                      y.eval({x: data}, training=training, seed=2))
    assert [p.value.shape for p in z.parameters] == [p.value.shape for p in y.parameters]
    assert [n.scope and n.scope[0].kind for n in z.topological_order()] == \
           [n.scope and n.scope[0].kind for n in y.topological_order()]


def test_loaded_model_keeps_layer_calls_for_drawings(tmp_path):
    x = mg.input_variable((1, 4, 4), name="x")
    shared = mg.layers.Convolution((3, 3), 1, pad=True, name="shared")
    net = mg.layers.Sequential([shared, mg.relu, mg.layers.ConvolutionTranspose((2, 2), 2, strides=2, name="up")],
                               name="net")
    y = shared(net(x)[0:1])   # the same layer called twice: two calls, one owner
    y.save(tmp_path / "m")
    z = mg.load_model(tmp_path / "m")
    for collapse in (False, True):
        assert mg.plot(z, collapse_layers=collapse) == mg.plot(y, collapse_layers=collapse)
    first, second = (n for n in z.topological_order() if n.op_name == "Convolution")
    assert first.scope[-1] is not second.scope[-1] and first.scope[-1].owner is second.scope[-1].owner
    assert isinstance(first.scope[-1].owner, serialization.SavedLayer) and first.scope[-1].owner.kind == "Convolution"


def test_a_loaded_model_trains_further(tmp_path):
    mg.set_seed(0)
    x = mg.input_variable(2, name="x")
    mg.layers.Dense(1)(x).save(tmp_path / "m")
    model = mg.load_model(tmp_path / "m")
    t = mg.input_variable(1, name="t")
    trainer = mg.Trainer(model, mg.squared_error(model, t), L.sgd(model, 0.1))
    X = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    data = {"x": X, t: X @ np.array([[2.0], [-1.0]], np.float32)}
    history = trainer.fit(data, epochs=30, minibatch_size=16, seed=0)
    assert history["loss"][-1] < 1e-3 * history["loss"][0]


def test_summary_of_a_loaded_model_lists_each_layers_parameters(tmp_path):
    from minigraph.layers import from_spec, summary
    model = from_spec("examples/specs/generator.toml")
    model.save(tmp_path / "g.mgz")
    assert summary(mg.load_model(tmp_path / "g.mgz")) == summary(model)
