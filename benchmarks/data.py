"""Training data from disk: ImageFolder throughput and the GAN step it feeds.

Data: ``SWEEP_BATCHES`` minibatches' worth (512 at the default batch of 64) of 32x32 RGB PNG
files (smooth random pictures: an 8x8 random image enlarged, plus noise, so that they compress
like photos rather than like white noise), written to a temporary folder.

- Throughput: images per second of one sweep through ``MinibatchSource(ImageFolder(...),
  minibatch_size=BATCH)`` (PNG decoding, conversion, scaling to float32) with 0 and 2
  minibatches prefetched. With nothing else running, a prefetch thread cannot be faster: it shows
  the thread's own cost.
- GAN step: one discriminator and one generator step of ``examples/gan_images.py``'s DCGAN at
  32x32x3, fed either minibatches of the same images held in memory (random rows of an array, as
  ``gan_digits.py`` does) or the next minibatch of the folder, decoded by the prefetch thread while
  the previous step trains. Both are timed over blocks of ``BLOCK`` consecutive steps, in
  alternation (min of N); every folder block starts with nothing read ahead (the source is closed
  after each block), so the folder pays for its first minibatch's decoding in full.
  Target: the folder's step costs at most 10 % more.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time

import numpy as np

import minigraph as mg

from .timing import Settings, best_times

SIZE, BATCH, SWEEP_BATCHES, BLOCK = 32, 64, 8, 12
PREFETCH = (0, 2)
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "gan_images.py")


def write_pictures(folder: str, count: int, size: int = SIZE, seed: int = 0) -> None:
    """``count`` smooth random RGB pictures ``size`` x ``size`` as PNG files in ``folder``."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 200, (count, size // 4, size // 4, 3)).repeat(4, axis=1).repeat(4, axis=2)
    pixels = (coarse + rng.integers(0, 56, coarse.shape)).astype(np.uint8)
    for i, img in enumerate(pixels):
        Image.fromarray(img).save(os.path.join(folder, f"{i:05d}.png"))


def _example():
    """examples/gan_images.py as a module (the benchmark times its networks)."""
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    spec = importlib.util.spec_from_file_location("gan_images_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sweep_seconds(images, batch: int, prefetch: int, settings: Settings) -> float:
    def sweep():
        with mg.data.MinibatchSource(images, batch, seed=0, max_sweeps=1, prefetch=prefetch) as source:
            for _ in source:
                pass
    return best_times({"sweep": sweep}, settings)["sweep"]


def _gan_steps(example, images, batch: int):
    """Functions running ``BLOCK`` GAN steps from memory and from the folder."""
    mg.set_seed(0)
    net = example.build(SIZE, 3, width=32)
    lr = 1e-3
    d = mg.Trainer(net["d_real"], net["d_loss"], mg.learners.adam(net["discriminator"], lr, momentum=0.5))
    g = mg.Trainer(net["fake"], net["g_loss"], mg.learners.adam(net["generator"], lr, momentum=0.5))
    rng = np.random.default_rng(0)
    shape = (batch, 3, SIZE, SIZE)
    z = rng.standard_normal((batch, example.Z)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    in_memory = images.read(np.arange(len(images)))["image"]

    def step(real):
        d.train_minibatch({"z": z, "real": real, "fake_noise": noise, "real_noise": noise})
        g.train_minibatch({"z": z, "fake_noise": noise})

    def from_memory():
        for _ in range(BLOCK):
            step(in_memory[rng.integers(0, len(in_memory), batch)])

    source = mg.data.MinibatchSource(images, batch, seed=0, drop_last=True, prefetch=2)

    def from_folder():
        for _ in range(BLOCK):
            step(source.next_minibatch()["image"])
        source.close()  # the next block starts with nothing read ahead

    return from_memory, from_folder, source


def measure_data(settings: Settings, batch: int = BATCH) -> dict:
    """Images per second with 0 and 2 prefetched minibatches of ``batch``, and seconds per GAN
    step from memory and from the folder (with prefetch 2)."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        return {"skipped": "Pillow is not installed (pip install 'minigraph[images]')"}
    count = SWEEP_BATCHES * batch
    result = {"images": count, "size": f"{SIZE}x{SIZE} RGB PNG", "batch": batch, "block_steps": BLOCK}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_pictures(folder, count)
        result["write_s"] = time.perf_counter() - start
        images = mg.data.ImageFolder(folder, labels=None)
        for prefetch in PREFETCH:
            result[f"images_per_s_prefetch{prefetch}"] = count / _sweep_seconds(images, batch, prefetch, settings)
        from_memory, from_folder, source = _gan_steps(_example(), images, batch)
        try:
            times = best_times({"memory": from_memory, "folder": from_folder}, settings)
        finally:
            source.close()
    result["gan_step_memory_s"] = times["memory"] / BLOCK
    result["gan_step_folder_s"] = times["folder"] / BLOCK
    result["gan_step_ratio"] = result["gan_step_folder_s"] / result["gan_step_memory_s"]
    return result
