"""A 1-D generator: 1-D ConvolutionTranspose layers learn to draw sine waves from their parameters.

Each waveform is ``a * sin(2 pi f t + phase)`` sampled at 32 points of one window, with frequency
f in [1, 3] cycles per window, amplitude a in [0.5, 1] and any phase; the generator sees the code
``(a cos(phase), a sin(phase), f)`` and must synthesise the 32 samples:

code (3) -> Dense (16, 4) -> tanh -> ConvolutionTranspose 5/2 (16, 8) -> tanh -> ConvolutionTranspose 5/2 (8, 16)
-> tanh -> ConvolutionTranspose 5/2 (1, 32)

Trained with Adam through Trainer.fit; reports the held-out mean squared error and the fraction of
the signal's variance it explains (R^2). Writes to --out: waves.png (held-out targets and the
generated waves), loss.png, wave_generator.mgz, quality.json. With ``--tensorboard DIR``: the loss, the
learning rate (cosine decay), the held-out loss, the model's graph and, every few epochs, the waves chart.
"""
from __future__ import annotations

import os

import numpy as np

import minigraph as mg
from minigraph import layers as L
from minigraph import learners

from _common import Stopwatch, parser, save_curves, setup, tensorboard_writer, write_report

LENGTH, BATCH = 32, 32
QUICK_STEPS, FULL_STEPS = 3000, 10000


def waves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random codes ``(n, 3)`` and their waveforms ``(n, 1, LENGTH)``, float32."""
    amp, phase, freq = rng.uniform(0.5, 1.0, n), rng.uniform(0, 2 * np.pi, n), rng.uniform(1.0, 3.0, n)
    t = np.arange(LENGTH) / LENGTH
    signal = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])
    codes = np.stack([amp * np.cos(phase), amp * np.sin(phase), freq], axis=1)
    return codes.astype(np.float32), signal[:, None].astype(np.float32)


def build():
    code = mg.input_variable(3, name="code")
    generator = L.Sequential([
        L.Dense((16, LENGTH // 8), activation=mg.tanh, name="project"),
        L.ConvolutionTranspose(5, 16, strides=2, pad=True, output_shape=LENGTH // 4, activation=mg.tanh, name="up1"),
        L.ConvolutionTranspose(5, 8, strides=2, pad=True, output_shape=LENGTH // 2, activation=mg.tanh, name="up2"),
        L.ConvolutionTranspose(5, 1, strides=2, pad=True, output_shape=LENGTH, name="up3"),
    ], name="wave_generator")
    wave = generator(code)
    target = mg.input_variable((1, LENGTH), name="target")
    return code, target, wave, mg.squared_error(wave, target)


def waves_figure(targets: np.ndarray, generated: np.ndarray):
    """Eight held-out targets and the generated waves, one chart each (a matplotlib figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 4, figsize=(10, 4), sharex=True, sharey=True)
    for ax, target, wave in zip(axes.flat, targets, generated):
        ax.plot(target[0], "k-", lw=1, label="target")
        ax.plot(wave[0], "r.--", lw=1, ms=3, label="generated")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_waves(path: str, targets: np.ndarray, generated: np.ndarray) -> None:
    import matplotlib.pyplot as plt
    fig = waves_figure(targets, generated)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def waves_image(targets: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """The waves chart as one RGB image ``(3, H, W)`` in [0, 1] (for TensorBoard)."""
    import matplotlib.pyplot as plt
    fig = waves_figure(targets, generated)
    fig.set_dpi(60)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    return pixels.transpose(2, 0, 1) / 255.0


def main(argv=None) -> dict:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    steps = setup(args, QUICK_STEPS, FULL_STEPS)
    clock = Stopwatch()
    rng = np.random.default_rng(args.seed)
    train_codes, train_waves = waves(2048, rng)
    test_codes, test_waves = waves(256, rng)
    code, target, wave, loss = build()
    tb = tensorboard_writer(args, wave, freq=10)
    trainer = mg.Trainer(wave, loss, learners.adam(wave.parameters, learners.cosine_decay(0.01, steps, final=5e-4)),
                         progress_writers=[tb] if tb else [])
    epochs = -(-steps // (len(train_codes) // BATCH))

    def log_waves(t, logs):  # the chart every tenth of the run
        if tb is not None and (logs["epoch"] % max(1, epochs // 10) == 0 or logs["epoch"] == epochs):
            tb.write_image("waves", waves_image(test_waves, wave.eval({code: test_codes[:8]})), t.step_count)

    history = trainer.fit({code: train_codes, target: train_waves}, epochs=epochs, minibatch_size=BATCH,
                          seed=args.seed, progress=False if args.no_progress else None,
                          validation_data={code: test_codes, target: test_waves}, callbacks=[log_waves])
    if tb is not None:
        tb.close()
    generated = wave.eval({code: test_codes})
    mse = float(np.mean((generated - test_waves) ** 2))
    r2 = 1.0 - mse / float(np.var(test_waves))
    out = args.out
    save_waves(os.path.join(out, "waves.png"), test_waves, generated)
    save_curves(os.path.join(out, "loss.png"), {"training loss per sample": history["minibatch_loss"]}, smooth=20)
    wave.save(os.path.join(out, "wave_generator.mgz"))
    report = {"steps": trainer.step_count, "epochs": epochs, "seconds": clock.seconds, "held_out_mse": mse, "r2": r2}
    write_report(out, report, ["waves.png", "loss.png", "wave_generator.mgz"])
    print(f"{trainer.step_count} steps ({epochs} epochs) in {clock.seconds:.1f} s")
    print(f"held-out MSE {mse:.5f}; R^2 = {r2:.4f} (fraction of the waveforms' variance reproduced)")
    return report


if __name__ == "__main__":
    main()
