"""One full training step of the MNIST-size generator, minigraph against PyTorch.

Model (CNTK's GAN tutorial generator): noise (100,) -> Dense (128, 7, 7) + ReLU ->
ConvolutionTranspose 5x5, 64 filters, stride 2, pad=True, output 14x14 + ReLU ->
ConvolutionTranspose 5x5, 1 filter, stride 2, pad=True, output 28x28 + sigmoid.

A step is what a user runs: ``Trainer.train_minibatch`` on the mean per-sample squared error
against a target image (forward, backward, momentum-SGD update of every parameter). PyTorch does
the same with ``torch.optim.SGD``. Both start from the same weights, and their parameters after
one step are compared before anything is timed.
"""
from __future__ import annotations

import numpy as np

import minigraph as mg

from .peers import installed
from .timing import SETTLE_S, Settings, best_times

LR, MOMENTUM = 0.01, 0.9
NOISE = 100
MODEL = "Dense 100->128x7x7, ReLU, ConvT 5x5 s2 128->64, ReLU, ConvT 5x5 s2 64->1, sigmoid; squared error"
TORCH_INDEX = {"fc": 0, "up1": 3, "up2": 5}
"""Position of each minigraph layer's counterpart in the PyTorch ``nn.Sequential``."""


def _layers_missing() -> str | None:
    try:
        from minigraph import layers
    except ImportError as exc:
        return f"minigraph.layers cannot be imported ({exc})"
    absent = [n for n in ("Dense", "ConvolutionTranspose", "Sequential") if not hasattr(layers, n)]
    return f"minigraph.layers has no {', '.join(absent)}" if absent else None


def build_minigraph(seed: int = 0):
    """The generator as a user writes it; returns ``(z, y, {layer name: layer})``."""
    from minigraph import layers as L
    mg.set_seed(seed)
    z = mg.input_variable((NOISE,), name="z")
    layers = {
        "fc": L.Dense((128, 7, 7), activation=mg.relu, name="fc"),
        "up1": L.ConvolutionTranspose((5, 5), 64, strides=2, pad=True, output_shape=(14, 14), activation=mg.relu,
                                      name="up1"),
        "up2": L.ConvolutionTranspose((5, 5), 1, strides=2, pad=True, output_shape=(28, 28), activation=mg.sigmoid,
                                      name="up2"),
    }
    return z, L.Sequential(list(layers.values()))(z), layers


def build_torch(layers: dict):
    """The same model in PyTorch, initialised with minigraph's weights (layouts translated)."""
    import torch
    from torch import nn
    model = nn.Sequential(nn.Linear(NOISE, 128 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                          nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1), nn.Sigmoid())
    with torch.no_grad():
        for name, index in TORCH_INDEX.items():
            model[index].weight.copy_(torch.from_numpy(_as_torch(name, layers[name].W.value)))
            model[index].bias.copy_(torch.from_numpy(layers[name].b.value.reshape(-1)))
    return model


def _as_torch(layer: str, W: np.ndarray) -> np.ndarray:
    """minigraph's ``W`` in PyTorch's layout (Dense: ``(in, *out)`` -> ``(out, in)``; ConvT: the same)."""
    return W.reshape(NOISE, -1).T.copy() if layer == "fc" else W


def measure_sgd_step(settings: Settings, batch: int = 64) -> dict:
    """Seconds per training step (min of N) in both frameworks, after checking that one step
    leaves both with the same parameters."""
    missing = _layers_missing()
    if missing:
        return {"skipped": missing}
    z, y, layers = build_minigraph()
    target = mg.input_variable(y.shape, name="target")
    trainer = mg.Trainer(y, mg.squared_error(y, target), mg.learners.momentum_sgd(y.parameters, LR, MOMENTUM))
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((batch, NOISE)).astype(np.float32)
    images = rng.random((batch, *y.shape)).astype(np.float32)
    feed = {z: noise, target: images}
    result = {"model": MODEL, "batch": batch, "lr": LR, "momentum": MOMENTUM}
    steps = {"minigraph_s": lambda: trainer.train_minibatch(feed)}
    if installed("torch"):
        import torch
        model = build_torch(layers)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        tz, timages = torch.from_numpy(noise), torch.from_numpy(images)

        def torch_step():
            optimizer.zero_grad(set_to_none=True)
            loss = ((model(tz) - timages) ** 2).sum() / batch
            loss.backward()
            optimizer.step()

        steps["torch_s"] = torch_step
        for step in steps.values():
            step()
        result["max_rel_err_after_step"] = max(_max_rel_err(layers, model, name) for name in TORCH_INDEX)
        if not result["max_rel_err_after_step"] < 1e-3:
            raise AssertionError(f"SGD step: minigraph and PyTorch parameters differ after one step "
                                 f"(max relative error {result['max_rel_err_after_step']:.2e})")
    result.update(best_times(steps, settings, SETTLE_S))
    if "torch_s" in result:
        result["ratio_vs_torch"] = result["minigraph_s"] / result["torch_s"]
    return result


def _max_rel_err(layers: dict, model, name: str) -> float:
    index = TORCH_INDEX[name]
    pairs = [(_as_torch(name, layers[name].W.value), model[index].weight),
             (layers[name].b.value.reshape(-1), model[index].bias)]
    return max(float(np.max(np.abs(a - t.detach().numpy())) / np.max(np.abs(a))) for a, t in pairs)
