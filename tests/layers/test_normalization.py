"""BatchNormalization's running statistics follow the dtype of the graph (tests/layers/test_misc.py has
the train/eval arithmetic)."""
import numpy as np
import pytest

import minigraph as mg
from minigraph import layers as L


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_statistics_of_a_dtype_less_input_adopt_the_graphs_dtype(dtype):
    """The input is computed from a parameter only, so it has no dtype when the layer creates its statistics."""
    bn = L.BatchNormalization(momentum=0.5)
    h = bn(mg.parameter((3,), init=np.arange(3.0)) * 2.0)
    x = mg.input_variable(3, dtype=dtype)
    y = h + x
    out = y.eval({x: np.ones((2, 3), dtype)}, training=True)
    assert out.dtype == dtype and bn.running_mean.dtype == bn.running_var.dtype == dtype
    assert bn.running_mean.value.dtype == bn.running_var.value.dtype == dtype
    np.testing.assert_allclose(bn.running_mean.value, [0.0, 1.0, 2.0])   # updated in the adopted array
    np.testing.assert_allclose(bn.running_var.value, [0.5, 0.5, 0.5])


def test_statistics_of_a_typed_input_have_its_dtype_at_once():
    bn = L.BatchNormalization(map_rank=1)
    bn(mg.input_variable((2, 3), dtype=np.float64))
    assert bn.running_mean.dtype == bn.running_var.dtype == np.float64
    assert bn.running_var.value.dtype == np.float64 and bn.running_var.value.tolist() == [1.0, 1.0]
