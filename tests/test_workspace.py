"""The kernels' reused buffers: reuse, growth, one set per thread, release; results never alias them."""
import threading

import numpy as np

import minigraph as mg
from minigraph import layers as L
from minigraph import workspace as ws


def test_reuse_and_growth():
    mg.empty_cache()
    a = ws.workspace("test", (4, 8), np.float32)
    b = ws.workspace("test", (2, 8), np.float64)
    assert a.shape == (4, 8) and a.dtype == np.float32 and b.dtype == np.float64 and b.flags.c_contiguous
    assert np.shares_memory(a, b)  # the same memory, seen with another shape and dtype
    c = ws.workspace("test", (100, 8), np.float32)  # larger: a new buffer
    assert not np.shares_memory(a, c)
    assert ws.cached_bytes() >= c.nbytes
    mg.empty_cache()
    assert ws.cached_bytes() == 0


def test_one_set_of_buffers_per_thread():
    mg.empty_cache()
    mine = ws.workspace("test", (16,), np.float32)
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(ws.workspace("test", (16,), np.float32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_empty_arrays():
    assert ws.workspace("test", (0, 3), np.float32).shape == (0, 3)


def test_results_never_alias_the_buffers():
    mg.empty_cache()
    x = mg.input_variable((8, 4, 4), name="x")
    y = L.ConvolutionTranspose((4, 4), 4, strides=2, pad=True, output_shape=8)(x)
    z = L.Convolution((3, 3), 8, strides=2, pad=True)(x)
    data = np.random.default_rng(0).standard_normal((5, 8, 4, 4))
    first = y.eval({x: data})
    kept = first.copy()
    z.eval({x: data})  # reuses the buffers
    y.eval({x: 2 * data})
    np.testing.assert_array_equal(first, kept)
    buffers = [a for b in ws._ALL for a in b.arrays.values()]
    assert buffers and not any(np.shares_memory(first, a) for a in buffers)
