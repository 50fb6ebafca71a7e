"""A DCGAN trained on any folder of images: yours, or scikit-learn's digits written as PNG files.

    python examples/gan_images.py --write-digits digits_png            # 1797 PNGs in class folders 0..9
    python examples/gan_images.py --data digits_png --size 16 --channels 1 --out out_images

The folder holds images, directly or in subfolders (labels are not used). Every image is
read with ``mg.data.ImageFolder`` (resized to --size x --size, converted to --channels), and a
``mg.data.MinibatchSource`` shuffles, batches and decodes the next minibatches in a background
thread while the networks train.

generator:      z (32) -> Dense (2w, S/4, S/4) -> BN -> relu -> ConvolutionTranspose 4x4/2 (w) -> BN -> relu
                -> ConvolutionTranspose 4x4/2 (C, S, S) -> sigmoid
discriminator:  image (C, S, S) -> Convolution 4x4/2 (w) -> leaky relu -> Convolution 4x4/2 (2w) -> leaky relu
                -> Dense 1 (a logit)

4x4 kernels with stride 2 cover every output pixel equally often (no checkerboard). Stabilisers as
in gan_digits.py: one-sided label smoothing and instance noise.

Writes to --out: samples.png (a grid of 64 samples), real.png (64 training images), loss.png,
generator.mgz (load with mg.load_model) and quality.json (steps, seconds, images per second).
"""
from __future__ import annotations

import os

import numpy as np

import minigraph as mg
from minigraph import layers as L
from minigraph import learners

from _common import Stopwatch, digits, parser, progress_bar, save_curves, setup, write_report

Z = 32
QUICK_STEPS, FULL_STEPS = 1500, 6000
GRID = 64


def write_digits(folder: str) -> int:
    """scikit-learn's 8x8 digits as grey PNG files ``folder/<digit>/<number>.png``; returns the count."""
    from PIL import Image
    images, labels = digits()
    pixels = np.round(images[:, 0] * 255).astype(np.uint8)
    for i, (img, label) in enumerate(zip(pixels, labels)):
        os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
        Image.fromarray(img).save(os.path.join(folder, str(label), f"{i:04d}.png"))
    return len(pixels)


def build(size: int, channels: int, width: int):
    """Generator and discriminator for ``(channels, size, size)`` images, in one graph."""
    if size % 4:
        raise SystemExit(f"--size must be a multiple of 4 (two stride-2 stages), got {size}")
    shape = (channels, size, size)
    z = mg.input_variable(Z, name="z")
    real = mg.input_variable(shape, name="real")
    real_noise = mg.input_variable(shape, name="real_noise")
    fake_noise = mg.input_variable(shape, name="fake_noise")
    up = {"strides": 2, "pad": True}
    generator = L.Sequential([
        L.Dense((2 * width, size // 4, size // 4), name="project"),
        L.BatchNormalization(map_rank=1, momentum=0.1), mg.relu,
        L.ConvolutionTranspose((4, 4), width, output_shape=size // 2, name="up1", **up),
        L.BatchNormalization(map_rank=1, momentum=0.1), mg.relu,
        L.ConvolutionTranspose((4, 4), channels, output_shape=size, activation=mg.sigmoid, name="up2", **up),
    ], name="generator")

    def leaky(x):
        return mg.leaky_relu(x, 0.2)

    discriminator = L.Sequential([
        L.Convolution((4, 4), width, activation=leaky, name="down1", **up),
        L.Convolution((4, 4), 2 * width, activation=leaky, name="down2", **up),
        L.Dense(1, name="logit"),
    ], name="discriminator")
    fake = generator(z)
    d_real, d_fake = discriminator(real + real_noise), discriminator(fake + fake_noise)
    d_loss = mg.softplus(d_real) - 0.9 * d_real + mg.softplus(d_fake)  # BCE of logits: real 0.9, fake 0
    g_loss = mg.softplus(d_fake) - d_fake  # fake 1
    return {"z": z, "fake": fake, "d_real": d_real, "d_loss": d_loss, "g_loss": g_loss,
            "generator": generator, "discriminator": discriminator, "shape": shape}


def train(net, source: mg.data.MinibatchSource, args, steps: int) -> dict:
    """Alternate discriminator and generator steps on minibatches of real images from ``source``."""
    d_trainer = mg.Trainer(net["d_real"], net["d_loss"], learners.adam(net["discriminator"], args.lr, momentum=0.5))
    g_trainer = mg.Trainer(net["fake"], net["g_loss"], learners.adam(net["generator"], args.lr, momentum=0.5))
    rng = np.random.default_rng(args.seed)
    with progress_bar(args, steps, "GAN") as bar:
        for _, feed in zip(range(steps), source):
            real = feed["image"]
            batch, shape = len(real), (len(real), *net["shape"])
            z = rng.standard_normal((batch, Z)).astype(np.float32)
            fake_noise = (args.noise * rng.standard_normal(shape)).astype(np.float32)
            d_trainer.train_minibatch({"z": z, "real": real, "fake_noise": fake_noise,
                                       "real_noise": (args.noise * rng.standard_normal(shape)).astype(np.float32)})
            g_trainer.train_minibatch({"z": z, "fake_noise": fake_noise})
            bar.set_postfix(d_loss=f"{d_trainer.previous_minibatch_loss_average:.3f}",
                            g_loss=f"{g_trainer.previous_minibatch_loss_average:.3f}", epoch=source.epoch)
            bar.update()
    return {"discriminator": d_trainer.history["minibatch_loss"], "generator": g_trainer.history["minibatch_loss"]}


def main(argv=None) -> dict | None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", help="folder of images: one subfolder per class, or flat")
    p.add_argument("--write-digits", metavar="DIR", help="first write scikit-learn's digits as PNG files into DIR "
                                                         "(then train on them only if --data is given)")
    p.add_argument("--size", type=int, default=16, help="image height and width to resize to (multiple of 4; "
                                                        "default 16)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="1 (grey) or 3 (RGB); default: as the files are")
    p.add_argument("--batch", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--noise", type=float, default=0.1, help="instance noise std (default 0.1)")
    p.add_argument("--width", type=int, default=32, help="filters of the first convolution (default 32)")
    p.add_argument("--prefetch", type=int, default=2, help="minibatches decoded ahead in a thread (default 2)")
    args = p.parse_args(argv)
    if args.write_digits:
        print(f"wrote {write_digits(args.write_digits)} PNG files into {args.write_digits}")
        if not args.data:
            return None
    if not args.data:
        p.error("--data DIR is required (or --write-digits DIR to make a folder first)")
    steps = setup(args, QUICK_STEPS, FULL_STEPS)
    clock = Stopwatch()
    # labels=None: every image under the folder, in class subfolders or not (the GAN uses no labels)
    images = mg.data.ImageFolder(args.data, size=args.size, channels=args.channels, value_range=(0, 1), labels=None)
    print(images)
    net = build(args.size, images.channels, args.width)
    with mg.data.MinibatchSource(images, minibatch_size=min(args.batch, len(images)), shuffle=True, seed=args.seed,
                                 drop_last=True, prefetch=args.prefetch) as source:
        train_clock = Stopwatch()
        losses = train(net, source, args, steps)
        train_seconds = train_clock.seconds
        epochs = source.samples_seen / len(images)
    real = images.read(np.arange(min(GRID, len(images))))["image"]
    samples = net["fake"].eval({"z": np.random.default_rng(args.seed + 1).standard_normal((GRID, Z))
                                .astype(np.float32)})
    out = args.out
    mg.utils.save_image(samples, os.path.join(out, "samples.png"), nrow=8)
    mg.utils.save_image(real[:GRID], os.path.join(out, "real.png"), nrow=8)
    save_curves(os.path.join(out, "loss.png"), losses, smooth=50)
    net["fake"].save(os.path.join(out, "generator.mgz"))
    report = {"steps": steps, "images": len(images), "size": args.size, "channels": images.channels,
              "epochs": epochs, "train_seconds": train_seconds, "seconds": clock.seconds,
              "real_images_per_second": steps * args.batch / train_seconds,
              "final_d_loss": float(np.mean(losses["discriminator"][-50:])),
              "final_g_loss": float(np.mean(losses["generator"][-50:]))}
    write_report(out, report, ["samples.png", "real.png", "loss.png", "generator.mgz"])
    print(f"{steps} steps ({epochs:.1f} epochs of {len(images)} images) in {train_seconds:.1f} s of training")
    return report


if __name__ == "__main__":
    main()
