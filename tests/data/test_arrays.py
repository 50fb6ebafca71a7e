"""ArraySource: rows in the asked order, explicit integer scaling, per-minibatch transform, bad input."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.data import ArraySource


def test_reads_the_asked_rows_in_order_and_keeps_dtypes():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    labels = np.arange(6, dtype=np.int64)
    batch = ArraySource({"x": x, "label": labels}).read(np.array([4, 1, 1]))
    np.testing.assert_array_equal(batch["x"], x[[4, 1, 1]])
    assert batch["label"].dtype == np.int64 and batch["label"].tolist() == [4, 1, 1]


def test_integers_are_scaled_only_when_asked():
    pixels = np.array([[0, 51, 255]], np.uint8).repeat(4, axis=0)
    src = ArraySource({"image": pixels, "raw": pixels}, value_range={"image": (-1, 1)})
    batch = src.read(np.arange(2))
    assert batch["image"].dtype == np.float32 and batch["raw"].dtype == np.uint8
    np.testing.assert_allclose(batch["image"][0], [-1.0, 51 / 255 * 2 - 1, 1.0], rtol=1e-6)
    signed = ArraySource({"s": np.array([-128, 0, 127], np.int8)}, value_range={"s": (0, 1)}).read(np.arange(3))
    np.testing.assert_allclose(signed["s"], [0.0, 128 / 255, 1.0], rtol=1e-6)


def test_transform_runs_per_minibatch():
    sizes = []

    def transform(batch):
        sizes.append(len(batch["x"]))
        return {"x": batch["x"][:, ::-1].copy()}

    src = ArraySource({"x": np.arange(10).reshape(5, 2)}, transform=transform)
    assert src.read(np.array([0, 2]))["x"].tolist() == [[1, 0], [5, 4]]
    assert sizes == [2]


@pytest.mark.parametrize("transform, match", [
    (lambda b: None, "non-empty dict"), (lambda b: {"x": b["x"][:1]}, "keep the 2 samples"),
])
def test_a_transform_that_breaks_the_minibatch(transform, match):
    with pytest.raises(mg.DataError, match=match):
        ArraySource({"x": np.zeros((5, 2))}, transform=transform).read(np.array([0, 1]))


@pytest.mark.parametrize("arrays, kwargs, match", [
    ({"x": np.zeros((5, 2)), "y": np.zeros(4)}, {}, r"same number of samples, got 'x': 5, 'y': 4"),
    ({}, {}, "non-empty dict"),
    ({"x": np.float32(1.0)}, {}, "leading sample axis"),
    ({"x": np.zeros((0, 2))}, {}, "no samples"),
    ({"x": np.zeros((3, 2))}, {"value_range": {"x": (0, 1)}}, "not integers"),
    ({"x": np.zeros((3, 2), np.uint8)}, {"value_range": {"z": (0, 1)}}, "'z'"),
    ({"x": np.zeros((3, 2), np.uint8)}, {"value_range": {"x": (1, 0)}}, "low < high"),
])
def test_bad_arrays(arrays, kwargs, match):
    with pytest.raises(mg.DataError, match=match):
        ArraySource(arrays, **kwargs)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="names must be strings"):
        ArraySource({1: np.zeros(3)})
    with pytest.raises(TypeError, match="transform"):
        ArraySource({"x": np.zeros(3)}, transform=3)
