"""Arguments and feeds, tried as a careless or hostile caller would: every bad value is refused with a
clean minigraph error naming it (booleans are booleans, seeds ints, dtypes float32/float64, one value
per input), every good value works, absurd sizes cost bounded work and bounded messages, and a feed
larger than the memory limit is refused before it is converted."""
from __future__ import annotations

import numpy as np
import pytest

import minigraph as mg
from minigraph.cli import main
from minigraph.ops.conv_kernels import Geometry, Plan

from tally import is_clean, record, scaled


def _judge(category: str, cases: list) -> None:
    """``cases``: (description, call, valid). A valid call must succeed; an invalid one must raise a
    clean error. Records the counts; fails on the first escape or wrong outcome."""
    counts = {"tried": 0, "clean": 0, "escapes": 0, "garbage": 0}
    failures = []
    for what, call, valid in cases:
        counts["tried"] += 1
        try:
            call()
        except Exception as exc:  # noqa: BLE001 (classified)
            if not is_clean(exc):
                counts["escapes"] += 1
                failures.append(f"{what}: escaped {type(exc).__name__}: {exc}")
            elif valid:
                counts["garbage"] += 1
                failures.append(f"{what}: a valid call was refused: {exc}")
            else:
                counts["clean"] += 1
            continue
        if not valid:
            counts["garbage"] += 1
            failures.append(f"{what}: accepted")
    record(category, **counts)
    assert not failures, "\n".join(failures[:10])


BOOLS = [(True, True), (False, True), (np.bool_(True), True), ("no", False), (1, False), (0, False), (None, False),
         (1.0, False), ([True], False)]
SEEDS = [(None, True), (0, True), (7, True), (np.int64(3), True), (2**64, True), (np.random.default_rng(1), True),
         (-1, False), (1.5, False), ("3", False), (True, False), (2**130, False), (float("nan"), False),
         ([1, 2], False)]
DTYPES = [(np.float32, True), ("float64", True), (np.dtype("float32"), True), ("foo", False), (np.int32, False),
          ("float16", False), (int, False), (object(), False), ("", False), (np.complex64, False)]


def test_run_options():
    x = mg.input_variable((3,), name="x")
    y = mg.dropout(mg.relu(x), 0.5)
    feed = {x: np.ones((2, 3), np.float32)}
    cases = []
    for value, valid in BOOLS:
        cases += [(f"eval(training={value!r})", lambda v=value: y.eval(feed, training=v), valid),
                  (f"grad(training={value!r})", lambda v=value: y.grad(feed, wrt=x, training=v), valid)]
    for value, valid in SEEDS:
        cases += [(f"eval(seed={value!r})", lambda v=value: y.eval(feed, training=True, seed=v), valid),
                  (f"forward(seed={value!r})", lambda v=value: y.forward(feed, seed=v), valid)]
    _judge("arguments: run options", cases)


def test_training_must_be_a_bool_and_leaves_batch_statistics_alone():
    x = mg.input_variable((2, 3, 3), dtype=np.float64)
    y = mg.layers.BatchNormalization()(x)
    before = [c.value.copy() for c in y.constants]
    with pytest.raises(mg.ArgumentTypeError, match=r"training must be a bool \(True or False\), got 'no'"):
        y.eval({x: np.ones((2, 2, 3, 3))}, training="no")
    assert all(np.array_equal(a, c.value) for a, c in zip(before, y.constants))
    record("arguments: run options", 1, 1)


def test_seeds_and_dtypes_everywhere():
    cases = []
    for value, valid in SEEDS:
        plain_int = valid and not isinstance(value, np.random.Generator) and value is not None
        cases += [(f"set_seed({value!r})", lambda v=value: mg.set_seed(v), plain_int),
                  (f"glorot_uniform(seed={value!r})", lambda v=value: mg.initializers.glorot_uniform(seed=v),
                   valid and not isinstance(value, np.random.Generator))]
    for value, valid in DTYPES:
        cases += [(f"input_variable(dtype={value!r})", lambda v=value: mg.input_variable(3, dtype=v), valid),
                  (f"parameter(dtype={value!r})", lambda v=value: mg.parameter((2,), dtype=v), valid),
                  (f"constant(dtype={value!r})", lambda v=value: mg.constant([1.0], dtype=v), valid),
                  (f"cast(dtype={value!r})", lambda v=value: mg.cast(mg.input_variable(3), v), valid)]
    x, t = mg.input_variable((2,), name="x"), mg.input_variable((1,), name="t")
    y = mg.layers.Dense(1)(x)
    trainer = mg.Trainer(y, mg.squared_error(y, t), mg.learners.sgd(y.parameters, lr=0.1))
    data = {x: np.ones((4, 2), np.float32), t: np.ones((4, 1), np.float32)}
    for value, valid in SEEDS:
        cases.append((f"Trainer.fit(seed={value!r})", lambda v=value: trainer.fit(data, seed=v, progress=False),
                      valid and not isinstance(value, np.random.Generator)))
    mg.set_seed(0)
    _judge("arguments: seeds and dtypes", cases)


def test_one_value_per_input():
    x = mg.input_variable((2,), name="x")
    y = x * 2
    with pytest.raises(mg.GraphError, match=r"feed for Input 'x': given twice \(by node and by name 'x'\)"):
        y.eval({x: np.ones((1, 2)), "x": np.zeros((1, 2))})
    record("feeds: bad feeds", 1, 1)


def _bad_feeds(rng, x, z):
    """Random feeds for a graph of ``x`` (3, "H") and ``z`` (2,): (description, feed, valid)."""
    h = int(rng.integers(1, 5))
    n = int(rng.integers(0, 4))
    good = {x: rng.standard_normal((n, 3, h)), z: rng.standard_normal((n, 2))}
    kind = int(rng.integers(14))
    feed = dict(good)
    if kind == 0:
        return "a good feed", feed, True
    if kind == 1:
        feed[x] = rng.standard_normal((n, 3))  # rank
        return "wrong rank", feed, False
    if kind == 2:
        feed[z] = rng.standard_normal((n, 3))  # static size
        return "wrong static size", feed, False
    if kind == 3:
        feed[z] = rng.standard_normal((n + 1, 2))
        return "batch sizes differ", feed, False
    if kind == 4:
        feed[x] = np.full((n, 3, h), "a")
        return "strings", feed, False
    if kind == 5:
        feed[x] = [[[1.0] * h, [1.0] * (h + 1), [1.0]]]
        return "ragged list", feed, False
    if kind == 6:
        feed[x] = good[x].astype(np.complex64)
        return "complex", feed, False
    if kind == 7:
        feed[x] = np.array([{"a": 1}] * 3 * h, dtype=object).reshape(1, 3, h)
        return "objects", feed, False
    if kind == 8:
        del feed[z]
        return "missing input", feed, False
    if kind == 9:
        feed["nobody"] = good[z]
        return "unknown name", feed, False
    if kind == 10:
        feed[mg.input_variable((2,), name="other")] = good[z]
        return "variable of another graph", feed, False
    if kind == 11:
        feed["z"] = good[z]
        return "fed by node and by name", feed, False
    if kind == 12:
        feed[x] = good[x].astype(np.int64)  # ints convert
        return "int array", feed, True
    return "not a dict", list(feed.items()), False


def test_random_feeds():
    x = mg.input_variable((3, "H"), dtype=np.float64, name="x")
    z = mg.input_variable((2,), dtype=np.float64, name="z")
    y = mg.reduce_sum(mg.relu(x), axis=1) + mg.reduce_sum(z)
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(scaled(400)):
        what, feed, valid = _bad_feeds(rng, x, z)
        cases.append((what, lambda f=feed: y.eval(f), valid))
        cases.append((what + " (grad)", lambda f=feed: y.grad(f, wrt=[x, z]), valid))
    _judge("feeds: bad feeds", cases)


@pytest.fixture
def memory_limit():
    before = mg.get_memory_limit()
    mg.set_memory_limit(64 * 2**20)
    yield
    mg.set_memory_limit(before)


def test_feeds_beyond_the_memory_limit_fail_before_converting(memory_limit):
    x = mg.input_variable((1000,), dtype=np.float32, name="x")
    y = mg.relu(x)
    huge = np.broadcast_to(np.float64(1.0), (10**6, 1000))  # a view: 8 GB only once converted
    cases = [("a broadcast view of 4 GB as float32", lambda: y.eval({x: huge}), False),
             ("a list of 10**5 rows", lambda: y.eval({x: [[0.0] * 1000] * 10**5}), False),
             ("10 rows", lambda: y.eval({x: huge[:10]}), True)]
    _judge("feeds: memory limit", cases)
    with pytest.raises(mg.ResourceError, match=r"the feed of ReLU #\d+ needs 3.73 GiB .* more than the memory limit "
                                               r"of 64 MiB"):
        y.eval({x: huge})


def test_absurd_convolution_arguments_cost_bounded_work_and_messages():
    x = mg.input_variable((1, 4, 4), name="x")
    w = mg.parameter((1, 1, 3, 3), name="w")
    up = mg.convolution_transpose(w, x, strides=10**5)  # builds at once: (1, 300001, 300001)
    assert up.shape == (1, 300001, 300001)
    plan = Plan(Geometry((300001, 300001), (4, 4), (3, 3), (10**5, 10**5), (1, 1), (1, 1)))
    assert len(plan.phases) <= 9  # the plan follows the kernel's taps, never the stride
    with pytest.raises(mg.ShapeError) as refused:
        mg.convolution_transpose(w, x, strides=10**6, output_shape=(5, 5))
    message = str(refused.value)
    assert len(message) < 1000 and "valid output sizes on axis 0: 3000001 to 4000000" in message
    cases = []
    for strides, valid in ((0, False), (-1, False), (True, False), (1.5, False), ("2", False), (10**9, True),
                           ([1], False), ([1, 2, 3, 4], False), ([1, 2, 3], True)):  # CNTK form: channel entry 1 first
        cases.append((f"strides={strides!r}", lambda s=strides: mg.convolution(w, x, strides=s), valid))
    for shape in (0, -3, 10**12, (10**12, 10**12), "big", (1.5, 2)):
        cases.append((f"output_shape={shape!r}", lambda s=shape: mg.convolution_transpose(w, x, output_shape=s),
                      False))
    _judge("arguments: absurd sizes", cases)
    record("arguments: absurd sizes", 3, 1)


@pytest.mark.parametrize("batch", [0, 1])
def test_empty_batches_through_convolutions_give_empty_outputs(batch):
    x = mg.input_variable((2, 5, 5), dtype=np.float64, name="x")
    for layer in (mg.layers.Convolution((3, 3), num_filters=4, strides=2, pad=True),
                  mg.layers.ConvolutionTranspose((3, 3), num_filters=4, strides=2),
                  mg.layers.MaxPooling((2, 2), strides=2)):
        y = layer(x)
        out = y.eval({x: np.ones((batch, 2, 5, 5))})
        assert out.shape == (batch, *y.shape)
        grads = mg.reduce_sum(y).grad({x: np.ones((batch, 2, 5, 5))}, wrt=[x, *y.parameters])
        assert grads[x].shape == (batch, 2, 5, 5)
        assert all(np.all(grads[p] == 0) for p in y.parameters) if batch == 0 else True
    record("feeds: empty batches", 6, 0)


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text('[input]\nshape = [3, 8, 8]\nname = "x"\n\n[[layer]]\ntype = "Convolution"\n'
                    'filter_shape = [3, 3]\nnum_filters = 4\nname = "c"\n')
    return str(path)


@pytest.mark.parametrize("dpi,valid", [("nan", False), ("1e6", False), ("inf", False), ("0", False), ("-5", False),
                                       ("ten", False), ("96", True), ("300.5", True)])
def test_cli_dpi(spec_file, tmp_path, capsys, dpi, valid):
    status = main(["plot", spec_file, "-o", str(tmp_path / "net.dot"), "--dpi", dpi])
    err = capsys.readouterr().err
    if valid:
        assert status == 0 and f"dpi={float(dpi):g}" in (tmp_path / "net.dot").read_text()
    else:
        assert status == 2 and "--dpi" in err and not (tmp_path / "net.dot").exists()
    record("arguments: CLI", 1, int(not valid))


def test_plot_dpi_checked():
    x = mg.relu(mg.input_variable((3,)))
    cases = [(f"plot(dpi={v!r})", lambda v=v: mg.plot(x, dpi=v), ok)
             for v, ok in ((float("nan"), False), (1e6, False), (True, False), ("96", False), (96, True), (72.5, True))]
    _judge("arguments: CLI", cases)
