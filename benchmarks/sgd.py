"""One full training step of the MNIST-size generator, minigraph against PyTorch.

Model (CNTK's GAN tutorial generator): noise (100,) -> Dense (128, 7, 7) + ReLU ->
ConvolutionTranspose 5x5, 64 filters, stride 2, pad=True, output 14x14 + ReLU ->
ConvolutionTranspose 5x5, 1 filter, stride 2, pad=True, output 28x28 + sigmoid.

A step is forward, backward and a momentum-SGD update of every parameter. The output gradient
is a fixed array (that of a mean-over-batch loss, ``g / batch``) so both frameworks do exactly the
same arithmetic whatever loss functions they offer; both start from the same weights, and the
parameters after one step are compared before anything is timed.
"""
from __future__ import annotations

import numpy as np

import minigraph as mg

from .peers import installed
from .timing import SETTLE_S, Settings, best_times

LR, MOMENTUM = 0.01, 0.9
NOISE = 100
MODEL = "Dense 100->128x7x7, ReLU, ConvT 5x5 s2 128->64, ReLU, ConvT 5x5 s2 64->1, sigmoid"


def _layers_missing() -> str | None:
    layers = getattr(mg, "layers", None)
    names = ("Dense", "ConvolutionTranspose", "Sequential")
    if layers is None or not all(hasattr(layers, n) for n in names):
        return "mg.layers (Dense, ConvolutionTranspose, Sequential) is not available"
    return None


def build_minigraph(seed: int = 0):
    """The generator as a user writes it; returns ``(z, y)``."""
    from minigraph import layers as L
    mg.set_seed(seed)
    z = mg.input_variable((NOISE,), name="z")
    model = L.Sequential([
        L.Dense((128, 7, 7), activation=mg.relu, name="fc"),
        L.ConvolutionTranspose((5, 5), 64, strides=2, pad=True, output_shape=(14, 14), activation=mg.relu, name="up1"),
        L.ConvolutionTranspose((5, 5), 1, strides=2, pad=True, output_shape=(28, 28), activation=mg.sigmoid, name="up2"),
    ])
    return z, model(z)


def _layer_params(y) -> dict:
    """``{layer name: (W, b)}`` from the graph's parameters (named ``W``/``b`` inside each layer scope)."""
    found: dict = {}
    for p in y.parameters:
        layer = p.scope[-1].name if p.scope else ""
        found.setdefault(layer, {})[p.name] = p
    return {name: (ps["W"], ps["b"]) for name, ps in found.items()}


def build_torch(params: dict):
    """The same model in PyTorch, initialised with minigraph's weights (layouts translated)."""
    import torch
    from torch import nn
    fc_W, fc_b = (p.value for p in params["fc"])
    model = nn.Sequential(nn.Linear(NOISE, 128 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                          nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(fc_W.reshape(NOISE, -1).T.copy()))
        model[0].bias.copy_(torch.from_numpy(fc_b.reshape(-1)))
        for index, name in ((3, "up1"), (5, "up2")):
            W, b = (p.value for p in params[name])
            model[index].weight.copy_(torch.from_numpy(W))
            model[index].bias.copy_(torch.from_numpy(b.reshape(-1)))
    return model


def measure_sgd_step(settings: Settings, batch: int = 64) -> dict:
    """Seconds per training step (min of N) in both frameworks, after checking that one step
    leaves both with the same parameters."""
    missing = _layers_missing()
    if missing:
        return {"skipped": missing}
    z, y = build_minigraph()
    params = _layer_params(y)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((batch, NOISE)).astype(np.float32)
    g = (rng.standard_normal((batch, *y.shape)) / batch).astype(np.float32)
    torch_model = build_torch(params) if installed("torch") else None
    learner = mg.learners.momentum_sgd(y.parameters, LR, MOMENTUM)
    feed = {z: noise}

    def minigraph_step():
        grads = y.grad(feed, wrt=y.parameters, grad_root=g)
        learner.update(grads, batch)

    result = {"model": MODEL, "batch": batch, "lr": LR, "momentum": MOMENTUM}
    if torch_model is not None:
        import torch
        optimizer = torch.optim.SGD(torch_model.parameters(), lr=LR, momentum=MOMENTUM)
        tz, tg = torch.from_numpy(noise), torch.from_numpy(g)

        def torch_step():
            optimizer.zero_grad(set_to_none=True)
            torch_model(tz).backward(tg)
            optimizer.step()

        minigraph_step()
        torch_step()
        W_mg = params["up2"][0].value
        W_torch = torch_model[5].weight.detach().numpy()
        err = float(np.max(np.abs(W_mg - W_torch)) / np.max(np.abs(W_torch)))
        if not err < 1e-3:
            raise AssertionError(f"SGD step: minigraph and PyTorch weights differ after one step (rel. err {err:.2e})")
        result["max_rel_err_after_step"] = err
        times = best_times({"minigraph_s": minigraph_step, "torch_s": torch_step}, settings, SETTLE_S)
        result.update(times, ratio_vs_torch=times["minigraph_s"] / times["torch_s"])
    else:
        result["minigraph_s"] = best_times({"minigraph_s": minigraph_step}, settings)["minigraph_s"]
    return result
