"""Convolution and ConvolutionTranspose ops: CNTK's examples, shapes and resolved pads (concrete and
symbolic), lazy map dims, every error message, chunking, dtypes. Numerical oracles: test_conv_kernels.py."""
import tracemalloc

import numpy as np
import pytest

import minigraph as mg
from minigraph.ops.base import OPS
from minigraph.ops.conv import CONVOLUTION, CONVOLUTION_TRANSPOSE
from minigraph.shapes import dim

from gradcheck import check_gradients, param, variable


def test_cntk_op_docstring_example():
    x = variable((1, 3, 3), "x")
    w = mg.constant(np.array([[[[2.0, -1.0], [-1.0, 2.0]]]]))
    y = mg.convolution_transpose(w, x, auto_padding=False)
    expected = [[0, 2, 3, -2], [6, 4, 6, -1], [9, 10, 12, 2], [-6, 5, 6, 16]]
    np.testing.assert_array_equal(y.eval({x: np.arange(9.0).reshape(1, 1, 3, 3)})[0, 0], expected)


def test_cntk_layer_docstring_shapes():
    """(3, 480, 640) input, filter (3, 4), 128 filters, pad=False -> (128, 482, 643), W (3, 128, 3, 4)."""
    x = mg.input_variable((3, 480, 640), name="x")
    w = mg.parameter((mg.InferredDimension, 128, 3, 4))
    y = mg.convolution_transpose(w, x, auto_padding=False)
    assert y.shape == (128, 482, 643)
    assert w.shape == (3, 128, 3, 4)


def test_ops_are_registered_and_exported():
    assert OPS["Convolution"] is CONVOLUTION and OPS["ConvolutionTranspose"] is CONVOLUTION_TRANSPOSE
    assert mg.ops.convolution is mg.convolution and mg.ops.convolution_transpose is mg.convolution_transpose


class TestShapesAndResolvedPads:
    def test_pad_true_and_false_concrete(self):
        x = mg.input_variable((2, 4, 4))
        y = mg.convolution_transpose(mg.parameter((2, 5, 3, 4)), x, strides=2, name="up")
        assert y.shape == (5, 7, 7)
        assert (y.attributes["lower_pad"], y.attributes["upper_pad"]) == ((1, 1), (1, 2))
        assert y.attributes["output_shape"] == (7, 7)
        y = mg.convolution_transpose(mg.parameter((2, 5, 3, 4)), x, strides=2, auto_padding=False)
        assert y.shape == (5, 9, 10) and y.attributes["lower_pad"] == (0, 0)

    def test_output_shape_spatial_or_with_channels_first(self):
        x = mg.input_variable((2, 14))
        w = mg.parameter((2, 3, 5))
        for shape in (28, (28,), (3, 28), [28]):
            y = mg.convolution_transpose(w, x, strides=2, output_shape=shape)
            assert y.shape == (3, 28) and (y.attributes["lower_pad"], y.attributes["upper_pad"]) == ((2,), (1,))

    def test_symbolic_input(self):
        x = mg.input_variable((3, "H", "W"))
        h, w_ = dim("H"), dim("W")
        y = mg.convolution_transpose(mg.parameter((-1, 8, 3, 3)), x, strides=2)
        assert y.shape == (8, 2 * h - 1, 2 * w_ - 1)
        assert y.attributes["output_shape"] == (2 * h - 1, 2 * w_ - 1)
        assert (y.attributes["lower_pad"], y.attributes["upper_pad"]) == ((1, 1), (1, 1))
        z = mg.convolution_transpose(mg.parameter((-1, 8, 4, 4)), x, strides=2, auto_padding=False)
        assert z.shape == (8, 2 * h + 2, 2 * w_ + 2)
        assert z.eval({x: np.ones((2, 3, 5, 6), np.float32)}).shape == (2, 8, 12, 14)
        c = mg.convolution(mg.parameter((4, -1, 3, 3)), x, strides=2)
        assert c.shape == (4, (h + 1) // 2, (w_ + 1) // 2)
        assert c.eval({x: np.ones((1, 3, 5, 6), np.float32)}).shape == (1, 4, 3, 3)

    def test_symbolic_output_shape_checked_when_bound(self):
        x = mg.input_variable((1, "H"))
        y = mg.convolution_transpose(mg.parameter((1, 1, 3)), x, strides=2, output_shape=(8,), name="up")
        assert y.shape == (1, 8)
        assert y.eval({x: np.ones((1, 1, 4), np.float32)}).shape == (1, 1, 8)
        with pytest.raises(mg.ShapeError, match=r"(?s)ConvolutionTranspose 'up': output_shape \(8,\) is invalid on "
                                                r"spatial axis 0.*valid output sizes on axis 0: 9, 10"):
            y.eval({x: np.ones((1, 1, 5), np.float32)})

    def test_convolution_shapes(self):
        x = mg.input_variable((4, 9, 8))
        assert mg.convolution(mg.parameter((6, 4, 3, 3)), x).shape == (6, 9, 8)
        c = mg.convolution(mg.parameter((6, 4, 3, 3)), x, strides=(2, 3), auto_padding=False)
        assert c.shape == (6, 4, 2) and c.attributes["upper_pad"] == (0, 0)
        c = mg.convolution(mg.parameter((6, 2, 3, 2)), x, groups=2, lower_pad=(1, 0), upper_pad=2, dilation=(1, 2))
        assert c.shape == (6, 10, 8) and (c.attributes["lower_pad"], c.attributes["upper_pad"]) == ((1, 0), (2, 2))

    def test_three_d_and_one_d(self):
        x = mg.input_variable((2, 3, 4, 5))
        for pad, out in ((False, (4, 5, 9, 15)), (True, (4, 3, 7, 13))):
            y = mg.convolution_transpose(mg.parameter((-1, 4, 3, 3, 3)), x, strides=(1, 2, 3), auto_padding=pad)
            assert y.shape == out
            assert y.eval({x: np.ones((2, 2, 3, 4, 5), np.float32)}).shape == (2, *out)
        x1 = mg.input_variable((3, 10))
        assert mg.convolution_transpose(mg.parameter((3, 2, 4)), x1, strides=2).shape == (2, 19)

    def test_cntk_op_form_per_axis_arguments(self):
        x = mg.input_variable((2, 4, 4))
        y = mg.convolution_transpose(mg.parameter((2, 1, 3, 3)), x, strides=(1, 2, 2),
                                     auto_padding=[False, True, False])
        assert y.shape == (1, 7, 9)

    def test_reduction_rank_zero(self):
        x = variable((4, 4), "x")
        w = param(np.random.default_rng(0).standard_normal((1, 2, 3, 3)))
        y = mg.convolution_transpose(w, x, reduction_rank=0, auto_padding=False)
        assert y.shape == (2, 6, 6)
        data = np.random.default_rng(1).standard_normal((2, 4, 4))
        with_channel = variable((1, 4, 4), "xc")
        ref = mg.convolution_transpose(w, with_channel, auto_padding=False).eval({with_channel: data[:, None]})
        np.testing.assert_allclose(y.eval({x: data}), ref)
        check_gradients(y, {x: data})
        lazy = mg.parameter((-1, 2, 3, 3))
        mg.convolution_transpose(lazy, x, reduction_rank=0)
        assert lazy.shape == (1, 2, 3, 3)
        v = variable((5,), "v")
        c = mg.convolution(param(np.random.default_rng(2).standard_normal((2, 1, 3))), v, reduction_rank=0)
        assert c.shape == (2, 5)
        check_gradients(c, {v: np.random.default_rng(3).standard_normal((2, 5))})

    def test_describe_for_drawings(self):
        y = mg.convolution_transpose(mg.parameter((2, 3, 4, 4)), mg.input_variable((2, 5, 5)), strides=2,
                                     lower_pad=1, upper_pad=1)
        assert y.op.describe(y.attributes) == {"kernel_shape": (4, 4), "strides": (2, 2), "dilation": (1, 1),
                                               "groups": 1, "lower_pad": (1, 1), "upper_pad": (1, 1),
                                               "output_shape": (10, 10)}


class TestLazyMap:
    def test_transpose_infers_input_channels(self):
        w = mg.parameter((mg.InferredDimension, 6, 2, 2))
        mg.convolution_transpose(w, mg.input_variable((5, 3, 3)), groups=1)
        assert w.shape == (5, 6, 2, 2) and w.is_initialized

    def test_convolution_infers_channels_per_group(self):
        w = mg.parameter((8, mg.InferredDimension, 3))
        mg.convolution(w, mg.input_variable((6, 10)), groups=2)
        assert w.shape == (8, 3, 3)

    def test_dtype_adopted_from_operand(self):
        w = mg.parameter((-1, 2, 3))
        y = mg.convolution_transpose(w, variable((3, 4)))
        assert w.dtype == np.float64 and y.dtype == np.float64


class TestGradientsFlow:
    def test_into_a_map_computed_by_other_nodes(self):
        rng = np.random.default_rng(0)
        base = param(rng.standard_normal((2, 3, 3, 3)), "base")
        x = variable((2, 4, 4), "x")
        y = mg.convolution_transpose(base * 2.0 + 1.0, x, strides=2)
        check_gradients(y, {x: rng.standard_normal((2, 2, 4, 4))}, wrt=[base, x])
        other = param(rng.standard_normal((4, 1, 3, 3)), "other")
        c = mg.convolution(mg.tanh(other), x, groups=2, strides=2)
        check_gradients(c, {x: rng.standard_normal((2, 2, 4, 4))}, wrt=[other, x])

    def test_into_earlier_nodes(self):
        rng = np.random.default_rng(1)
        x = variable((2, 3, 3), "x")
        h = mg.tanh(x)
        y = mg.convolution(param(rng.standard_normal((2, 3, 2, 2))),
                           mg.convolution_transpose(param(rng.standard_normal((2, 3, 2, 2))), h, strides=2))
        check_gradients(y, {x: rng.standard_normal((2, 2, 3, 3))})

    def test_operand_without_batch_dependence(self):
        """A map applied to a parameter: every value has a batch axis of 1."""
        rng = np.random.default_rng(2)
        w, v = param(rng.standard_normal((2, 2, 3)), "w"), param(rng.standard_normal((2, 4)), "v")
        y = mg.convolution_transpose(w, v, strides=2)
        check_gradients(y, {}, wrt=[w, v])

    def test_map_depending_on_fed_input_is_rejected(self):
        x = variable((1, 2, 3), "x")
        y = mg.convolution_transpose(x, variable((1, 4), "v"))
        with pytest.raises(mg.ShapeError, match="convolution_map varies over the batch"):
            y.eval({"x": np.ones((2, 1, 2, 3)), "v": np.ones((2, 1, 4))})


class TestDtypeAndChunks:
    def test_float32_end_to_end(self):
        x = mg.input_variable((3, 5, 5), np.float32)
        w = mg.parameter((-1, 4, 3, 3))
        c = mg.parameter((2, -1, 2, 2))
        y = mg.convolution(c, mg.convolution_transpose(w, x, strides=2))
        data = np.ones((2, 3, 5, 5), np.float32)
        assert y.eval({x: data}).dtype == np.float32
        grads = y.grad({x: data}, wrt=[x, w, c])
        assert all(g.dtype == np.float32 for g in grads.values())

    @pytest.mark.parametrize("build,w_shape,opts", [
        (mg.convolution_transpose, (4, 3, 3, 2), {"strides": (2, 1)}),
        (mg.convolution, (4, 2, 3, 2), {"strides": (2, 1), "groups": 2}),
    ], ids=["transpose", "convolution"])
    def test_chunk_sizes_give_the_same_values(self, build, w_shape, opts):
        rng = np.random.default_rng(3)
        data, w = rng.standard_normal((7, 4, 5, 6)), rng.standard_normal(w_shape)
        reference = u = None
        for chunk in (0, 1, 3, 7, 8):
            x, wp = variable((4, 5, 6), "x"), param(w, "w")
            y = build(wp, x, max_temp_mem_size_in_samples=chunk, **opts)
            u = rng.standard_normal((7, *y.shape)) if u is None else u
            grads = y.grad({x: data}, wrt=[x, wp], grad_root=u)
            got = (y.eval({x: data}), grads[x], grads[wp])
            reference = got if reference is None else reference
            for a, b in zip(got, reference):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("chunk", [0, 2])
    def test_many_input_channels_few_outputs(self, chunk):
        """An input much larger than the GEMM's result is transposed in blocks: same values."""
        rng = np.random.default_rng(5)
        data, w = rng.standard_normal((3, 16, 5, 4)), rng.standard_normal((16, 1, 1, 1))
        x = variable((16, 5, 4), "x")
        y = mg.convolution_transpose(param(w, "w"), x, strides=2, auto_padding=False,
                                     max_temp_mem_size_in_samples=chunk)
        expected = np.zeros((3, 1, 9, 7))
        expected[:, :, ::2, ::2] = np.einsum("bchw,co->bohw", data, w[:, :, 0, 0])
        np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12)
        check_gradients(y, {x: data})

    @pytest.mark.parametrize("op", ["transpose", "convolution"])
    def test_chunks_lower_peak_memory(self, op):
        rng = np.random.default_rng(4)
        data = rng.standard_normal((64, 8, 8, 8)).astype(np.float32)
        peaks = {}
        for chunk in (0, 8):
            x = mg.input_variable((8, 8, 8), np.float32, name="x")
            if op == "transpose":
                y = mg.convolution_transpose(mg.parameter((8, 8, 4, 4)), x, strides=2, lower_pad=1, upper_pad=1,
                                             max_temp_mem_size_in_samples=chunk)
            else:
                y = mg.convolution(mg.parameter((8, 8, 4, 4)), x, max_temp_mem_size_in_samples=chunk)
            y.eval({x: data})  # compile and plan outside the measurement
            mg.empty_cache()  # the kernels' reused buffers count in the peak
            tracemalloc.start()
            y.grad({x: data}, wrt=[x])
            peaks[chunk] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peaks[8] < 0.75 * peaks[0], peaks


class TestErrors:
    def test_channel_mismatch(self):
        with pytest.raises(mg.ShapeError, match=r"ConvolutionTranspose 'up': channel mismatch: operand \(3, 4, 4\) "
                                                r"gives 3 input channels, but convolution_map \(4, 2, 3, 3\) has 4 on "
                                                r"its axis 0"):
            mg.convolution_transpose(mg.parameter((4, 2, 3, 3)), mg.input_variable((3, 4, 4)), name="up")
        with pytest.raises(mg.ShapeError, match=r"Convolution 'c': channel mismatch: operand \(6, 4\) gives 3 input "
                                                r"channels per group, but convolution_map \(4, 2, 3\) has 2 on its "
                                                r"axis 1"):
            mg.convolution(mg.parameter((4, 2, 3)), mg.input_variable((6, 4)), groups=2, name="c")

    def test_groups_must_divide_channels(self):
        with pytest.raises(mg.ShapeError, match=r"ConvolutionTranspose 'up': groups=2 does not divide the 3 input "
                                                r"channels of operand \(3, 4\)"):
            mg.convolution_transpose(mg.parameter((3, 2, 3)), mg.input_variable((3, 4)), groups=2, name="up")
        with pytest.raises(mg.ShapeError, match=r"Convolution 'c': convolution_map \(3, 2, 3\): its output channels "
                                                r"\(axis 0\) must be a positive multiple of groups=2"):
            mg.convolution(mg.parameter((3, 2, 3)), mg.input_variable((4, 4)), groups=2, name="c")
        for bad, error in ((0, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(error, match=r"'c': groups must be a positive int, got"):
                mg.convolution(mg.parameter((2, 2, 3)), mg.input_variable((2, 4)), groups=bad, name="c")

    def test_kernel_rank(self):
        with pytest.raises(mg.ShapeError, match=r"ConvolutionTranspose 'up': operand of shape \(5,\) has rank 1; the "
                                                r"2D kernel of convolution_map \(1, 1, 3, 3\) needs rank 3"):
            mg.convolution_transpose(mg.parameter((1, 1, 3, 3)), mg.input_variable(5), name="up")
        with pytest.raises(mg.ShapeError, match=r"'up': convolution_map of shape \(3, 3\) has rank 2; expected"):
            mg.convolution_transpose(mg.parameter((3, 3)), mg.input_variable((3, 4)), name="up")
        with pytest.raises(mg.ShapeError, match=r"reduction_rank=0"):
            mg.convolution_transpose(mg.parameter((1, 1, 3)), mg.input_variable((1, 4)), reduction_rank=0)

    def test_map_dims_that_cannot_be_inferred(self):
        with pytest.raises(mg.ShapeError, match=r"kernel sizes \(-1, 3\) must be positive ints"):
            mg.convolution_transpose(mg.parameter((2, 2, -1, 3)), mg.input_variable((2, 4, 4)))
        with pytest.raises(mg.ShapeError, match=r"output channels per group \(axis 1\) cannot be inferred"):
            mg.convolution_transpose(mg.parameter((2, -1, 3)), mg.input_variable((2, 4)))
        with pytest.raises(mg.ShapeError, match=r"its output channels \(axis 0\) must be a positive multiple"):
            mg.convolution(mg.parameter((-1, 2, 3)), mg.input_variable((2, 4)))

    @pytest.mark.parametrize("arg,value,error,message", [
        ("strides", 0, ValueError, r"strides=0 must be positive on every axis \(kernel shape \(3, 3\)\)"),
        ("strides", (2, 2, 3), ValueError, (r"strides=\(2, 2, 3\) has 3 entries; expected one per spatial axis "
                                           r"\(2 for kernel shape \(3, 3\)\)")),
        ("strides", 1.5, TypeError, r"strides must hold ints, got 1.5"),
        ("dilation", (1, -1), ValueError, r"dilation=\(1, -1\) must be positive"),
        ("dilation", [1, 1, 1, 1], ValueError, r"dilation=\(1, 1, 1, 1\) has 4 entries"),
        ("lower_pad", -1, ValueError, r"lower_pad=-1 must be non-negative"),
        ("upper_pad", (1, 2, 3, 4), ValueError, r"upper_pad=\(1, 2, 3, 4\) has 4 entries"),
        ("auto_padding", (True,), ValueError, r"auto_padding=\(True,\) has 1 entries"),
        ("auto_padding", "same", ValueError, r"auto_padding='same' \(kernel shape \(3, 3\)\).*got 'same'"),
        ("sharing", False, ValueError, r"sharing=False: unshared weights \(sharing=False\) are not supported"),
        ("reduction_rank", 2, ValueError, r"reduction_rank must be 0 \(operand without channel axis\) or 1, got 2"),
        ("max_temp_mem_size_in_samples", -1, ValueError, r"max_temp_mem_size_in_samples must be an int >= 0"),
    ])
    @pytest.mark.parametrize("build", [mg.convolution, mg.convolution_transpose], ids=["conv", "transpose"])
    def test_bad_arguments(self, build, arg, value, error, message):
        label = "Convolution 'n'" if build is mg.convolution else "ConvolutionTranspose 'n'"
        with pytest.raises(error, match=f"^{label}: {message}"):
            build(mg.parameter((2, 2, 3, 3)), mg.input_variable((2, 6, 6)), name="n", **{arg: value})

    def test_invalid_output_shape_lists_valid_sizes_per_axis(self):
        x = mg.input_variable((3, 7))
        with pytest.raises(mg.ShapeError) as info:
            mg.convolution_transpose(mg.parameter((3, 2, 3)), x, strides=2, output_shape=(15,), name="up2")
        assert str(info.value) == (
            "ConvolutionTranspose 'up2': output_shape (15,) is invalid on spatial axis 0.\n"
            "  auto_padding True: input 7, filter 3, strides 2, pads (1, 1), dilation 1 -> valid output sizes on "
            "axis 0: 13, 14\n"
            "  Hint: pass output_shape=(14,), or leave it out to get (13,).")
        x = mg.input_variable((1, 4, 14))
        with pytest.raises(mg.ShapeError, match=r"output_shape \(8, 30\) is invalid on spatial axis 1\.\n"
                                                r"  explicit pads: input 14, filter 3, strides 2, pads \(1, 1\), "
                                                r"dilation 1 -> valid output sizes on axis 1: 27, 28\n"
                                                r"  Hint: pass output_shape=\(8, 28\), "
                                                r"or leave it out to get \(7, 27\)"):
            mg.convolution_transpose(mg.parameter((1, 1, 3, 3)), x, strides=2, output_shape=(8, 30),
                                     lower_pad=(1, 1), upper_pad=1)

    def test_output_shape_malformed(self):
        x = mg.input_variable((2, 4, 4))
        w = mg.parameter((2, 3, 3, 3))
        with pytest.raises(ValueError, match=r"'up': output_shape \(7, 7, 7, 7\) has 4 entries; expected 2 spatial"):
            mg.convolution_transpose(w, x, output_shape=(7, 7, 7, 7), name="up")
        with pytest.raises(ValueError, match=r"'up': output_shape \(7, 0\) must hold positive ints"):
            mg.convolution_transpose(w, x, output_shape=(7, 0), name="up")
        with pytest.raises(mg.ShapeError, match=r"'up': output_shape \(4, 7, 7\) starts with 4 channels but the "
                                                r"convolution map gives 3"):
            mg.convolution_transpose(w, x, strides=2, output_shape=(4, 7, 7), name="up")

    def test_non_positive_output_size(self):
        with pytest.raises(mg.ShapeError, match=r"'up': the output size is not positive on spatial axis 0\.\n"
                                                r"  explicit pads: input 1, filter 2, strides 1, pads \(2, 1\), "
                                                r"dilation 1 -> valid output sizes on axis 0: "
                                                r"none \(the pads are too large for this input\)\n"
                                                r"  Hint: use smaller pads or a larger input\.$"):
            mg.convolution_transpose(mg.parameter((1, 1, 2)), mg.input_variable((1, 1)), lower_pad=2, upper_pad=1,
                                     name="up")

    def test_convolution_input_smaller_than_kernel(self):
        with pytest.raises(mg.ShapeError, match=r"Convolution 'c': operand spatial shape \(2, 9\) "
                                                r"is too small on axis 0: "
                                                r"input 2 with pads \(0, 0\) is shorter than the dilated kernel 5 "
                                                r"\(filter 3, dilation 2\)"):
            mg.convolution(mg.parameter((1, 1, 3, 3)), mg.input_variable((1, 2, 9)), auto_padding=False, dilation=2,
                           name="c")
