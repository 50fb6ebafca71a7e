"""PyTorch models through ONNX into minigraph: PyTorch's DCGAN generator and discriminator (64x64)
and transposed convolutions with every option. minigraph's eval equals ONNX Runtime's and PyTorch's
outputs, its gradients equal torch.autograd's, and ten SGD steps track torch.optim.SGD."""
import io
import warnings

import numpy as np
import pytest

import minigraph as mg
from minigraph.onnx_import import import_onnx

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nn = torch.nn

NZ, NGF, NDF, NC = 16, 8, 8, 3  # PyTorch's example uses nz=100, ngf=ndf=64: same layers, narrower


class Generator(nn.Module):
    """PyTorch's DCGAN generator (examples/dcgan/main.py): 1x1 noise -> 64x64 image."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class Discriminator(nn.Module):
    """PyTorch's DCGAN discriminator: 64x64 image -> probability (``view(-1, 1).squeeze(1)``, which
    the exporter writes as a Shape -> Gather -> Equal -> If sub-graph)."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class Cropped(nn.Module):
    """A transposed convolution cropped unevenly (rows off the top, columns off both sides)."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 3, stride=2)

    def forward(self, x):
        return self.up(x)[:, :, 2:, 1:-2]


TRANSPOSE_MODELS = {
    "1d output_padding": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1), (3, 7)),
    "2d output_padding per axis": (lambda: nn.ConvTranspose2d(4, 6, (3, 4), stride=(2, 3), padding=(1, 2),
                                                              output_padding=(1, 2)), (4, 5, 6)),
    "2d dilation groups": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (4, 5, 5)),
    "2d dilation beyond stride": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=1, dilation=3, output_padding=2),
                                  (3, 4, 5)),
    "3d": (lambda: nn.ConvTranspose3d(2, 4, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), output_padding=(0, 1, 0)),
           (2, 3, 4, 5)),
    "asymmetric crop": (Cropped, (3, 5, 6)),
    "dcgan generator": (Generator, (NZ, 1, 1)),
    "dcgan discriminator": (Discriminator, (NC, 64, 64)),
}
ORT_REFUSES = {"2d dilation beyond stride"}  # ONNX allows output_padding < max(stride, dilation), ORT < stride
MAX_ERRORS: dict[str, float] = {}


def record(family, got, want):
    err = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))
    MAX_ERRORS[family] = max(MAX_ERRORS.get(family, 0.0), err)
    return err


def trained_looking(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm parameters and running statistics, so that they matter."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def exported(model: nn.Module, sample_shape, **options) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dtype = next(model.parameters()).dtype
        torch.onnx.export(model, torch.zeros(2, *sample_shape, dtype=dtype), f, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, **options)
    return f.getvalue()


def build(case):
    make, shape = TRANSPOSE_MODELS[case]
    torch.manual_seed(1)
    model = trained_looking(make())
    return model, shape, onnx.load_from_string(exported(model, shape, do_constant_folding=False))


@pytest.mark.parametrize("case", sorted(TRANSPOSE_MODELS))
def test_eval_equals_onnx_runtime_and_torch_at_two_batch_sizes(case):
    model, shape, proto = build(case)
    y = import_onnx(proto)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    for n in (1, 3):
        x = rng.normal(size=(n, *shape)).astype(np.float32)
        mine = y.eval({y.arguments[0]: x})
        with torch.no_grad():
            theirs = model(torch.from_numpy(x)).numpy()
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=2e-5)
        record(f"eval vs torch: {case}", mine, theirs)
        if case in ORT_REFUSES:
            with pytest.raises(Exception, match="output_padding"):
                sess.run(None, {"x": x})
            continue
        runtime = sess.run(None, {"x": x})[0]
        np.testing.assert_allclose(mine, runtime, rtol=1e-4, atol=2e-5)
        record(f"eval vs ONNX Runtime: {case}", mine, runtime)


def test_initializer_names_stay_as_pytorch_wrote_them():
    model, shape, proto = build("dcgan generator")
    y = import_onnx(proto)
    assert [p.name for p in y.parameters] == [n for n, _ in model.named_parameters()]
    stats = {n for n, _ in model.named_buffers() if "running" in n}
    assert {c.name for c in y.constants} >= stats
    # constant folding fuses a convolution with the batch normalization after it: the file's names
    fused = import_onnx(onnx.load_from_string(exported(*build("dcgan discriminator")[:2])))
    assert any(p.name.startswith("onnx::") for p in fused.parameters)


def test_summary_shows_resolved_pads():
    _, _, proto = build("dcgan generator")
    y = import_onnx(proto)
    convs = [n for n in y.topological_order() if n.op_name == "ConvolutionTranspose"]
    assert [c.attributes["lower_pad"] for c in convs] == [(0, 0)] + [(1, 1)] * 4
    assert [c.attributes["upper_pad"] for c in convs] == [(0, 0)] + [(1, 1)] * 4
    assert y.shape == (NC, 64, 64)


@pytest.mark.parametrize("case", sorted(TRANSPOSE_MODELS))
def test_gradients_equal_torch_autograd(case):
    model, shape, proto = build(case)
    y = import_onnx(proto)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, *shape)).astype(np.float32)
    g = rng.normal(size=(2, *y.shape)).astype(np.float32)
    xv = y.arguments[0]
    mine = y.grad({xv: x}, wrt=[xv, *y.parameters], grad_root=g)
    xt = torch.from_numpy(x).requires_grad_()
    model(xt).backward(torch.from_numpy(g))
    torch_params = dict(model.named_parameters())
    np.testing.assert_allclose(mine[xv], xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    record(f"input gradient vs torch.autograd: {case}", mine[xv], xt.grad.numpy())
    for p in y.parameters:
        want = torch_params[p.name].grad.numpy()
        np.testing.assert_allclose(mine[p], want, rtol=1e-4, atol=1e-4, err_msg=p.name)
        record(f"parameter gradients vs torch.autograd: {case}", mine[p], want)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["dcgan generator", "dcgan discriminator", "2d dilation groups"])
def test_ten_sgd_steps_track_torch(case, dtype):
    """Training mode (batch statistics), the mean over the batch of a per-sample mean squared error;
    torch runs in float64. A float64 file trains identically; a float32 one within float32 rounding:
    at step 7 a discriminator activation lies within 1.4e-7 of zero, so rounding decides its leaky
    ReLU slope there (torch's own float32 gradients then differ from its float64 ones by 1e-2)."""
    model, shape, _ = build(case)
    model = model.double()
    if dtype == "float32":
        model = model.float()
    y = import_onnx(onnx.load_from_string(exported(model, shape, do_constant_folding=False)))
    model = model.double()
    rtol, atol = (1e-9, 1e-10) if dtype == "float64" else (1e-3, 1e-3)
    rng = np.random.default_rng(4)
    target = mg.input_variable(y.shape, dtype=dtype, name="target")
    loss = mg.reduce_mean(mg.square(y - target), axis=None)  # per sample; small steps, no chaotic drift
    trainer = mg.Trainer(y, loss, [mg.learners.sgd(y.parameters, lr=0.01)])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for _ in range(10):
        x = rng.normal(size=(4, *shape)).astype(dtype)
        t = rng.normal(size=(4, *y.shape)).astype(dtype)
        mine = trainer.train_minibatch({y.arguments[0]: x, target: t})
        optimizer.zero_grad()
        out = model(torch.from_numpy(x).double())
        theirs = ((out - torch.from_numpy(t).double()) ** 2).reshape(4, -1).mean(1).mean()
        theirs.backward()
        optimizer.step()
        assert mine == pytest.approx(theirs.item(), rel=rtol, abs=atol)
        record(f"SGD loss vs torch.optim.SGD (10 steps, {dtype}): {case}", mine, theirs.item())
    for p, (name, q) in zip(y.parameters, model.named_parameters()):
        assert p.name == name and p.dtype == dtype
        np.testing.assert_allclose(p.value, q.detach().numpy(), rtol=rtol, atol=atol, err_msg=name)
        record(f"parameters after 10 SGD steps ({dtype}): {case}", p.value, q.detach().numpy())
    buffers = dict(model.named_buffers())
    for c in y.constants:
        if c.name.endswith("running_mean"):
            np.testing.assert_allclose(c.value, buffers[c.name].numpy(), rtol=rtol, atol=atol)


def test_fine_tuned_model_exports_back_and_runs_in_onnx_runtime(tmp_path):
    model, shape, proto = build("dcgan generator")
    y = import_onnx(proto)
    for p in y.parameters:
        p.value = p.value * 1.01
    path = tmp_path / "g.onnx"
    y.export_onnx(path, batch_dim="N")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).normal(size=(2, *shape)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], y.eval({y.arguments[0]: x}), rtol=1e-4, atol=1e-5)


def test_readme_bringing_a_model_in_runs_as_written(tmp_path, monkeypatch):
    """The README section's code, with a narrow generator (nz=100 as written) and its weights saved
    where the README loads them from."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Bringing a model in\n", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(code) == 2

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(100, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
                *[m for _ in range(3) for m in (nn.ConvTranspose2d(16, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16),
                                                nn.ReLU(True))],
                nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, x):
            return self.main(x)

    monkeypatch.chdir(tmp_path)
    torch.save(trained_looking(Generator()).state_dict(), "netG.pth")
    namespace = {"Generator": Generator,
                 "target_images": np.random.default_rng(0).uniform(-1, 1, (16, 3, 64, 64)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in code:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    g = namespace["g"]
    assert g.name == "image" and g.shape == (3, 64, 64) and [v.name for v in g.arguments] == ["z"]
    session = ort.InferenceSession("netG-tuned.onnx", providers=["CPUExecutionProvider"])
    z = np.random.default_rng(1).normal(size=(2, 100, 1, 1)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"z": z})[0], g.eval({"z": z}), rtol=1e-4, atol=1e-5)
