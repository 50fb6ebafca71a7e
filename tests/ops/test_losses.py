"""Losses and metrics: per-sample values vs numpy, gradients (incl. broadcasting), stability, errors."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.ops.losses import LOSSES

from gradcheck import check_gradients, param, recording, variable

RNG = np.random.default_rng(0)


def _np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _probabilities(shape):
    return RNG.uniform(0.05, 0.95, shape)


CASES = {
    "squared_error": (mg.squared_error, lambda o, t: ((o - t) ** 2).reshape(len(o), -1).sum(1), RNG.standard_normal),
    "binary_cross_entropy": (mg.binary_cross_entropy,
                             lambda o, t: -(t * np.log(o) + (1 - t) * np.log(1 - o)).reshape(len(o), -1).sum(1),
                             _probabilities),
    "binary_cross_entropy_with_logits": (mg.binary_cross_entropy_with_logits,
                                         lambda x, t: (np.logaddexp(0, x) - x * t).reshape(len(x), -1).sum(1),
                                         RNG.standard_normal),
    "cross_entropy_with_softmax": (mg.cross_entropy_with_softmax,
                                   lambda o, t: -(t * _np_log_softmax(o, -1)).reshape(len(o), -1).sum(1),
                                   RNG.standard_normal),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_loss_values_and_gradients(name, shape):
    fn, ref, draw = CASES[name]
    o, t = variable(shape, "o"), variable(shape, "t")
    loss = fn(o, t)
    assert loss.shape == ()
    feed = {o: draw((4, *shape)), t: _probabilities((4, *shape))}
    out = loss.eval(feed)
    assert out.shape == (4,)
    np.testing.assert_allclose(out, ref(feed[o], feed[t]), rtol=1e-12)
    check_gradients(loss, feed)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_with_broadcast_target_parameter(name):
    fn, _, draw = CASES[name]
    o = variable((3, 4), "o")
    t = param(_probabilities((4,)), "t")
    check_gradients(fn(o, t), {o: draw((2, 3, 4))}, wrt=[o, t])


def test_loss_float32_per_sample_and_reduced_for_training():
    o, t = mg.input_variable((3,)), mg.input_variable((3,))
    loss = mg.reduce_mean(mg.squared_error(o, t))
    feed = {o: np.ones((2, 3), np.float32), t: np.zeros((2, 3), np.float32)}
    out = loss.eval(feed)
    assert out.dtype == np.float32 and out.tolist() == [3.0, 3.0]


def test_cross_entropy_is_stable_and_matches_one_hot_formula():
    o, t = mg.input_variable((3,)), mg.input_variable((3,))
    scores = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], np.float32)
    onehot = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    loss = mg.cross_entropy_with_softmax(o, t)
    np.testing.assert_allclose(loss.eval({o: scores, t: onehot}), [0.0, np.log(3)], rtol=1e-6, atol=1e-6)
    g = loss.grad({o: scores, t: onehot}, wrt=o)
    np.testing.assert_allclose(g, [[0, 0, 0], [1 / 3, 1 / 3, -2 / 3]], atol=1e-6)


def test_cross_entropy_along_a_channel_axis():
    o, t = variable((4, 2, 3), "o"), variable((4, 2, 3), "t")
    feed = {o: RNG.standard_normal((2, 4, 2, 3)), t: _probabilities((2, 4, 2, 3))}
    loss = mg.cross_entropy_with_softmax(o, t, axis=0)
    np.testing.assert_allclose(loss.eval(feed), -(feed[t] * _np_log_softmax(feed[o], 1)).sum((1, 2, 3)))
    check_gradients(loss, feed)


def test_binary_cross_entropy_at_saturation_keeps_a_gradient():
    # logs clamped at -100 (finite loss); the output gradient (o - t) / max(o(1 - o), 1e-12) never vanishes
    o, t = mg.input_variable((3,)), mg.input_variable((3,))
    loss = mg.binary_cross_entropy(o, t)
    feed = {o: np.array([[0.0, 1.0, 1e-9]], np.float32), t: np.array([[1.0, 0.0, 1.0]], np.float32)}
    np.testing.assert_allclose(loss.eval(feed), [200 - np.log(np.float32(1e-9))], rtol=1e-6)
    np.testing.assert_allclose(loss.grad(feed, wrt=o), [[-1e12, 1e12, -1e9]], rtol=1e-5)


SATURATED = np.array([[0.0, 1e-30, 1e-9, 0.3, 1 - 1e-7, 1.0]] * 2)
SATURATED_TARGETS = np.array([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0, 1.0, 1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_matches_torch_bceloss(dtype):
    torch = pytest.importorskip("torch")
    o, t = mg.input_variable((6,), dtype), mg.input_variable((6,), dtype)
    feed = {o: SATURATED.astype(dtype), t: SATURATED_TARGETS.astype(dtype)}
    loss = mg.binary_cross_entropy(o, t)
    to = torch.tensor(feed[o], requires_grad=True)
    tt = torch.tensor(feed[t], requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy(to, tt, reduction="none").sum(1)
    ref.sum().backward()
    np.testing.assert_allclose(loss.eval(feed), ref.detach().numpy(), rtol=1e-6)
    grads = loss.grad(feed, wrt=[o, t])
    np.testing.assert_allclose(grads[o], to.grad.numpy(), rtol=1e-5)
    # the target gradient log(1 - o) - log(o) uses the clamped logs: finite (+-100) where PyTorch's is infinite
    finite = np.isfinite(tt.grad.numpy())
    np.testing.assert_allclose(grads[t][finite], tt.grad.numpy()[finite], rtol=1e-5)
    np.testing.assert_array_equal(grads[t][~finite], np.sign(tt.grad.numpy()[~finite]) * 100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_logits_matches_torch_and_is_stable(dtype):
    torch = pytest.importorskip("torch")
    scores = np.array([[-1000.0, -30.0, -1.0, 0.0, 2.0, 1000.0]] * 2, dtype)
    x, t = mg.input_variable((6,), dtype), mg.input_variable((6,), dtype)
    feed = {x: scores, t: SATURATED_TARGETS.astype(dtype)}
    loss = mg.binary_cross_entropy_with_logits(x, t)
    tx = torch.tensor(feed[x], requires_grad=True)
    tt = torch.tensor(feed[t], requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(tx, tt, reduction="none").sum(1)
    ref.sum().backward()
    value = loss.eval(feed)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-6)
    grads = loss.grad(feed, wrt=[x, t])
    np.testing.assert_allclose(grads[x], tx.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grads[t], tt.grad.numpy(), rtol=1e-6)


def test_binary_cross_entropy_refuses_outputs_that_are_not_probabilities():
    o, t = mg.input_variable((2,)), mg.input_variable((2,))
    with pytest.raises(mg.GraphError, match=r"BinaryCrossEntropy 'bce': output must hold probabilities in \[0, 1\]"):
        mg.binary_cross_entropy(o, t, name="bce").eval({o: [[0.5, 1.5]], t: [[1.0, 0.0]]})


def test_binary_cross_entropy_with_logits_has_no_onnx_form(tmp_path):
    pytest.importorskip("onnx")
    x, t = mg.input_variable((2,), name="x"), mg.input_variable((2,), name="t")
    with pytest.raises(mg.ExportError, match="BinaryCrossEntropyWithLogits.* has no ONNX converter"):
        mg.export_onnx(mg.binary_cross_entropy_with_logits(x, t), tmp_path / "loss.onnx")


def test_classification_error():
    o, t = mg.input_variable((4,)), mg.input_variable((4,))
    scores = np.array([[0.1, 0.7, 0.1, 0.1], [0.5, 0.2, 0.3, 0.0], [0.1, 0.3, 0.4, 0.2]], np.float32)
    labels = np.eye(4, dtype=np.float32)[[1, 3, 1]]
    np.testing.assert_array_equal(mg.classification_error(o, t).eval({o: scores, t: labels}), [0, 1, 1])
    np.testing.assert_array_equal(mg.classification_error(o, t, topN=2).eval({o: scores, t: labels}), [0, 1, 0])
    grads = mg.classification_error(o, t).grad({o: scores, t: labels}, wrt=o)
    np.testing.assert_array_equal(grads, np.zeros_like(scores))


def test_classification_error_averages_other_axes():
    o, t = mg.input_variable((2, 3)), mg.input_variable((2, 3))
    scores = np.array([[[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]]], np.float32)
    labels = np.array([[[1, 0, 0], [1, 0, 0]]], np.float32)
    assert mg.classification_error(o, t).eval({o: scores, t: labels}).tolist() == [0.5]


def test_loss_shape_errors_name_the_loss():
    with pytest.raises(mg.ShapeError, match=r"SquaredError 'l': cannot broadcast shapes \(3,\) and \(4,\)"):
        mg.squared_error(mg.input_variable((3,)), mg.input_variable((4,)), name="l")
    with pytest.raises(mg.ShapeError, match=r"CrossEntropyWithSoftmax #\d+: axis 1 is out of range"):
        mg.cross_entropy_with_softmax(mg.input_variable((3,)), mg.input_variable((3,)), axis=1)


@pytest.mark.parametrize("call,exc,match", [
    (lambda o: mg.cross_entropy_with_softmax(o, o, axis="x"), TypeError, "axis must be an int"),
    (lambda o: mg.classification_error(o, o, axis=0.0), TypeError, "axis must be an int"),
    (lambda o: mg.classification_error(o, o, topN=0), ValueError, "topN must be a positive int"),
])
def test_loss_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(mg.input_variable((3,)))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("wanted", [0, 1])
def test_loss_computes_only_the_wanted_gradient(name, wanted, monkeypatch):
    fn, _, sample = CASES[name]
    op, calls = LOSSES[name], []
    monkeypatch.setattr(op, "grads", recording(op.grads, calls))
    o, t = variable((4,), "o"), param(_probabilities(4), "t")
    fn(o, t).grad({o: sample((2, 4))}, wrt=[(o, t)[wanted]])
    assert calls == [wanted]
