"""Threads: concurrent eval/grad of one model with many feed signatures (more than the program cache
holds), and trainers with dropout in threads, must give exactly what the same calls give in sequence."""
from __future__ import annotations

import sys
import threading

import numpy as np

import minigraph as mg

from tally import is_clean, record, scaled

THREADS = 4


def _in_threads(work, count: int) -> list:
    """Run ``work(i)`` for i in range(count) in threads (started together); results in order, and
    the exceptions they raised."""
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def _model():
    mg.set_seed(5)
    x = mg.input_variable((2, "H", "W"), dtype=np.float64, name="x")
    h = mg.layers.Convolution((3, 3), num_filters=3, pad=True, activation=mg.relu)(x)
    y = mg.layers.ConvolutionTranspose((2, 2), num_filters=2, strides=2)(h)
    return x, y, mg.reduce_sum(y * y)


def test_concurrent_eval_and_grad_with_many_signatures():
    x, y, loss = _model()
    calls = scaled(30)  # per thread; 36 signatures (H, W in 3..8, batch 1..2 -> more than 16 programs)
    rng = np.random.default_rng(0)
    plans = [[(rng.integers(3, 9, 2), int(rng.integers(1, 3)), int(rng.integers(2**31))) for _ in range(calls)]
             for _ in range(THREADS)]

    def work(i):
        out = []
        for (h, w), batch, seed in plans[i]:
            data = np.random.default_rng(seed).standard_normal((batch, 2, int(h), int(w)))
            grads = loss.grad({x: data})
            out.append((y.eval({x: data}), [grads[p] for p in loss.parameters]))
        return out
    threaded, errors = _in_threads(work, THREADS)
    escapes = sum(not is_clean(e) for e in errors)
    record("threads: eval/grad, many signatures", THREADS * calls * 2, len(errors) - escapes, escapes)
    assert not errors, errors[:3]
    sequential = [work(i) for i in range(THREADS)]
    for got, want in zip(threaded, sequential):
        for (v1, g1), (v2, g2) in zip(got, want):
            assert np.array_equal(v1, v2) and all(np.array_equal(a, b) for a, b in zip(g1, g2))


def test_cache_eviction_under_contention():
    """A small graph compiles in little time, so 8 threads with 40 signatures evict cached programs and
    plans all the time; the interpreter switches threads as often as it can."""
    x = mg.input_variable(("H",), dtype=np.float64)
    y = mg.reduce_sum(x * 2.0 + 1.0)
    calls = scaled(150)

    def work(i):
        for k in range(calls):
            n = 1 + (k * 7 + i) % 40
            assert y.eval({x: np.ones((1, n))})[0] == 3.0 * n
            assert np.all(y.grad({x: np.ones((1, n))}, wrt=x) == 2.0)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _, errors = _in_threads(work, 8)
    finally:
        sys.setswitchinterval(interval)
    escapes = sum(not is_clean(e) for e in errors)
    record("threads: eval/grad, many signatures", 8 * calls * 2, len(errors) - escapes, escapes)
    assert not errors, errors[:3]


def _trainer(seed: int):
    mg.set_seed(seed)
    x = mg.input_variable((6,), dtype=np.float64, name="x")
    t = mg.input_variable((1,), dtype=np.float64, name="t")
    h = mg.dropout(mg.layers.Dense(16, activation=mg.relu)(x), 0.5)
    y = mg.layers.Dense(1)(h)
    loss = mg.squared_error(y, t)
    return mg.Trainer(y, loss, mg.learners.sgd(y.parameters, lr=0.01)), x, t, y


def test_trainers_with_dropout_in_threads_match_sequential_runs():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((64, 6))
    target = data.sum(axis=1, keepdims=True)
    steps = scaled(8)

    def train(parts):
        trainer, x, t, y = parts
        for s in range(steps):
            rows = slice((8 * s) % 64, (8 * s) % 64 + 8)
            trainer.train_minibatch({x: data[rows], t: target[rows]})
        return [p.value.copy() for p in y.parameters]
    sequential = [train(_trainer(seed)) for seed in range(THREADS)]
    trainers = [_trainer(seed) for seed in range(THREADS)]
    threaded, errors = _in_threads(lambda i: train(trainers[i]), THREADS)
    record("threads: trainers with dropout", THREADS * steps, 0, escapes=len(errors))
    assert not errors, errors[:3]
    for got, want in zip(threaded, sequential):
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert not all(np.array_equal(a, b) for a, b in zip(sequential[0], sequential[1]))  # the runs differ
