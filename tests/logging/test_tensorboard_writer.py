"""TensorBoardProgressWriter: what it writes, read back with TensorBoard's own event reader."""
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph import learners
from minigraph.utils import make_grid, to_uint8

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from minigraph.logging import TensorBoardProgressWriter  # noqa: E402


def read_run(log_dir):
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    return acc


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def f32(values):
    return [float(np.float32(v)) for v in values]


def _regression(seed=0):
    mg.set_seed(seed)
    x, y = mg.input_variable(3, name="x"), mg.input_variable(1, name="y")
    f = L.Dense(1, name="lin")(x)
    data = np.random.default_rng(seed).standard_normal((40, 3)).astype(np.float32)
    return f, (mg.squared_error(f, y), mg.abs(f - y)), {x: data, y: data.sum(axis=1, keepdims=True)}


def test_scalars_equal_what_the_trainer_reported(tmp_path):
    f, criterion, data = _regression()
    with TensorBoardProgressWriter(freq=1, log_dir=tmp_path) as tb:
        trainer = mg.Trainer(f, criterion, learners.momentum_sgd(f.parameters, 0.05, 0.5), progress_writers=[tb])
        history = trainer.fit(data, epochs=3, minibatch_size=16, validation_data=data)
    acc = read_run(tmp_path)
    steps = list(range(1, 10))
    assert scalars(acc, "minibatch/avg_loss") == list(zip(steps, f32(history["minibatch_loss"])))
    assert [s for s, _ in scalars(acc, "minibatch/avg_metric")] == steps
    assert scalars(acc, "minibatch/learning_rate") == [(s, float(np.float32(0.05))) for s in steps]
    assert all(v > 0 for _, v in scalars(acc, "minibatch/samples_per_second"))
    assert scalars(acc, "summary/avg_loss") == list(zip([3, 6, 9], f32(history["loss"])))
    assert scalars(acc, "summary/avg_metric") == list(zip([3, 6, 9], f32(history["metric"])))
    assert scalars(acc, "summary/test_avg_loss") == list(zip([3, 6, 9], f32(history["val_loss"])))
    assert scalars(acc, "summary/test_avg_metric") == list(zip([3, 6, 9], f32(history["val_metric"])))


def test_geometric_default_writes_the_averages_since_the_last_write(tmp_path):
    f, criterion, data = _regression()
    tb = TensorBoardProgressWriter(log_dir=tmp_path)
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[tb])
    history = trainer.fit(data, epochs=1, minibatch_size=4, shuffle=False)  # 10 minibatches of 4
    tb.close()
    losses = history["minibatch_loss"]
    expected = [(1, losses[0]), (2, losses[1]), (4, np.mean(losses[2:4])), (8, np.mean(losses[4:8]))]
    assert scalars(read_run(tmp_path), "minibatch/avg_loss") == [(s, float(np.float32(v))) for s, v in expected]


def test_two_trainers_write_under_their_own_tags(tmp_path):
    f, _, data = _regression()
    x, y = data
    direct, mirrored = mg.squared_error(f, y, name="direct"), mg.squared_error(f, -y, name="mirror")
    with TensorBoardProgressWriter(freq=1, log_dir=tmp_path) as tb:
        one = mg.Trainer(f, direct, learners.sgd(f.parameters, 0.01), progress_writers=[tb])
        two = mg.Trainer(f, mirrored, learners.sgd(f.parameters, 0.01), progress_writers=[tb])
        for _ in range(3):
            one.train_minibatch(data)
            two.train_minibatch(data)
    acc = read_run(tmp_path)
    for tag, trainer in (("direct", one), ("mirror", two)):
        assert scalars(acc, f"{tag}/minibatch/avg_loss") == list(zip([1, 2, 3], f32(trainer.history["minibatch_loss"])))


def test_image_decodes_to_exactly_make_grid_of_the_samples(tmp_path):
    from PIL import Image
    samples = np.random.default_rng(0).uniform(size=(6, 1, 8, 8)).astype(np.float32)
    with TensorBoardProgressWriter(log_dir=tmp_path) as tb:
        tb.write_image("samples", samples, 7, nrow=3, padding=1, pad_value=1.0)
    (event,) = read_run(tmp_path).Images("samples")
    assert event.step == 7
    decoded = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
    np.testing.assert_array_equal(decoded, to_uint8(make_grid(samples, nrow=3, padding=1, pad_value=1.0)))


def test_values_and_histograms_by_hand(tmp_path):
    values = np.random.default_rng(1).standard_normal((5, 4))
    with TensorBoardProgressWriter(log_dir=tmp_path) as tb:
        tb.write_value("d/real", 0.75, 3)
        tb.write_value("d/real", np.float64(0.5), 4)
        tb.write_histogram("weights", values, 3)
    acc = read_run(tmp_path)
    assert scalars(acc, "d/real") == [(3, 0.75), (4, 0.5)]
    (h,) = acc.Histograms("weights")
    assert h.step == 3 and h.histogram_value.num == 20
    assert h.histogram_value.min == values.min() and h.histogram_value.max == values.max()


def test_graph_has_one_node_per_op_in_layer_scopes(tmp_path):
    z = mg.input_variable(4, name="z")
    generator = L.Sequential([
        L.Dense((8, 2, 2), name="project"), mg.relu,
        L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True, output_shape=4, activation=mg.sigmoid, name="up1"),
    ], name="generator")
    fake = generator(z)
    with TensorBoardProgressWriter(log_dir=tmp_path, model=fake):
        pass
    nodes = list(read_run(tmp_path).Graph().node)
    order = fake.topological_order()
    assert len(nodes) == len(order) and len({n.name for n in nodes}) == len(nodes)
    ops = [n for n in order if isinstance(n, mg.Function)]
    assert sorted(n.op for n in nodes if n.op not in ("Input", "Parameter", "Constant")) == \
        sorted(n.op_name for n in ops)
    by_op = {n.op: n for n in nodes}
    conv = by_op["ConvolutionTranspose"]
    assert conv.name.startswith("generator/up1/")
    assert [d.size for d in conv.attr["_output_shapes"].list.shape[0].dim] == [-1, 1, 4, 4]
    assert conv.attr["shape"].s == b"(1, 4, 4)" and b"2" in conv.attr["attr/strides"].s
    assert any(n.name.startswith("generator/project/") and n.op == "Parameter" for n in nodes)
    names = {n.name for n in nodes}
    assert all(i in names for n in nodes for i in n.input)


def test_a_failing_step_flushes_what_was_written(tmp_path):
    f, criterion, data = _regression()
    tb = TensorBoardProgressWriter(freq=1, log_dir=tmp_path)
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.01), progress_writers=[tb])
    trainer.train_minibatch(data)
    trainer.train_minibatch(data)
    bad = {k: np.full_like(v, np.nan) for k, v in data.items()}
    with pytest.raises(mg.TrainingError):
        trainer.train_minibatch(bad)
    assert [s for s, _ in scalars(read_run(tmp_path), "minibatch/avg_loss")] == [1, 2]  # not closed, yet on disk
    tb.close()


def test_what_was_written_survives_an_uncaught_error(tmp_path):
    script = textwrap.dedent(f"""
        from minigraph.logging import TensorBoardProgressWriter
        tb = TensorBoardProgressWriter(log_dir={str(tmp_path)!r})
        for step in range(5):
            tb.write_value("loss", 1.0 / (step + 1), step)
        raise RuntimeError("the run crashes")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "the run crashes" in done.stderr
    assert [s for s, _ in scalars(read_run(tmp_path), "loss")] == [0, 1, 2, 3, 4]


def test_only_the_chosen_rank_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(mg.distributed.Communicator, "rank", staticmethod(lambda: 2))
    with TensorBoardProgressWriter(log_dir=tmp_path / "default") as tb:
        tb.write_value("x", 1.0, 1)
    assert not (tmp_path / "default").exists()
    with TensorBoardProgressWriter(log_dir=tmp_path / "mine", rank=2) as tb:
        tb.write_value("x", 1.0, 1)
    assert scalars(read_run(tmp_path / "mine"), "x") == [(1, 1.0)]


def test_without_tensorboardx_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"minigraph\[tensorboard\]"):
        TensorBoardProgressWriter(log_dir=tmp_path)


def test_bad_input_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="log_dir"):
        TensorBoardProgressWriter(log_dir=blocker / "runs")
    with pytest.raises(ValueError, match="freq must be a positive int"):
        TensorBoardProgressWriter(freq=0, log_dir=tmp_path)
    with pytest.raises(TypeError, match="model must be a graph node"):
        TensorBoardProgressWriter(log_dir=tmp_path, model="net")
    with TensorBoardProgressWriter(log_dir=tmp_path) as tb:
        with pytest.raises(ValueError, match=r"write_image\('s'\): .*\(N, C, H, W\)"):
            tb.write_image("s", np.zeros((2, 1, 1, 4, 4)), 1)
        with pytest.raises(TypeError, match=r"write_image\('s'\): .*numeric"):
            tb.write_image("s", np.array([["a"]]), 1)
        with pytest.raises(ValueError, match=r"name 'D\(real\)' has characters"):
            tb.write_value("D(real)", 1.0, 1)
        with pytest.raises(ValueError, match="step"):
            tb.write_value("v", 1.0, -1)
        with pytest.raises(TypeError, match="value must be a real number"):
            tb.write_value("v", "high", 1)
        with pytest.raises(ValueError, match="NaN"):
            tb.write_histogram("h", [1.0, np.nan], 1)
    with pytest.raises(RuntimeError, match="closed"):
        tb.write_value("v", 1.0, 2)
    assert os.listdir(tmp_path)  # the event file of the writer that was used
