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
