"""Graph nodes: factories, ids, repr, lookup, leaves, parameter values, lazy init, dtypes, networkx views."""
import os

import networkx as nx
import numpy as np
import pytest

import minigraph as mg
from minigraph import graph as graph_module
from minigraph.graph import name_scope


def _small_graph():
    x = mg.input_variable((3,), name="x")
    w = mg.parameter((3, 2), init=mg.initializers.glorot_uniform(seed=0), name="w")
    b = mg.parameter((2,), init=0.0, name="b")
    c = mg.constant(2.0, name="two")
    h = mg.times(x, w, name="h") + b
    y = mg.relu(h * c, name="y")
    return x, w, b, c, h, y


def test_factories_shapes_dtypes_and_names():
    x, w, b, c, h, y = _small_graph()
    assert x.shape == (3,) and x.dtype == np.float32 and x.name == "x" and x.op_name == "Input"
    assert w.shape == (3, 2) and w.dtype == np.float32 and w.op_name == "Parameter"
    assert c.op_name == "Constant" and c.dtype == np.float32  # the scalar adopted float32
    assert y.shape == (2,) and y.dtype == np.float32 and y.op_name == "ReLU" and y.root_function is y
    assert mg.input_variable(4, dtype=np.float64).dtype == np.float64
    assert mg.constant(np.arange(3.0)).dtype == np.float64
    assert mg.constant(np.arange(3, dtype=np.float32)).shape == (3,)


def test_ids_are_unique_and_increasing_and_repr_is_readable():
    x, w, b, c, h, y = _small_graph()
    ids = [n.uid for n in (x, w, b, c, h, y)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert repr(x) == f"Variable('Input', name='x', shape=(3,), dtype=float32, id={x.uid})"
    assert repr(y) == f"Function('ReLU', name='y', shape=(2,), dtype=float32, id={y.uid})"
    assert "shape=(H, 5)" in repr(mg.input_variable(("H", 5)))
    assert h.label == f"Plus #{h.uid}" and y.label == "ReLU 'y'"


def test_leaves_and_lookup():
    x, w, b, c, h, y = _small_graph()
    assert y.arguments == [x]
    assert y.parameters == [w, b]
    assert y.constants == [c]
    assert y.inputs == [x, w, b, c]
    assert y.find_by_name("h").op_name == "Times"
    assert y.find_by_name("w") is w
    with pytest.raises(mg.GraphError, match="no node named 'nope' in the graph of ReLU 'y'; names: .*'h'"):
        y.find_by_name("nope")
    twice = mg.plus(mg.input_variable((1,), name="a"), mg.input_variable((1,), name="a"))
    with pytest.raises(mg.GraphError, match="2 nodes named 'a'"):
        twice.find_by_name("a")
    assert len(twice.find_all_with_name("a")) == 2


def test_graph_is_a_networkx_dag_in_topological_order():
    x, w, b, c, h, y = _small_graph()
    g = y.graph
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert set(g.nodes) == {x, w, b, c, y, h, *h.inputs_direct, *y.inputs_direct}
    order = y.topological_order()
    assert order[-1] is y and all(order.index(a) < order.index(d) for a, d in g.edges)
    assert x.graph.number_of_nodes() == 1


def test_edges_record_input_slots_for_repeated_inputs():
    x = mg.input_variable((2,))
    sq = x * x
    assert sq.graph.edges[x, sq]["index"] == [0, 1]


def test_to_networkx_has_plain_attributes():
    x, w, b, c, h, y = _small_graph()
    g = y.to_networkx()
    assert set(g.nodes) == {n.uid for n in y.graph}
    assert g.nodes[y.uid] == {"op": "ReLU", "name": "y", "shape": "(2,)", "dtype": "float32", "kind": "Function"}
    assert g.nodes[x.uid]["kind"] == "Input"
    assert g.edges[w.uid, h.inputs_direct[0].uid]["index"] == [1]


def test_parameter_value_get_and_set_is_shape_checked():
    w = mg.parameter((2, 3), init=1.0, name="w")
    assert w.value.shape == (2, 3) and np.all(w.value == 1.0)
    w.value = np.arange(6.0).reshape(2, 3)
    assert w.value.dtype == np.float32 and w.value[1, 2] == 5.0
    with pytest.raises(mg.ShapeError,
                       match=r"Parameter 'w': cannot assign a value of shape \(3, 2\); expected \(2, 3\)"):
        w.value = np.zeros((3, 2))
    source = np.ones((2, 3))
    w.value = source
    source[0, 0] = 7.0
    assert w.value[0, 0] == 1.0  # assignment copies


def test_parameter_from_array_and_init_errors():
    p = mg.parameter(init=np.arange(4.0))
    assert p.shape == (4,) and p.dtype == np.float64
    with pytest.raises(TypeError, match="needs a shape"):
        mg.parameter()
    with pytest.raises(mg.ShapeError, match=r"init array has shape \(3,\); expected \(2,\)"):
        mg.parameter((2,), init=np.ones(3), dtype=np.float32, name="p")
    with pytest.raises(mg.ShapeError, match=r"init array has shape \(3,\); expected \(2,\)"):
        mg.parameter((2,), init=np.ones(3), name="p")          # caught before the dtype is known
    with pytest.raises(TypeError, match="init .* must be numeric; got str 'glorot'"):
        mg.parameter((2,), init="glorot")
    with pytest.raises(TypeError, match="rectangular"):
        mg.parameter((2, 2), init=[[1, 2], [3]])
    q = mg.parameter((2,), init=0.0)
    with pytest.raises(TypeError, match="value must be numeric"):
        q.value = "abc"
    with pytest.raises(mg.ShapeError, match="parameters cannot have symbolic dims"):
        mg.parameter(("H", 2))
    with pytest.raises(mg.ShapeError, match="must hold positive ints"):
        mg.parameter((0, 2))


def test_lazy_parameter_is_initialised_by_inference():
    p = mg.parameter((mg.InferredDimension, 4), init=mg.initializers.glorot_uniform(seed=0), name="p")
    assert not p.is_initialized and p.dtype is None
    with pytest.raises(mg.GraphError, match="still has inferred dims"):
        _ = p.value
    y = mg.times(mg.input_variable((7,), dtype=np.float64), p)
    assert p.shape == (7, 4) and p.dtype == np.float64 and p.is_initialized and y.shape == (4,)
    limit = np.sqrt(6 / (7 + 4))
    assert p.value.shape == (7, 4) and np.all(np.abs(p.value) <= limit)


def test_lazy_parameter_can_take_its_shape_from_an_assignment():
    p = mg.parameter((mg.InferredDimension, 2))
    p.value = np.ones((5, 2))
    assert p.shape == (5, 2)
    with pytest.raises(mg.ShapeError, match=r"shape \(-1, 2\) cannot become \(2, 5\)"):
        mg.parameter((mg.InferredDimension, 2)).value = np.ones((2, 5))


def test_dtypeless_parameter_defaults_to_float32_when_read():
    assert mg.parameter((2,), init=0.5).value.dtype == np.float32


def test_mixing_dtypes_is_a_clear_error():
    a = mg.input_variable((2,), name="a")
    b = mg.input_variable((2,), dtype=np.float64, name="b")
    with pytest.raises(mg.GraphError, match=r"Plus 's': inputs mix dtypes \(Input 'a': float32, Input 'b': float64\); "
                                            r"convert one with mg.cast"):
        mg.plus(a, b, name="s")


def test_factory_argument_errors():
    with pytest.raises(TypeError, match="dynamic axes are not supported"):
        mg.input_variable((2,), dynamic_axes=[])
    with pytest.raises(TypeError, match="not supported: minigraph computes in float32 or float64"):
        mg.input_variable((2,), dtype=np.int32)
    with pytest.raises(TypeError, match="needs a dtype"):
        mg.input_variable((2,), dtype=None)
    with pytest.raises(mg.ShapeError, match="non-positive size"):
        mg.input_variable((0, 2), name="z")
    with pytest.raises(TypeError, match="name must be a str"):
        mg.input_variable((2,), name=3)
    with pytest.raises(TypeError, match="not numeric"):
        mg.constant(np.array(["a"]))
    with pytest.raises(TypeError, match="cannot use str 'a' as a graph input"):
        mg.plus(mg.input_variable((1,)), "a")


def test_every_op_is_reachable_as_mg_ops_and_mg():
    for name in ("plus", "times", "reshape", "transpose", "slice", "splice", "reduce_sum", "softmax", "dropout",
                 "squared_error", "cross_entropy_with_softmax", "cast", "relu"):
        assert getattr(mg.ops, name) is getattr(mg, name)


def test_name_scope():
    with name_scope("enc", "Dense") as scope:
        inner = mg.input_variable((2,))
    assert inner.scope == (scope,) and scope.name == "enc" and scope.kind == "Dense"
    assert mg.input_variable((2,)).scope == ()


NODE_METHODS = ("eval", "grad", "forward", "backward", "save", "summary", "plot", "export_onnx", "to_networkx")


def test_node_declares_every_user_method():
    """Methods a user calls on a node are declared on Node itself, not attached by importing a module."""
    for name in NODE_METHODS:
        assert callable(vars(mg.Node).get(name)), f"Node does not declare {name}"
    assert not hasattr(graph_module, "register_method")


def test_every_registered_operator_has_its_dunder():
    """Each operator an op registers is reachable through a Python operator declared on Node."""
    registered = set(graph_module._OPERATORS)
    assert registered == set(graph_module.OPERATOR_DUNDERS), "registered operators and Node dunders differ"
    for name, dunders in graph_module.OPERATOR_DUNDERS.items():
        for dunder in dunders:
            assert callable(vars(mg.Node).get(dunder)), f"operator {name!r}: Node has no {dunder}"
    with pytest.raises(ValueError, match="no Node operator"):
        graph_module.register_operator("power", lambda a, b: a)


def test_abs_of_a_node():
    x = mg.input_variable((3,), name="x")
    y = abs(x)
    assert y.op_name == mg.abs(x).op_name
    np.testing.assert_array_equal(y.eval({x: np.array([[-1.5, 0.0, 2.0]], np.float32)}), [[1.5, 0.0, 2.0]])


def test_plot_save_and_summary_are_node_methods(tmp_path):
    x = mg.input_variable((2,), name="x")
    y = mg.relu(x, name="y")
    dot = y.plot(os.path.join(tmp_path, "g.dot"))
    assert dot.startswith("digraph") and (tmp_path / "g.dot").read_text().startswith("digraph")
    assert y.plot() == dot
    y.save(tmp_path / "m.mg")
    assert mg.load_model(tmp_path / "m.mg").op_name == y.op_name
    assert str(y.summary()) == str(mg.layers.summary(y))
