"""Learners: update rules against hand-computed steps and torch.optim; schedules; state round trips."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import learners as L


def _param(value, dtype=np.float64):
    return mg.parameter(init=np.asarray(value, dtype=dtype))


def test_sgd_step_by_hand():
    p = _param([1.0, -2.0])
    L.sgd([p], lr=0.5).update({p: np.array([0.2, 0.4])}, 4)
    np.testing.assert_allclose(p.value, [0.9, -2.2])


def test_momentum_sgd_two_steps_by_hand():
    p = _param([1.0])
    lr, m = 0.1, 0.9
    learner = L.momentum_sgd([p], lr, m)
    learner.update({p: np.array([1.0])}, 1)   # v = 1, w = 1 - 0.1
    learner.update({p: np.array([2.0])}, 1)   # v = 0.9 + 2 = 2.9, w = 0.9 - 0.29
    np.testing.assert_allclose(p.value, [0.61])


def test_unit_gain_momentum_by_hand():
    p = _param([0.0])
    learner = L.momentum_sgd([p], 1.0, 0.5, unit_gain=True)
    learner.update({p: np.array([2.0])}, 1)   # v = 0.5 * 2 = 1
    learner.update({p: np.array([2.0])}, 1)   # v = 0.5 + 1 = 1.5
    np.testing.assert_allclose(p.value, [-2.5])


def test_nesterov_by_hand():
    p = _param([0.0])
    learner = L.nesterov([p], 0.1, 0.5)
    learner.update({p: np.array([1.0])}, 1)   # v = 1, w -= 0.1 * (1 + 0.5)
    learner.update({p: np.array([1.0])}, 1)   # v = 1.5, w -= 0.1 * (1 + 0.75)
    np.testing.assert_allclose(p.value, [-0.15 - 0.175])


def test_adam_first_step_moves_by_lr_times_sign():
    # after one step the bias-corrected ratio m / sqrt(v) is g / |g|
    p = _param([1.0, 1.0])
    L.adam([p], lr=0.01, epsilon=0.0).update({p: np.array([3.0, -0.5])}, 2)
    np.testing.assert_allclose(p.value, [0.99, 1.01])


def test_l2_and_clipping_by_hand():
    p = _param([2.0, -4.0])
    L.sgd([p], 1.0, l2_regularization_weight=0.1, gradient_clipping_threshold_per_sample=1.0).update(
        {p: np.array([5.0, -0.5])}, 1)
    # clip to [-1, 1] then add 0.1 * w: g = (1 + 0.2, -0.5 - 0.4)
    np.testing.assert_allclose(p.value, [0.8, -3.1])
    q = _param([0.0, 0.0])
    L.sgd([q], 1.0, gradient_clipping_threshold_per_sample=1.0, gradient_clipping_with_truncation=False).update(
        {q: np.array([3.0, 4.0])}, 1)
    np.testing.assert_allclose(q.value, [-0.6, -0.8])   # rescaled to norm 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda ps: L.sgd(ps, 0.1),
    lambda ps: L.momentum_sgd(ps, 0.1, 0.9),
    lambda ps: L.adam(ps, 0.01),
])
def test_updates_in_place_keep_dtype(make, dtype):
    p = _param(np.ones((2, 3)), dtype)
    buffer = p.value
    make([p]).update({p: np.full((2, 3), 0.5)}, 3)
    assert p.value is buffer and p.value.dtype == dtype
    assert np.all(p.value < 1)


def test_missing_or_misshaped_gradient_is_an_error_and_changes_nothing():
    a, b = _param([1.0]), _param([2.0])
    learner = L.adam([a, b], 0.1)
    with pytest.raises(ValueError, match="no gradient for"):
        learner.update({a: np.array([1.0])}, 1)
    with pytest.raises(ValueError, match="shape"):
        learner.update({a: np.array([1.0]), b: np.ones(2)}, 1)
    assert a.value[0] == 1.0 and learner.count == 0 and learner.b1_power == 1.0


def test_learner_arguments_are_checked():
    with pytest.raises(TypeError, match="Parameters"):
        L.sgd([mg.constant(1.0)], 0.1)
    with pytest.raises(ValueError, match="at least one"):
        L.sgd([], 0.1)
    with pytest.raises(ValueError, match="gradient_clipping"):
        L.sgd([_param([1.0])], 0.1, gradient_clipping_threshold_per_sample=0)


def test_learner_takes_a_node_or_a_layer_and_deduplicates():
    p = _param([1.0, 2.0])
    y = p * p + p
    assert L.sgd(y, 0.1).parameters == [p]
    assert L.sgd([p, p], 0.1).parameters == [p]
    dense = mg.layers.Dense(3)
    dense(mg.input_variable(2))
    assert L.sgd(dense, 0.1).parameters == dense.parameters and len(dense.parameters) == 2


# schedules ------------------------------------------------------------------------------------
def test_piecewise_schedule_and_epoch_size():
    s = L.learning_parameter_schedule([(2, 0.1), (1, 0.01)])
    assert [s(i) for i in range(5)] == [0.1, 0.1, 0.01, 0.01, 0.01]
    s = L.learning_parameter_schedule([1.0, 0.5], epoch_size=3)
    assert [s(i) for i in range(7)] == [1.0] * 3 + [0.5] * 4
    assert L.momentum_schedule(0.9)(100) == 0.9


def test_decay_schedules():
    s = L.step_decay(1.0, 0.5, every=10)
    assert (s(0), s(9), s(10), s(25)) == (1.0, 1.0, 0.5, 0.25)
    c = L.cosine_decay(1.0, total=10, final=0.1, warmup=2)
    assert c(0) == pytest.approx(0.5) and c(1) == pytest.approx(1.0)
    assert c(2) == pytest.approx(1.0) and c(6) == pytest.approx(0.55) and c(10) == pytest.approx(0.1)
    assert c(100) == pytest.approx(0.1)


@pytest.mark.parametrize("bad, error", [([], TypeError), ([(0, 0.1)], ValueError), ([(1, 2, 3)], ValueError),
                                        (["x"], TypeError), ("0.1", TypeError)])
def test_bad_schedules(bad, error):
    with pytest.raises(error):
        L.learning_parameter_schedule(bad)


def test_learner_follows_its_schedule():
    p = _param([0.0])
    learner = L.sgd([p], L.learning_parameter_schedule([(1, 1.0), (1, 0.1)]))
    for _ in range(3):
        learner.update({p: np.array([1.0])}, 1)
    np.testing.assert_allclose(p.value, [-1.2])
    assert learner.learning_rate() == 0.1


# state ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda ps: L.momentum_sgd(ps, 0.1, 0.9), lambda ps: L.adam(ps, 0.01)])
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3) for _ in range(6)]
    p = _param(np.zeros(3))
    a = make([p])
    for g in grads[:3]:
        a.update({p: g}, 1)
    state, saved = a.state_dict(), p.value.copy()
    q = _param(saved)
    b = make([q])
    b.load_state_dict(state)
    for g in grads[3:]:
        a.update({p: g}, 1)
        b.update({q: g}, 1)
    np.testing.assert_array_equal(p.value, q.value)


def test_load_state_dict_rejects_mismatches():
    p = _param(np.zeros(3))
    learner = L.momentum_sgd([p], 0.1, 0.9)
    learner.update({p: np.ones(3)}, 1)
    with pytest.raises(ValueError, match="cannot be loaded"):
        L.adam([p], 0.1).load_state_dict(learner.state_dict())
    with pytest.raises(ValueError, match=r"expected float64 \(2,\)"):
        L.momentum_sgd([_param(np.zeros(2))], 0.1, 0.9).load_state_dict(learner.state_dict())


@pytest.mark.parametrize("spoil, error", [
    (lambda state: state.update(extra={}), ValueError),
    (lambda state: state.update(extra={"b1_power": "x", "b2_power": 1.0}), TypeError),
    (lambda state: state.update(extra={"b1_power": float("nan"), "b2_power": 0.5}), ValueError),
    (lambda state: state.update(extra={"b1_power": 1.0, "b2_power": 0.5}), ValueError),  # would divide by zero
    (lambda state: state.update(count=-2), ValueError),
    (lambda state: state["slots"][0].pop("mean"), ValueError),  # a missing buffer would restart from zeros
    (lambda state: state["slots"][0].update(mean=np.zeros(3, np.complex64)), ValueError),
    (lambda state: state["slots"][0].update(mean=np.full(3, np.nan)), ValueError),
])
def test_a_state_that_does_not_fit_leaves_the_learner_as_it_was(spoil, error):
    p = _param(np.zeros(3))
    source, target = L.adam([p], 0.1), L.adam([p], 0.1)
    for learner, steps in ((source, 3), (target, 1)):
        for _ in range(steps):
            learner.update({p: np.ones(3)}, 2)
    state, before = source.state_dict(), target.state_dict()
    spoil(state)
    with pytest.raises(error):
        target.load_state_dict(state)
    after = target.state_dict()
    assert (after["count"], after["samples_seen"], after["extra"]) == (1, 2, before["extra"])
    assert all(np.array_equal(after["slots"][0][k], before["slots"][0][k]) for k in ("mean", "variance"))


# against torch.optim --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "sgd_l2"])
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    p = _param(w0)
    t = torch.tensor(w0, requires_grad=True)
    mine, theirs = {
        "sgd": (lambda: L.sgd([p], 0.1), lambda: torch.optim.SGD([t], lr=0.1)),
        "momentum": (lambda: L.momentum_sgd([p], 0.1, 0.9), lambda: torch.optim.SGD([t], lr=0.1, momentum=0.9)),
        "nesterov": (lambda: L.nesterov([p], 0.1, 0.9),
                     lambda: torch.optim.SGD([t], lr=0.1, momentum=0.9, nesterov=True)),
        "adam": (lambda: L.adam([p], 0.01, 0.8, 0.99, 1e-6),
                 lambda: torch.optim.Adam([t], lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
        "sgd_l2": (lambda: L.sgd([p], 0.1, l2_regularization_weight=0.01),
                   lambda: torch.optim.SGD([t], lr=0.1, weight_decay=0.01)),
    }[name]
    learner, opt = mine(), theirs()
    for g in grads:
        learner.update({p: g}, 8)
        t.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_momentum_follows_its_schedule():
    p = _param([0.0])
    learner = L.momentum_sgd([p], 1.0, L.momentum_schedule([(1, 0.0), (1, 0.5)]))
    learner.update({p: np.array([1.0])}, 1)   # m = 0: v = 1
    learner.update({p: np.array([1.0])}, 1)   # m = 0.5: v = 0.5 + 1
    np.testing.assert_allclose(p.value, [-2.5])
