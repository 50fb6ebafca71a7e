"""Memory and compute estimates from the shape pass, held to tracemalloc peaks of real runs; the memory limit."""
import tracemalloc

import numpy as np
import pytest

import minigraph as mg
from benchmarks.estimates import measured_peak  # a warm run's tracemalloc peak
from minigraph import layers as L
from minigraph.costs import estimate, node_costs
from minigraph.limits import format_bytes

from helpers import small_generator


@pytest.fixture(autouse=True)
def _no_limit_after():
    yield
    mg.set_memory_limit(None)


def generator():
    model = small_generator()
    return model, model.arguments[0]


def dcgan():
    z = mg.input_variable(100, name="z")
    return L.Sequential([
        L.Dense((128, 4, 4), bias=False), L.BatchNormalization(map_rank=1), mg.relu,
        L.ConvolutionTranspose((4, 4), 64, strides=2, pad=True, output_shape=(8, 8), bias=False),
        L.BatchNormalization(map_rank=1), mg.relu,
        L.ConvolutionTranspose((4, 4), 3, strides=2, pad=True, output_shape=(16, 16), activation=mg.tanh)])(z), z


def discriminator():
    x = mg.input_variable((3, 16, 16), name="x")
    return L.Sequential([
        L.Convolution((4, 4), 16, strides=2, pad=True, activation=mg.leaky_relu),
        L.Convolution((4, 4), 32, strides=2, pad=True, bias=False), L.BatchNormalization(map_rank=1), mg.leaky_relu,
        L.MaxPooling((2, 2), strides=2), L.Dense(1, activation=mg.sigmoid)])(x), x


def chunked():
    x = mg.input_variable((64, 7, 7), name="x")
    return L.ConvolutionTranspose((4, 4), 32, strides=2, pad=True, output_shape=(14, 14),
                                  max_temp_mem_size_in_samples=4)(x), x


def wide_input():
    """A fed batch-first operand with many channels: a backward run keeps its batch-last copy."""
    x = mg.input_variable((128, 7, 7), name="x")
    return L.ConvolutionTranspose((4, 4), 4, strides=2, pad=True, output_shape=(14, 14), bias=False)(x), x


def symbolic():
    x = mg.input_variable((8, "H", "W"), name="x")
    y = L.ConvolutionTranspose((5, 5), 8, strides=2, pad=True, activation=mg.tanh)(x)
    return L.AveragePooling((3, 3), strides=1, pad=True)(y), x


@pytest.mark.parametrize("build", [generator, dcgan, discriminator, chunked, wide_input, symbolic])
@pytest.mark.parametrize("training", [False, True])
def test_peak_estimate_within_25_percent_of_tracemalloc(build, training):
    model, x = build()
    rng = np.random.default_rng(0)
    spatial = tuple(12 if isinstance(d, mg.Dim) else d for d in x.shape)
    feed = {x: rng.standard_normal((32, *spatial)).astype(np.float32)}
    bindings = mg.explain(model, feed).bindings
    if training:
        def run():
            model.backward(model.forward(feed, training=True))
    else:
        def run():
            model.eval(feed)
    got = measured_peak(run)
    e = model.estimate(32, training=training, bindings=bindings)
    assert 0.75 * got <= e.peak_bytes <= 1.25 * got, (e, got)


def test_estimate_fields_by_hand():
    x = mg.input_variable((4, 8, 8), name="x")
    y = L.ConvolutionTranspose((4, 4), 8, strides=2, pad=True, output_shape=(16, 16), name="up")(x)
    e = y.estimate(batch=64)
    assert e.parameter_bytes == (4 * 8 * 16 + 8) * 4
    assert e.multiply_adds == 64 * (8 * 8) * 4 * 8 * 16        # every input cell x C_in x C_out x taps
    assert e.activation_bytes == 64 * 2 * 8 * 16 * 16 * 4      # the op's output and the bias sum
    # scatter's GEMM result (O*K x input cells) and one output phase buffer per sample, and the fed
    # (batch-first) input copied batch-last
    assert e.workspace_bytes == 64 * (8 * 16 * 64 + 8 * 64) * 4 + 64 * 4 * 8 * 8 * 4
    # the reused kernel buffers stay held after the convolution, so the peak comes at the bias sum:
    # columns and phase buffer, the convolution's output and the sum
    reused = 64 * (8 * 16 * 64 + 8 * 64) * 4
    assert e.peak_bytes == reused + 2 * 64 * 8 * 16 * 16 * 4 and e.largest_node == "Plus in layer 'up'"
    assert e.training is False and "inference, batch 64" in str(e)
    trained = y.estimate(batch=64, training=True)
    assert trained.multiply_adds == 3 * e.multiply_adds and trained.peak_bytes > e.peak_bytes


def test_chunking_shrinks_the_workspace():
    whole, _ = chunked()
    e = whole.estimate(batch=32)
    per_sample = next(c for c in node_costs(whole) if c.node.op_name == "ConvolutionTranspose").workspace_bytes
    # every chunk of 4 samples reuses one set of buffers; one chunk of the fed input is copied batch-last
    assert e.workspace_bytes == 4 * per_sample + 4 * 64 * 7 * 7 * 4


def test_symbolic_sizes_need_bindings():
    model, _ = symbolic()
    with pytest.raises(mg.GraphError, match=r"depend on H, W; pass bindings=\{'H': \.\.\., 'W': \.\.\.\}"):
        model.estimate(4)
    assert model.estimate(4, bindings={"H": 6, "W": 5}).peak_bytes > 0
    assert str(node_costs(model)[0].multiply_adds) == "1600*H*W"


@pytest.mark.parametrize("bad, error", [(0, ValueError), (True, ValueError), (2.0, ValueError)])
def test_estimate_rejects_bad_batches(bad, error):
    model, _ = generator()
    with pytest.raises(error, match="batch must be a positive int"):
        estimate(model, bad)


def test_memory_limit_fails_before_running_with_the_numbers():
    model, z = generator()
    feed = {z: np.zeros((256, 16), np.float32)}
    need = model.estimate(256).peak_bytes
    mg.set_memory_limit(need // 2)
    tracemalloc.start()
    with pytest.raises(mg.ResourceError) as info:
        model.eval(feed)
    allocated = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    err = info.value
    assert allocated < need // 10  # failed before the run allocated its arrays
    assert (err.estimate, err.limit) == (need, need // 2)
    assert err.largest_node and err.largest_node in str(err)
    fits = err.fitting_batch
    assert model.estimate(fits).peak_bytes <= need // 2 < model.estimate(fits + 1).peak_bytes
    assert f"a batch of {fits} fits" in str(err) and "more than the memory limit" in str(err)
    mg.set_memory_limit(None)
    assert model.eval(feed).shape == (256, 1, 8, 8)


def test_eval_memory_limit_argument_and_training_runs():
    model, z = generator()
    feed = {z: np.zeros((64, 16), np.float32)}
    infer, train = model.estimate(64).peak_bytes, model.estimate(64, training=True).peak_bytes
    model.eval(feed, memory_limit=infer)
    with pytest.raises(mg.ResourceError):
        model.eval(feed, memory_limit=infer - 1)
    mg.set_memory_limit((infer + train) // 2)  # enough to evaluate, not to train
    model.eval(feed)
    with pytest.raises(mg.ResourceError, match="training step"):
        model.grad(feed)
    with pytest.raises(mg.ResourceError):
        model.forward(feed)


def test_memory_limit_suggests_chunking_where_it_helps():
    x = mg.input_variable((64, 7, 7), name="x")
    y = L.ConvolutionTranspose((4, 4), 32, strides=2, pad=True, output_shape=(14, 14), name="up")(x)
    feed = {x: np.zeros((64, 64, 7, 7), np.float32)}
    e = y.estimate(64)
    mg.set_memory_limit(e.peak_bytes - e.workspace_bytes // 2)
    with pytest.raises(mg.ResourceError, match=r"max_temp_mem_size_in_samples=\d+ on 'up'") as info:
        y.eval(feed)
    samples = int(str(info.value).split("max_temp_mem_size_in_samples=")[1].split()[0])
    fixed = L.ConvolutionTranspose((4, 4), 32, strides=2, pad=True, output_shape=(14, 14),
                                   max_temp_mem_size_in_samples=samples)(x)
    assert fixed.estimate(64).peak_bytes <= mg.get_memory_limit()
    assert fixed.eval(feed).shape == (64, 32, 14, 14)


def test_trainer_steps_honour_the_memory_limit():
    x, t = mg.input_variable(8, name="x"), mg.input_variable(1, name="t")
    model = L.Sequential([L.Dense(64, activation=mg.relu), L.Dense(1)])(x)
    loss = mg.squared_error(model, t)
    trainer = mg.Trainer(model, loss, mg.learners.sgd(model.parameters, 0.1))
    feed = {x: np.ones((512, 8), np.float32), t: np.ones((512, 1), np.float32)}
    before = [p.value.copy() for p in model.parameters]
    mg.set_memory_limit(loss.estimate(512, training=True).peak_bytes // 2)
    with pytest.raises(mg.ResourceError, match="a training step on 512 samples") as info:
        trainer.train_minibatch(feed)
    assert all(np.array_equal(b, p.value) for b, p in zip(before, model.parameters))  # nothing changed
    small = {k: v[:info.value.fitting_batch] for k, v in feed.items()}
    trainer.train_minibatch(small)
    assert not all(np.array_equal(b, p.value) for b, p in zip(before, model.parameters))


def test_a_training_estimate_counts_the_kept_batch_last_copy_of_a_fed_operand():
    """Nothing else is kept for wide_input's backward: its activations are exactly the copy (none when
    the run is chunked, or for inference)."""
    for build, kept in ((wide_input, 32 * 128 * 7 * 7 * 4), (chunked, 0)):
        model, _ = build()
        assert model.estimate(32, training=True).activation_bytes == kept
        assert f"{format_bytes(kept) if kept else '0 B'} kept for training" in str(model.summary(batch=32))
    model, _ = wide_input()
    assert model.estimate(32).activation_bytes == 32 * 4 * 14 * 14 * 4  # inference: the output
