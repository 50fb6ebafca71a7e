"""Data-parallel training on this machine: 1 process x 2 BLAS threads against 2 processes x 1 thread.

``python -m benchmarks.distributed [--steps N] [--batch B]`` (with ``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE``, as every benchmark here) trains the MNIST-size generator of :mod:`benchmarks.sgd`
with momentum SGD at a global minibatch of ``B`` samples, once in one process with two BLAS threads and
once under ``mpiexec -n 2`` with one BLAS thread per process (each process takes half of every
minibatch), and prints samples per second of both, the time one ``Allreduce`` of the gradient buffer
takes, and the bytes each step communicates. Needs the ``distributed`` extra (mpi4py, mpich).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker(out: str, steps: int, batch: int) -> None:
    """One process of a run: time ``steps`` training steps on this process's share of each minibatch."""
    import minigraph as mg
    from minigraph.distributed import Communicator, data_parallel_distributed_learner

    from .machine import blas_info
    from .sgd import LR, MOMENTUM, build_minigraph

    z, y, _ = build_minigraph()
    target = mg.input_variable(y.shape, name="target")
    learner = data_parallel_distributed_learner(mg.learners.momentum_sgd(y.parameters, LR, MOMENTUM))
    trainer = mg.Trainer(y, mg.squared_error(y, target), learner)
    size, rank = Communicator.size(), Communicator.rank()
    share = np.array_split(np.arange(batch), size)[rank]
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((batch, 100)).astype(np.float32)[share]
    images = rng.random((batch, *y.shape)).astype(np.float32)[share]
    feed = {z: noise, target: images}
    for _ in range(3):  # warm-up: plans, caches, first-touch memory
        trainer.train_minibatch(feed)
    Communicator.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_minibatch(feed)
    Communicator.barrier()
    seconds = time.perf_counter() - start
    count = sum(p.value.size for p in y.parameters)
    allreduce_s = 0.0
    if size > 1:  # the same Allreduce the learner does each step (parameters + sample count + 2 statistics)
        from mpi4py import MPI
        buffer = np.ones(count + 3, np.float32)
        MPI.COMM_WORLD.Barrier()
        start = time.perf_counter()
        for _ in range(steps):
            MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        allreduce_s = (time.perf_counter() - start) / steps
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"processes": size, "threads_per_process": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")),
                       "step_s": seconds / steps, "samples_per_s": steps * batch / seconds,
                       "allreduce_s": allreduce_s, "parameters": count, "bytes_per_step": 4 * (count + 3),
                       "blas": blas_info()}, f)


def launch(processes: int, threads: int, steps: int, batch: int) -> dict:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if processes > 1 and mpiexec is None:
        raise SystemExit("mpiexec not found: pip install 'minigraph[distributed]'")
    env = {**os.environ, **{v: str(threads) for v in THREAD_VARIABLES}}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker", out,
                   "--steps", str(steps), "--batch", str(batch)]
        if processes > 1:
            command = [mpiexec, "-n", str(processes), *command]
        subprocess.run(command, env=env, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(out) as f:
            return json.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (default 30)")
    parser.add_argument("--batch", type=int, default=64, help="global minibatch size (default 64)")
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, args.batch)
        return 0
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"WARNING: {name} is set; it can halve OpenBLAS's speed (run with env -u {name})", file=sys.stderr)
    one = launch(1, 2, args.steps, args.batch)
    two = launch(2, 1, args.steps, args.batch)
    print(f"BLAS: {', '.join(f'{b.get(k)}' for b in one['blas'] for k in ('internal_api', 'version', 'architecture'))}")
    print(f"MNIST-size generator, momentum SGD, global minibatch {args.batch}, {args.steps} timed steps, "
          f"load average {os.getloadavg()[0]:.2f}")
    for r in (one, two):
        print(f"  {r['processes']} process(es) x {r['threads_per_process']} thread(s): "
              f"{r['step_s'] * 1e3:7.2f} ms/step, {r['samples_per_s']:8.1f} samples/s")
    print(f"  2 processes / 1 process throughput: {two['samples_per_s'] / one['samples_per_s']:.2f}x")
    print(f"  Allreduce per step: {two['allreduce_s'] * 1e3:.3f} ms for {two['bytes_per_step'] / 1e6:.2f} MB "
          f"({two['parameters']} parameters x 4 bytes)")
    gbit = two["bytes_per_step"] * 8 / 10e9
    print(f"  on a 10 Gbit/s link a ring Allreduce moves about 2x that per process: >= {2 * gbit * 1e3:.2f} ms/step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
