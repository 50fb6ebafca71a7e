"""fit's callbacks and validation: EarlyStopping, ModelCheckpoint, CSVLogger, and resumed runs."""
import hashlib
import os

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph import learners
from minigraph.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint, read_csv_log


def build(seed=0):
    """A small model with batch normalization (running statistics are part of the weights)."""
    mg.set_seed(seed)
    x, y = mg.input_variable(3, name="x"), mg.input_variable(1, name="y")
    h = L.BatchNormalization(name="bn")(L.Dense(4, activation=mg.tanh, name="hidden")(x))
    f = L.Dense(1, name="out")(h)
    trainer = mg.Trainer(f, (mg.squared_error(f, y), mg.abs(f - y)),
                         learners.momentum_sgd(f.parameters, 0.05, 0.5))
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((48, 3)).astype(np.float32)
    held = rng.standard_normal((20, 3)).astype(np.float32)
    return trainer, {x: data, y: data.sum(1, keepdims=True)}, {x: held, y: held.sum(1, keepdims=True)}


def weights(trainer):
    return [n.value.copy() for n in (*trainer._all_params, *trainer._running_statistics)]


class Scripted(Callback):
    """Replaces the monitored value of each epoch by a constructed sequence and keeps each epoch's weights."""

    def __init__(self, key, values):
        self.key, self.values, self.weights = key, list(values), {}

    def on_epoch_end(self, trainer, logs):
        logs[self.key] = self.values[logs["epoch"] - 1]
        trainer.history[self.key][-1] = logs[self.key]
        self.weights[logs["epoch"]] = weights(trainer)


def test_validation_in_evaluation_mode_fills_the_history():
    trainer, data, held = build()
    measured = {}

    def measure(t, logs):  # what evaluation mode gives after each epoch
        measured[logs["epoch"]] = [float(n.eval(held).mean()) for n in (t.loss_function, t.evaluation_function)]

    history = trainer.fit(data, epochs=3, minibatch_size=16, validation_data=held, validation_freq=2,
                          callbacks=[measure])
    assert history["val_loss"][0] is None and history["val_loss"][2] is None
    assert [history["val_loss"][1], history["val_metric"][1]] == pytest.approx(measured[2], rel=1e-6)
    assert history["loss"][1] != pytest.approx(history["val_loss"][1], rel=1e-3)
    assert len(history["val_loss"]) == len(history["loss"]) == 3


def test_validation_errors_name_the_argument():
    trainer, data, held = build()
    with pytest.raises(ValueError, match="validation_freq"):
        trainer.fit(data, validation_data=held, validation_freq=0)
    with pytest.raises(mg.GraphError, match="validation_data"):
        trainer.fit(data, validation_data={})
    with pytest.raises(mg.GraphError, match="same number of samples"):
        trainer.fit(data, validation_data={k: v[:5 + i] for i, (k, v) in enumerate(held.items())})
    assert trainer.step_count == 0


def test_early_stopping_stops_at_the_expected_epoch_and_restores_the_best_weights():
    trainer, data, held = build()
    script = Scripted("val_loss", [5.0, 4.0, 4.5, 4.2, 3.0, 2.0])
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    trainer.fit(data, epochs=6, minibatch_size=16, validation_data=held, callbacks=[script, stop])
    assert trainer.epochs_done == 4 and stop.stopped_epoch == 4 and stop.best_epoch == 2 and stop.best == 4.0
    for now, best in zip(weights(trainer), script.weights[2]):
        assert now.tobytes() == best.tobytes()  # bit for bit


@pytest.mark.parametrize("kw, values, stopped", [
    ({"patience": 0}, [3, 2, 2.5, 1], 3),
    ({"patience": 2, "min_delta": 0.5}, [3, 2.8, 2.6, 1], 3),
    ({"monitor": "val_metric", "mode": "max", "patience": 2}, [1, 2, 1.5, 1.7, 3], 4),
    ({"patience": 3}, [3, 2, 1, 0.5, 0.4], 0),
])
def test_early_stopping_rules(kw, values, stopped):
    trainer, data, held = build()
    stop = EarlyStopping(**kw)
    trainer.fit(data, epochs=len(values), minibatch_size=48, validation_data=held,
                callbacks=[Scripted(kw.get("monitor", "val_loss"), values), stop])
    assert stop.stopped_epoch == stopped and trainer.epochs_done == (stopped or len(values))


def test_a_monitor_that_is_never_logged_fails_at_the_first_epoch_naming_the_logged_keys():
    trainer, data, _ = build()
    with pytest.raises(KeyError, match="val_loss.*logged values are epoch, loss, metric, seconds"):
        trainer.fit(data, epochs=3, callbacks=[EarlyStopping()])
    assert trainer.epochs_done == 1


def test_model_checkpoint_best_only_rewrites_only_on_improvement(tmp_path):
    trainer, data, held = build()
    path = tmp_path / "best.mgc"
    digests = []
    script = Scripted("val_loss", [3.0, 2.0, 2.5, 1.0, 1.0])
    after = mg.callbacks.Callback()
    after.on_epoch_end = lambda t, logs: digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    best = ModelCheckpoint(path, save_best_only=True)
    trainer.fit(data, epochs=5, minibatch_size=16, validation_data=held, callbacks=[script, best, after])
    assert best.saved == [str(path)] * 3
    changed = [digests[i] != digests[i - 1] for i in range(1, 5)]
    assert changed == [True, False, True, False]  # rewritten at epochs 2 and 4 only
    restored, _, _ = build()
    restored.restore_from_checkpoint(path)
    assert restored.epochs_done == 4
    for a, b in zip(weights(restored), script.weights[4]):
        assert a.tobytes() == b.tobytes()
    assert [f for f in os.listdir(tmp_path) if f != "best.mgc"] == []  # atomic: no temporary files left


def test_model_checkpoint_paths_name_logged_values(tmp_path):
    trainer, data, held = build()
    ckpt = ModelCheckpoint(str(tmp_path / "ckpt" / "e{epoch:02d}-{val_loss:.4f}.mgc"), every_n_epochs=2)
    history = trainer.fit(data, epochs=4, minibatch_size=16, validation_data=held, callbacks=[ckpt])
    expected = [f"e{e:02d}-{history['val_loss'][e - 1]:.4f}.mgc" for e in (2, 4)]
    assert sorted(os.listdir(tmp_path / "ckpt")) == expected
    with pytest.raises(KeyError, match="names val_los.*logged values"):
        trainer.fit(data, epochs=1, callbacks=[ModelCheckpoint(str(tmp_path / "{val_los}.mgc"))])


def test_csv_equals_history(tmp_path):
    trainer, data, held = build()
    path = tmp_path / "log.csv"
    history = trainer.fit(data, epochs=3, minibatch_size=16, validation_data=held, validation_freq=2,
                          callbacks=[CSVLogger(path)])
    table = read_csv_log(path)
    assert table["epoch"] == [1, 2, 3]
    for key in ("loss", "metric", "val_loss", "val_metric", "seconds"):
        assert table[key] == history[key]
    assert path.read_text().splitlines()[0] == "epoch,loss,metric,val_loss,val_metric,seconds"


def test_plain_functions_and_hooks_still_work():
    trainer, data, _ = build()
    seen = []

    class Hooks(Callback):
        def on_train_begin(self, t):
            seen.append("begin")

        def on_train_end(self, t):
            seen.append("end")

    def stop_at_two(t, logs):
        seen.append(logs["epoch"])
        return logs["epoch"] == 2

    trainer.fit(data, epochs=5, callbacks=[Hooks(), stop_at_two])
    assert seen == ["begin", 1, 2, "end"] and trainer.epochs_done == 2
    with pytest.raises(TypeError, match="callback"):
        trainer.fit(data, callbacks=[42])


def _callbacks(tmp_path, append):
    return [CSVLogger(tmp_path / "log.csv", append=append), EarlyStopping(patience=10),
            ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.mgc"))]


def _run_with_tensorboard(trainer, data, held, tmp_path, epochs, append=False):
    from minigraph.logging import TensorBoardProgressWriter
    callbacks = _callbacks(tmp_path, append)
    with TensorBoardProgressWriter(freq=1, log_dir=tmp_path / "tb") as tb:
        tb.attach(trainer)
        trainer.progress_writers = [tb]
        trainer.fit(data, epochs=epochs, minibatch_size=16, validation_data=held, callbacks=callbacks)
    return callbacks


def test_a_resumed_run_continues_csv_tensorboard_and_early_stopping_without_duplicates(tmp_path):
    pytest.importorskip("tensorboardX")
    from tensorboard.backend.event_processing import event_accumulator as ea
    whole, data, held = build()
    straight = _run_with_tensorboard(whole, data, held, tmp_path / "straight", epochs=5)

    first, data, held = build()
    _run_with_tensorboard(first, data, held, tmp_path / "resumed", epochs=3)  # "crashes" after epoch 3
    second, data, held = build()
    second.restore_from_checkpoint(tmp_path / "resumed" / "ckpt-2.mgc")  # the last good checkpoint: epoch 2
    resumed = _run_with_tensorboard(second, data, held, tmp_path / "resumed", epochs=3, append=True)

    assert second.history == {**whole.history, "seconds": second.history["seconds"]}
    a, b = read_csv_log(tmp_path / "straight" / "log.csv"), read_csv_log(tmp_path / "resumed" / "log.csv")
    assert b["epoch"] == [1, 2, 3, 4, 5]  # epoch 3 of the interrupted run is not repeated
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert (resumed[1].best, resumed[1].best_epoch, resumed[1].wait) == \
        (straight[1].best, straight[1].best_epoch, straight[1].wait)
    runs = []
    for name in ("straight", "resumed"):
        acc = ea.EventAccumulator(str(tmp_path / name / "tb"), size_guidance={ea.SCALARS: 0})
        acc.Reload()
        runs.append({t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]
                     if t != "minibatch/samples_per_second"})
    assert runs[0] == runs[1]
    assert [s for s, _ in runs[1]["minibatch/avg_loss"]] == list(range(1, 16))


def test_resuming_after_the_best_epoch_warns_that_its_weights_are_gone(tmp_path):
    trainer, data, held = build()
    trainer.fit(data, epochs=3, minibatch_size=16, validation_data=held,
                callbacks=[Scripted("val_loss", [1.0, 2.0, 3.0]), ModelCheckpoint(str(tmp_path / "last.mgc"))])
    resumed, data, held = build()
    resumed.restore_from_checkpoint(tmp_path / "last.mgc")
    stop = EarlyStopping(patience=5, restore_best_weights=True)
    with pytest.warns(RuntimeWarning, match="best val_loss so far is from epoch 1"):
        resumed.fit(data, epochs=1, minibatch_size=16, validation_data=held,
                    callbacks=[Scripted("val_loss", [None, None, None, 0.5]), stop])
    assert (stop.best, stop.best_epoch, stop.wait) == (0.5, 4, 0)  # a better epoch after the resume is kept
