"""Data-parallel training over MPI: one process without mpiexec, and real jobs of two processes.

The multi-process tests launch ``mpiexec -n 2`` (the ``mpich`` wheel ships it) on
tests/distributed_worker.py and compare rank 0's results with a one-process run of the same script.
They skip when mpi4py or mpiexec is missing; CI installs the ``distributed`` extra, so they run there.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minigraph as mg
from minigraph import learners
from minigraph.distributed import Communicator, DistributedLearner, data_parallel_distributed_learner

WORKER = Path(__file__).with_name("distributed_worker.py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def _has_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(MPIEXEC is None or not _has_mpi4py(),
                               reason="needs mpi4py and mpiexec: pip install 'minigraph[distributed]'")


def _env() -> dict:
    """One BLAS thread per process (two processes share two cores); no launcher variables inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MV2_", "HYDRA_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(WORKER.parent.parent), env.get("PYTHONPATH", "")]))
    return env


def run(tmp_path, name: str, *args: str, processes: int = 1, timeout: float = 120) -> dict:
    """Run the worker (under ``mpiexec -n processes`` when processes > 1); rank 0's results."""
    out = tmp_path / f"{name}.npz"
    command = [sys.executable, str(WORKER), args[0], str(out), *args[1:]]
    if processes > 1:
        command = [MPIEXEC, "-n", str(processes), *command]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def params_of(result: dict, rank: int) -> list[np.ndarray]:
    return [result[k] for k in sorted(result) if k.startswith(f"rank{rank}_")]


def max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


# --- one process ----------------------------------------------------------------------------------
def test_one_process_without_mpiexec_is_size_one():
    assert (Communicator.rank(), Communicator.size(), Communicator.is_main()) == (0, 1, True)
    Communicator.barrier()  # no-ops without MPI
    assert Communicator.num_workers() == 1


def test_one_process_trains_exactly_like_the_wrapped_learner():
    def step_all(wrap):
        mg.set_seed(3)
        x = mg.input_variable(3, name="x")
        W = mg.parameter((3, 2), name="W")
        loss = mg.reduce_sum(mg.square(mg.times(x, W)), axis=0)
        learner = learners.adam([W], 0.01)
        trainer = mg.Trainer(None, loss, data_parallel_distributed_learner(learner) if wrap else learner)
        X = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
        losses = [trainer.train_minibatch({x: X}) for _ in range(4)]
        return losses, W.value.copy(), trainer
    plain, wrapped = step_all(False), step_all(True)
    assert plain[0] == wrapped[0] and np.array_equal(plain[1], wrapped[1])
    assert wrapped[2].distributed and not plain[2].distributed


def test_distributed_learner_shares_the_wrapped_learners_state():
    W = mg.parameter((2, 2), init=1.0, name="W")
    inner = learners.momentum_sgd([W], 0.1, 0.9)
    learner = data_parallel_distributed_learner(inner, distributed_after=10)
    assert isinstance(learner, DistributedLearner) and learner.parameters == [W]
    learner.update({W: np.ones((2, 2), np.float32)}, 4)
    assert inner.count == learner.count == 1 and learner.samples_seen == 4
    assert learner.state_dict()["learner"] == "MomentumSGD"  # checkpoints restore into a plain learner too
    inner2 = learners.momentum_sgd([W], 0.1, 0.9)
    inner2.load_state_dict(learner.state_dict())
    assert np.array_equal(inner2.slots[0]["momentum"] if "momentum" in inner2.slots[0] else
                          next(iter(inner2.slots[0].values())), next(iter(inner.slots[0].values())))
    assert "distributed_after=10" in repr(learner)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"num_quantization_bits": 1}, ValueError, "1-bit SGD is out of scope"),
    ({"num_quantization_bits": True}, ValueError, "not supported"),
    ({"distributed_after": -1}, ValueError, "distributed_after must be an int >= 0"),
    ({"distributed_after": 1.5}, ValueError, "distributed_after must be an int >= 0"),
])
def test_bad_arguments(kwargs, exc, match):
    W = mg.parameter((2,), init=0.0, name="W")
    with pytest.raises(exc, match=match):
        data_parallel_distributed_learner(learners.sgd([W], 0.1), **kwargs)


def test_only_learners_are_wrapped():
    W = mg.parameter((2,), init=0.0, name="W")
    with pytest.raises(TypeError, match="wraps a minigraph learner"):
        data_parallel_distributed_learner("sgd")
    with pytest.raises(TypeError, match="wraps a minigraph learner"):
        data_parallel_distributed_learner(data_parallel_distributed_learner(learners.sgd([W], 0.1)))


def test_launched_by_mpiexec_without_mpi4py_names_the_extra():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from minigraph.distributed import Communicator\n"
            "try:\n    Communicator.size()\nexcept ImportError as e:\n    print(e)\n")
    env = {**_env(), "PMI_SIZE": "2", "PMI_RANK": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "pip install 'minigraph[distributed]'" in done.stdout, done.stderr


# --- two processes --------------------------------------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("kind", ["momentum", "adam", "clipped"])
def test_two_half_batches_equal_one_full_batch(tmp_path, kind):
    """K steps with 2 processes x half the minibatch give the parameters of 1 process x the whole
    minibatch (float32 rounding); both processes hold identical parameters; the losses reported are
    the whole minibatch's."""
    one = run(tmp_path, "one", "equal", kind, "6")
    two = run(tmp_path, "two", "equal", kind, "6", processes=2)
    assert int(two["size"]) == 2 and int(one["size"]) == 1
    difference = max_difference(params_of(two, 0), params_of(one, 0))
    assert difference < 1e-5, difference
    assert max_difference(params_of(two, 0), params_of(two, 1)) == 0.0
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    assert int(two["samples"]) == int(one["samples"]) == 6 * 16


@needs_mpi
def test_processes_seeded_differently_start_and_end_identical(tmp_path):
    two = run(tmp_path, "seeds", "seeds", "momentum", "3", processes=2)
    assert max_difference(params_of(two, 0), params_of(two, 1)) == 0.0
    one = run(tmp_path, "one", "equal", "momentum", "3")  # rank 0's seed is 0: the one-process run
    assert max_difference(params_of(two, 0), params_of(one, 0)) < 1e-5


@needs_mpi
def test_fit_gives_each_process_its_share(tmp_path):
    one = run(tmp_path, "one", "fit", "momentum", "4")
    two = run(tmp_path, "two", "fit", "momentum", "4", processes=2)
    assert max_difference(params_of(two, 0), params_of(one, 0)) < 1e-5
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)


@needs_mpi
def test_warm_start_trains_locally_then_continues_from_rank_0(tmp_path):
    warm = run(tmp_path, "warm", "equal", "momentum", "5", "after=16", processes=2)
    assert max_difference(params_of(warm, 0), params_of(warm, 1)) == 0.0
    plain = run(tmp_path, "plain", "equal", "momentum", "5", processes=2)
    assert max_difference(params_of(warm, 0), params_of(plain, 0)) > 1e-4  # two local steps changed the run


@needs_mpi
@pytest.mark.parametrize("first,second", [(2, 1), (1, 2), (2, 2)])
def test_checkpoint_resumes_with_another_number_of_processes(tmp_path, first, second):
    """Rank 0 writes the checkpoint after 3 of 6 steps; a fresh launch with ``second`` processes
    restores it on every rank and ends where the uninterrupted run ends."""
    ckpt = tmp_path / "run.ckpt"
    whole = run(tmp_path, "whole", "equal", "momentum", "6", processes=first)
    run(tmp_path, "first", "equal", "momentum", "3", f"save={ckpt}", "save_after=3", processes=first)
    assert ckpt.exists()
    resumed = run(tmp_path, "resumed", "equal", "momentum", "6", f"restore={ckpt}", processes=second)
    assert max_difference(params_of(resumed, 0), params_of(whole, 0)) < 1e-5
    np.testing.assert_allclose(resumed["losses"], whole["losses"][3:], rtol=1e-5)
    assert int(resumed["samples"]) == 6 * 16


@needs_mpi
def test_an_exception_on_one_process_ends_the_job(tmp_path):
    out = tmp_path / "never.npz"
    start = time.monotonic()
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(WORKER), "equal", str(out), "momentum", "50",
                           "fail_at=2"], env=_env(), capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert done.returncode != 0 and not out.exists()
    assert "rank 1 of 2 failed; aborting the job" in done.stderr
    assert "has no samples" in done.stderr  # the original message, printed on the failing rank
    assert elapsed < 30, elapsed


# --- the demo GAN -------------------------------------------------------------------------------
def _gan_digits(out, *extra, processes: int = 1):
    command = [sys.executable, str(WORKER.parent.parent / "examples" / "gan_digits.py"), "--quick", "--steps", "20",
               "--samples", "200", "--out", str(out), "--no-progress", *extra]
    if processes > 1:
        command = [MPIEXEC, "-n", str(processes), *command]
    done = subprocess.run(command, env={**_env(), "MPLBACKEND": "Agg"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, np.load(out / "samples.npy")


def test_demo_gan_with_distributed_on_one_process_is_the_plain_run(tmp_path):
    _, plain = _gan_digits(tmp_path / "plain")
    _, wrapped = _gan_digits(tmp_path / "wrapped", "--distributed")
    assert np.array_equal(plain, wrapped)


@needs_mpi
def test_demo_gan_trains_on_two_processes(tmp_path):
    stdout, samples = _gan_digits(tmp_path, "--distributed", processes=2)
    assert samples.shape == (200, 1, 8, 8)
    for name in ("samples.png", "loss.png", "generator.mgz", "quality.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert stdout.count("mean classifier confidence") == 1  # rank 0 alone judges and prints
