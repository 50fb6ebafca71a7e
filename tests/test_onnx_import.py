"""ONNX import: models exported by minigraph come back with the same outputs (and export again to files
ONNX Runtime runs identically); errors in malformed files name the node, the op and what is supported."""
import inspect
import itertools
import sys

import numpy as np
import pytest

import minigraph as mg
from minigraph.onnx_import import OnnxImportError, import_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import test_onnx_export as exported  # noqa: E402  (the export tests' models, reused for the round trip)

MAX_ERRORS: dict[str, float] = {}


def record(family: str, got, want) -> None:
    err = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)))) if np.size(got) else 0.0
    MAX_ERRORS[family] = max(MAX_ERRORS.get(family, 0.0), err)


# round trip of every model the export tests build ------------------------------------------------------
def _cases(fn):
    """The parameter sets of one export test (its parametrize marks, expanded)."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    axes = []
    for m in marks:
        names = [n.strip() for n in m.args[0].split(",")] if isinstance(m.args[0], str) else list(m.args[0])
        rows = [dict(zip(names, v if len(names) > 1 else (v,))) for v in m.args[1]]
        axes.append(rows)
    return [dict(kv for row in combo for kv in row.items()) for combo in itertools.product(*axes)] or [{}]


ERROR_TESTS = {"test_every_op_but_the_losses_has_a_converter", "test_op_without_converter_is_named",
               "test_missing_onnx_says_how_to_install", "test_per_sample_weights_are_refused", "test_bad_options",
               "test_names_fixed_batch_and_failed_write_keeps_the_old_file"}
ROUND_TRIP = [(name, i, kwargs) for name, fn in inspect.getmembers(exported, inspect.isfunction)
              if name.startswith("test_") and name not in ERROR_TESTS
              for i, kwargs in enumerate(_cases(fn))]


@pytest.mark.parametrize("name, index, kwargs", ROUND_TRIP, ids=[f"{n}[{i}]" for n, i, _ in ROUND_TRIP])
def test_round_trip_of_the_export_tests(name, index, kwargs, monkeypatch, tmp_path):
    """Each export test again, with every exported file imported back and exported a second time: the
    test's own comparisons then run on the re-exported file, and ``check`` also compares the imported
    graph's eval with the original's."""
    original_session, original_check = exported.session, exported.check

    def reimported_session(proto):
        back = import_onnx(proto)
        again = back.export_onnx(opset=max(17, proto.opset_import[0].version),
                                 input_names=[i.name for i in proto.graph.input],
                                 output_name=proto.graph.output[0].name, batch_dim=_batch_dim(proto))
        return original_session(again)

    def check(model, *arrays, opset=17, atol=1e-5):
        got = original_check(model, *arrays, opset=opset, atol=atol)
        back = import_onnx(exported.export_onnx(model, opset=opset))
        feed = dict(zip(back.arguments, arrays))
        mine = back.eval(feed)
        np.testing.assert_allclose(mine, model.eval(dict(zip(model.arguments, arrays))), rtol=1e-5, atol=atol)
        record("round trip (minigraph -> ONNX -> minigraph)", mine, model.eval(dict(zip(model.arguments, arrays))))
        return got

    monkeypatch.setattr(exported, "session", reimported_session)
    monkeypatch.setattr(exported, "check", check)
    fn = getattr(exported, name)
    if "tmp_path" in inspect.signature(fn).parameters:
        kwargs = dict(kwargs, tmp_path=tmp_path)
    fn(**kwargs)


def _batch_dim(proto):
    first = proto.graph.input[0].type.tensor_type.shape.dim[0]
    return first.dim_param or first.dim_value


# the ONNX repository's node tests for Conv and ConvTranspose -------------------------------------------
def _node_cases():
    """The node test cases of ONNX's ``conv`` and ``convtranspose`` case modules: importing a case module
    records its cases (``collect_testcases`` would build every op's cases, which takes half a minute)."""
    import importlib

    node_cases = importlib.import_module("onnx.backend.test.case.node")
    for module in ("conv", "convtranspose"):
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    recorded = getattr(node_cases, "_NodeTestCases", None)
    if recorded is None:  # another onnx version: the public way
        recorded = node_cases.collect_testcases()
    seen, cases = set(), []
    for case in recorded:
        ops_used = {n.op_type for n in case.model.graph.node}
        if ops_used and ops_used <= {"Conv", "ConvTranspose"} and case.name not in seen:
            seen.add(case.name)
            cases.append(case)
    return sorted(cases, key=lambda c: c.name)


NODE_CASES = _node_cases()


def test_the_node_tests_include_every_conv_attribute():
    names = {c.name for c in NODE_CASES}
    assert {"test_convtranspose_output_shape", "test_convtranspose_pad", "test_convtranspose_kernel_shape",
            "test_convtranspose_pads", "test_convtranspose_dilations", "test_convtranspose_autopad_same",
            "test_convtranspose_group_2", "test_conv_with_autopad_same", "test_conv_with_strides_padding"} <= names


@pytest.mark.parametrize("case", NODE_CASES, ids=lambda c: c.name)
def test_onnx_node_test_cases(case):
    """The node test's model, with the kernel (and bias) fed as initializers: the operand's fixed batch
    axis is accepted through input_shapes; the outputs match the expected ones."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    for inputs, outputs in case.data_sets:
        names = [i.name for i in graph.input]
        for name, array in list(zip(names, inputs))[1:]:
            graph.initializer.append(onnx.numpy_helper.from_array(array, name))
        del graph.input[1:]
        x = inputs[0]
        y = import_onnx(model, input_shapes={names[0]: x.shape[1:]})
        got = y.eval({y.arguments[0]: x})
        np.testing.assert_allclose(got, outputs[0], rtol=1e-5, atol=1e-5)
        record("ONNX node tests (Conv, ConvTranspose)", got, outputs[0])
        conv = next(n for n in y.topological_order() if n.op_name.startswith("Convolution"))
        assert {"lower_pad", "upper_pad"} <= set(conv.attributes)


# malformed files ----------------------------------------------------------------------------------------
helper, TP = onnx.helper, onnx.TensorProto


def model_of(nodes, inputs=None, outputs=None, initializers=(), opset=17):
    inputs = inputs or [helper.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TP.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def weight(name, *shape):
    return onnx.numpy_helper.from_array(np.random.default_rng(1).normal(size=shape).astype(np.float32), name)


def test_missing_initializer_names_the_input():
    m = model_of([helper.make_node("Conv", ["x", "W"], ["y"], name="conv1")])
    with pytest.raises(OnnxImportError, match=r"Conv 'conv1'.*input 'W' is undefined.*missing initializer"):
        import_onnx(m)


def test_wrong_attribute_type_is_refused():
    m = model_of([helper.make_node("Conv", ["x", "W"], ["y"], name="c", strides="2")], initializers=[
        weight("W", 4, 3, 3, 3)])
    with pytest.raises(OnnxImportError, match=r"attribute 'strides' must be of type INTS, got STRING"):
        import_onnx(m)


def test_unknown_attribute_is_never_ignored():
    m = model_of([helper.make_node("Relu", ["x"], ["y"], name="r", alpha=0.5)])
    with pytest.raises(OnnxImportError, match=r"Relu 'r'.*attribute\(s\) alpha not supported"):
        import_onnx(m)


def test_cycle_is_named():
    m = model_of([helper.make_node("Relu", ["b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"]),
                  helper.make_node("Relu", ["b"], ["y"])])
    with pytest.raises(OnnxImportError, match=r"'first'.*input 'b'.*later node: the graph has a cycle"):
        import_onnx(m)


def test_unknown_op_names_node_op_opset_and_the_supported_list():
    m = model_of([helper.make_node("Hardmax", ["x"], ["y"], name="hm")], opset=13)
    with pytest.raises(OnnxImportError, match=r"Hardmax 'hm' \(opset 13\).*not supported; supported ops: .*Conv"):
        import_onnx(m)


def test_inconsistent_shapes_raise_the_shape_error():
    m = model_of([helper.make_node("Conv", ["x", "W"], ["y"], name="c")], initializers=[weight("W", 4, 5, 3, 3)])
    with pytest.raises(mg.ShapeError, match=r"Conv 'c'.*channel mismatch"):
        import_onnx(m)


def test_conv_transpose_output_shape_out_of_range_is_a_clear_error():
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="up", strides=[2, 2], pads=[0, 0, 0, 0],
                            output_shape=[20, 20])
    with pytest.raises(OnnxImportError, match=r"ConvTranspose 'up'.*at most max\(stride, dilation\) - 1"):
        import_onnx(model_of([node], initializers=[weight("W", 3, 2, 3, 3)]))


def test_fixed_batch_axis_needs_input_shapes():
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3, 4])]
    m = model_of([helper.make_node("Relu", ["x"], ["y"])], inputs=inputs)
    with pytest.raises(OnnxImportError, match=r"first axis \(size 1\) is not a batch axis.*input_shapes"):
        import_onnx(m)
    y = import_onnx(m, input_shapes={"x": (3, 4)})
    assert y.arguments[0].shape == (3, 4)


def test_truncated_file_and_wrong_types(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage")
    with pytest.raises(OnnxImportError, match="not an ONNX model"):
        import_onnx(path)
    with pytest.raises(OnnxImportError, match="cannot read"):
        import_onnx(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="path or an onnx.ModelProto"):
        import_onnx(42)


def test_batch_dependent_sizes_are_not_folded():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Equal", ["n", "one"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=_branch("x"), else_branch=_branch("x"))]
    consts = [onnx.numpy_helper.from_array(np.array(0, np.int64), "zero"),
              onnx.numpy_helper.from_array(np.array(1, np.int64), "one")]
    with pytest.raises(OnnxImportError, match="depends on the batch size"):
        import_onnx(model_of(nodes, initializers=consts))


def _branch(source):
    out = helper.make_tensor_value_info("b_out", TP.FLOAT, None)
    return helper.make_graph([helper.make_node("Relu", [source], ["b_out"])], "branch", [], [out])


def test_nothing_is_half_imported():
    """A failing node late in the graph: no graph is returned and the file's names are not reserved."""
    m = model_of([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Hardmax", ["h"], ["y"])])
    with pytest.raises(OnnxImportError):
        import_onnx(m)
    ok = model_of([helper.make_node("Relu", ["x"], ["y"])])
    assert import_onnx(ok).name == "y"


# code in the file never runs --------------------------------------------------------------------------------
PAYLOADS = ["__import__('pathlib').Path({marker!r}).touch()",
            "exec(\"open({marker!r}, 'w').write('x')\")",
            "Symbol('N').__class__.__init__.__globals__['__builtins__']['__import__']('os').system('touch {marker}')"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_code_in_a_dim_param_never_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    text = payload.format(marker=str(marker))
    for dims in (["N", 3, text], [text, 3, 4]):
        inputs = [helper.make_tensor_value_info("x", TP.FLOAT, dims)]
        m = model_of([helper.make_node("Relu", ["x"], ["y"])], inputs=inputs)
        if dims[0] == text:  # a batch axis named by code is only a name: never parsed
            import_onnx(m)
        else:
            with pytest.raises(OnnxImportError, match="not a plain name"):
                import_onnx(m)
    assert not marker.exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_code_in_attribute_strings_and_op_types_never_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    text = payload.format(marker=str(marker))
    attempts = [
        helper.make_node("Conv", ["x", "W"], ["y"], auto_pad=text),
        helper.make_node("Resize", ["x", "", "sc"], ["y"], mode=text),
        helper.make_node(text, ["x"], ["y"]),
        helper.make_node("Relu", ["x"], ["y"], name=text, **{"__class__": 1}),
    ]
    inits = [weight("W", 4, 3, 3, 3), onnx.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")]
    for node in attempts:
        with pytest.raises(OnnxImportError):
            import_onnx(model_of([node], initializers=inits))
    assert not marker.exists()


# options ------------------------------------------------------------------------------------------------------
def test_several_outputs_give_a_dict_by_name_and_arguments_keep_the_file_order():
    inputs = [helper.make_tensor_value_info(n, TP.FLOAT, ["N", 4]) for n in ("b", "a")]
    outputs = [helper.make_tensor_value_info(n, TP.FLOAT, None) for n in ("sum", "prod")]
    m = model_of([helper.make_node("Add", ["b", "a"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
                 inputs=inputs, outputs=outputs)
    out = import_onnx(m)
    assert list(out) == ["sum", "prod"]
    assert [v.name for v in out["sum"].arguments] == ["b", "a"]
    a, b = np.ones((2, 4), np.float32), np.full((2, 4), 3.0, np.float32)
    np.testing.assert_array_equal(out["prod"].eval({"a": a, "b": b}), a * b)


def test_trainable_false_gives_constants_and_name_names_the_output():
    m = model_of([helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1])],
                 initializers=[weight("W", 4, 3, 3, 3)])
    y = import_onnx(m, trainable=False, name="features")
    assert y.name == "features" and not y.parameters and [c.name for c in y.constants] == ["W"]
    y = import_onnx(m)
    assert [p.name for p in y.parameters] == ["W"]


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"minigraph\[onnx\]"):
        import_onnx("model.onnx")


# every op, against ONNX Runtime ------------------------------------------------------------------------------
def _f(*shape, low=-2.0, high=2.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def _init(name, array):
    return onnx.numpy_helper.from_array(np.asarray(array), name)


I64 = np.int64
OP_CASES = {  # name: (opset, input shape, nodes, initializers)
    "Gemm transB alpha beta": (13, (4,), [helper.make_node("Gemm", ["x", "W", "c"], ["y"], transB=1, alpha=0.5,
                                                           beta=2.0)], [_init("W", _f(3, 4)), _init("c", _f(3))]),
    "MatMul": (13, (2, 4), [helper.make_node("MatMul", ["x", "W"], ["y"])], [_init("W", _f(4, 3))]),
    "Elu Softplus Neg Abs": (13, (5,), [
        helper.make_node("Elu", ["x"], ["a"], alpha=0.7), helper.make_node("Softplus", ["a"], ["b"]),
        helper.make_node("Neg", ["b"], ["c"]), helper.make_node("Abs", ["c"], ["y"])], []),
    "Exp Log Sqrt Sigmoid Tanh": (13, (5,), [
        helper.make_node("Sigmoid", ["x"], ["a"]), helper.make_node("Sqrt", ["a"], ["b"]),
        helper.make_node("Log", ["b"], ["c"]), helper.make_node("Exp", ["c"], ["d"]),
        helper.make_node("Tanh", ["d"], ["y"])], []),
    "Clip inputs": (13, (5,), [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                    [_init("lo", np.float32(-0.5)), _init("hi", np.float32(0.7))]),
    "Clip max only": (13, (5,), [helper.make_node("Clip", ["x", "", "hi"], ["y"])], [_init("hi", np.float32(0.3))]),
    "Add Sub Mul Div broadcasting": (13, (3, 4), [
        helper.make_node("Add", ["x", "row"], ["a"]), helper.make_node("Sub", ["col", "a"], ["b"]),
        helper.make_node("Mul", ["b", "k"], ["c"]), helper.make_node("Div", ["c", "d"], ["y"])],
        [_init("row", _f(4)), _init("col", _f(3, 1)), _init("k", np.float32(3.0)), _init("d", _f(1, 3, 4, low=1))]),
    "InstanceNormalization": (13, (3, 4, 5), [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"],
                                                               epsilon=1e-3)], [_init("s", _f(3)), _init("b", _f(3))]),
    "LayerNormalization axis -1": (17, (3, 4), [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"])],
                                   [_init("s", _f(4)), _init("b", _f(4))]),
    "LayerNormalization axis 1": (17, (3, 4), [helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=1)],
                                  [_init("s", _f(3, 4))]),
    "BatchNormalization": (15, (3, 4, 4), [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                                            epsilon=1e-3)],
                           [_init("s", _f(3)), _init("b", _f(3)), _init("m", _f(3)), _init("v", _f(3, low=0.5))]),
    "Reshape 0 and -1, Flatten": (13, (2, 3, 4), [helper.make_node("Reshape", ["x", "shape"], ["a"]),
                                                  helper.make_node("Flatten", ["a"], ["y"])],
                                  [_init("shape", np.array([0, -1, 2], I64))]),
    "Transpose Concat": (13, (2, 3), [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),
                                      helper.make_node("Relu", ["a"], ["b"]),
                                      helper.make_node("Concat", ["a", "b"], ["y"], axis=-1)], []),
    "Slice": (13, (6, 7), [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
              [_init("st", np.array([1, -5], I64)), _init("en", np.array([100, 6], I64)),
               _init("ax", np.array([1, 2], I64)), _init("sp", np.array([2, 1], I64))]),
    "Squeeze Unsqueeze inputs (opset 13)": (13, (3, 1, 4), [
        helper.make_node("Squeeze", ["x", "a1"], ["a"]), helper.make_node("Unsqueeze", ["a", "a2"], ["y"])],
        [_init("a1", np.array([2], I64)), _init("a2", np.array([-1, 1], I64))]),
    "Squeeze Unsqueeze attributes (opset 11)": (11, (3, 1, 4), [
        helper.make_node("Squeeze", ["x"], ["a"], axes=[2]), helper.make_node("Unsqueeze", ["a"], ["y"], axes=[1])],
        []),
    "Pad constant": (13, (2, 4, 5), [helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")],
                     [_init("p", np.array([0, 0, 1, -1, 0, 0, 2, 1], I64)), _init("v", np.float32(0.5))]),  # crops too
    "MaxPool AveragePool": (13, (2, 7, 7), [
        helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["a"], ["y"], kernel_shape=[2, 2])], []),
    "GlobalAveragePool": (13, (3, 4, 5), [helper.make_node("GlobalAveragePool", ["x"], ["y"])], []),
    "Softmax opset 11 (flattened)": (11, (3, 4), [helper.make_node("Softmax", ["x"], ["y"], axis=1)], []),
    "LogSoftmax opset 13": (13, (3, 4), [helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)], []),
    "ReduceMean ReduceMax attributes": (13, (3, 4), [
        helper.make_node("ReduceMean", ["x"], ["a"], axes=[2], keepdims=1),
        helper.make_node("ReduceMax", ["a"], ["y"], axes=[1], keepdims=0)], []),
    "ReduceSum input": (13, (3, 4), [helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=0)],
                        [_init("ax", np.array([-1], I64))]),
    "ReduceMean input (opset 18)": (18, (3, 4), [helper.make_node("ReduceMean", ["x", "ax"], ["y"])],
                                    [_init("ax", np.array([1], I64))]),
    "Dropout Identity Cast Constant": (13, (4,), [
        helper.make_node("Dropout", ["x", "r"], ["a"]), helper.make_node("Identity", ["a"], ["b"]),
        helper.make_node("Constant", [], ["k"], value_float=2.0), helper.make_node("Mul", ["b", "k"], ["c"]),
        helper.make_node("Cast", ["c"], ["y"], to=TP.FLOAT)], [_init("r", np.float32(0.3))]),
    "Dropout ratio attribute (opset 11)": (11, (4,), [helper.make_node("Dropout", ["x"], ["y"], ratio=0.2)], []),
    "Resize nearest": (13, (2, 3, 4), [helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                                                        coordinate_transformation_mode="asymmetric",
                                                        nearest_mode="floor")],
                       [_init("sc", np.array([1, 1, 2, 3], np.float32))]),
    "LeakyRelu Relu": (13, (5,), [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.3),
                                  helper.make_node("Relu", ["a"], ["y"])], []),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_ops_match_onnx_runtime(case):
    """Hand-built graphs of each op (attribute and input forms across opsets) against ONNX Runtime
    (ONNX's reference implementation computes opset-11 Softmax per axis and refuses negative pads)."""
    opset, shape, nodes, inits = OP_CASES[case]
    inputs = [helper.make_tensor_value_info("x", TP.FLOAT, ["N", *shape])]
    m = model_of(nodes, inputs=inputs, initializers=inits, opset=opset)
    x = _f(2, *shape, low=0.1 if "Log" in case else -2.0, seed=3)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    y = import_onnx(m)
    got = y.eval({y.arguments[0]: x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    record("hand-built graphs of every op vs ONNX Runtime", got, want)


@pytest.mark.parametrize("nodes, inits", [
    ([helper.make_node("Pad", ["x", "p"], ["y"])], [_init("p", np.array([0, 0, 0, 0, 0, 0, 10**9, 0], I64))]),
    ([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric",
                       nearest_mode="floor")], [_init("sc", np.array([1, 1, 10**5, 10**5], np.float32))]),
    ([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
     [_init("s", np.array([10**6, 10**6], I64))]),
    ([helper.make_node("Range", ["a", "b", "d"], ["r"]), helper.make_node("Reshape", ["x", "r"], ["y"])],
     [_init("a", np.array(0, I64)), _init("b", np.array(10**12, I64)), _init("d", np.array(1, I64))]),
])
def test_absurd_sizes_are_refused_before_allocating(nodes, inits):
    with pytest.raises(OnnxImportError, match="at most 16777216 elements"):
        import_onnx(model_of(nodes, initializers=inits))


def test_dropout_stays_a_dropout_and_clip_reads_the_attribute_form():
    m = model_of([helper.make_node("Dropout", ["x"], ["a"], ratio=0.25), helper.make_node("Clip", ["a"], ["y"],
                                                                                          min=-0.5, max=0.5)],
                 inputs=[helper.make_tensor_value_info("x", TP.FLOAT, ["N", 1000])], opset=11)
    y = import_onnx(m)
    drop = next(n for n in y.topological_order() if n.op_name == "Dropout")
    assert drop.attributes["dropout_rate"] == 0.25
    x = _f(2, 1000)
    np.testing.assert_array_equal(y.eval({"x": x}), np.clip(x, -0.5, 0.5))
    trained = y.eval({"x": x}, training=True, seed=0)
    assert 0.15 < np.mean(trained == 0) < 0.35
