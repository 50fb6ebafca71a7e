"""Trainer: convergence, mean-loss gradients, NaN safety, shared graphs (GAN), progress, callbacks."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import autodiff
from minigraph import learners as L


def _regression(seed=0, dtype=np.float32):
    """``y = x W + b`` with a per-sample squared error against ``t``; data from a known line."""
    mg.set_seed(seed)
    x = mg.input_variable(3, dtype=dtype, name="x")
    t = mg.input_variable(1, dtype=dtype, name="t")
    W = mg.parameter((3, 1), name="W")
    b = mg.parameter((1,), init=0.0, name="b")
    y = mg.times(x, W) + b
    loss = mg.square(y - t)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((96, 3)).astype(dtype)
    T = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(dtype)
    return x, t, W, b, y, loss, X, T


def test_fit_converges_on_a_tiny_regression():
    x, t, W, b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.momentum_sgd(y.parameters, 0.05, 0.9))
    history = trainer.fit({x: X, "t": T}, epochs=30, minibatch_size=16, seed=1)
    assert len(history["loss"]) == 30 and len(history["minibatch_loss"]) == 30 * 6
    assert history["loss"][-1] < 1e-4 < history["loss"][0]
    np.testing.assert_allclose(W.value.ravel(), [1.0, -2.0, 0.5], atol=1e-2)
    np.testing.assert_allclose(b.value, [0.3], atol=1e-2)
    assert trainer.total_number_of_samples_seen == 30 * 96 and trainer.step_count == 180
    assert trainer.test_minibatch({x: X, t: T}) < 1e-4


def test_step_uses_the_gradient_of_the_mean_loss():
    x, t, W, b, y, loss, X, T = _regression(dtype=np.float64)
    w0, b0 = W.value.copy(), b.value.copy()
    trainer = mg.Trainer(y, loss, L.sgd([W, b], 0.1))
    reported = trainer.train_minibatch({x: X[:8], t: T[:8]})
    residual = X[:8] @ w0 + b0 - T[:8]
    assert reported == pytest.approx(np.mean(residual ** 2))
    np.testing.assert_allclose(W.value, w0 - 0.1 * (2 * X[:8].T @ residual / 8))
    np.testing.assert_allclose(b.value, b0 - 0.1 * (2 * residual.mean(0)))
    assert trainer.previous_minibatch_loss_average == reported and trainer.previous_minibatch_sample_count == 8


@pytest.mark.parametrize("metric_in_loss_graph", [False, True])
def test_metric_is_averaged_per_sample(metric_in_loss_graph):
    x, t, W, b, y, loss, X, T = _regression(dtype=np.float64)
    metric = mg.abs(y - t)
    if metric_in_loss_graph:   # read from the training forward pass
        loss = mg.square(metric)
    trainer = mg.Trainer(y, (loss, metric), L.sgd(y.parameters, 0.1))
    before = np.mean(np.abs(X @ W.value + b.value - T))
    trainer.train_minibatch({x: X, t: T})
    after = np.mean(np.abs(X @ W.value + b.value - T))
    assert trainer.previous_minibatch_evaluation_average == pytest.approx(before)   # measured before the update
    assert trainer.test_minibatch({x: X, t: T}) == pytest.approx(after) and after < before


def test_one_training_forward_pass_gives_the_loss_and_a_metric_outside_its_graph(monkeypatch):
    """With dropout, the metric must see the loss's masks: per sample, loss = metric ** 2 on every step."""
    mg.set_seed(2)
    x = mg.input_variable(3, dtype=np.float64, name="x")
    t = mg.input_variable(1, dtype=np.float64, name="t")
    W = mg.parameter(init=np.array([[1.0], [2.0], [3.0]]), name="W")
    y = mg.times(mg.dropout(x, 0.5), W)
    loss, metric = mg.square(y - t), mg.abs(y - t)       # the metric is not an ancestor of the loss
    trainer = mg.Trainer(y, (loss, metric), L.sgd([W], 0.01))
    passes = []
    original = autodiff.forward
    monkeypatch.setattr(autodiff, "forward", lambda *args, **kwargs: passes.append(1) or original(*args, **kwargs))
    rng = np.random.default_rng(0)
    differs_from_eval_mode = 0
    for step in range(1, 11):
        feed = {x: rng.uniform(1, 2, (1, 3)), t: np.zeros((1, 1))}
        without_dropout = float(np.abs(feed[x] @ W.value).item())
        reported = trainer.train_minibatch(feed)
        assert len(passes) == step   # one forward per step
        assert trainer.previous_minibatch_evaluation_average ** 2 == pytest.approx(reported)
        differs_from_eval_mode += trainer.previous_minibatch_evaluation_average != pytest.approx(without_dropout)
    assert differs_from_eval_mode > 0   # dropout was active in the metric's pass


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_loss_stops_and_leaves_parameters_untouched(bad):
    x, t, W, b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.momentum_sgd(y.parameters, 0.1, 0.9))
    trainer.train_minibatch({x: X[:4], t: T[:4]})
    before = [p.value.copy() for p in (W, b)]
    T_bad = T[:4].copy()
    T_bad[2] = bad
    with pytest.raises(mg.TrainingError, match="step 2: the loss"):
        trainer.train_minibatch({x: X[:4], t: T_bad})
    for p, v in zip((W, b), before):
        np.testing.assert_array_equal(p.value, v)
    assert trainer.step_count == 1 and trainer.parameter_learners[0].count == 1


class _CountedCopies(np.ndarray):
    """Counts the copies of one array (arrays computed from it inherit the class, but not the count)."""
    watched = np.zeros(0)
    copies = 0

    def copy(self, *args, **kwargs):
        type(self).copies += np.shares_memory(self, self.watched)
        return super().copy(*args, **kwargs)


def test_a_failed_step_restores_running_statistics_and_copies_no_other_constant(monkeypatch):
    """Only what ops update in place (batch normalization's running statistics) is saved before a step."""
    x = mg.input_variable(2, dtype=np.float64, name="x")
    t = mg.input_variable(2, dtype=np.float64, name="t")
    bn = mg.layers.BatchNormalization(momentum=0.5)
    table = mg.constant(np.arange(2.0), dtype=np.float64, name="table")
    loss = mg.reduce_sum(mg.square(bn(x) * table - t))
    trainer = mg.Trainer(None, loss, L.sgd(loss.parameters, 0.1))
    monkeypatch.setattr(_CountedCopies, "watched", table.value)
    monkeypatch.setattr(_CountedCopies, "copies", 0)
    monkeypatch.setattr(table, "value", table.value.view(_CountedCopies))
    data = np.random.default_rng(0).standard_normal((4, 2))
    trainer.train_minibatch({x: data, t: data})
    assert _CountedCopies.copies == 0
    stats = [bn.running_mean.value.copy(), bn.running_var.value.copy()]
    with pytest.raises(mg.TrainingError, match="step 2: the loss"):
        trainer.train_minibatch({x: data + 1, t: np.full_like(data, np.nan)})
    np.testing.assert_array_equal(bn.running_mean.value, stats[0])
    np.testing.assert_array_equal(bn.running_var.value, stats[1])
    trainer.train_minibatch({x: data + 1, t: data})
    assert not np.array_equal(bn.running_mean.value, stats[0])   # a good step does update them


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
def test_non_finite_gradient_is_caught_too():
    x = mg.input_variable(1, dtype=np.float64, name="x")
    w = mg.parameter(init=np.array([0.0]), name="w")
    loss = mg.sqrt(mg.abs(x * w))   # finite at w = 0, infinite derivative
    trainer = mg.Trainer(None, loss, L.sgd([w], 0.1))
    with pytest.raises(mg.TrainingError, match="gradient of Parameter 'w' is not finite"):
        trainer.train_minibatch({x: np.ones((2, 1))})
    assert w.value[0] == 0.0


def test_two_trainers_on_a_shared_graph_update_only_their_own_parameters():
    """A GAN in miniature: D scores real and generated samples, G tries to fool D."""
    mg.set_seed(3)
    z = mg.input_variable(2, name="z")
    real = mg.input_variable(2, name="real")
    Wg = mg.parameter((2, 2), name="Wg")
    Wd = mg.parameter((2, 1), name="Wd")
    fake = mg.times(z, Wg)
    d_real, d_fake = mg.times(real, Wd), mg.times(fake, Wd)
    d_loss = mg.softplus(-d_real) + mg.softplus(d_fake)   # -log D(real) - log(1 - D(fake))
    g_loss = mg.softplus(-d_fake)
    d_trainer = mg.Trainer(d_real, d_loss, L.sgd([Wd], 0.1))
    g_trainer = mg.Trainer(fake, g_loss, L.sgd([Wg], 0.1))
    rng = np.random.default_rng(0)
    feed = {z: rng.standard_normal((8, 2)), real: rng.standard_normal((8, 2)) + 3}
    g0, d0 = Wg.value.copy(), Wd.value.copy()
    d_trainer.train_minibatch(feed)
    np.testing.assert_array_equal(Wg.value, g0)
    assert not np.array_equal(Wd.value, d0)
    d1 = Wd.value.copy()
    g_trainer.train_minibatch({z: feed[z]})
    np.testing.assert_array_equal(Wd.value, d1)
    assert not np.array_equal(Wg.value, g0)


def test_trainer_rejects_misconfigurations():
    x, t, W, b, y, loss, X, T = _regression()
    stray = mg.parameter((2,), name="stray")
    with pytest.raises(mg.GraphError, match="not in the graph of the loss"):
        mg.Trainer(y, loss, L.sgd([W, stray], 0.1))
    with pytest.raises(mg.GraphError, match="two learners"):
        mg.Trainer(y, loss, [L.sgd([W], 0.1), L.sgd([W, b], 0.1)])
    with pytest.raises(TypeError, match="learner"):
        mg.Trainer(y, loss, [])
    trainer = mg.Trainer(y, loss, L.sgd([W, b], 0.1))
    with pytest.raises(mg.GraphError, match="neither the loss nor the metric"):
        trainer.train_minibatch({x: X, t: T, "typo": T})
    with pytest.raises(ValueError, match="same number of samples"):
        trainer.fit({x: X, t: T[:5]})


@pytest.mark.parametrize("make, message", [
    (lambda X, T: {"x": X[:0], "t": T[:0]}, r"fit: the data for input 'x' has no samples \(shape \(0, 3\)\)"),
    (lambda X, T: {"x": 3, "t": 4}, "fit: the data for input 'x' must be an array of samples .*got int 3"),
    (lambda X, T: {"x": X, "t": [[1.0], [2.0, 3.0]]}, "fit: the data for input 't' is not an array"),
    (lambda X, T: {"x": X, "t": T[:5]}, "fit: every input needs the same number of samples, got 'x': 96, 't': 5"),
    (lambda X, T: {}, "fit: data must be a non-empty dict .* got an empty dict"),
    (lambda X, T: X, "fit: data must be a non-empty dict .* got ndarray"),
])
def test_fit_names_the_input_whose_data_is_wrong(make, message):
    x, t, W, b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.sgd([W, b], 0.1))
    with pytest.raises(mg.GraphError, match=message):
        trainer.fit(make(X, T))
    assert trainer.step_count == 0


def test_an_empty_minibatch_is_refused_before_it_runs():
    x, t, W, b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.sgd([W, b], 0.1))
    for run in (trainer.train_minibatch, trainer.test_minibatch):
        with pytest.raises(mg.GraphError, match=r"Trainer: the data for input Input 'x' has no samples"):
            run({x: X[:0], t: T[:0]})


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    x, t, _W, _b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.sgd(y.parameters, 0.01))
    trainer.fit({x: X, t: T}, epochs=1, minibatch_size=32)            # stderr is captured: not a terminal
    trainer.fit({x: X, t: T}, epochs=1, minibatch_size=32, progress=False)
    assert capsys.readouterr().err == ""
    trainer.fit({x: X, t: T}, epochs=2, minibatch_size=32, progress=True)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "loss=" in err


def test_callbacks_see_each_epoch_and_can_stop():
    x, t, _W, _b, y, loss, X, T = _regression()
    trainer = mg.Trainer(y, loss, L.sgd(y.parameters, 0.01))
    seen = []
    history = trainer.fit({x: X, t: T}, epochs=5, minibatch_size=32,
                          callbacks=[lambda tr, logs: seen.append(logs["epoch"]), lambda tr, logs: logs["epoch"] == 2])
    assert seen == [1, 2] and len(history["loss"]) == 2 and trainer.epochs_done == 2


def test_shuffle_is_reproducible_from_the_seed():
    results = []
    for _ in range(2):
        x, t, W, _b, y, loss, X, T = _regression()
        mg.Trainer(y, loss, L.sgd(y.parameters, 0.05)).fit({x: X, t: T}, epochs=2, minibatch_size=10, seed=7)
        results.append(W.value.copy())
    np.testing.assert_array_equal(*results)


def test_creating_a_trainer_leaves_later_initial_values_alone():
    values = []
    for make_trainer in (False, True):
        x, t, W, b, y, loss, X, T = _regression(seed=4)
        if make_trainer:
            mg.Trainer(y, loss, L.sgd([W, b], 0.1))
        values.append(mg.parameter((5,), name="later").value)
    np.testing.assert_array_equal(*values)
