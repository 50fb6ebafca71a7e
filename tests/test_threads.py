"""Threads of the kernels' copy passes: settings, identical values for every thread count, errors."""
import threading

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph import threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = mg.get_num_threads()
    yield
    mg.set_num_threads(before)


def test_set_and_get():
    mg.set_num_threads(3)
    assert mg.get_num_threads() == 3
    mg.set_num_threads(1)
    assert mg.get_num_threads() == 1


@pytest.mark.parametrize("bad,error", [(0, mg.ArgumentError), (-2, mg.ArgumentError), ("2", mg.ArgumentTypeError),
                                       (True, mg.ArgumentTypeError), (1.5, mg.ArgumentTypeError)])
def test_bad_thread_counts(bad, error):
    with pytest.raises(error, match="set_num_threads: n must be"):
        mg.set_num_threads(bad)


def test_default_follows_omp_num_threads(monkeypatch):
    monkeypatch.setitem(threads._state, "threads", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert mg.get_num_threads() == 5
    monkeypatch.setitem(threads._state, "threads", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert mg.get_num_threads() >= 1


def _dcgan_layers():
    """A transposed convolution and a convolution whose buffers are large enough to be split."""
    x = mg.input_variable((64, 8, 8), dtype=np.float32, name="x")
    up = L.ConvolutionTranspose((4, 4), 32, strides=2, pad=True, output_shape=16, name="up")(x)
    down = L.Convolution((4, 4), 64, strides=2, pad=True, name="down")(mg.relu(up))
    return x, down


def test_every_thread_count_gives_the_same_bits():
    x, y = _dcgan_layers()
    data = np.random.default_rng(0).standard_normal((32, 64, 8, 8)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        mg.set_num_threads(n)
        state = y.forward({x: data})
        grads = y.backward(state)
        results.append([state[y], *(grads[p] for p in y.parameters)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_ranges_cover_the_count_once():
    mg.set_num_threads(3)
    seen = np.zeros(10, int)
    lock = threading.Lock()

    def mark(lo, hi):
        with lock:
            seen[lo:hi] += 1

    threads.parallel(mark, 10, 10 * threads.MIN_PART_BYTES)
    assert seen.tolist() == [1] * 10


def test_small_passes_stay_on_the_calling_thread():
    mg.set_num_threads(4)
    names = []
    threads.parallel(lambda lo, hi: names.append(threading.current_thread().name), 8, threads.MIN_PART_BYTES)
    assert names == [threading.current_thread().name]


def test_an_error_in_any_range_is_raised_after_every_range_ends():
    mg.set_num_threads(2)
    finished = []

    def work(lo, hi):
        if lo > 0:
            raise MemoryError("range failed")
        finished.append((lo, hi))

    with pytest.raises(MemoryError, match="range failed"):
        threads.parallel(work, 2, 4 * threads.MIN_PART_BYTES)
    assert finished == [(0, 1)]


def test_a_pass_inside_a_range_runs_there():
    mg.set_num_threads(2)
    inner = []

    def outer(lo, hi):
        threads.parallel(lambda a, b: inner.append((lo, a, b)), 4, 8 * threads.MIN_PART_BYTES)

    threads.parallel(outer, 2, 4 * threads.MIN_PART_BYTES)
    assert sorted(inner) == [(0, 0, 4), (1, 0, 4)]


def test_user_threads_share_the_pool():
    mg.set_num_threads(2)
    x, y = _dcgan_layers()
    data = np.random.default_rng(1).standard_normal((32, 64, 8, 8)).astype(np.float32)
    expected = y.eval({x: data})
    out = [None] * 4

    def run(i):
        out[i] = y.eval({x: data})

    workers = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for result in out:
        np.testing.assert_array_equal(result, expected)


# elementwise chains by chunks (map_chunks / chunked) ------------------------------------------------

def test_map_chunks_covers_every_row_once_and_passes_broadcast_operands_whole():
    mg.set_num_threads(2)
    out = np.zeros((40, 3, 1000), np.float32)
    row_ids = np.arange(40, dtype=np.float32).reshape(40, 1, 1) * np.ones((1, 3, 1000), np.float32)
    stats = np.full((1, 3, 1), 2.0, np.float32)
    seen = []

    def fn(o, rows, s, nothing):
        assert s.shape == (1, 3, 1) and np.shares_memory(s, stats) and nothing is None and o.shape[1:] == (3, 1000)
        seen.append(o.shape[0])
        o += rows * s

    threads.map_chunks(fn, out, row_ids, stats, None, chunk_bytes=48_000)
    np.testing.assert_array_equal(out, 2 * row_ids)
    assert sum(seen) == 40 and max(seen) == 4 and len(seen) >= 10  # 12,000 bytes a row: 4 rows a chunk


def test_small_arrays_are_one_call():
    calls = []
    out = np.zeros((8, 10), np.float32)
    threads.map_chunks(lambda o: calls.append(o.shape), out)
    assert calls == [(8, 10)]
    a = np.ones((8, 10), np.float32)
    assert threads.chunked(lambda x: x, a) is a  # no copy: f's own result


def split(monkeypatch, n: int, chunk: int) -> None:
    """Run the chains on ``n`` threads in chunks of ``chunk`` bytes (1 << 40: one pass)."""
    mg.set_num_threads(n)
    monkeypatch.setattr(threads, "CHUNK_BYTES", chunk)


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "softplus", "leaky_relu", "exp", "log", "sqrt"])
def test_chunked_unary_ops_give_the_same_bits_as_one_pass(op, monkeypatch):
    """Forward and gradient of a unary op on a 4 MiB operand, split in chunks and threads, equal the
    whole-array formulas bit for bit."""
    rng = np.random.default_rng(1)
    data = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    if op in ("log", "sqrt"):
        data = np.abs(data) + 0.1
    x = mg.input_variable((16, 32, 32), name="x")
    y = getattr(mg, op)(x) if op != "leaky_relu" else mg.leaky_relu(x, 0.2)
    results = []
    for n, chunk in ((1, 1 << 40), (2, threads.CHUNK_BYTES), (3, 10_000)):
        split(monkeypatch, n, chunk)
        state = y.forward({x: data})
        results.append((state[y], y.backward(state, wrt=[x])[x]))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_batch_normalization_and_learners_are_the_same_bits_for_every_split(monkeypatch):
    """A batch-normalized layer trained two Adam steps and two momentum steps: values, gradients and
    parameters equal whatever the thread count and chunk size."""
    def train(n, chunk):
        split(monkeypatch, n, chunk)
        mg.set_seed(0)
        x = mg.input_variable((32, 16, 16), name="x")
        y = L.Sequential([L.Convolution((3, 3), 32, pad=True), L.BatchNormalization(map_rank=1), mg.relu,
                          L.Dense(10)])(x)
        loss = mg.reduce_sum(mg.square(y))
        trainers = [mg.Trainer(y, loss, [mg.learners.adam(y.parameters, 1e-3)]),
                    mg.Trainer(y, loss, [mg.learners.momentum_sgd(y.parameters, 1e-3, 0.9, nesterov=True)])]
        data = np.random.default_rng(2).standard_normal((48, 32, 16, 16)).astype(np.float32)
        for trainer in trainers:
            for _ in range(2):
                trainer.train_minibatch({x: data})
        return [p.value.copy() for p in y.parameters] + [c.value.copy() for c in y.constants]

    whole = train(1, 1 << 40)
    for n, chunk in ((2, threads.CHUNK_BYTES), (3, 20_000)):
        for a, b in zip(whole, train(n, chunk)):
            np.testing.assert_array_equal(a, b)


def test_chunks_follow_the_memory_order_and_keep_the_layout():
    """A batch-last activation (channels outermost in memory) is cut into channel blocks, each one
    contiguous, and a chunked result keeps its operand's layout."""
    mg.set_num_threads(1)
    x = np.random.default_rng(3).standard_normal((16, 8, 64, 64)).astype(np.float32)  # (C, H, W, B) in memory
    batch_first = x.transpose(3, 0, 1, 2)
    blocks = []

    def fn(o, a):
        blocks.append(o.shape)
        assert o.flags.c_contiguous and a.flags.c_contiguous
        np.negative(a, out=o)

    out = np.empty_like(batch_first)
    threads.map_chunks(fn, out, batch_first, chunk_bytes=64 << 10)
    np.testing.assert_array_equal(out, -batch_first)
    assert blocks[0] == (1, 8, 64, 64) and len(blocks) == 16  # one channel (128 KiB) a chunk
    result = threads.chunked(np.negative, batch_first, chunk_bytes=64 << 10)
    assert result.strides == batch_first.strides
    np.testing.assert_array_equal(result, -batch_first)


def test_a_gradient_laid_out_unlike_its_activation_is_chunked_to_the_same_values():
    """ReLU's backward with a batch-first output gradient and a batch-last activation (numpy's whole
    pass strides through one of them) takes the chunked path: the same values, laid out as the
    activation; with both laid out alike it is numpy's own product."""
    mg.set_num_threads(2)
    rng = np.random.default_rng(4)
    data = np.ascontiguousarray(rng.standard_normal((64, 32, 16, 16)).astype(np.float32).transpose(1, 2, 3, 0))
    batch_last = data.transpose(3, 0, 1, 2)
    g = rng.standard_normal(batch_last.shape).astype(np.float32)
    assert not threads.same_layout(g, batch_last) and threads.same_layout(g, g.copy())
    x = mg.input_variable((32, 16, 16), name="x")
    y = mg.relu(x)
    state = y.forward({x: batch_last})
    grad = y.backward(state, root_gradient=g, wrt=[x])[x]
    np.testing.assert_array_equal(grad, g * (batch_last > 0))
    assert grad.strides == batch_last.strides


def test_a_broadcast_operand_gives_a_c_ordered_result_as_numpy_does(monkeypatch):
    """A fed array made by np.broadcast_to (stride 0 on the batch axis): the chunked result is laid out
    as numpy's own, so what sums it afterwards gets the same bits whatever the chunk size."""
    rng = np.random.default_rng(5)
    feed = np.broadcast_to(rng.standard_normal((1, 64, 32, 32)).astype(np.float32), (16, 64, 32, 32))
    assert threads.is_broadcast(feed) and threads.empty_as(feed).flags.c_contiguous
    x = mg.input_variable((64, 32, 32), name="x")
    y = mg.reduce_sum(mg.sigmoid(x))
    results = []
    for chunk in (1 << 40, threads.CHUNK_BYTES, 10_000):
        split(monkeypatch, 2, chunk)
        results.append(y.eval({x: feed}))
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_chunked_probes_broadcast_operands_by_their_own_shape():
    a, b = np.ones((8, 100), np.float32), np.arange(8, dtype=np.float32).reshape(8, 1)
    np.testing.assert_array_equal(threads.chunked(np.add, a, b, chunk_bytes=64), a + b)
    np.testing.assert_array_equal(threads.chunked(np.add, a, np.ones(100, np.float32), chunk_bytes=64), a + 1)


def test_the_callers_errstate_holds_on_every_thread():
    """np.errstate is per thread: the pool threads take the caller's, so an invalid value raises
    whichever range it falls in."""
    mg.set_num_threads(2)
    p = mg.parameter(init=np.ones((2048, 1024), np.float32))
    p.value[-1] = np.inf
    g = np.zeros_like(p.value)
    g[-1] = np.inf  # inf - inf in the last rows: the second thread's range
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        mg.learners.sgd([p], 0.1).update({p: g}, 1)


def test_a_length_1_outer_axis_does_not_stop_the_split():
    """(1, 4096, 1024): the batch axis of length 1 is not the axis cut (its stride means nothing)."""
    mg.set_num_threads(2)
    out = np.empty((1, 4096, 1024), np.float32)
    assert threads.outer_axis(out) == 1
    shapes = []
    threads.map_chunks(lambda o: shapes.append(o.shape) or o.fill(1), out)
    assert len(shapes) > 1 and (out == 1).all()


def test_batch_norm_of_a_broadcast_feed_keeps_whole_statistics(monkeypatch):
    """A broadcast operand (stride 0 on the batch axis) is laid out in C order, batch outermost: the
    chunks would split the statistics, so the whole-array reductions serve it."""
    split(monkeypatch, 2, 1024)
    rng = np.random.default_rng(6)
    x = mg.input_variable((4, 8, 8), dtype=np.float64, name="x")
    y = L.BatchNormalization(map_rank=1)(x)
    base = rng.standard_normal((1, 4, 8, 8)) + np.arange(4).reshape(1, 4, 1, 1)
    feed = np.broadcast_to(base, (6, 4, 8, 8))
    out = y.eval({x: feed}, training=True)
    mean = feed.mean((0, 2, 3), keepdims=True)
    expected = (feed - mean) / np.sqrt(feed.var((0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
