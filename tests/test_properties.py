"""Property-based tests: static broadcasting agrees with numpy; reshape and transpose round-trip."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minigraph as mg
from minigraph.shapes import broadcast_shapes, dim

from gradcheck import variable

small_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcastable_pair(draw):
    """Two shapes that numpy can broadcast: dims of one replaced by 1 or dropped on the left."""
    base = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))
    def variant():
        dims = [draw(st.sampled_from([d, 1])) for d in base]
        return tuple(dims[draw(st.integers(0, len(dims))):])
    return variant(), variant()


@given(broadcastable_pair())
def test_broadcast_shapes_matches_numpy(pair):
    a, b = pair
    assert broadcast_shapes([a, b]) == np.broadcast_shapes(a, b)


@given(small_shapes, small_shapes)
def test_broadcast_shapes_fails_exactly_when_numpy_fails(a, b):
    try:
        expected = np.broadcast_shapes(a, b)
    except ValueError:
        expected = None
    try:
        got = broadcast_shapes([a, b])
    except mg.ShapeError:
        got = None
    assert got == expected


@given(broadcastable_pair())
def test_symbolic_broadcasting_substitutes_to_numpy(pair):
    """Replacing every size 3 by the name H commutes with broadcasting."""
    a, b = pair
    sym = [tuple(dim("H") if d == 3 else d for d in s) for s in (a, b)]
    out = broadcast_shapes(sym)
    assert tuple(d.subs({"H": 3}) if isinstance(d, mg.Dim) else d for d in out) == np.broadcast_shapes(a, b)


@given(broadcastable_pair(), st.integers(1, 3))
def test_plus_node_shape_and_value_match_numpy(pair, batch):
    a, b = pair
    x, y = variable(a, "x"), variable(b, "y")
    s = x + y
    assert s.shape == np.broadcast_shapes(a, b)
    rng = np.random.default_rng(0)
    da, db = rng.standard_normal((batch, *a)), rng.standard_normal((batch, *b))
    rank = len(s.shape)
    expected = da.reshape((batch,) + (1,) * (rank - len(a)) + a) + db.reshape((batch,) + (1,) * (rank - len(b)) + b)
    np.testing.assert_array_equal(s.eval({x: da, y: db}), expected)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_reshape_round_trip(shape, rnd):
    shape = tuple(shape)
    total = int(np.prod(shape))
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    first = rnd.choice(divisors)
    x = variable(shape, "x")
    there = mg.reshape(x, (first, -1))
    back = mg.reshape(there, shape)
    assert there.shape == (first, total // first) and back.shape == shape
    data = np.random.default_rng(1).standard_normal((2, *shape))
    np.testing.assert_array_equal(back.eval({x: data}), data)
    np.testing.assert_array_equal(there.eval({x: data}), data.reshape(2, first, -1))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_transpose_round_trip_and_gradient_is_inverse(shape, rnd):
    shape = tuple(shape)
    perm = list(range(len(shape)))
    rnd.shuffle(perm)
    x = variable(shape, "x")
    t = mg.transpose(x, perm)
    assert t.shape == tuple(shape[p] for p in perm)
    back = mg.transpose(t, list(np.argsort(perm)))
    data = np.random.default_rng(2).standard_normal((2, *shape))
    np.testing.assert_array_equal(back.eval({x: data}), data)
    seed = np.random.default_rng(3).standard_normal((2, *t.shape))
    np.testing.assert_array_equal(t.grad({x: data}, wrt=x, grad_root=seed),
                                  np.transpose(seed, [0, *(int(i) + 1 for i in np.argsort(perm))]))


@given(st.lists(st.integers(1, 3), min_size=2, max_size=3).map(tuple))
def test_symbolic_reshape_round_trip(shape):
    names = ["A", "B", "C"][:len(shape)]
    x = mg.input_variable(tuple(names), name="x")
    flat = mg.reshape(x, ("*".join(names),))
    back = mg.reshape(flat, tuple(names))
    assert [str(d) for d in back.shape] == names
    data = np.arange(2 * np.prod(shape), dtype=np.float32).reshape((2, *shape))
    np.testing.assert_array_equal(back.eval({x: data}), data)
