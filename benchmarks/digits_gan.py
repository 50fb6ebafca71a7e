"""The digits demo GAN (``examples/gan_digits.py``) against the same model in PyTorch, one thread.

Both frameworks get the demo's networks (PyTorch's initialised with minigraph's weights), its
optimizer and the demo's minibatches (noise, real digits, instance noise), and train with
PyTorch's DCGAN loop, which is what GANTrainer does. Reported: seconds per training step (min of N,
alternating, after checking that two steps give both the same losses), then a run of ``steps``
steps in each framework judged by the demo's judge (mean confidence, classes covered, FID).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import minigraph as mg

from .machine import limit_threads
from .peers import installed, set_torch_threads
from .timing import SETTLE_S, Settings, best_times

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _example():
    """The demo module (examples/gan_digits.py) and its helpers (examples/_common.py)."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import gan_digits

    import _common
    return gan_digits, _common


def torch_twin(net: dict, demo):
    """The demo's generator and discriminator in PyTorch with the same weights: the layers of each
    ``Sequential`` in order (Dense, ConvolutionTranspose, Convolution, BatchNormalization and the
    activations the demo uses). Returns ``(netG, netD)``."""
    import torch
    from torch import nn
    L = mg.layers
    activations = {mg.relu: nn.ReLU, mg.sigmoid: nn.Sigmoid, mg.tanh: nn.Tanh, demo.leaky: lambda: nn.LeakyReLU(0.2)}

    def convert(seq, in_shape):
        modules, shape = [], tuple(in_shape)
        for layer in seq.layers:
            if isinstance(layer, L.Dense):
                W, b = layer.W.value, layer.b.value
                fan_in = int(np.prod(shape))
                m = nn.Linear(fan_in, b.size)
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(W.reshape(fan_in, -1).T.copy()))
                    m.bias.copy_(torch.from_numpy(b.reshape(-1)))
                modules += [nn.Flatten()] if len(shape) > 1 else []
                shape = tuple(b.shape)
                modules += [m] + ([nn.Unflatten(1, shape)] if len(shape) > 1 else [])
            elif isinstance(layer, (L.Convolution, L.ConvolutionTranspose)):
                node = layer(mg.input_variable(shape))  # this call's resolved geometry (pads, strides)
                conv = _conv_node(node)
                lo, hi, strides = (conv.attributes[k] for k in ("lower_pad", "upper_pad", "strides"))
                W = layer.W.value
                if isinstance(layer, L.ConvolutionTranspose):
                    m = nn.ConvTranspose2d(W.shape[0], W.shape[1], W.shape[2:], strides, padding=lo,
                                           output_padding=tuple(x - y for x, y in zip(lo, hi)))
                elif list(lo) == [(k - 1) // 2 for k in W.shape[2:]]:  # window starts as PyTorch's padding=lo
                    m = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], strides, padding=lo)
                else:
                    raise ValueError(f"{layer.label}: pads {lo}/{hi} have no PyTorch Conv2d equivalent here")
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(W))
                    m.bias.copy_(torch.from_numpy(layer.b.value.reshape(-1)))
                modules.append(m)
                if layer.activation is not mg.layers.identity:
                    modules.append(activations[layer.activation]())
                shape = tuple(node.shape)
            elif isinstance(layer, L.BatchNormalization):
                m = nn.BatchNorm2d(shape[0], momentum=layer.momentum, eps=layer.epsilon)
                with torch.no_grad():
                    m.weight.copy_(torch.from_numpy(layer.scale.value))
                    m.bias.copy_(torch.from_numpy(layer.bias.value))
                modules.append(m)
            elif layer in activations:
                modules.append(activations[layer]())
            else:
                raise TypeError(f"digits GAN twin: no PyTorch counterpart for {layer!r}")
        return nn.Sequential(*modules)

    return convert(net["generator"], net["z"].shape), convert(net["discriminator"], net["real"].shape)


def _conv_node(node):
    """The convolution node of one layer call (below its bias and activation)."""
    for n in reversed(node.topological_order()):
        if n.op_name in ("Convolution", "ConvolutionTranspose"):
            return n
    raise ValueError(f"{node.label}: no convolution in this layer call")


def torch_step(netG, netD, demo, args):
    """One step of the demo in PyTorch (PyTorch's DCGAN loop with the demo's losses and optimizer):
    a function of a demo feed (numpy arrays) returning ``(d_loss, g_loss)``."""
    import torch
    import torch.nn.functional as F
    if args.adam:
        def optimizer(net):
            return torch.optim.Adam(net.parameters(), lr=args.lr or demo.ADAM_LR, betas=(0.5, 0.999))
    else:
        def optimizer(net):
            return torch.optim.SGD(net.parameters(), lr=args.lr or demo.SGD_LR, momentum=args.momentum)
    optD, optG = optimizer(netD), optimizer(netG)

    def bce(logit, target):
        return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))

    def step(feed):
        t = {k: torch.from_numpy(v) for k, v in feed.items()}
        netD.zero_grad()
        err_real = bce(netD(t["real"] + t["real_noise"]), demo.REAL_TARGET)
        err_real.backward()
        fake = netG(t["z"])
        err_fake = bce(netD(fake.detach() + t["fake_noise"]), 0.0)
        err_fake.backward()
        optD.step()
        netG.zero_grad()
        err_g = bce(netD(fake + t["fake_noise"]), 1.0)
        err_g.backward()
        optG.step()
        return (err_real + err_fake).item(), err_g.item()

    return step


def measure_digits_gan(settings: Settings, steps: int | None = None) -> dict:
    """The demo's step time in both frameworks at one thread (min of N, alternating) and the quality
    of a ``steps``-step run in each (default: the demo's ``--quick`` steps)."""
    demo, common = _example()
    args = demo.arguments(["--quick"])
    steps = steps or demo.QUICK_STEPS
    result = {"model": "examples/gan_digits.py --quick (generator 4x4 kernels, stride 2)", "batch": args.batch,
              "threads": 1, "steps": steps}
    limiter = limit_threads(1)  # noqa: F841  (numpy's BLAS at one thread while it lives)
    torch_threads = None
    if installed("torch"):
        import torch
        torch_threads = torch.get_num_threads()
        set_torch_threads(1)
    try:
        result.update(_measure(demo, common, args, settings, steps))
    finally:
        if torch_threads is not None:
            set_torch_threads(torch_threads)
    return result


def _measure(demo, common, args, settings: Settings, steps: int) -> dict:
    has_torch = installed("torch")
    mg.set_seed(args.seed)
    judge = common.DigitJudge(args.seed)
    out = {}
    # step time: both frameworks on the same feed, in alternation
    net = demo.build()
    gan = demo.trainer(net, args)
    feed = next(demo.minibatches(args, 1))
    fns = {"minigraph_s": lambda: gan.train_minibatch(feed)}
    if has_torch:
        step = torch_step(*torch_twin(net, demo), demo, args)
        ours, theirs = [gan.train_minibatch(feed) for _ in range(2)], [step(feed) for _ in range(2)]
        out["max_rel_loss_err"] = max(abs(a - b) / abs(b) for o, t in zip(ours, theirs) for a, b in zip(o, t))
        if not out["max_rel_loss_err"] < 1e-3:
            raise AssertionError(f"digits GAN: minigraph losses {ours} differ from PyTorch's {theirs}")
        fns["torch_s"] = lambda: step(feed)
    out.update(best_times(fns, settings, SETTLE_S))
    if has_torch:
        out["ratio_vs_torch"] = out["minigraph_s"] / out["torch_s"]
    # quality: a whole run in each framework from the same initial weights and minibatches
    mg.set_seed(args.seed)
    net = demo.build()
    runs = {"minigraph": (demo.trainer(net, args).train_minibatch,
                          lambda: demo.sample(net, args.samples, args.seed + 1))}
    if has_torch:
        import torch
        netG, netD = torch_twin(net, demo)
        z = torch.from_numpy(np.random.default_rng(args.seed + 1).standard_normal((args.samples, demo.Z))
                             .astype(np.float32))

        def torch_samples():
            netG.eval()
            with torch.no_grad():
                return netG(z).numpy()

        runs["torch"] = (torch_step(netG, netD, demo, args), torch_samples)
    for name, (train_step, samples) in runs.items():
        start = time.perf_counter()
        for feed in demo.minibatches(args, steps):
            train_step(feed)
        seconds = time.perf_counter() - start
        q = judge.judge(samples())
        out[f"{name}_run"] = {"seconds": seconds, "confidence": q["confidence"], "classes": q["classes"],
                              "fid": q["fid"]}
    out["real_digit_fid"] = judge.fid_reference
    return out
