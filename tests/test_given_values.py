"""Runs with some node values supplied (``forward(..., given={node: array})``): the part above a
given node does not run, gradients stop there, and chaining two backward passes through the given
node reproduces the gradient of the whole graph."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L


def _two_stage(seed=0):
    rng = np.random.default_rng(seed)
    z = mg.input_variable(3, dtype=np.float64, name="z")
    real = mg.input_variable(4, dtype=np.float64, name="real")
    w = mg.parameter(init=rng.standard_normal((3, 4)), name="w")
    bn = L.BatchNormalization(momentum=0.5)
    fake = mg.tanh(bn(mg.times(z, w)))  # what the first stage computes
    v = mg.parameter(init=rng.standard_normal((4, 1)), name="v")
    score = mg.reduce_sum(mg.sigmoid(mg.times(fake, v)) + mg.times(real, v))
    return z, real, w, bn, fake, v, score


def test_given_value_replaces_the_part_above_it():
    z, real, w, bn, fake, v, score = _two_stage()
    rng = np.random.default_rng(1)
    Z, R = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    full = score.eval({z: Z, real: R})
    stage1 = fake.forward({z: Z})
    running = bn.running_mean.value.copy()
    stage2 = score.forward({real: R}, given={fake: stage1[fake]}, training=True)  # no feed for z
    np.testing.assert_array_equal(stage2[score], full)
    np.testing.assert_array_equal(bn.running_mean.value, running)  # batch norm above `fake` did not run
    assert z not in stage2.program.index and w not in stage2.program.index


def test_chained_backward_through_the_given_node_is_the_full_gradient():
    z, real, w, _, fake, v, score = _two_stage()
    rng = np.random.default_rng(2)
    Z, R = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    full = score.grad({z: Z, real: R}, wrt=[w, v])
    stage1 = fake.forward({z: Z})
    stage2 = score.forward({real: R}, given={fake: stage1[fake]})
    top = score.backward(stage2, wrt=[fake, v, w])
    np.testing.assert_array_equal(top[w], np.zeros_like(w.value))  # gradients stop at the given node
    assert top[fake].shape == (5, 4)
    bottom = fake.backward(stage1, top[fake], wrt=[w])
    np.testing.assert_allclose(bottom[w], full[w], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(top[v], full[v], rtol=1e-13, atol=1e-15)


def test_given_value_alone_sets_the_batch():
    z, real, w, _, fake, v, score = _two_stage()
    head = mg.reduce_sum(mg.sigmoid(mg.times(fake, v)))
    values = np.random.default_rng(3).standard_normal((6, 4))
    out = head.forward({}, given={fake: values})[head]
    np.testing.assert_allclose(out, (1 / (1 + np.exp(-values @ v.value))).sum(1))


def test_given_programs_are_cached_per_given_set():
    z, real, w, _, fake, v, score = _two_stage()
    rng = np.random.default_rng(4)
    Z, R = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    values = fake.eval({z: Z})
    a = score.forward({real: R}, given={fake: values}).program
    assert score.forward({real: R}, given={fake: values}).program is a
    b = score.forward({z: Z, real: R}).program
    assert b is not a and z in b.index


def test_given_value_errors():
    z, real, w, _, fake, v, score = _two_stage()
    R = np.zeros((2, 4))
    other = mg.input_variable(4, dtype=np.float64)
    with pytest.raises(mg.GraphError, match="is not a node of the graph"):
        score.forward({real: R}, given={other: R})
    with pytest.raises(mg.GraphError, match="dict of node -> array"):
        score.forward({real: R}, given=[fake])
    with pytest.raises(mg.ShapeError, match=r"does not match its shape \(4,\)"):
        score.forward({real: R}, given={fake: np.zeros((2, 5))})
    with pytest.raises(mg.ShapeError, match="leading batch axis"):
        score.forward({real: R}, given={fake: np.zeros(4)})
    with pytest.raises(mg.ShapeError, match="has 3 rows; the batch is 2"):
        score.forward({real: R}, given={fake: np.zeros((3, 4))})
    with pytest.raises(mg.GraphError, match="not an input of"):  # z lies above the given node
        score.forward({real: R, z: np.zeros((2, 3))}, given={fake: np.zeros((2, 4))})
    with pytest.raises(mg.GraphError, match="lies above the given nodes"):
        score.backward(score.forward({real: R}, given={fake: np.zeros((2, 4))}), wrt=[fake.inputs_direct[0]])
    with pytest.raises(mg.GraphError, match="lie above the given nodes"):
        score.forward({real: R}, keep=[fake.inputs_direct[0]], given={fake: np.zeros((2, 4))})
