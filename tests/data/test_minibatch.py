"""MinibatchSource: exact order, resumption, partitions, prefetch, thread lifetime, memory, bad input."""
import gc
import json
import threading
import tracemalloc

import numpy as np
import pytest

import minigraph as mg
from minigraph.data import ArraySource, MinibatchSource
from minigraph.data.schedule import partition_share

N = 23


def rows(n=N):
    return {"x": np.arange(n * 2, dtype=np.float32).reshape(n, 2), "y": np.arange(n)}


def reference_batches(n, size, seed, epochs, drop_last=False):
    """The minibatches' sample numbers, straight from numpy's permutation of (seed, epoch)."""
    out = []
    for e in range(epochs):
        order = np.random.default_rng([seed, e]).permutation(n)
        stop = n - n % size if drop_last else n
        out += [order[b:min(b + size, stop)] for b in range(0, stop, size)]
    return out


@pytest.mark.parametrize("drop_last", [False, True])
def test_exact_batches_for_a_fixed_seed(drop_last):
    mb = MinibatchSource(rows(), minibatch_size=5, seed=7, max_sweeps=3, drop_last=drop_last)
    got = [b["y"] for b in mb]
    want = reference_batches(N, 5, 7, 3, drop_last)
    assert len(got) == len(want) == 3 * len(mb)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert mb.next_minibatch() == {} and mb.epoch == 3


def test_every_stream_takes_the_same_rows_and_no_shuffle_keeps_storage_order():
    mb = MinibatchSource(rows(), minibatch_size=10, shuffle=False, max_sweeps=1)
    batches = list(mb)
    assert [b["y"].tolist() for b in batches] == [list(range(0, 10)), list(range(10, 20)), [20, 21, 22]]
    for b in batches:
        np.testing.assert_array_equal(b["x"][:, 0], 2 * b["y"])


def test_position_counters():
    mb = MinibatchSource(rows(), minibatch_size=10, seed=0)
    seen = []
    for _ in range(4):
        b = mb.next_minibatch()
        seen.append((len(b["y"]), mb.end_of_sweep, mb.epoch, mb.samples_seen, mb.iteration))
    assert seen == [(10, False, 0, 10, 1), (10, False, 0, 20, 2), (3, True, 1, 23, 3), (10, False, 1, 33, 4)]
    assert len(mb) == 3


def test_default_seed_follows_set_seed():
    mg.set_seed(5)
    a = MinibatchSource(rows(), 4).seed
    mg.set_seed(5)
    assert MinibatchSource(rows(), 4).seed == a


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("stop_after", [0, 2, 4, 5, 9])
def test_resume_mid_epoch_equals_the_uninterrupted_order(prefetch, stop_after):
    whole = [b["y"] for b in MinibatchSource(rows(), 5, seed=3, max_sweeps=2)]
    first = MinibatchSource(rows(), 5, seed=3, max_sweeps=2, prefetch=prefetch)
    head = [first.next_minibatch()["y"] for _ in range(stop_after)]
    state = json.loads(json.dumps(first.state_dict()))  # survives a JSON checkpoint
    first.close()
    resumed = MinibatchSource(rows(), 5, seed=3, max_sweeps=2, prefetch=prefetch)
    resumed.load_state_dict(state)
    tail = [b["y"] for b in resumed]
    assert len(head) + len(tail) == len(whole)
    for g, w in zip(head + tail, whole):
        np.testing.assert_array_equal(g, w)
    assert resumed.samples_seen == 2 * N and resumed.iteration == len(whole)


def test_load_state_dict_restarts_a_running_prefetch_thread():
    mb = MinibatchSource(rows(), 5, seed=1, prefetch=2)
    state = mb.state_dict()
    first = [mb.next_minibatch()["y"] for _ in range(3)]
    mb.load_state_dict(state)
    again = [mb.next_minibatch()["y"] for _ in range(3)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    mb.close()


@pytest.mark.parametrize("partitions", [2, 3, 5])
@pytest.mark.parametrize("drop_last", [False, True])
def test_partitions_are_disjoint_and_their_union_is_the_single_process_minibatch(partitions, drop_last):
    single = MinibatchSource(rows(), 7, seed=11, max_sweeps=2, drop_last=drop_last)
    shares = [MinibatchSource(rows(), 7, seed=11, max_sweeps=2, drop_last=drop_last, num_data_partitions=partitions,
                              partition_index=i) for i in range(partitions)]
    for whole in single:
        parts = [s.next_minibatch() for s in shares]
        ys = [p["y"] for p in parts]
        assert sum(len(y) for y in ys) == len(whole["y"])
        assert max(map(len, ys)) - min(map(len, ys)) <= 1
        assert len(set(np.concatenate(ys).tolist())) == len(whole["y"])  # disjoint
        for name in ("x", "y"):
            np.testing.assert_array_equal(np.concatenate([p[name] for p in parts]), whole[name])
        assert {s.end_of_sweep for s in shares} == {single.end_of_sweep}
    assert all(s.next_minibatch() == {} for s in shares)


def test_prefetch_on_and_off_give_identical_minibatches():
    calls = []

    def transform(batch):
        calls.append(len(batch["y"]))
        return {"x": batch["x"] * 2 + 1, "y": batch["y"]}

    src = ArraySource(rows(), transform=transform)
    without = [b for b in MinibatchSource(src, 4, seed=2, max_sweeps=3)]
    with MinibatchSource(src, 4, seed=2, max_sweeps=3, prefetch=2) as mb:
        prefetched = list(mb)
    assert len(without) == len(prefetched) == 18
    for a, b in zip(without, prefetched):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert len(calls) == 36  # the transform ran once per minibatch in each run


class Failing:
    """A source whose read of sample 13 fails, naming a file."""

    def __len__(self):
        return N

    def read(self, indices):
        if 13 in indices:
            raise mg.DataError("cannot read /data/broken.png: truncated")
        return {"y": np.asarray(indices)}


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_a_read_error_surfaces_in_the_training_thread_and_leaves_the_position(prefetch):
    mb = MinibatchSource(Failing(), 4, shuffle=False, prefetch=prefetch)
    for _ in range(3):
        mb.next_minibatch()
    for _ in range(2):  # the same minibatch fails again: the position did not move
        with pytest.raises(mg.DataError, match="broken.png"):
            mb.next_minibatch()
        assert mb.samples_seen == 12 and mb.iteration == 3
    mb.close()


def _prefetch_thread(mb):
    mb.next_minibatch()
    thread = mb._slot.current.thread
    assert thread.is_alive()
    return thread


def test_the_thread_stops_on_close_and_with_blocks():
    mb = MinibatchSource(rows(), 2, seed=0, prefetch=2)
    thread = _prefetch_thread(mb)
    mb.close()
    assert not thread.is_alive()
    assert len(mb.next_minibatch()["y"]) == 2  # reading again starts a new thread
    with MinibatchSource(rows(), 2, seed=0, prefetch=2) as mb2:
        thread = _prefetch_thread(mb2)
    assert not thread.is_alive()
    mb.close()


def test_the_thread_stops_when_the_source_is_garbage_collected():
    mb = MinibatchSource(rows(), 2, seed=0, prefetch=2)
    thread = _prefetch_thread(mb)
    del mb
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
    assert not [t for t in threading.enumerate() if t is thread]


def test_memory_mapped_arrays_read_only_the_minibatch(tmp_path):
    n, shape, size = 4000, (1, 32, 32), 50  # 16 MB of float32 on disk, 200 KB per minibatch
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, *shape))[:] = 1.0
    mapped = np.load(path, mmap_mode="r")
    minibatch_bytes = size * int(np.prod(shape)) * 4
    mb = MinibatchSource(ArraySource({"x": mapped}), size, seed=0, max_sweeps=1)
    mb.next_minibatch()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        total = 0.0
        for batch in mb:
            total += float(batch["x"].sum())
            del batch
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert total == (n - size) * np.prod(shape)
    assert peak < 3 * minibatch_bytes, f"peak {peak} bytes for minibatches of {minibatch_bytes} bytes"


@pytest.mark.parametrize("kwargs, match", [
    ({"minibatch_size": 30, "drop_last": True}, "larger than the data"),
    ({"minibatch_size": 4, "num_data_partitions": 2, "partition_index": 2, "seed": 0}, r"partition_index.*\[0, 2\)"),
    ({"minibatch_size": 4, "num_data_partitions": 2, "partition_index": -1, "seed": 0}, "partition_index"),
    ({"minibatch_size": 4, "num_data_partitions": 2}, "explicit seed"),
    ({"minibatch_size": 2, "num_data_partitions": 3, "seed": 0}, "smaller than num_data_partitions"),
])
def test_bad_arguments_raise_data_errors(kwargs, match):
    with pytest.raises(mg.DataError, match=match):
        MinibatchSource(rows(), **kwargs)


@pytest.mark.parametrize("kwargs, error", [
    ({"minibatch_size": 0}, ValueError), ({"minibatch_size": 2.5}, TypeError), ({"minibatch_size": True}, TypeError),
    ({"minibatch_size": 2, "prefetch": -1}, ValueError), ({"minibatch_size": 2, "max_sweeps": 0}, ValueError),
    ({"minibatch_size": 2, "shuffle": 1}, TypeError),
])
def test_argument_types_and_ranges(kwargs, error):
    with pytest.raises(error, match="MinibatchSource"):
        MinibatchSource(rows(), **kwargs)


def test_not_a_source():
    with pytest.raises(TypeError, match="source must be"):
        MinibatchSource([1, 2, 3], 2)


@pytest.mark.parametrize("change, match", [
    ({"n": 22}, "23 samples; this one has 22"), ({"seed": 4}, "another order"), ({"shuffle": False}, "another order"),
])
def test_load_state_dict_from_a_different_source_changes_nothing(change, match):
    saved = MinibatchSource(rows(), 5, seed=3)
    saved.next_minibatch()
    state = saved.state_dict()
    other = MinibatchSource(rows(change.get("n", N)), 5, seed=change.get("seed", 3),
                            shuffle=change.get("shuffle", True))
    other.next_minibatch()
    before = other.state_dict()
    with pytest.raises(mg.DataError, match=match):
        other.load_state_dict(state)
    assert other.state_dict() == before


@pytest.mark.parametrize("state", [None, {}, {"format": "minigraph-minibatch-source", "version": 9}])
def test_load_state_dict_rejects_what_is_not_a_state(state):
    with pytest.raises(mg.DataError, match="load_state_dict"):
        MinibatchSource(rows(), 5, seed=3).load_state_dict(state)


def test_load_state_dict_rejects_bad_counters():
    mb = MinibatchSource(rows(), 5, seed=3)
    for key, value in (("offset", -1), ("epoch", 1.5), ("offset", N + 1)):
        with pytest.raises(mg.DataError):
            mb.load_state_dict({**mb.state_dict(), key: value})


def test_partition_shares_are_numpys_array_split():
    for size in range(3, 12):
        for partitions in range(1, 4):
            want = np.array_split(np.arange(size), partitions)
            got = [np.arange(size)[partition_share(size, partitions, i)] for i in range(partitions)]
            assert [g.tolist() for g in got] == [w.tolist() for w in want]
