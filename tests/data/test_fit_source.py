"""Trainer.fit on a MinibatchSource: same training as feeding its minibatches by hand, streams
mapped to inputs, sweeps, and checkpoints that resume the source's exact position."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph.data import ArraySource, MinibatchSource

N = 37


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 3)).astype(np.float32)
    return {"x": x, "t": (x @ rng.standard_normal((3, 2))).astype(np.float32), "id": np.arange(N)}


def model(seed=0):
    mg.set_seed(seed)
    x = mg.input_variable(3, name="x")
    t = mg.input_variable(2, name="t")
    y = L.Dense(2, name="fc")(x)
    return mg.Trainer(y, mg.squared_error(y, t), mg.learners.momentum_sgd(y.parameters, 0.05, 0.9))


def params(trainer):
    return [p.value.copy() for p in trainer.model.parameters]


def source(**kwargs):
    return MinibatchSource(ArraySource(data()), minibatch_size=8, seed=kwargs.pop("seed", 4), **kwargs)


def test_fit_on_a_source_trains_as_its_minibatches_fed_by_hand():
    by_fit, by_hand = model(), model()
    history = by_fit.fit(source(), epochs=2)
    mb = source()
    for _ in range(2 * len(mb)):
        feed = mb.next_minibatch()
        by_hand.train_minibatch({"x": feed["x"], "t": feed["t"]})
    for a, b in zip(params(by_fit), params(by_hand)):
        np.testing.assert_array_equal(a, b)
    assert len(history["loss"]) == 2 and by_fit.epochs_done == 2 and by_fit.step_count == 10
    assert by_fit.total_number_of_samples_seen == 2 * N


def test_streams_are_fed_by_name_or_by_input_map():
    trainer = model()
    renamed = MinibatchSource(ArraySource({"features": data()["x"], "target": data()["t"]}), 8, seed=0)
    with pytest.raises(mg.GraphError, match=r"none of the source's streams \['features', 'target'\].*input_map"):
        trainer.fit(renamed)
    assert renamed.samples_seen == 0 and renamed.iteration == 0  # the minibatch it read was put back
    trainer.fit(renamed, input_map={"x": "features", "t": "target"})
    assert trainer.step_count == 5
    with pytest.raises(mg.GraphError, match="streams \\['nope'\\]"):
        trainer.fit(renamed, input_map={"x": "nope", "t": "target"})


def test_the_source_owns_minibatch_size_shuffle_and_seed():
    for kwargs in ({"minibatch_size": 4}, {"shuffle": False}, {"seed": 1}):
        with pytest.raises(ValueError, match="belong to the MinibatchSource"):
            model().fit(source(), **kwargs)
    with pytest.raises(ValueError, match="input_map is for a MinibatchSource"):
        model().fit({"x": data()["x"], "t": data()["t"]}, input_map={"x": "x"})


def test_fit_stops_when_the_sweeps_are_done():
    trainer = model()
    history = trainer.fit(source(max_sweeps=2), epochs=5)
    assert len(history["loss"]) == 2 and trainer.epochs_done == 2


def _run_with_checkpoint(tmp_path, prefetch):
    """Fit one epoch, train 2 more minibatches of the source by hand (mid-epoch), checkpoint, fit 2 epochs."""
    trainer, mb = model(), source(prefetch=prefetch)
    trainer.fit(mb, epochs=1)
    for _ in range(2):
        feed = mb.next_minibatch()
        trainer.train_minibatch({"x": feed["x"], "t": feed["t"]})
    trainer.save_checkpoint(tmp_path / "ckpt.mgz")
    trainer.fit(mb, epochs=2)
    mb.close()
    return params(trainer), trainer


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_checkpoint_resumes_the_source_mid_epoch(tmp_path, prefetch):
    uninterrupted, first = _run_with_checkpoint(tmp_path, prefetch)
    resumed = model(seed=9)  # other initial values: all come from the checkpoint
    resumed.restore_from_checkpoint(tmp_path / "ckpt.mgz")
    mb = source(prefetch=prefetch)
    resumed.fit(mb, epochs=2)  # the rest of the interrupted epoch, then one more
    mb.close()
    for a, b in zip(uninterrupted, params(resumed)):
        np.testing.assert_array_equal(a, b)
    assert resumed.step_count == first.step_count and mb.state_dict() == first.data_source.state_dict()


def test_restoring_into_a_trainer_that_drives_a_source_moves_it(tmp_path):
    uninterrupted, _ = _run_with_checkpoint(tmp_path, 0)
    trainer, mb = model(), source()
    trainer.fit(mb, epochs=1)
    trainer.restore_from_checkpoint(tmp_path / "ckpt.mgz")
    assert mb.epoch == 1 and mb.samples_seen == N + 16
    trainer.fit(mb, epochs=2)
    for a, b in zip(uninterrupted, params(trainer)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_of_another_source_is_refused(tmp_path):
    _run_with_checkpoint(tmp_path, 0)
    trainer, other = model(), source(seed=5)
    trainer.fit(other, epochs=1)
    before = (params(trainer), other.state_dict())
    with pytest.raises(mg.ModelFileError, match="another order"):
        trainer.restore_from_checkpoint(tmp_path / "ckpt.mgz")
    for a, b in zip(before[0], params(trainer)):
        np.testing.assert_array_equal(a, b)
    assert other.state_dict() == before[1]
    fresh = model()
    fresh.restore_from_checkpoint(tmp_path / "ckpt.mgz")
    with pytest.raises(mg.DataError, match="data position does not fit this source"):
        fresh.fit(source(seed=5))
