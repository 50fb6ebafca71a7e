"""Convolution and ConvolutionTranspose against independent oracles.

For every case of a product of geometries (1D/2D/3D, odd/even kernels, strides 1-3 mixed per axis,
auto/explicit asymmetric/SAME pads, dilation 1-2, groups 1-2, output_shape variants, batch 1-3) the
transposed convolution and the convolution with the same options (which maps the transposed output
size back) are checked, forward and every gradient, against:

* direct loops over positions and taps of the index relation ``o = i*s + k*d - lo``
  (tests/oracles.py, docs/semantics.md);
* PyTorch (forward and autograd gradients; asymmetric pads mapped by padding/cropping);
* ONNX Runtime (forward, float32; our ``(lo, hi)`` pads mapped to ONNX ``pads``/``output_padding``).

Then, on random geometries (hypothesis): the adjoint identity ``<conv(a), b> == <a, conv_T(b)>`` and
finite-difference gradient checks.

The loop oracle, the batch-last inputs and the finite differences run through both ways the kernels
gather and scatter: strided copies per tap, and the selection-matrix GEMMs of tiny geometries
(``conv_kernels.SELECTION_FLOPS`` forces one or the other).
"""
from __future__ import annotations

import contextlib
import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigraph as mg
from minigraph.ops import conv_geometry as geo
from minigraph.ops import conv_kernels

import oracles
from gradcheck import check_gradients, param, variable


@dataclass
class Case:
    small: tuple          # transposed-convolution input spatial size (n)
    kernel: tuple
    strides: tuple
    dilation: tuple
    groups: int
    pads: dict            # auto_padding=... or lower_pad=/upper_pad=
    bigger_output: bool   # ask for the largest valid output size instead of the default
    batch: int

    def __str__(self):
        pads = ",".join(f"{k}={v}" for k, v in self.pads.items())
        return (f"n{self.small}-k{self.kernel}-s{self.strides}-d{self.dilation}-g{self.groups}-{pads}"
                f"-{'big' if self.bigger_output else 'min'}-b{self.batch}")

    def modes(self) -> list:
        if "auto_padding" in self.pads:
            return geo.per_axis(self.pads["auto_padding"], "auto_padding", len(self.kernel), self.kernel, "", False)
        lo, hi = (geo.per_axis(self.pads[k], k, len(self.kernel), self.kernel, "", 0)
                  for k in ("lower_pad", "upper_pad"))
        return list(zip(lo, hi))

    def output_shape(self):
        if not self.bigger_output:
            return None
        return tuple(geo.transpose_sizes(n, k, s, d, m)[1] for n, k, s, d, m in
                     zip(self.small, self.kernel, self.strides, self.dilation, self.modes()))


def _cases() -> list[Case]:
    cases = []
    pad_options = [{"auto_padding": True}, {"auto_padding": False}, {"lower_pad": 2, "upper_pad": 1},
                   {"lower_pad": 0, "upper_pad": 2}, {"auto_padding": "same_upper"}, {"auto_padding": "same_lower"}]
    for i, (k, s, d, pads) in enumerate(itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2), pad_options)):
        cases.append(Case((4 + i % 2,), (k,), (s,), (d,), 1 + i % 2, pads, i % 3 == 1, 1 + i % 3))
    cases += [
        Case((3, 4), (3, 2), (2, 1), (1, 2), 1, {"auto_padding": True}, False, 2),
        Case((3, 4), (3, 2), (2, 1), (1, 2), 2, {"auto_padding": True}, True, 1),
        Case((2, 3), (4, 3), (3, 2), (1, 1), 1, {"auto_padding": [False, True]}, True, 3),
        Case((3, 3), (2, 4), (1, 3), (2, 1), 2, {"lower_pad": (1, 0), "upper_pad": (0, 2)}, False, 2),
        Case((3, 2), (3, 3), (2, 2), (2, 2), 1, {"lower_pad": (2, 1), "upper_pad": (1, 3)}, True, 1),
        Case((4, 3), (1, 2), (3, 2), (1, 1), 2, {"auto_padding": True}, True, 2),
        Case((2, 2), (4, 4), (2, 2), (1, 1), 1, {"auto_padding": "same_lower"}, False, 3),
        Case((2, 3), (2, 3), (3, 1), (1, 2), 1, {"auto_padding": [False, "same_upper"]}, True, 2),
        Case((1, 1), (4, 3), (1, 1), (1, 1), 1, {"auto_padding": False}, False, 3),  # a generator's first layer
        Case((2, 3, 2), (2, 3, 1), (1, 2, 3), (1, 1, 1), 1, {"auto_padding": True}, True, 2),
        Case((2, 2, 2), (3, 2, 2), (2, 3, 1), (1, 2, 1), 2, {"auto_padding": False}, False, 1),
        Case((2, 2, 3), (2, 2, 3), (2, 2, 2), (1, 1, 2), 1, {"lower_pad": (1, 0, 2), "upper_pad": (0, 1, 1)}, True, 2),
        Case((1, 2, 2), (3, 3, 2), (3, 1, 2), (2, 1, 1), 2, {"auto_padding": [True, False, True]}, False, 3),
        # batches beyond the kernels' transposition block of 8 samples, not a multiple of it
        Case((3, 4), (3, 2), (2, 1), (1, 2), 1, {"auto_padding": True}, False, 19),
        Case((5,), (4,), (2,), (1,), 2, {"lower_pad": 1, "upper_pad": 1}, False, 11),
        Case((2, 2, 2), (2, 3, 2), (2, 1, 2), (1, 1, 1), 1, {"auto_padding": False}, True, 9),
        # long runs of samples: batch-last inputs are gathered straight from the input (DIRECT_RUN_BYTES)
        Case((5, 3), (4, 3), (2, 2), (1, 1), 1, {"lower_pad": 1, "upper_pad": (2, 1)}, False, 16),
    ]
    return cases


CASES = _cases()


class Built:
    """Both ops built for one case, with random float64 data and output gradients."""

    def __init__(self, case: Case, seed: int = 0):
        rng = np.random.default_rng(seed)
        g = case.groups
        c_in, c_out = 2 * g, 3 * g  # transposed convolution: c_in -> c_out (the convolution goes back)
        self.case = case
        self.x = variable((c_in, *case.small), "x")
        self.w = param(rng.standard_normal((c_in, c_out // g, *case.kernel)), "w")
        common = dict(strides=case.strides, dilation=case.dilation, groups=g, **case.pads)
        self.y = mg.convolution_transpose(self.w, self.x, output_shape=case.output_shape(), **common)
        self.big = tuple(self.y.shape[1:])
        self.z = variable((c_out, *self.big), "z")
        self.wc = param(rng.standard_normal((c_in, c_out // g, *case.kernel)), "wc")
        self.c = mg.convolution(self.wc, self.z, **common)
        assert self.c.shape == (c_in, *case.small), "the convolution must map the transposed size back"
        assert self.c.attributes["lower_pad"] == self.y.attributes["lower_pad"]
        self.lower = self.y.attributes["lower_pad"]
        self.upper = self.y.attributes["upper_pad"]
        b = case.batch
        self.xv = rng.standard_normal((b, c_in, *case.small))
        self.zv = rng.standard_normal((b, c_out, *self.big))
        self.u = rng.standard_normal((b, c_out, *self.big))   # output gradient of the transpose
        self.v = rng.standard_normal((b, c_in, *case.small))  # output gradient of the convolution

    def ours(self):
        """Forward values and gradients: (y, gx, gw, c, gz, gwc)."""
        gy = self.y.grad({self.x: self.xv}, wrt=[self.x, self.w], grad_root=self.u)
        gc = self.c.grad({self.z: self.zv}, wrt=[self.z, self.wc], grad_root=self.v)
        return (self.y.eval({self.x: self.xv}), gy[self.x], gy[self.w],
                self.c.eval({self.z: self.zv}), gc[self.z], gc[self.wc])


# oracle 1: direct loops ---------------------------------------------------------------------------
def loop_oracle(b: Built):
    """Both ops' forward values and gradients from the loops of tests/oracles.py."""
    geometry = dict(strides=b.case.strides, dilation=b.case.dilation, lower=b.lower, groups=b.case.groups)
    kernel = b.case.kernel
    return (oracles.scatter(b.xv, b.w.value, b.big, **geometry),
            oracles.gather(b.u, b.w.value, b.case.small, **geometry),
            oracles.kernel_gradient(b.xv, b.u, kernel, **geometry),
            oracles.gather(b.zv, b.wc.value, b.case.small, **geometry),
            oracles.scatter(b.v, b.wc.value, b.big, **geometry),
            oracles.kernel_gradient(b.v, b.zv, kernel, **geometry))


NAMES = ("transpose forward", "transpose d/dx", "transpose d/dW", "conv forward", "conv d/dx", "conv d/dW")


def _assert_all_close(got, expected, rtol=1e-10, atol=1e-10):
    for name, a, e in zip(NAMES, got, expected):
        if e is not None:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=name)


PATHS = {"copies": 0, "selection": 10**18}  # SELECTION_FLOPS: never / always the selection matrix


@contextlib.contextmanager
def kernel_path(path: str):
    """Run the kernels through one way of gathering and scattering (strided copies or selection GEMMs)."""
    saved = conv_kernels.SELECTION_FLOPS
    conv_kernels.SELECTION_FLOPS = PATHS[path]
    try:
        yield
    finally:
        conv_kernels.SELECTION_FLOPS = saved


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_direct_loops(case, path):
    built = Built(case)
    with kernel_path(path):
        got = built.ours()
    _assert_all_close(got, loop_oracle(built))


@pytest.mark.parametrize("case", [CASES[5], CASES[-9], CASES[-8]], ids=str)
def test_selection_keeps_non_finite_values_where_the_copies_put_them(case):
    """An infinity or a NaN in an operand (or in the columns made from it) gives the outputs the copies
    give, not NaN over the whole sample (the selection matrix's zeros times infinity)."""
    built = Built(case)
    for name in ("xv", "zv"):
        spoiled = getattr(built, name).copy()
        spoiled.flat[1] = np.inf
        spoiled.flat[-1] = np.nan
        setattr(built, name, spoiled)
    with np.errstate(invalid="ignore", over="ignore"):
        results = {}
        for path in PATHS:
            with kernel_path(path):
                results[path] = built.ours()
    for name, copies, selection in zip(NAMES, results["copies"], results["selection"]):
        if "forward" in name:
            assert np.isfinite(copies).any(), name  # the spoiled values do not reach every output
        np.testing.assert_allclose(selection, copies, rtol=1e-10, atol=1e-10, equal_nan=True, err_msg=name)


def test_selection_only_for_tiny_geometries():
    """The digits demo's layers gather through the selection matrix; a 32x32 layer through copies."""
    tiny = conv_kernels.Plan(conv_kernels.Geometry((8, 8), (4, 4), (3, 3), (2, 2), (1, 1), (1, 1)))
    large = conv_kernels.Plan(conv_kernels.Geometry((32, 32), (16, 16), (4, 4), (2, 2), (1, 1), (1, 1)))
    assert tiny.selection_for(1, 48, np.float32).dtype == np.float32
    assert tiny.selection_for(64, 48, np.float32) is None
    assert large.selection_for(1, 1, np.float32) is None  # a matrix this large is read for one column: copies
    s = tiny.selection_matrix(np.float64)
    assert s.shape == (9 * 16, 64) and set(np.unique(s)) == {0.0, 1.0}
    assert s.sum(axis=1).max() == 1  # each tap of each output reads one input position or padding
    assert tiny.selection_matrix(np.float32) is tiny.selection_for(1, 48, np.float32)  # built once per dtype


def _tiny_pair(chunk: int):
    """A transposed convolution 6 -> 4 channels, 2x2 -> 4x4 (4x4 kernel, stride 2) and the
    convolution back, small enough for the selection matrix, with the memory bound ``chunk``."""
    rng = np.random.default_rng(5)
    x, z = (mg.input_variable(shape, dtype=np.float32, name=n) for shape, n in (((6, 2, 2), "x"), ((4, 4, 4), "z")))
    w = mg.parameter(init=rng.standard_normal((6, 4, 4, 4)).astype(np.float32), name="w")
    opts = dict(strides=2, lower_pad=1, upper_pad=1, max_temp_mem_size_in_samples=chunk)
    return x, z, w, mg.convolution_transpose(w, x, **opts), mg.convolution(w, z, **opts)


def test_selection_gives_every_chunk_size_the_same_values():
    """The path is chosen once per call for the whole batch: a memory bound per chunk of samples
    changes no bit of the transposed convolution's forward (col2im through the matrix for every
    chunk) and nothing beyond the GEMMs' rounding elsewhere (their sums depend on the number of
    columns on either path), float32."""
    rng = np.random.default_rng(6)
    xv = rng.standard_normal((7, 6, 2, 2)).astype(np.float32)
    zv = rng.standard_normal((7, 4, 4, 4)).astype(np.float32)
    results = []
    for chunk in (0, 3):
        x, z, w, y, c = _tiny_pair(chunk)
        gy = y.grad({x: xv}, wrt=[x, w])
        gc = c.grad({z: zv}, wrt=[z, w])
        results.append([y.eval({x: xv}), gy[x], gy[w], c.eval({z: zv}), gc[z], gc[w]])
    assert conv_kernels.Plan(conv_kernels.Geometry((4, 4), (2, 2), (4, 4), (2, 2), (1, 1), (1, 1))).selection_for(
        4, 7, np.float32) is not None  # the run above took the selection path
    np.testing.assert_array_equal(results[0][0], results[1][0], err_msg=NAMES[0])
    for name, whole, chunked in zip(NAMES, *results):
        np.testing.assert_allclose(whole, chunked, rtol=1e-6, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("values", ["huge", "infinite"])
def test_selection_warns_as_the_copies_do(values):
    """Values whose check sums overflow (1e37 in float32) or hold inf - inf raise or warn no more than
    the copies do, under numpy's strictest error state too, and give the copies' values."""
    rng = np.random.default_rng(7)
    xv = rng.standard_normal((3, 6, 2, 2)).astype(np.float32) * np.float32(1e37 if values == "huge" else 1)
    if values == "infinite":
        xv[0, 0, 0, 0], xv[1, 0, 0, 0] = np.inf, -np.inf
    outcomes = {}
    for path in PATHS:
        x, z, w, y, c = _tiny_pair(0)
        with kernel_path(path), warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
            warnings.simplefilter("always")
            value = y.eval({x: xv})
        outcomes[path] = (value, sorted({str(w.message) for w in caught}))
    np.testing.assert_array_equal(outcomes["selection"][0], outcomes["copies"][0])
    assert outcomes["selection"][1] == outcomes["copies"][1]


def _batch_last(a: np.ndarray) -> np.ndarray:
    """The same values laid out batch-last, as a chain of convolutions hands them on."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 0, -1)), -1, 0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", [c for c in CASES if c.batch >= 16], ids=str)
def test_batch_last_inputs(case, path):
    built = Built(case)
    built.xv, built.zv, built.u, built.v = map(_batch_last, (built.xv, built.zv, built.u, built.v))
    with kernel_path(path):
        got = built.ours()
    _assert_all_close(got, loop_oracle(built))


def _kept_copy(y, x, xv, **run):
    """The residual a run of transposed convolution ``y`` hands its vjp (None: nothing kept)."""
    state = y.forward({x: xv}, **run)
    return state.residuals.get(state.program.index[y])


@pytest.mark.parametrize("chunk", [0, 3])
def test_transposed_convolution_keeps_its_operand_transposed_for_the_weight_gradient(chunk):
    """A backward run transposes a batch-first operand once and keeps the copy (the weight gradient
    reads it); evaluation, batch-last operands and chunked runs keep nothing."""
    rng = np.random.default_rng(0)
    x = variable((2, 3, 3), "x")
    w = param(rng.standard_normal((2, 4, 3, 3)), "w")
    y = mg.convolution_transpose(w, x, strides=2, max_temp_mem_size_in_samples=chunk)
    xv = rng.standard_normal((5, 2, 3, 3))
    kept = _kept_copy(y, x, xv)
    if chunk:
        assert kept is None
    else:
        assert kept.flags.c_contiguous and not np.shares_memory(kept, xv)
        np.testing.assert_array_equal(kept, np.moveaxis(xv, 0, -1))
    assert _kept_copy(y, x, xv, for_backward=False) is None
    assert _kept_copy(y, x, _batch_last(xv)) is None
    u = rng.standard_normal((5, *y.shape))
    expected = oracles.kernel_gradient(xv, u, (3, 3), strides=(2, 2), dilation=(1, 1),
                                       lower=y.attributes["lower_pad"], groups=1)
    np.testing.assert_allclose(y.grad({x: xv}, wrt=w, grad_root=u), expected, rtol=1e-10, atol=1e-10)


# oracle 2: PyTorch ------------------------------------------------------------------------------
def torch_oracle(b: Built):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rank, case = len(b.case.kernel), b.case
    conv_t = getattr(functional, f"conv_transpose{rank}d")
    conv = getattr(functional, f"conv{rank}d")
    crop = [p for lo, hi in reversed(list(zip(b.lower, b.upper))) for p in (-lo, -hi)]  # F.pad: last axis first
    x, w = (torch.tensor(a, requires_grad=True) for a in (b.xv, b.w.value))
    y = functional.pad(conv_t(x, w, stride=case.strides, dilation=case.dilation, groups=case.groups), crop)
    y.backward(torch.tensor(b.u))
    z, wc = (torch.tensor(a, requires_grad=True) for a in (b.zv, b.wc.value))
    c = conv(functional.pad(z, [-p for p in crop]), wc, stride=case.strides, dilation=case.dilation,
             groups=case.groups)
    c.backward(torch.tensor(b.v))
    return tuple(t.detach().numpy() for t in (y, x.grad, w.grad, c, z.grad, wc.grad))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_pytorch(case):
    built = Built(case, seed=1)
    _assert_all_close(built.ours(), torch_oracle(built))


# oracle 3: ONNX Runtime ----------------------------------------------------------------------------
def _onnx_run(op_type, x, w, **attrs):
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in (("x", x), ("w", w))]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node(op_type, ["x", "w"], ["y"], **attrs)], "g", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x, "w": w})[0]


def onnx_oracle(b: Built):
    """Forward of both ops. ONNX pads are non-negative: a negative ``hi`` of the transpose becomes
    ``output_padding``, a negative ``lo`` leading zeros; the convolution's negative pads crop its input."""
    case, f32 = b.case, np.float32
    common = {"strides": list(case.strides), "dilations": list(case.dilation), "group": case.groups}
    lo, hi = np.array(b.lower), np.array(b.upper)
    y = _onnx_run("ConvTranspose", b.xv.astype(f32), b.w.value.astype(f32),
                  pads=[*np.maximum(lo, 0), *np.maximum(hi, 0)], output_padding=list(np.maximum(-hi, 0)), **common)
    y = np.pad(y, [(0, 0), (0, 0), *[(max(-p, 0), 0) for p in lo]])
    crop = (slice(None), slice(None), *[slice(max(-a, 0), n - max(-c, 0)) for a, c, n in zip(lo, hi, b.big)])
    c = _onnx_run("Conv", np.ascontiguousarray(b.zv[crop]).astype(f32), b.wc.value.astype(f32),
                  pads=[*np.maximum(lo, 0), *np.maximum(hi, 0)], **common)
    return y, None, None, c, None, None


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_onnxruntime(case):
    built = Built(case, seed=2)
    _assert_all_close(built.ours(), onnx_oracle(built), rtol=1e-4, atol=1e-4)


# random geometries ------------------------------------------------------------------------------------
@st.composite
def geometries(draw):
    rank = draw(st.integers(1, 2))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    small = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    kind = draw(st.sampled_from(["auto", "explicit"]))
    if kind == "auto":
        pads = {"auto_padding": list(draw(st.lists(st.sampled_from([True, False, "same_upper", "same_lower"]),
                                                   min_size=rank, max_size=rank)))}
    else:
        pads = {k: tuple(draw(st.lists(st.integers(0, 2), min_size=rank, max_size=rank)))
                for k in ("lower_pad", "upper_pad")}
    case = Case(small, kernel, strides, dilation, draw(st.integers(1, 2)), pads, draw(st.booleans()),
                draw(st.integers(1, 3)))
    defaults = [geo.transpose_axis(*a)[0] for a in zip(small, kernel, strides, dilation, case.modes())]
    if min(defaults) < 1:  # pads larger than the input: no positive default size (tested in test_conv)
        case.pads = {"auto_padding": True}
    return case


@given(geometries())
def test_adjoint_identity(case):
    b = Built(case, seed=3)
    conv_a = b.c.eval({b.z: b.zv})
    transpose_b = mg.convolution_transpose(b.wc, b.x, strides=case.strides, dilation=case.dilation,
                                           groups=case.groups, output_shape=b.big, **case.pads)
    lhs = float(np.sum(conv_a * b.xv))
    rhs = float(np.sum(b.zv * transpose_b.eval({b.x: b.xv})))
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10), (lhs, rhs)


@given(geometries(), st.sampled_from(sorted(PATHS)))
def test_finite_differences(case, path):
    b = Built(case, seed=4)
    with kernel_path(path):
        check_gradients(b.y, {b.x: b.xv})
        check_gradients(b.c, {b.z: b.zv})
