"""GAN training steps, minigraph's GANTrainer against PyTorch's DCGAN loop.

The DCGAN of PyTorch's example (``examples/dcgan``) at any power-of-two size: the generator
``z (nz, 1, 1)`` -> ConvTranspose k4 s1 p0 -> 4x4, then ConvTranspose k4 s2 p1 layers doubling the
size (BatchNorm, ReLU) down to ``ngf`` channels, a last one to ``nc`` channels and tanh; the
discriminator the mirror image (Convolution k4 s2 p1, BatchNorm from the second layer, LeakyReLU
0.2, a k4 s1 p0 convolution to one sigmoid output); binary cross-entropy; no biases. A step is
PyTorch's loop: ``fake = netG(z)``, D on real and ``fake.detach()``, ``optimizerD.step()``, G through
the updated D, ``optimizerG.step()``, both with Adam (lr 2e-4, betas 0.5, 0.999).

:func:`measure_dcgan_step` times that step at 64x64, batch 64 (float32, same weights and data in
both frameworks, parameters compared after two steps before anything is timed).
"""
from __future__ import annotations

import math

import numpy as np

import minigraph as mg

from .peers import installed
from .timing import SETTLE_S, Settings, best_times

LR, BETA1 = 2e-4, 0.5
DCGAN_REPEATS = 7
"""At most this many timed rounds for the 64x64 step (each round is two steps of about a second)."""


def _leaky(x):
    return mg.leaky_relu(x, 0.2)


def build_dcgan(size: int = 64, nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 3, dtype=np.float32) -> dict:
    """The DCGAN in minigraph; returns the nodes GANTrainer takes, both networks and their layers
    (in the order of the PyTorch twin's modules, see :func:`torch_dcgan`)."""
    from minigraph import layers as L
    ups = int(math.log2(size)) - 2
    if size < 8 or 2 ** (ups + 2) != size:
        raise ValueError(f"DCGAN size must be a power of two >= 8, got {size}")
    z = mg.input_variable((nz, 1, 1), dtype=dtype, name="z")
    real = mg.input_variable((nc, size, size), dtype=dtype, name="real")
    g_layers = [L.ConvolutionTranspose((4, 4), ngf * 2 ** (ups - 1), bias=False, name="g1"),
                L.BatchNormalization(map_rank=1, momentum=0.1, name="g1_bn")]
    g_seq = [g_layers[0], g_layers[1], mg.relu]
    for i in range(1, ups):
        up = L.ConvolutionTranspose((4, 4), ngf * 2 ** (ups - 1 - i), strides=2, pad=True, output_shape=4 * 2 ** i,
                                    bias=False, name=f"g{i + 1}")
        bn = L.BatchNormalization(map_rank=1, momentum=0.1, name=f"g{i + 1}_bn")
        g_layers += [up, bn]
        g_seq += [up, bn, mg.relu]
    last = L.ConvolutionTranspose((4, 4), nc, strides=2, pad=True, output_shape=size, bias=False, name=f"g{ups + 1}")
    g_layers.append(last)
    generator = L.Sequential([*g_seq, last, mg.tanh], name="generator")
    d_layers = [L.Convolution((4, 4), ndf, strides=2, pad=True, bias=False, name="d1")]
    d_seq = [d_layers[0], _leaky]
    for i in range(1, ups):
        conv = L.Convolution((4, 4), ndf * 2 ** i, strides=2, pad=True, bias=False, name=f"d{i + 1}")
        bn = L.BatchNormalization(map_rank=1, momentum=0.1, name=f"d{i + 1}_bn")
        d_layers += [conv, bn]
        d_seq += [conv, bn, _leaky]
    head = L.Convolution((4, 4), 1, bias=False, name=f"d{ups + 1}")
    d_layers.append(head)
    discriminator = L.Sequential([*d_seq, head, mg.sigmoid], name="discriminator")
    fake = generator(z)
    d_real, d_fake = discriminator(real), discriminator(fake)
    d_loss = mg.plus(mg.binary_cross_entropy(d_real, 1.0), mg.binary_cross_entropy(d_fake, 0.0), name="d_loss")
    g_loss = mg.binary_cross_entropy(d_fake, 1.0, name="g_loss")
    return {"z": z, "real": real, "fake": fake, "d_real": d_real, "d_fake": d_fake, "d_loss": d_loss,
            "g_loss": g_loss, "generator": generator, "discriminator": discriminator,
            "g_layers": g_layers, "d_layers": d_layers}


def dcgan_trainer(net: dict, **kwargs) -> mg.GANTrainer:
    """GANTrainer with Adam (lr 2e-4, momentum 0.5) for both networks, as PyTorch's example
    (``kwargs`` go to GANTrainer)."""
    adam = mg.learners.adam
    return mg.GANTrainer(net["fake"], net["d_real"], net["d_fake"], net["d_loss"], net["g_loss"],
                         adam(net["discriminator"], LR, momentum=BETA1), adam(net["generator"], LR, momentum=BETA1),
                         **kwargs)


def torch_dcgan(net: dict):
    """The same networks in PyTorch (the dtype of minigraph's weights), initialised with them;
    returns ``(netG, netD, [(module, layer)])`` for every weight-carrying layer."""
    import torch
    from torch import nn
    pairs = []

    def module(layer):
        if isinstance(layer, mg.layers.BatchNormalization):
            m = nn.BatchNorm2d(layer.scale.shape[0], momentum=0.1)
        else:
            W = layer.W.value
            kind = nn.ConvTranspose2d if isinstance(layer, mg.layers.ConvolutionTranspose) else nn.Conv2d
            stride, pad = (1, 0) if layer is net["g_layers"][0] or layer is net["d_layers"][-1] else (2, 1)
            cin, cout = (W.shape[0], W.shape[1]) if kind is nn.ConvTranspose2d else (W.shape[1], W.shape[0])
            m = kind(cin, cout, 4, stride, pad, bias=False)
        pairs.append((m, layer))
        return m

    g, d = net["g_layers"], net["d_layers"]
    g_mods = []
    for i in range(0, len(g) - 1, 2):
        g_mods += [module(g[i]), module(g[i + 1]), nn.ReLU()]
    netG = nn.Sequential(*g_mods, module(g[-1]), nn.Tanh())
    d_mods = [module(d[0]), nn.LeakyReLU(0.2)]
    for i in range(1, len(d) - 1, 2):
        d_mods += [module(d[i]), module(d[i + 1]), nn.LeakyReLU(0.2)]
    netD = nn.Sequential(*d_mods, module(d[-1]), nn.Sigmoid())
    dtype = torch.float64 if net["g_layers"][0].W.value.dtype == np.float64 else torch.float32
    netG, netD = netG.to(dtype), netD.to(dtype)
    with torch.no_grad():
        for m, layer in pairs:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.from_numpy(layer.scale.value))
                m.bias.copy_(torch.from_numpy(layer.bias.value))
            else:
                m.weight.copy_(torch.from_numpy(layer.W.value))
    return netG, netD, pairs


def torch_dcgan_step(netG, netD):
    """One iteration of PyTorch's examples/dcgan/main.py loop as a function of ``(real, noise)``
    tensors; returns ``(errD, errG)`` as floats."""
    import torch
    criterion = torch.nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(BETA1, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=LR, betas=(BETA1, 0.999))

    def step(real, noise):
        n = real.shape[0]
        ones, zeros = torch.ones(n, dtype=real.dtype), torch.zeros(n, dtype=real.dtype)
        netD.zero_grad()
        errD_real = criterion(netD(real).view(-1), ones)
        errD_real.backward()
        fake = netG(noise)
        errD_fake = criterion(netD(fake.detach()).view(-1), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        errG = criterion(netD(fake).view(-1), ones)
        errG.backward()
        optG.step()
        return (errD_real + errD_fake).item(), errG.item()

    return step


def measure_dcgan_step(settings: Settings, batch: int = 64, size: int = 64) -> dict:
    """Seconds per D+G training step (min of N, the two frameworks in alternation), after checking
    that two steps give both the same losses."""
    mg.set_seed(0)
    net = build_dcgan(size)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((batch, *net["z"].shape)).astype(np.float32)
    images = np.tanh(rng.standard_normal((batch, *net["real"].shape))).astype(np.float32)
    feed = {"z": noise, "real": images}
    result = {"model": f"DCGAN {size}x{size} (nz 100, ngf 64, ndf 64, 3 channels), Adam", "batch": batch, "size": size}
    steps = {}
    if installed("torch"):
        import torch
        step = torch_dcgan_step(*torch_dcgan(net)[:2])
        treal, tnoise = torch.from_numpy(images), torch.from_numpy(noise)
        steps["torch_s"] = lambda: step(treal, tnoise)
    gan = dcgan_trainer(net)
    steps["minigraph_s"] = lambda: gan.train_minibatch(feed)
    if "torch_s" in steps:
        ours = [steps["minigraph_s"]() for _ in range(2)]
        theirs = [steps["torch_s"]() for _ in range(2)]
        result["max_rel_loss_err"] = max(abs(a - b) / abs(b) for o, t in zip(ours, theirs) for a, b in zip(o, t))
        if not result["max_rel_loss_err"] < 1e-3:
            raise AssertionError(f"DCGAN step: minigraph losses {ours} differ from PyTorch's {theirs}")
    capped = Settings(min(settings.repeats, DCGAN_REPEATS), settings.min_repeat_s, min(settings.warmup, 1))
    result.update(best_times(steps, capped, SETTLE_S))
    if "torch_s" in result:
        result["ratio_vs_torch"] = result["minigraph_s"] / result["torch_s"]
    return result
