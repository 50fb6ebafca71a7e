"""Symbolic dimensions: parsing, simplification, printing, equality, ordering, substitution, broadcasting."""
import numpy as np
import pytest

import minigraph as mg
from minigraph.shapes import (
    Dim,
    as_shape,
    broadcast_shapes,
    ceil_div,
    dim,
    is_known,
    is_static,
    names_of,
    num_elements,
    shape_str,
    subs_shape,
)

H, W = dim("H"), dim("W")


@pytest.mark.parametrize("text,printed", [("H", "H"), ("2*H - 1", "2*H - 1"), ("2*H-1", "2*H - 1"),
                                          ("(H + 1)//2", "(H + 1)//2"), ("H//2", "H//2"), ("W*H", "H*W"),
                                          ("H + H", "2*H"), ("(2*H)//2", "H")])
def test_parse_and_print(text, printed):
    d = dim(text)
    assert isinstance(d, Dim) and str(d) == printed and repr(d) == printed


@pytest.mark.parametrize("name", ["N", "I", "E", "S", "Q", "O", "beta", "gamma", "pi", "zeta"])
def test_names_that_are_sympy_builtins_stay_plain_names(name):
    d = dim(name)
    assert d.names == (name,) and str(d) == name
    assert str(dim(f"2*{name} + 1")) == f"2*{name} + 1"
    assert d.subs({name: 3}) == 3


def test_ints_stay_ints():
    assert dim(5) == 5 and type(dim(5)) is int
    assert type(dim(np.int64(4))) is int and dim(3.0) == 3 and type(dim(3.0)) is int
    assert dim("4//2") == 2 and type(dim("4//2")) is int
    assert type(H - H) is int and H - H == 0
    assert type((2 * H + 2) // 2 - H) is int


def test_arithmetic_simplifies():
    assert 2 * H - H == H
    assert str(H * 2 - 1) == "2*H - 1"
    assert str(1 - H) == "1 - H"
    assert str(-H) == "-H"
    assert (2 * H) // 2 == H
    assert str(ceil_div(H, 2)) == "(H + 1)//2"
    assert ceil_div(7, 2) == 4 and ceil_div(8, 2) == 4
    assert str(12 // H) == "12//H"


def test_equality_and_hashing():
    assert dim("H*W") == dim("W*H") and hash(dim("H*W")) == hash(dim("W*H"))
    assert H != W and H != 3 and 3 != H
    assert len({H, dim("H"), W, H + 0}) == 2
    assert (H == "H") is False  # strings are not dims: compare dims with dims


def test_ordering_where_decidable():
    assert H + 1 > H and H >= 1 and H < H + 1 and 0 < H and H <= 2 * H
    with pytest.raises(TypeError, match="cannot decide H > 3 for every value of H"):
        _ = H > 3
    with pytest.raises(TypeError, match="cannot decide"):
        _ = H < W


def test_symbolic_dims_have_no_int_value():
    with pytest.raises(TypeError, match="dimension H is symbolic: it has no value until H is bound"):
        int(H)
    with pytest.raises(TypeError, match="until H, W are bound"):
        range(H * W)
    assert bool(H)


def test_substitution():
    d = dim("(H + 1)//2")
    assert d.subs({"H": 4}) == 2 and d.subs({"H": 5}) == 3
    partial = dim("2*H - W").subs({"H": 4})
    assert isinstance(partial, Dim) and str(partial) == "8 - W"
    assert subs_shape((3, H, dim("2*W")), {"H": 4, "W": 5}) == (3, 4, 10)
    assert names_of((3, H, dim("H*W"))) == {"H", "W"}


@pytest.mark.parametrize("bad,exc,match", [
    ("H +", mg.ShapeError, "cannot parse dimension 'H \\+'"),
    ("H/2", mg.ShapeError, "not an integer expression .*divide with //"),
    ("1.5", mg.ShapeError, "not an integer expression"),
    ("H < 2", mg.ShapeError, "not an integer expression"),
    (True, TypeError, "is a bool"),
    (2.5, TypeError, "cannot use 2.5"),
    (None, TypeError, "cannot use None"),
])
def test_bad_dimensions(bad, exc, match):
    with pytest.raises(exc, match=match):
        dim(bad)


def test_as_shape_and_predicates():
    assert as_shape(None) == () and as_shape(3) == (3,) and as_shape("H") == (H,)
    assert as_shape((3, "H", "2*W")) == (3, H, 2 * W)
    with pytest.raises(TypeError, match=r"shape \(3, 1.5\)"):
        as_shape((3, 1.5))
    assert is_known(3) and not is_known(H)
    assert is_static((3, 4)) and not is_static((3, H)) and not is_static((3, -1))


def test_shape_str_and_num_elements():
    assert shape_str(()) == "()" and shape_str((5,)) == "(5,)" and shape_str((H, W, 5)) == "(H, W, 5)"
    assert shape_str((dim("2*H - 1"),)) == "(2*H - 1,)"
    assert num_elements(()) == 1 and num_elements((2, 3)) == 6
    assert str(num_elements((3, H, W))) == "3*H*W"


def test_broadcast_shapes_symbolic():
    assert broadcast_shapes([(3, H), (1, H)]) == (3, H)
    assert broadcast_shapes([(H, 1), (5,)]) == (H, 5)
    assert broadcast_shapes([(H,), ()]) == (H,)
    with pytest.raises(mg.ShapeError,
                       match=r"ctx: cannot broadcast shapes \(H,\) and \(5,\): axis -1 has sizes H and 5"):
        broadcast_shapes([(H,), (5,)], context="ctx: ")
    with pytest.raises(mg.ShapeError, match="sizes H and W"):
        broadcast_shapes([(H,), (W,)])


@pytest.mark.parametrize("build", [
    lambda H, W: 2 * ((H + 1) // 2),
    lambda H, W: 1 - 3 * ((H + 1) // 2),
    lambda H, W: H - (H + 1) // 2,
    lambda H, W: 2 * W * ((H + 1) // 2),
    lambda H, W: (2 * H - 1) // 3 + W,
])
def test_printed_floor_divisions_read_back_as_python(build):
    H, W = dim("H"), dim("W")
    expr = build(H, W)
    assert dim(str(expr)) == expr
    assert eval(str(expr), {"H": 7, "W": 3}) == expr.subs({"H": 7, "W": 3})


# --- dimension text is parsed with minigraph's grammar, never evaluated -----------------------------------
@pytest.mark.parametrize("text", ["H**2", "-H + 5", "W*(H - 1)", "(W + (H + 1)//2)//3", "(H*W)//4", " 3 ", "+H",
                                  "H - 2*(H//2)", "3*((H + 1)//2)"])
def test_grammar_accepts_what_dims_print(text):
    d = dim(text)
    assert dim(str(d)) == d and str(dim(str(d))) == str(d)


@pytest.mark.parametrize("text,match", [
    ("", "the text is empty"), ("   ", "the text is empty"), ("H)", "unexpected '\\)' at position 1"),
    ("(((H", "'\\(' is not closed"), ("2 H", "unexpected 'H' at position 2"), ("H//0", "division by zero"),
    ("H**9", "exponent must be an integer from 0 to 8"), ("H**W", "exponent"), ("1" * 30, "more than 19 digits"),
    ("-" * 60 + "H", "more than 50 nested"), ("H" * 1001, "longer than 1000 characters"),
    ("H.real", "not an integer expression"), ("H[0]", "unexpected character '\\['"), ("é", "unexpected character"),
    ("lambda: 1", "unexpected character ':'"), ("H; import os", "unexpected character ';'"),
    ("H if 1 else 2", "unexpected 'if'"), ("__import__('os')", "unexpected character"),
])
def test_grammar_rejects_everything_else(text, match):
    with pytest.raises(mg.ShapeError, match=match):
        dim(text)


def test_code_in_dimension_text_never_runs(tmp_path):
    """Text that ``sympy.parse_expr`` would have evaluated: it must be rejected and create no marker."""
    marker = tmp_path / "marker"
    payloads = [
        f"16*(1 if [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        f".__init__.__globals__['mkdir']({str(marker)!r}) is None else 0)",
        f"__import__('os').mkdir({str(marker)!r})",
        f"H + (__import__('pathlib').Path({str(marker)!r}).touch() or 0)",
        f"Symbol('H') + exec(\"open({str(marker)!r}, 'w')\")",
    ]
    for text in payloads:
        with pytest.raises(mg.ShapeError, match="cannot parse dimension|not an integer expression"):
            dim(text)
    assert not marker.exists()


def test_make_dim_never_takes_text():
    from minigraph.shapes import make_dim
    with pytest.raises(TypeError, match="sympy expression"):
        make_dim("H + 1")


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # hypothesis is a test extra
    given = None

if given is not None:
    _leaf = st.one_of(st.integers(0, 40), st.sampled_from(["H", "W", "N"]).map(dim))

    def _combine(children):
        pair = st.tuples(children, children)
        return st.one_of(pair.map(lambda p: p[0] + p[1]), pair.map(lambda p: p[0] - p[1]),
                         pair.map(lambda p: p[0] * p[1]),
                         st.tuples(children, st.integers(1, 7)).map(lambda p: p[0] // p[1]))

    @settings(max_examples=300, deadline=None)
    @given(st.recursive(_leaf, _combine, max_leaves=8))
    def test_printed_dims_parse_back_to_the_same_dim(d):
        assert dim(str(d)) == d
