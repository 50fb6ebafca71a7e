"""What the examples share: command line, the digits data, image grids, loss curves, and the
classifier that says whether generated digits look like digits.

Every example runs as ``python examples/NAME.py [--quick] [--out DIR] [--steps N] [--seed S] [--threads T]
[--tensorboard DIR]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

import minigraph as mg


def parser(description: str) -> argparse.ArgumentParser:
    """The options every example takes; examples add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (the demo): fewer steps")
    p.add_argument("--out", default="out", help="folder for images, arrays and the model file (default: out)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the --quick/full default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1: these matrices are small, so more threads cost more than they "
                        "give, several times more on a busy machine)")
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="also write a TensorBoard run to DIR (view it with: tensorboard --logdir DIR)")
    return p


def tensorboard_writer(args: argparse.Namespace, model=None, freq: int | None = None):
    """The run's TensorBoardProgressWriter when ``--tensorboard DIR`` was given (with ``model``'s graph), else None."""
    if args.tensorboard is None:
        return None
    return mg.logging.TensorBoardProgressWriter(freq=freq, log_dir=args.tensorboard, model=model)


def zoomed(images: np.ndarray, zoom: int = 4) -> np.ndarray:
    """Images ``(N, C, H, W)`` with each pixel drawn as a ``zoom`` x ``zoom`` block (8x8 digits are tiny)."""
    return np.repeat(np.repeat(np.asarray(images), zoom, axis=2), zoom, axis=3)


def save_digits(path: str, images: np.ndarray, columns: int = 10, zoom: int = 4) -> None:
    """Save digits ``(N, 1, H, W)`` in [0, 1] as one PNG grid (:func:`minigraph.utils.save_image`),
    dark ink on white, ``columns`` wide, pixels zoomed ``zoom`` times."""
    ink = 1.0 - np.clip(zoomed(images, zoom), 0, 1)
    mg.utils.save_image(ink, path, nrow=columns, padding=zoom, pad_value=1.0)


def setup(args: argparse.Namespace, quick_steps: int, full_steps: int) -> int:
    """Create the output folder, seed everything, limit BLAS threads; return the number of steps to run."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn
    if args.steps is not None and args.steps <= 0:
        raise SystemExit(f"--steps must be positive, got {args.steps}")
    if args.threads <= 0:
        raise SystemExit(f"--threads must be positive, got {args.threads}")
    threadpool_limits(limits=args.threads, user_api="blas")
    os.makedirs(args.out, exist_ok=True)
    mg.set_seed(args.seed)
    return args.steps or (quick_steps if args.quick else full_steps)


def progress_bar(args: argparse.Namespace, total: int, desc: str):
    """A tqdm bar over training steps (shown on a terminal unless ``--no-progress``)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True,
                disable=args.no_progress or not sys.stderr.isatty())


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (no download): images ``(1797, 1, 8, 8)`` float32 in [0, 1], labels."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images[:, None] / 16.0).astype(np.float32), d.target


def save_curves(path: str, curves: dict, xlabel: str = "step", ylabel: str = "loss", smooth: int = 1) -> None:
    """Plot named series (lists of numbers) on one chart; ``smooth`` > 1 adds a running mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        line, = ax.plot(values, alpha=0.35 if smooth > 1 else 1.0, label=None if smooth > 1 else name)
        if smooth > 1 and len(values) >= smooth:
            mean = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
            ax.plot(np.arange(smooth - 1, len(values)), mean, color=line.get_color(),
                    label=f"{name} (mean of {smooth})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_graph(model, path: str) -> str:
    """Draw ``model``'s graph with layers collapsed (a .dot file when Graphviz is missing); returns the path."""
    try:
        mg.plot(model, path, collapse_layers=True)
    except mg.RenderError as exc:
        path = os.path.splitext(path)[0] + ".dot"
        mg.plot(model, path, collapse_layers=True)
        print(f"note: {exc}; wrote {path} instead")
    return path


def write_report(out: str, report: dict, files: list[str]) -> None:
    """Save ``report`` as ``quality.json`` in ``out`` and say which files the run wrote."""
    with open(os.path.join(out, "quality.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"wrote {', '.join(os.path.join(out, f) for f in [*files, 'quality.json'])}")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets ``(N, D)``:
    ``|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` (the formula of FID).

    ``Tr((C_a C_b)^(1/2))`` is taken as the sum of the square roots of the eigenvalues of the
    symmetric ``C_a^(1/2) C_b C_a^(1/2)`` (the same eigenvalues), which stays real and stable."""
    mu = a.mean(axis=0) - b.mean(axis=0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ cb @ root
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * cross)


class DigitJudge:
    """Judges images as digits: a logistic-regression classifier of the real digits, and an FID.

    ``reference`` is the classifier's mean top-class probability on real digits it did not see
    (held-out quarter), the level good generated digits should approach.

    FID for 8x8 digits: the Fréchet distance (:func:`frechet_distance`) between the features of the
    generated images and those of the held-out quarter of the real digits (450 images). The
    features are the 64 ReLU units of the hidden layer of a one-hidden-layer perceptron
    (scikit-learn's ``MLPClassifier((64,))``, seeded) trained to classify the other three quarters.
    ``fid_reference`` is the FID of 1,000 real digits from those three quarters: what perfect
    samples would score with 1,000 images (lower is better; compare FIDs of 1,000 samples only).
    """

    FEATURE_UNITS = 64

    def __init__(self, seed: int = 0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        images, labels = digits()
        flat = images.reshape(len(images), -1)
        train, test, y_train, _ = train_test_split(flat, labels, test_size=0.25, random_state=seed, stratify=labels)
        held_out = LogisticRegression(max_iter=3000).fit(train, y_train)
        self.reference = float(held_out.predict_proba(test).max(axis=1).mean())
        self.classifier = LogisticRegression(max_iter=3000).fit(flat, labels)
        self.features_net = MLPClassifier((self.FEATURE_UNITS,), max_iter=1000, random_state=seed).fit(train, y_train)
        self.held_out_features = self.features(test)
        sample = np.random.default_rng(seed).choice(len(train), 1000, replace=False)
        self.fid_reference = frechet_distance(self.features(train[sample]), self.held_out_features)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(np.asarray(images).reshape(len(images), -1))

    def features(self, images: np.ndarray) -> np.ndarray:
        """The hidden layer of the feature network: ``relu(x W1 + b1)``, ``(N, 64)`` for images ``(N, ...)``."""
        flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
        return np.maximum(flat @ self.features_net.coefs_[0] + self.features_net.intercepts_[0], 0)

    def fid(self, images: np.ndarray) -> float:
        """FID of ``images`` ``(N, 1, 8, 8)`` in [0, 1] against the held-out real digits."""
        return frechet_distance(self.features(images), self.held_out_features)

    def judge(self, images: np.ndarray, min_share: float = 0.05) -> dict:
        """``confidence``: mean top-class probability; ``classes``: how many of the 10 classes get
        at least ``min_share`` of the images; ``counts``: images per predicted class; ``fid``."""
        p = self.probabilities(images)
        counts = np.bincount(p.argmax(axis=1), minlength=10)
        return {"confidence": float(p.max(axis=1).mean()), "classes": int((counts >= min_share * len(images)).sum()),
                "counts": counts.tolist(), "fid": self.fid(images)}


class Stopwatch:
    """Wall-clock seconds since creation."""

    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
