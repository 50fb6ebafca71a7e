"""One process of the distributed tests: ``mpiexec -n K python distributed_worker.py SCENARIO OUT [ARGS]``.

Not a test module: tests/test_distributed.py launches it (under ``mpiexec`` or alone) and compares what
rank 0 writes to ``OUT`` (an ``.npz`` of the final parameters and the reported losses).
"""
import sys

import numpy as np

import minigraph as mg
from minigraph import layers as L
from minigraph import learners
from minigraph.distributed import Communicator, data_parallel_distributed_learner

BATCH = 16


def model(seed: int):
    """A small generator-shaped regression: Dense -> reshape -> ConvolutionTranspose, per-sample MSE."""
    mg.set_seed(seed)
    z = mg.input_variable(6, name="z")
    target = mg.input_variable((1, 8, 8), name="target")
    h = L.Dense((2, 4, 4), activation=mg.tanh, name="fc")(z)
    y = L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8), name="up")(h)
    return z, target, y, mg.reduce_mean(mg.square(y - target), axis=(0, 1, 2))


def data(steps: int, most: int = 64):
    """The first ``steps`` minibatches of one fixed stream (the same for every ``steps``)."""
    rng = np.random.default_rng(123)
    z, t = rng.standard_normal((most, BATCH, 6)), rng.standard_normal((most, BATCH, 1, 8, 8))
    return z[:steps].astype(np.float32), t[:steps].astype(np.float32)


def make_learner(kind: str, params):
    if kind == "momentum":
        return learners.momentum_sgd(params, 0.05, 0.9)
    if kind == "adam":
        return learners.adam(params, 0.01)
    if kind == "clipped":  # clipping acts on the averaged gradient
        return learners.momentum_sgd(params, 0.05, 0.9, gradient_clipping_threshold_per_sample=0.05,
                                     gradient_clipping_with_truncation=False)
    raise SystemExit(f"unknown learner {kind}")


def train(kind: str, steps: int, seed: int, restore: str | None = None, save: str | None = None,
          save_after: int | None = None, fail_at: int | None = None, distributed_after: int = 0):
    z, target, y, loss = model(seed)
    learner = data_parallel_distributed_learner(make_learner(kind, y.parameters), distributed_after=distributed_after)
    trainer = mg.Trainer(y, loss, learner)
    start = 0
    if restore:
        trainer.restore_from_checkpoint(restore)
        start = trainer.step_count
    Z, T = data(steps)
    size, rank = Communicator.size(), Communicator.rank()
    losses = []
    for step in range(start, steps):
        if fail_at is not None and step == fail_at and rank == size - 1:
            trainer.train_minibatch({z: Z[step][:0], target: T[step][:0]})  # no samples: GraphError on this rank
        share = np.array_split(np.arange(BATCH), size)[rank]
        losses.append(trainer.train_minibatch({z: Z[step][share], target: T[step][share]}))
        if save and step + 1 == save_after:
            trainer.save_checkpoint(save)
    return y, trainer, losses


def main(argv):
    scenario, out, kind = argv[1], argv[2], argv[3]
    steps = int(argv[4])
    options = dict(a.split("=", 1) for a in argv[5:])
    seed = Communicator.rank() if scenario == "seeds" else 0  # "seeds": every process initialises differently
    if scenario == "fit":  # every process passes the whole data set; fit gives each its share
        z, target, y, loss = model(seed)
        trainer = mg.Trainer(y, loss, data_parallel_distributed_learner(make_learner(kind, y.parameters)))
        Z, T = data(steps)
        history = trainer.fit({z: Z.reshape(-1, 6), target: T.reshape(-1, 1, 8, 8)}, epochs=2, minibatch_size=BATCH)
        losses = history["minibatch_loss"]
    else:
        y, trainer, losses = train(kind, steps, seed, restore=options.get("restore"), save=options.get("save"),
                                   save_after=int(options["save_after"]) if "save_after" in options else None,
                                   fail_at=int(options["fail_at"]) if "fail_at" in options else None,
                                   distributed_after=int(options.get("after", 0)))
    values = {f"p{i}": p.value for i, p in enumerate(sorted(y.parameters, key=lambda p: p.name))}
    gathered = [values]
    if Communicator.size() > 1:  # every process's parameters, to show they are identical
        from mpi4py import MPI
        gathered = MPI.COMM_WORLD.gather(values, root=0)
    if Communicator.is_main():
        arrays = {f"rank{r}_{k}": v for r, vals in enumerate(gathered) for k, v in vals.items()}
        np.savez(out, losses=np.array(losses), samples=trainer.total_number_of_samples_seen,
                 size=Communicator.size(), **arrays)


if __name__ == "__main__":
    main(sys.argv)
