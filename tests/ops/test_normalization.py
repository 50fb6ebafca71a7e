"""Batch and layer normalization: values against numpy, train/eval behaviour, running statistics,
gradients against finite differences in both modes."""
import math

import numpy as np
import pytest

import minigraph as mg

from gradcheck import check_gradients, param, variable


def _bn(shape, spatial=True, momentum=None, time_constant=5000, seed=0, unbiased=True):
    rng = np.random.default_rng(seed)
    x = variable(shape, "x")
    stats = shape[:1] if spatial else shape
    scale = param(rng.uniform(0.5, 1.5, stats), "scale")
    bias = param(rng.uniform(-0.5, 0.5, stats), "bias")
    mean = mg.constant(rng.uniform(-0.2, 0.2, stats), name="running_mean")
    var = mg.constant(rng.uniform(0.5, 2.0, stats), name="running_var")
    y = mg.batch_normalization(x, scale, bias, mean, var, spatial=spatial, momentum=momentum,
                               normalization_time_constant=time_constant, unbiased_running_variance=unbiased)
    return x, y, scale, bias, mean, var


def _reference(data, scale, bias, mean, var, axes, eps=1e-5):
    keep = [1 if a in axes else n for a, n in enumerate(data.shape)]
    return scale.reshape(keep) * (data - mean.reshape(keep)) / np.sqrt(var.reshape(keep) + eps) + bias.reshape(keep)


@pytest.mark.parametrize("shape,spatial,axes", [((3, 4, 5), True, (0, 2, 3)), ((2, 6), True, (0, 2)),
                                                 ((4,), False, (0,)), ((2, 3, 3), False, (0,))])
def test_batch_norm_training_uses_batch_statistics(shape, spatial, axes):
    x, y, scale, bias, *_ = _bn(shape, spatial)
    data = np.random.default_rng(1).standard_normal((5, *shape)) * 3 + 1
    out = y.eval({x: data}, training=True)
    expected = _reference(data, scale.value, bias.value, data.mean(axes), data.var(axes), axes)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_eval_uses_running_statistics_and_leaves_them():
    x, y, scale, bias, mean, var = _bn((3, 4, 4))
    before = mean.value.copy(), var.value.copy()
    data = np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    out = y.eval({x: data})
    np.testing.assert_allclose(out, _reference(data, scale.value, bias.value, *before, (0, 2, 3)), rtol=1e-12)
    np.testing.assert_array_equal(mean.value, before[0])
    np.testing.assert_array_equal(var.value, before[1])


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("momentum,time_constant,expected_m", [(0.25, 5000, 0.25), (None, 0, 1.0),
                                                               (None, 10, -math.expm1(-4 / 10)),
                                                               (None, math.inf, 0.0)])
def test_running_statistics_update_in_training(momentum, time_constant, expected_m, unbiased):
    x, y, _, _, mean, var = _bn((3, 2, 2), momentum=momentum, time_constant=time_constant, unbiased=unbiased)
    old_mean, old_var = mean.value.copy(), var.value.copy()
    data = np.random.default_rng(3).standard_normal((4, 3, 2, 2)) + 2
    y.eval({x: data}, training=True)
    np.testing.assert_allclose(mean.value, (1 - expected_m) * old_mean + expected_m * data.mean((0, 2, 3)))
    batch_var = data.var((0, 2, 3), ddof=1 if unbiased else 0)  # 16 values per channel: 16/15 x the biased one
    np.testing.assert_allclose(var.value, (1 - expected_m) * old_var + expected_m * batch_var)


def test_running_variance_per_element_and_single_value():
    """Per element the count is the batch; one value per statistic keeps the (zero) biased variance."""
    x, y, _, _, _, var = _bn((2, 3), spatial=False, momentum=1.0)
    data = np.random.default_rng(3).standard_normal((5, 2, 3))
    y.eval({x: data}, training=True)
    np.testing.assert_allclose(var.value, data.var(0, ddof=1))
    y.eval({x: data[:1]}, training=True)
    np.testing.assert_array_equal(var.value, np.zeros((2, 3)))


def test_batch_norm_describe_shows_the_setting_in_effect():
    y_momentum = _bn((3, 2), momentum=0.1)[1]
    shown = y_momentum.op.describe(y_momentum.attributes)
    assert shown["momentum"] == 0.1 and "normalization_time_constant" not in shown
    y_tc = _bn((3, 2), time_constant=100)[1]
    shown = y_tc.op.describe(y_tc.attributes)
    assert shown["normalization_time_constant"] == 100 and "momentum" not in shown


def test_eval_after_many_training_steps_matches_training_output():
    x, y, *_ = _bn((2, 3), momentum=1.0, unbiased=False)  # the biased running variance is the batch's
    data = np.random.default_rng(4).standard_normal((6, 2, 3))
    train = y.eval({x: data}, training=True)
    np.testing.assert_allclose(y.eval({x: data}), train, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,spatial", [((3, 4, 5), True), ((2, 3, 2, 2), True), ((5,), False), ((2, 3), False)])
def test_batch_norm_gradients(shape, spatial, training):
    x, y, scale, bias, *_ = _bn(shape, spatial, momentum=0.0)  # frozen statistics: every evaluation the same
    data = np.random.default_rng(5).standard_normal((4, *shape))
    check_gradients(y, {x: data}, wrt=[x, scale, bias], training=training)


def test_batch_norm_float32_and_lazy_parameters():
    x = mg.input_variable((3, 5, 5))
    scale = mg.parameter((mg.InferredDimension,), init=1.0)
    bias = mg.parameter((mg.InferredDimension,), init=0.0)
    y = mg.batch_normalization(x, scale, bias, mg.constant(np.zeros(3, np.float32)),
                               mg.constant(np.ones(3, np.float32)))
    assert scale.shape == (3,) and bias.shape == (3,)
    out = y.eval({x: np.random.default_rng(6).standard_normal((2, 3, 5, 5)).astype(np.float32)}, training=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean((0, 2, 3)), 0, atol=1e-5)


def test_batch_norm_symbolic_spatial_dims():
    x = mg.input_variable((2, "H", "W"), dtype=np.float64)
    y = mg.batch_normalization(x, param(np.ones(2)), param(np.zeros(2)), mg.constant(np.zeros(2)),
                               mg.constant(np.ones(2)))
    assert [str(d) for d in y.shape] == ["2", "H", "W"]
    assert y.eval({x: np.ones((1, 2, 3, 7))}, training=True).shape == (1, 2, 3, 7)


def test_batch_norm_errors():
    x = mg.input_variable((3, 4))
    one = mg.constant(np.ones(3, np.float32))
    with pytest.raises(mg.ShapeError, match=r"scale has shape \(4,\); expected \(3,\)"):
        mg.batch_normalization(x, mg.parameter((4,), init=1.0), one, one, one)
    with pytest.raises(mg.ShapeError, match=r"expected \(3, 4\).*spatial=False"):
        mg.batch_normalization(x, one, one, one, one, spatial=False)
    with pytest.raises(TypeError, match="running_var must be a Constant"):
        mg.batch_normalization(x, one, one, one, mg.parameter((3,), init=1.0))
    with pytest.raises(ValueError, match="momentum"):
        mg.batch_normalization(x, one, one, one, one, momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        mg.batch_normalization(x, one, one, one, one, epsilon=-1)


@pytest.mark.parametrize("shape,pshape", [((6,), ()), ((3, 4), (4,)), ((2, 3, 3), (2, 3, 3)), ((2, 3, 3), (3, 1))])
def test_layer_norm_values_and_gradients(shape, pshape):
    rng = np.random.default_rng(7)
    x = variable(shape, "x")
    scale, bias = param(rng.uniform(0.5, 1.5, pshape), "s"), param(rng.uniform(-1, 1, pshape), "b")
    y = mg.layer_normalization(x, scale, bias)
    data = rng.standard_normal((3, *shape)) * 2 + 1
    axes = tuple(range(1, len(shape) + 1))
    xhat = (data - data.mean(axes, keepdims=True)) / np.sqrt(data.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.eval({x: data}), scale.value * xhat + bias.value, rtol=1e-10)
    check_gradients(y, {x: data})


def test_layer_norm_rejects_unbroadcastable_scale():
    with pytest.raises(mg.ShapeError, match=r"scale of shape \(3,\) does not broadcast"):
        mg.layer_normalization(mg.input_variable((2, 4)), mg.parameter((3,), init=1.0), mg.parameter((), init=0.0))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_backward_keeps_the_residual_not_the_operand(kind, training):
    x = variable((2, 3), "x")
    h = x + 1.0  # an intermediate value read only by the normalization
    scale, bias = param([1.5, -0.5] if kind == "batch" else 2.0), param([0.1, 0.2] if kind == "batch" else 0.3)
    if kind == "batch":
        stats = [mg.constant(np.full(2, v)) for v in (0.5, 2.0)]
        y = mg.batch_normalization(h, scale, bias, *stats, momentum=0.0)
    else:
        y = mg.layer_normalization(h, scale, bias)
    data = np.random.default_rng(1).standard_normal((4, 2, 3))
    assert h not in y.forward({x: data}, training=training).values
    check_gradients(y, {x: data}, training=training)


def test_models_saved_before_unbiased_running_variance_keep_the_biased_one(tmp_path):
    """A model file without the attribute (written before it existed) loads and keeps training the
    biased running variance; a new file keeps the unbiased one."""
    import json
    import zipfile

    from minigraph.serialization import read_archive, write_archive
    x, y, *_ = _bn((3, 2, 2), momentum=1.0)
    new = tmp_path / "new.mgz"
    y.save(new)
    manifest, arrays = read_archive(new, "minigraph-model", 1)
    records = [r for r in manifest["nodes"] if r.get("op") == "BatchNormalization"]
    assert len(records) == 1 and records[0]["attributes"]["unbiased_running_variance"] is True
    del records[0]["attributes"]["unbiased_running_variance"]
    old = tmp_path / "old.mgz"
    write_archive(old, manifest, arrays)
    saved = json.loads(zipfile.ZipFile(old).read("manifest.json"))["nodes"]
    assert all("unbiased_running_variance" not in r.get("attributes", {}) for r in saved)
    data = np.random.default_rng(7).standard_normal((4, 3, 2, 2))
    for path, ddof in ((old, 0), (new, 1)):
        model = mg.load_model(path)
        model.eval({model.arguments[0]: data}, training=True)
        running_var = next(c for c in model.constants if c.name == "running_var")
        np.testing.assert_allclose(running_var.value, data.var((0, 2, 3), ddof=ddof))


def _batch_last(data: np.ndarray) -> np.ndarray:
    """``data`` ``(N, C, ...)`` laid out batch-last in memory, as the convolutions leave activations."""
    return np.ascontiguousarray(np.moveaxis(data, 0, -1)).transpose(data.ndim - 1, *range(data.ndim - 1))


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunked passes from 2 KiB on (one channel of the operands below is 1 KiB), on 3 threads."""
    from minigraph import threads
    monkeypatch.setattr(threads, "CHUNK_BYTES", 1024)
    before = mg.get_num_threads()
    mg.set_num_threads(3)
    yield
    mg.set_num_threads(before)


@pytest.mark.parametrize("spatial", [True, False])
def test_batch_norm_in_channel_chunks_gives_the_whole_array_values(spatial, small_chunks):
    """Training-mode statistics, output and gradients of a batch-last operand computed a channel block
    at a time equal the whole-array formulas (and the finite differences)."""
    shape = (6, 4, 4)  # 4 samples: 128 doubles = 1 KiB a channel
    x, y, scale, bias, *_ = _bn(shape, spatial, momentum=0.0)
    data = _batch_last(np.random.default_rng(7).standard_normal((4, *shape)) * 2 + 1)
    from minigraph.ops.normalization import _whole_statistics_per_chunk
    assert _whole_statistics_per_chunk(data, (1, 6, 1, 1) if spatial else (1, *shape))
    axes = (0, 2, 3) if spatial else (0,)
    expected = _reference(data, scale.value, bias.value, data.mean(axes), data.var(axes), axes)
    np.testing.assert_allclose(y.eval({x: data}, training=True), expected, rtol=1e-12, atol=1e-12)
    check_gradients(y, {x: data}, wrt=[x, scale, bias], training=True)


def test_batch_norm_chunks_give_the_same_bits_for_every_thread_count(small_chunks):
    x, y, *_ = _bn((6, 4, 4), True, momentum=0.0)
    data = _batch_last(np.random.default_rng(8).standard_normal((4, 6, 4, 4)))
    results = []
    for n in (1, 2, 3):
        mg.set_num_threads(n)
        state = y.forward({x: data}, training=True)
        results.append([state[y], *y.backward(state, wrt=[x, *y.parameters]).values()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
