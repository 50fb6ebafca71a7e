"""A convolutional autoencoder of the 8x8 digits whose decoder is made of ConvolutionTranspose layers.

encoder: image (1, 8, 8) -> Convolution 3x3/2 (16) -> Convolution 3x3/2 (32) -> Dense 10 (the code)
decoder: code -> Dense (32, 2, 2) -> ConvolutionTranspose 3x3/2 (16, 4, 4)
         -> ConvolutionTranspose 3x3/2 (1, 8, 8) -> sigmoid

Trained with Trainer.fit (momentum SGD) on 3/4 of the digits; reports the mean squared error per
pixel on the held-out quarter and how often a classifier of real digits still recognises the
reconstructions. Writes to --out: reconstructions.png (held-out digits, originals above their
reconstructions), loss.png, autoencoder.mgz, quality.json. With ``--tensorboard DIR``: the training and
held-out losses, the model's graph, and each epoch's reconstructions of the same held-out digits.
"""
from __future__ import annotations

import os

import numpy as np

import minigraph as mg
from minigraph import layers as L
from minigraph import learners

from _common import (
    DigitJudge,
    Stopwatch,
    digits,
    parser,
    save_curves,
    save_digits,
    setup,
    tensorboard_writer,
    write_report,
    zoomed,
)

QUICK_STEPS, FULL_STEPS = 800, 4000
BATCH = 32


def build(code: int = 10):
    x = mg.input_variable((1, 8, 8), name="image")
    encoder = L.Sequential([
        L.Convolution((3, 3), 16, strides=2, pad=True, activation=mg.relu, name="down1"),
        L.Convolution((3, 3), 32, strides=2, pad=True, activation=mg.relu, name="down2"),
        L.Dense(code, name="code"),
    ], name="encoder")
    decoder = L.Sequential([
        L.Dense((32, 2, 2), activation=mg.relu, name="expand"),
        L.ConvolutionTranspose((3, 3), 16, strides=2, pad=True, output_shape=4, activation=mg.relu, name="up1"),
        L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True, output_shape=8, activation=mg.sigmoid, name="up2"),
    ], name="decoder")
    reconstruction = decoder(encoder(x))
    return x, reconstruction, mg.squared_error(reconstruction, x)


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    steps = setup(args, QUICK_STEPS, FULL_STEPS)
    clock = Stopwatch()
    images, labels = digits()
    order = np.random.default_rng(args.seed).permutation(len(images))
    split = len(images) * 3 // 4
    train_idx, test_idx = order[:split], order[split:]
    x, reconstruction, loss = build()
    held_out = images[test_idx]
    tb = tensorboard_writer(args, reconstruction, freq=10)
    trainer = mg.Trainer(reconstruction, loss, learners.momentum_sgd(reconstruction.parameters, 0.05, 0.9),
                         progress_writers=[tb] if tb else [])

    def log_reconstructions(t, logs):  # originals above their reconstructions
        if tb is not None:
            shown = held_out[:8]
            tb.write_image("reconstructions", zoomed(np.concatenate([shown, reconstruction.eval({x: shown})])),
                           t.step_count, nrow=8)

    epochs = -(-steps // -(-split // BATCH))  # whole epochs covering the requested number of steps
    history = trainer.fit({x: images[train_idx]}, epochs=epochs, minibatch_size=BATCH, seed=args.seed,
                          progress=False if args.no_progress else None, validation_data={x: held_out},
                          callbacks=[log_reconstructions])
    if tb is not None:
        tb.close()

    rebuilt = reconstruction.eval({x: held_out})
    mse = float(np.mean((rebuilt - held_out) ** 2))
    judge = DigitJudge(args.seed)
    recognised = float(np.mean(judge.probabilities(rebuilt).argmax(axis=1) == labels[test_idx]))
    out = args.out
    save_digits(os.path.join(out, "reconstructions.png"), np.concatenate([held_out[:10], rebuilt[:10],
                                                                          held_out[10:20], rebuilt[10:20]]))
    save_curves(os.path.join(out, "loss.png"), {"training loss per sample": history["minibatch_loss"]}, smooth=20)
    reconstruction.save(os.path.join(out, "autoencoder.mgz"))
    report = {"steps": trainer.step_count, "epochs": epochs, "seconds": clock.seconds, "held_out_mse": mse,
              "reconstructions_recognised": recognised}
    write_report(out, report, ["reconstructions.png", "loss.png", "autoencoder.mgz"])
    print(f"{trainer.step_count} steps ({epochs} epochs) in {clock.seconds:.1f} s")
    print(f"held-out reconstruction MSE per pixel: {mse:.4f}; a classifier of real digits recognises "
          f"{recognised:.1%} of the reconstructions")
    return report


if __name__ == "__main__":
    main()
