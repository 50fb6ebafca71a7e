"""The shared argument checks: wrong types raise TypeError, values out of range ValueError, and
messages name the caller and the argument."""
import math

import numpy as np
import pytest

from minigraph.checks import check_bool, check_int, check_ints, check_number, is_int, is_number


@pytest.mark.parametrize("value,expected", [(3, True), (np.int64(3), True), (True, False), (np.bool_(True), False),
                                            (3.0, False), ("3", False), (None, False)])
def test_is_int_refuses_bools(value, expected):
    assert is_int(value) is expected


@pytest.mark.parametrize("value,expected", [(3, True), (2.5, True), (np.float32(2.5), True), (math.inf, True),
                                            (False, False), ("1", False), (1j, False)])
def test_is_number_refuses_bools(value, expected):
    assert is_number(value) is expected


@pytest.mark.parametrize("value,minimum,error,message", [
    (1.5, None, TypeError, r"^f: n must be an int, got 1.5$"),
    (True, 1, TypeError, r"^f: n must be a positive int, got True$"),
    (0, 1, ValueError, r"^f: n must be a positive int, got 0$"),
    (-1, 0, ValueError, r"^f: n must be an int >= 0, got -1$"),
])
def test_check_int_errors(value, minimum, error, message):
    with pytest.raises(error, match=message):
        check_int(value, "n", "f", minimum=minimum)


def test_check_int_returns_python_ints():
    value = check_int(np.int32(4), "n", "f", minimum=0)
    assert value == 4 and type(value) is int


def test_check_ints_takes_one_int_or_a_sequence():
    assert check_ints(3, "k", "f", minimum=1) == (3,)
    assert check_ints([np.int64(2), 3], "k", "f") == (2, 3)
    assert check_ints(None, "axis", "f", optional=True) is None
    with pytest.raises(TypeError, match=r"^f: axis must be None, an int or a sequence of ints, got '0'$"):
        check_ints("0", "axis", "f", optional=True)
    positive = r"^f: k must be a positive int or a sequence of positive ints, got "
    with pytest.raises(TypeError, match=positive + r"\(2, 1.0\)$"):
        check_ints((2, 1.0), "k", "f", minimum=1)
    with pytest.raises(ValueError, match=positive + r"\(3, 0\)$"):
        check_ints((3, 0), "k", "f", minimum=1)


@pytest.mark.parametrize("value,bounds,error,message", [
    ("1", {}, TypeError, r"^f: x must be a number, got '1'$"),
    (True, {"minimum": 0}, TypeError, r"^f: x must be a number >= 0, got True$"),
    (math.nan, {}, ValueError, r"^f: x must be a number, got nan$"),
    (-0.5, {"minimum": 0}, ValueError, r"^f: x must be a number >= 0, got -0.5$"),
    (1.5, {"minimum": 0, "maximum": 1}, ValueError, r"^f: x must be a number in \[0, 1\], got 1.5$"),
])
def test_check_number_errors(value, bounds, error, message):
    with pytest.raises(error, match=message):
        check_number(value, "x", "f", **bounds)


def test_check_number_accepts_infinity_and_returns_floats():
    assert check_number(math.inf, "time_constant", "f", minimum=0) == math.inf
    value = check_number(np.float32(0.5), "x", "f", minimum=0, maximum=1)
    assert value == 0.5 and type(value) is float


def test_check_bool():
    assert check_bool(np.bool_(True), "b", "f") is True
    with pytest.raises(TypeError, match=r"^f: b must be a bool \(True or False\), got 1$"):
        check_bool(1, "b", "f")
