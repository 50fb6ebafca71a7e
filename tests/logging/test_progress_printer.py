"""ProgressPrinter: the lines of a fixed run (stdout and file), its schedules, rank and bad input."""
import itertools

import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph import learners
from minigraph.logging import ProgressPrinter, ProgressWriter
from minigraph.logging.base import due


@pytest.fixture
def fixed_clock(monkeypatch):
    """Every reading of the writers' clock is half a second after the previous one."""
    ticks = itertools.count(0.0, 0.5)
    monkeypatch.setattr(ProgressWriter, "clock", staticmethod(lambda: next(ticks)))


def _regression(seed=0, with_metric=True, loss_name=""):
    mg.set_seed(seed)
    x, y = mg.input_variable(3, name="x"), mg.input_variable(1, name="y")
    f = L.Dense(1, name="lin")(x)
    loss = mg.squared_error(f, y, name=loss_name)
    criterion = (loss, mg.abs(f - y)) if with_metric else loss
    data = np.random.default_rng(seed).standard_normal((40, 3)).astype(np.float32)
    return f, criterion, {x: data, y: data.sum(axis=1, keepdims=True)}


def _mean(values, weights):
    return float(np.dot(values, weights) / np.sum(weights))


def test_geometric_schedule_is_one_two_four_eight():
    assert [c for c in range(1, 40) if due(c, None)] == [1, 2, 4, 8, 16, 32]
    assert [c for c in range(1, 12) if due(c, 4, first=2)] == [1, 2, 4, 8]


def test_arithmetic_lines_and_epoch_summaries_of_a_fixed_run(fixed_clock, capsys):
    f, criterion, data = _regression()
    printer = ProgressPrinter(freq=2, tag="run", num_epochs=2)
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[printer])
    # a metric history of our own: the trainer reports each step's metric as previous_minibatch_evaluation_average
    metrics = []
    for _ in range(2):
        for b in range(0, 40, 16):
            trainer.train_minibatch({k: v[b:b + 16] for k, v in data.items()})
            metrics.append(trainer.previous_minibatch_evaluation_average)
        trainer.summarize_training_progress()
    out = capsys.readouterr().out.splitlines()
    losses, sizes = trainer.history["minibatch_loss"], [16, 16, 8] * 2
    expected = ["[run] Learning rate per minibatch: 0.05",
                f"[run]  Minibatch[   1-   2]: loss = {_mean(losses[0:2], sizes[0:2]):0.6f} * 32, "
                f"metric = {_mean(metrics[0:2], sizes[0:2]):0.6f} * 32;",
                f"[run] Finished Epoch[1 of 2]: loss = {_mean(losses[0:3], sizes[0:3]):0.6f} * 40, "
                f"metric = {_mean(metrics[0:3], sizes[0:3]):0.6f} * 40 "
                f"{1.0:0.3f}s ({40 / 1.0:5.1f} samples/s);",
                f"[run]  Minibatch[   1-   2]: loss = {_mean(losses[3:5], sizes[3:5]):0.6f} * 32, "
                f"metric = {_mean(metrics[3:5], sizes[3:5]):0.6f} * 32;",
                f"[run] Finished Epoch[2 of 2]: loss = {_mean(losses[3:6], sizes[3:6]):0.6f} * 40, "
                f"metric = {_mean(metrics[3:6], sizes[3:6]):0.6f} * 40 "
                f"{1.0:0.3f}s ({40 / 1.0:5.1f} samples/s);"]
    assert out == expected


def test_geometric_table_of_fit_and_the_same_lines_in_a_file(fixed_clock, capsys, tmp_path):
    f, criterion, data = _regression(with_metric=False)
    log = tmp_path / "train.log"
    log.write_text("an earlier line\n")
    printers = [ProgressPrinter(), ProgressPrinter(log_to_file=log)]
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=printers)
    trainer.fit(data, epochs=1, minibatch_size=8, shuffle=False)  # five minibatches: lines at 1, 2, 4
    out = capsys.readouterr().out.splitlines()
    losses = trainer.history["minibatch_loss"]
    header = [" average      since    average      since      examples",
              "    loss       last     metric       last              ",
              " ------------------------------------------------------"]
    blank = f"{'':8s}   {'':8s}   "

    def row(upto, since):
        return f" {np.mean(losses[:upto]):8.3g}   {np.mean(losses[since:upto]):8.3g}   {blank} {8 * upto:10d}"

    assert out[:4] == [*header, "Learning rate per minibatch: 0.05"]
    assert out[4:7] == [row(1, 0), row(2, 1), row(4, 2)]
    assert out[7].startswith(f"Finished Epoch[1]: loss = {np.mean(losses):0.6f} * 40 ")
    assert len(out) == 8
    assert log.read_text().splitlines() == ["an earlier line", *out]  # appended, line for line


def test_test_minibatches_and_their_summary(fixed_clock, capsys):
    f, criterion, data = _regression()
    printer = ProgressPrinter(freq=100, test_freq=1)
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=printer)
    a = trainer.test_minibatch({k: v[:30] for k, v in data.items()})
    b = trainer.test_minibatch({k: v[30:] for k, v in data.items()})
    trainer.summarize_test_progress()
    out = capsys.readouterr().out.splitlines()
    assert out == [f" Evaluation Minibatch[   1-   1]: metric = {a:0.6f} * 30;",
                   f" Evaluation Minibatch[   2-   2]: metric = {b:0.6f} * 10;",
                   f"Finished Evaluation [1]: Minibatch[1-2]: metric = {(30 * a + 10 * b) / 40:0.6f} * 40;"]


def test_fit_validation_writes_an_evaluation_summary_per_epoch(capsys):
    f, criterion, data = _regression()
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[ProgressPrinter(freq=50)])
    history = trainer.fit(data, epochs=2, minibatch_size=16, validation_data=data)
    out = [line for line in capsys.readouterr().out.splitlines() if "Evaluation" in line]
    assert [line.split(":")[0] for line in out] == ["Finished Evaluation [1]", "Finished Evaluation [2]"]
    assert f"loss = {history['val_loss'][1]:0.6f} * 40, metric = {history['val_metric'][1]:0.6f} * 40" in out[1]


def test_two_trainers_share_a_printer_under_their_losses_names(capsys):
    f, criterion, data = _regression(with_metric=False, loss_name="first")
    _, other, _ = _regression(with_metric=False, loss_name="second")
    printer = ProgressPrinter(freq=1)
    t1 = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[printer])
    t2 = mg.Trainer(None, other, learners.sgd(other.parameters, 0.05), progress_writers=[printer])
    t1.train_minibatch(data)
    t2.train_minibatch({"x": data[next(iter(data))], "y": data[list(data)[1]]})
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in out if "Minibatch[" in line] == ["first", "second"]


def test_unnamed_losses_cannot_share_a_writer():
    f, criterion, _ = _regression(with_metric=False)
    printer = ProgressPrinter()
    first = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[printer])
    with pytest.raises(ValueError, match="same tag"):
        mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[printer])
    assert first.progress_writers == [printer]


def test_rank_chooses_the_process_that_prints(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(mg.distributed.Communicator, "rank", staticmethod(lambda: 1))
    ProgressPrinter(log_to_file=tmp_path / "worker.log")  # a worker of a distributed run: silent by default
    ProgressPrinter(rank=0)
    assert capsys.readouterr().out == "" and not (tmp_path / "worker.log").exists()
    ProgressPrinter(rank=1)
    assert capsys.readouterr().out.startswith(" average")


@pytest.mark.parametrize("kw, words", [
    ({"freq": 0}, "freq must be a positive int"), ({"freq": 2.5}, "freq must be a positive int"),
    ({"freq": True}, "freq must be a positive int"), ({"first": -1}, "first must be an int >= 0"),
    ({"test_freq": 0}, "test_freq"), ({"rank": -1}, "rank"), ({"num_epochs": 0}, "num_epochs"),
])
def test_bad_arguments_are_named(kw, words):
    with pytest.raises(ValueError, match=words):
        ProgressPrinter(**kw)


def test_a_log_file_that_cannot_be_opened_is_named(tmp_path):
    with pytest.raises(ValueError, match="log_to_file .*missing"):
        ProgressPrinter(log_to_file=tmp_path / "missing" / "train.log")


def test_trainer_rejects_what_is_not_a_writer():
    f, criterion, _ = _regression()
    with pytest.raises(TypeError, match="progress_writers"):
        mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[print])


def test_a_closed_printer_refuses_to_write():
    printer = ProgressPrinter(freq=1)
    with printer:
        pass
    assert printer.closed
    with pytest.raises(RuntimeError, match="closed"):
        printer.log("more")


def test_a_resumed_trainer_continues_its_epoch_numbers(tmp_path, capsys):
    f, criterion, data = _regression()
    trainer = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05))
    trainer.fit(data, epochs=2, minibatch_size=20)
    trainer.save_checkpoint(tmp_path / "two.mgc")
    f, criterion, data = _regression()
    resumed = mg.Trainer(f, criterion, learners.sgd(f.parameters, 0.05), progress_writers=[ProgressPrinter(freq=5)])
    resumed.restore_from_checkpoint(tmp_path / "two.mgc")
    resumed.fit(data, epochs=2, minibatch_size=20)
    summaries = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if "Finished" in line]
    assert summaries == ["Finished Epoch[3]", "Finished Epoch[4]"]
