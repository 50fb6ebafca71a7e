"""GANTrainer: one generator forward per step, as PyTorch's DCGAN loop.

A step (:meth:`GANTrainer.train_minibatch`) is::

    fake = G(z)                                  # once, training mode (G's batch statistics update once)
    D step: d_loss with fake held fixed          # a run of d_loss with fake *given*: G does not run again
    G step: g_loss through the updated D, backpropagated into the same G forward

which is PyTorch's ``fake = netG(noise)``, ``errD = criterion(netD(real)) + criterion(netD(fake.detach()))``,
``optimizerD.step()``, ``errG = criterion(netD(fake))``, ``errG.backward()``, ``optimizerG.step()``.
It rests on the engine's given values (:func:`minigraph.autodiff.forward` with ``given``): the
D and G runs take the generated batch from the generator's forward state, and the gradient of
``g_loss`` at ``fake`` is fed back into that state (:func:`minigraph.autodiff.backward` with a root
gradient).

The trainer is a :class:`~minigraph.Trainer` for everything around the step: checkpoints, distributed
learners, NaN safety (a step that fails changes nothing: the discriminator's parameters, its
learner's state and every running statistic are put back), progress writers (fed with one record
per network, tagged by the losses' names).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

from . import autodiff
from .errors import GraphError
from .graph import Node
from .learners import Learner
from .logging.base import (
    ProgressWriter,
    flush_all,
    summarize_test_progress,
    summarize_training_progress,
    write_test_progress,
    write_training_progress,
)
from .trainer import (
    Trainer,
    _per_sample_mean,
    _sample_count,
    _updated_in_place,
    check_finite_gradients,
    checked_gradients,
)

__all__ = ["GANTrainer", "NetworkProgress"]


class NetworkProgress:
    """One network's figures of a GAN step, in the form progress writers read from a Trainer:
    ``loss_function`` (its name tags the writer's lines), ``parameter_learners``, ``step_count``,
    ``total_number_of_samples_seen``, ``epochs_done`` and the ``previous_minibatch_*`` figures."""

    def __init__(self, loss: Node, learner: Learner):
        self.loss_function = loss
        self.evaluation_function = None
        self.parameter_learners = [learner]
        self.step_count = 0
        self.total_number_of_samples_seen = 0
        self.epochs_done = 0
        self.previous_minibatch_loss_average: float | None = None
        self.previous_minibatch_evaluation_average: float | None = None
        self.previous_minibatch_sample_count = 0

    def record(self, average: float, samples: int) -> None:
        self.step_count += 1
        self.total_number_of_samples_seen += samples
        self.previous_minibatch_loss_average = average
        self.previous_minibatch_sample_count = samples


class _Rollback:
    """What a GAN step may change before it can fail: running statistics (every forward), the
    discriminator's parameters and learner state (updated before the generator's gradients exist)."""

    def __init__(self, constants: Sequence, params: Sequence, learner: Learner):
        self.arrays = [(n, n.value.copy()) for n in (*constants, *params)]
        self.learner, self.learner_state = learner, learner.state_dict()

    def restore(self) -> None:
        for node, value in self.arrays:
            np.copyto(node.value, value)
        self.learner.load_state_dict(self.learner_state)


class GANTrainer(Trainer):
    """GANTrainer(fake, d_real, d_fake, d_loss, g_loss, d_learner, g_learner, progress_writers=())

    Trains a generator and a discriminator that live in one graph, one generator forward per step.

    fake: the generator's output (e.g. ``generator(z)``).
    d_real, d_fake: the discriminator's outputs on real data and on ``fake`` (the same layer called twice).
    d_loss: the discriminator's per-sample loss (from ``d_real`` and ``d_fake``); g_loss: the
        generator's per-sample loss (from ``d_fake``). Steps minimise their minibatch means.
    d_learner, g_learner: learners of the discriminator's and the generator's parameters (a
        parameter of the generator's graph cannot be the discriminator's, and vice versa).
    progress_writers: :mod:`minigraph.logging` writers; each step feeds them
        :attr:`discriminator_progress` and :attr:`generator_progress` (tagged by the losses' names,
        which must differ).

    After each step: ``previous_minibatch_d_loss_average``, ``previous_minibatch_g_loss_average``
    (mean losses before the updates), ``previous_minibatch_d_real_average`` and
    ``previous_minibatch_d_fake_average`` (mean discriminator outputs before its update, PyTorch's
    ``D(x)`` and ``D(G(z))``), ``previous_minibatch_sample_count``, ``step_count``,
    ``total_number_of_samples_seen``; ``history["d_loss"]`` / ``history["g_loss"]`` per step (the
    Trainer's single-loss ``previous_minibatch_loss_average`` stays None).
    """

    def __init__(self, fake: Node, d_real: Node, d_fake: Node, d_loss: Node, g_loss: Node, d_learner: Learner,
                 g_learner: Learner, progress_writers: Sequence[ProgressWriter] | ProgressWriter = ()):
        nodes = {"fake": fake, "d_real": d_real, "d_fake": d_fake, "d_loss": d_loss, "g_loss": g_loss}
        for what, node in nodes.items():
            if not isinstance(node, Node):
                raise TypeError(f"GANTrainer: {what} must be a graph node, got {type(node).__name__}")
        for what, learner in (("d_learner", d_learner), ("g_learner", g_learner)):
            if not isinstance(learner, Learner):
                raise TypeError(f"GANTrainer: {what} must be a learner, got {type(learner).__name__}")
        for output, needs in (("d_fake", "fake"), ("d_loss", "d_real"), ("d_loss", "d_fake"), ("g_loss", "d_fake")):
            if nodes[needs] not in nodes[output].graph:
                raise GraphError(f"GANTrainer: {output} ({nodes[output].label}) does not depend on {needs} "
                                 f"({nodes[needs].label})")
        generator = fake.graph
        for p in d_learner.parameters:
            if p in generator:
                raise GraphError(f"GANTrainer: {p.label} of d_learner is in the generator's graph (that of fake); "
                                 f"d_learner updates the discriminator only")
            if p not in d_loss.graph:
                raise GraphError(f"GANTrainer: {p.label} of d_learner is not in the graph of d_loss {d_loss.label}")
        for p in g_learner.parameters:
            if p not in generator:
                raise GraphError(f"GANTrainer: {p.label} of g_learner is not in the generator's graph (that of "
                                 f"fake {fake.label}); g_learner updates the generator only")
        # the Trainer's own set-up (learner checks, counters, seed, everything its checkpoints and
        # learner updates read), on d_loss, whose graph holds both networks' parameters
        super().__init__(fake, d_loss, [d_learner, g_learner])
        self.fake, self.d_real, self.d_fake, self.d_loss, self.g_loss = fake, d_real, d_fake, d_loss, g_loss
        self.d_learner, self.g_learner = d_learner, g_learner
        roots = [fake, d_real, d_fake, d_loss, g_loss]
        self._all_params = sorted({p for r in roots for p in r.parameters}, key=lambda n: n.uid)
        self._constants = sorted({c for r in roots for c in r.constants}, key=lambda n: n.uid)
        self._running_statistics = _updated_in_place(roots)
        self._d_params, self._g_params = list(d_learner.parameters), list(g_learner.parameters)
        # the inputs each run needs: the generator's, then D and G heads with fake given
        given = (fake,)
        self._inputs = {fake: fake.arguments, d_loss: autodiff.needed_arguments(d_loss, (), given),
                        g_loss: autodiff.needed_arguments(g_loss, (), given)}
        self.previous_minibatch_d_loss_average: float | None = None
        self.previous_minibatch_g_loss_average: float | None = None
        self.previous_minibatch_d_real_average: float | None = None
        self.previous_minibatch_d_fake_average: float | None = None
        self.history = {"d_loss": [], "g_loss": []}
        self.discriminator_progress = NetworkProgress(d_loss, d_learner)
        self.generator_progress = NetworkProgress(g_loss, g_learner)
        writers = [progress_writers] if isinstance(progress_writers, ProgressWriter) else list(progress_writers)
        for w in writers:
            if not isinstance(w, ProgressWriter):
                raise TypeError(f"GANTrainer: progress_writers must be minigraph.logging writers, got "
                                f"{type(w).__name__}")
            w.attach(self.discriminator_progress)
            w.attach(self.generator_progress)
        self.progress_writers: list[ProgressWriter] = writers

    # feeds ------------------------------------------------------------------------------------
    def _feed_for(self, root: Node, feed: Mapping) -> dict:
        inputs = self._inputs[root]
        names = {v.name for v in inputs}
        return {k: v for k, v in feed.items() if (k in inputs if isinstance(k, Node) else k in names)}

    def _check_feed(self, feed: Mapping) -> None:
        if not isinstance(feed, Mapping):
            raise GraphError(f"GANTrainer: the feed must be a dict of input -> array, got {type(feed).__name__}")
        for key, value in feed.items():
            if not any(self._feed_for(r, {key: None}) for r in self._inputs):
                shown = getattr(key, "label", repr(key))
                raise GraphError(f"GANTrainer: feed key {shown} is an input of neither the generator nor the losses")
            _sample_count(key, value, "GANTrainer")

    # steps ------------------------------------------------------------------------------------
    def train_minibatch(self, feed: Mapping) -> tuple[float, float]:  # type: ignore[override]
        """One GAN step on ``feed`` (the generator's inputs, real data and any other inputs of the
        losses, keyed by variable or name): the generator runs once (training mode), the
        discriminator's learner updates on ``d_loss`` with the generated batch held fixed, then the
        generator's learner on ``g_loss`` through the updated discriminator and the same generator
        forward. Returns the mean ``(d_loss, g_loss)`` before their updates. A NaN or infinite loss
        or gradient raises TrainingError and leaves parameters, learners and running statistics as
        they were."""
        return cast(tuple[float, float], super().train_minibatch(feed))  # the distributed wrapper

    def _train_minibatch(self, feed: Mapping) -> tuple[float, float]:  # type: ignore[override]
        self._check_feed(feed)
        step = self.step_count + 1
        fake = self.fake
        rollback = _Rollback(self._running_statistics, self._d_params, self.d_learner)
        generator = self.step_generator(step)  # the three runs draw their dropout masks from it in turn
        try:
            g_state = fake.forward(self._feed_for(fake, feed), training=True, seed=generator)
            given = {fake: g_state.values[fake]}
            d_state = self.d_loss.forward(self._feed_for(self.d_loss, feed), keep=[self.d_real, self.d_fake],
                                          training=True, seed=generator, given=given)
            d_average, d_grads = checked_gradients(self.d_loss, d_state, self._d_params, step)
            d_real, d_fake = (_per_sample_mean(d_state.values[n]) for n in (self.d_real, self.d_fake))
            batch, d_average, _ = self._update(d_grads, d_state.program.batch, d_average, None, [self.d_learner])
            g_head = self.g_loss.forward(self._feed_for(self.g_loss, feed), training=True, seed=generator,
                                         given=given)
            g_average, at_fake = checked_gradients(self.g_loss, g_head, [fake], step)
            g_grads = fake.backward(g_state, at_fake[fake], wrt=self._g_params)
            check_finite_gradients(g_grads, step, g_average)
        except BaseException:
            rollback.restore()
            flush_all(self.progress_writers)  # what the writers hold survives a failed run
            raise
        _, g_average, _ = self._update(g_grads, g_head.program.batch, g_average, None, [self.g_learner])
        self.step_count = step
        self.total_number_of_samples_seen += batch
        self.previous_minibatch_d_loss_average, self.previous_minibatch_g_loss_average = d_average, g_average
        self.previous_minibatch_d_real_average, self.previous_minibatch_d_fake_average = d_real, d_fake
        self.previous_minibatch_sample_count = batch
        self.history["d_loss"].append(d_average)
        self.history["g_loss"].append(g_average)
        for view, average in ((self.discriminator_progress, d_average), (self.generator_progress, g_average)):
            view.record(average, batch)
            write_training_progress(self.progress_writers, view)
        return d_average, g_average

    def test_minibatch(self, feed: Mapping) -> tuple[float, float]:  # type: ignore[override]
        """The mean ``(d_loss, g_loss)`` in evaluation mode (the generator runs once, on its running
        statistics); nothing changes."""
        self._check_feed(feed)
        fake = self.fake
        given = {fake: fake.eval(self._feed_for(fake, feed))}
        results = []
        for loss, view in ((self.d_loss, self.discriminator_progress), (self.g_loss, self.generator_progress)):
            value = loss.forward(self._feed_for(loss, feed), given=given, for_backward=False).values[loss]
            results.append(_per_sample_mean(value))
            write_test_progress(self.progress_writers, view, value.shape[0], results[-1], results[-1])
        return results[0], results[1]

    def summarize_training_progress(self) -> None:
        """Have the progress writers write both networks' averages since the previous summary."""
        for view in (self.discriminator_progress, self.generator_progress):
            summarize_training_progress(self.progress_writers, view)

    def summarize_test_progress(self) -> None:
        for view in (self.discriminator_progress, self.generator_progress):
            summarize_test_progress(self.progress_writers, view)

    def fit(self, *args, **kwargs):
        """Not for GANs: each step needs fresh noise and a real minibatch, which the caller draws;
        call :meth:`train_minibatch` in a loop."""
        raise TypeError("GANTrainer.fit: a GAN step needs fresh noise and a real minibatch from the caller; "
                        "call train_minibatch(feed) in a loop")
