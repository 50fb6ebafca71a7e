"""Learners (CNTK names): update rules that move parameters along their gradients, and schedules.

Gradient convention: a learner receives, for each of its parameters, the gradient of the **mean**
per-sample loss over the minibatch (the :class:`~minigraph.trainer.Trainer` averages the per-sample
loss over the minibatch before differentiating, as PyTorch users expect). A learning rate therefore
does not need rescaling when the minibatch size changes, and the rules below are those of
``torch.optim`` with the same hyper-parameters.

Every learning rate or momentum is a float or a :class:`Schedule` of the number of minibatches the
learner has applied (``learning_parameter_schedule([(n_minibatches, value), ...])``, step and cosine
decay). Updates happen in place, in the parameter's own dtype (float32 stays float32). A large
parameter is updated a cache-sized chunk at a time on the copy threads
(:func:`minigraph.threads.map_chunks`): the rule's passes after the first then read the chunk from
cache (Adam on 6.3 million parameters: 30 -> 17 ms with 2 threads, 20 ms with one); the values are
the same bits.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .graph import Node, Parameter
from .threads import map_chunks

# schedules ------------------------------------------------------------------------------------


class Schedule:
    """A value that depends on the number of minibatches already applied (``schedule(count)``)."""

    def __call__(self, count: int) -> float:
        raise NotImplementedError


class PiecewiseSchedule(Schedule):
    """Each value holds for a number of minibatches; the last one holds forever.

    >>> s = learning_parameter_schedule([(2, 0.1), (3, 0.01), (1, 0.001)])
    >>> [s(i) for i in range(7)]
    [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001]
    """

    def __init__(self, pieces: Sequence[tuple[int, float]]):
        self.pieces = [(int(n), float(v)) for n, v in pieces]

    def __call__(self, count: int) -> float:
        end = 0
        for n, value in self.pieces:
            end += n
            if count < end:
                return value
        return self.pieces[-1][1]

    def __repr__(self):
        return f"learning_parameter_schedule({self.pieces})"


class StepDecay(Schedule):
    """``initial * drop ** (count // every)``."""

    def __init__(self, initial: float, drop: float, every: int):
        self.initial, self.drop, self.every = float(initial), float(drop), int(every)

    def __call__(self, count: int) -> float:
        return self.initial * self.drop ** (count // self.every)

    def __repr__(self):
        return f"step_decay({self.initial}, drop={self.drop}, every={self.every})"


class CosineDecay(Schedule):
    """Linear warm-up over ``warmup`` minibatches, then a half cosine from ``initial`` down to
    ``final`` at minibatch ``total``; ``final`` afterwards."""

    def __init__(self, initial: float, total: int, final: float = 0.0, warmup: int = 0):
        self.initial, self.total, self.final, self.warmup = float(initial), int(total), float(final), int(warmup)

    def __call__(self, count: int) -> float:
        if count < self.warmup:
            return self.initial * (count + 1) / self.warmup
        span = max(self.total - self.warmup, 1)
        t = min((count - self.warmup) / span, 1.0)
        return self.final + 0.5 * (self.initial - self.final) * (1 + math.cos(math.pi * t))

    def __repr__(self):
        return f"cosine_decay({self.initial}, total={self.total}, final={self.final}, warmup={self.warmup})"


class ConstantSchedule(Schedule):
    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, count: int) -> float:
        return self.value

    def __repr__(self):
        return repr(self.value)


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    return float(value)


def learning_parameter_schedule(schedule, epoch_size: int = 1) -> Schedule:
    """A learning-rate schedule counted in minibatches.

    ``schedule`` is a float (constant), a list of ``(n_minibatches, value)`` pairs, or a list of
    values each held for ``epoch_size`` minibatches; the last value holds forever.
    """
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, (int, float, np.integer, np.floating)) and not isinstance(schedule, bool):
        return ConstantSchedule(float(schedule))
    if not isinstance(schedule, (list, tuple)) or not schedule:
        raise TypeError(f"schedule must be a number, a Schedule or a non-empty list, got {schedule!r}")
    epoch_size = _positive_int(epoch_size, "epoch_size")
    pieces = []
    for i, item in enumerate(schedule):
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise ValueError(f"schedule entry {i} {item!r} must be (n_minibatches, value)")
            n, value = item
            pieces.append((_positive_int(n, f"schedule entry {i}: n_minibatches"),
                           _number(value, f"schedule entry {i}: value")))
        else:
            pieces.append((epoch_size, _number(item, f"schedule entry {i}")))
    return PiecewiseSchedule(pieces)


momentum_schedule = learning_parameter_schedule
"""Momentum schedules take the same forms as learning-rate schedules."""


def step_decay(initial: float, drop: float, every: int) -> Schedule:
    """Multiply the value by ``drop`` every ``every`` minibatches."""
    return StepDecay(_number(initial, "initial"), _number(drop, "drop"), _positive_int(every, "every"))


def cosine_decay(initial: float, total: int, final: float = 0.0, warmup: int = 0) -> Schedule:
    """Cosine decay from ``initial`` to ``final`` over ``total`` minibatches (after ``warmup``)."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    return CosineDecay(_number(initial, "initial"), _positive_int(total, "total"), _number(final, "final"), warmup)


# learners -------------------------------------------------------------------------------------


def parameter_list(parameters, user: str = "learners", verb: str = "update",
                   needs: str = "a learner needs at least one parameter") -> list[Parameter]:
    """The Parameters of a graph node, a layer or a list, each once, in order: what learners and
    :class:`~minigraph.averaging.ExponentialMovingAverage` take. ``user`` and ``verb`` name the caller
    in the TypeError for anything else (``"learners update Parameters; got ..."``); ``needs`` is the
    ValueError for none at all."""
    if isinstance(parameters, Node) or hasattr(parameters, "apply"):  # a graph node or a layer: its parameters
        parameters = parameters.parameters
    if not isinstance(parameters, Iterable):
        raise TypeError(f"{user}: parameters must be a node, a layer or a list of Parameters, "
                        f"got {type(parameters).__name__}")
    out: list[Parameter] = []
    for p in parameters:
        if not isinstance(p, Parameter):
            raise TypeError(f"{user} {verb} Parameters; got {getattr(p, 'label', repr(p))}")
        if p not in out:
            out.append(p)
    if not out:
        raise ValueError(needs)
    return out


class Learner:
    """Base class: holds the parameters, the learning-rate schedule, the per-parameter state and
    the regularisation shared by every rule; subclasses implement :meth:`_apply`.

    ``parameters``: a list of Parameters, or a graph node or a layer (then all of its parameters).

    ``l2_regularization_weight`` adds ``l2 * w`` to each gradient (PyTorch's ``weight_decay``).
    ``gradient_clipping_threshold_per_sample`` bounds the (mean per-sample) gradient: elementwise to
    ``[-t, t]`` with ``gradient_clipping_with_truncation=True``, else each parameter's gradient is
    rescaled so that its L2 norm is at most ``t``.
    """

    slot_names: tuple[str, ...] = ()

    def __init__(self, parameters, lr, l2_regularization_weight: float = 0.0,
                 gradient_clipping_threshold_per_sample: float = np.inf,
                 gradient_clipping_with_truncation: bool = True):
        self.parameters = parameter_list(parameters)
        self.lr_schedule = learning_parameter_schedule(lr)
        self.l2_regularization_weight = _number(l2_regularization_weight, "l2_regularization_weight")
        self.gradient_clipping_threshold_per_sample = _number(gradient_clipping_threshold_per_sample,
                                                              "gradient_clipping_threshold_per_sample")
        if self.l2_regularization_weight < 0 or self.gradient_clipping_threshold_per_sample <= 0:
            raise ValueError("l2_regularization_weight must be >= 0 and gradient_clipping_threshold_per_sample > 0")
        self.gradient_clipping_with_truncation = bool(gradient_clipping_with_truncation)
        self.count = 0            # minibatches applied: what schedules are evaluated at
        self.samples_seen = 0
        self.slots: list[dict[str, np.ndarray]] = [{} for _ in self.parameters]

    def learning_rate(self) -> float:
        """The learning rate the next update will use."""
        return self.lr_schedule(self.count)

    def reset_learning_rate(self, lr) -> None:
        self.lr_schedule = learning_parameter_schedule(lr)

    def _slot(self, i: int, name: str, like: np.ndarray) -> np.ndarray:
        slot = self.slots[i].get(name)
        if slot is None:
            slot = self.slots[i][name] = np.zeros_like(like)
        return slot

    def _prepared(self, p: Parameter, g: np.ndarray) -> np.ndarray:
        w = p.value
        g = np.asarray(g, dtype=w.dtype)
        if g.shape != w.shape:
            raise ValueError(f"gradient for {p.label} has shape {g.shape}; expected {w.shape}")
        t = self.gradient_clipping_threshold_per_sample
        if np.isfinite(t):
            if self.gradient_clipping_with_truncation:
                g = np.clip(g, -t, t)
            else:
                norm = float(np.linalg.norm(g))
                if norm > t:
                    g = g * w.dtype.type(t / norm)
        if self.l2_regularization_weight:
            g = g + w.dtype.type(self.l2_regularization_weight) * w
        return g

    def update(self, gradients: Mapping[Parameter, np.ndarray], minibatch_size: int) -> bool:
        """Apply one step. ``gradients[p]`` is the gradient of the mean per-sample loss w.r.t. ``p``
        (shape of ``p``); ``minibatch_size`` is counted for bookkeeping. Returns True."""
        missing = [p.label for p in self.parameters if p not in gradients]
        if missing:
            raise ValueError(f"{type(self).__name__}.update: no gradient for {', '.join(missing)}")
        prepared = [self._prepared(p, gradients[p]) for p in self.parameters]
        self._begin_step()
        for i, (p, g) in enumerate(zip(self.parameters, prepared)):
            self._apply(i, p.value, g)
        self.count += 1
        self.samples_seen += int(minibatch_size)
        return True

    def _begin_step(self) -> None:
        """Per-step (not per-parameter) bookkeeping, after the gradients were checked."""

    def _apply(self, i: int, w: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _scalar(self, value: float, w: np.ndarray):
        return w.dtype.type(value)

    # state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Counters and per-parameter slots (momentum buffers...) as ``{"count", "samples_seen",
        "slots": [{name: array}] in parameter order, "extra"}``; arrays are copies."""
        return {"learner": type(self).__name__, "count": self.count, "samples_seen": self.samples_seen,
                "slots": [{k: v.copy() for k, v in s.items()} for s in self.slots], "extra": self._extra_state()}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` returned (shapes are checked against the parameters).
        A state that does not fit raises and leaves the learner as it was."""
        checked = self.checked_state(state)
        self.slots = checked["slots"]
        self.count, self.samples_seen = checked["count"], checked["samples_seen"]
        for attr, value in checked["extra"].items():
            setattr(self, attr, value)

    def checked_state(self, state: Mapping) -> dict:
        """``state`` validated against this learner and converted (slot copies in the parameters'
        dtypes), without changing the learner: :meth:`load_state_dict` of the result cannot fail.
        Raises ValueError, TypeError or KeyError naming what does not fit."""
        if not isinstance(state, Mapping):
            raise TypeError(f"a learner state must be a dict, got {type(state).__name__}")
        if state.get("learner") != type(self).__name__:
            raise ValueError(f"state of a {state.get('learner')} learner cannot be loaded into {type(self).__name__}")
        slots = state["slots"]
        if len(slots) != len(self.parameters):
            raise ValueError(f"state holds {len(slots)} parameters; this learner has {len(self.parameters)}")
        counters = [state[k] for k in ("count", "samples_seen")]
        if not all(type(c) is int and c >= 0 for c in counters):
            raise ValueError(f"state counters count and samples_seen must be ints >= 0, got {counters}")
        # every update fills every slot of every parameter, so after one there must be all of them
        expected = set(self.slot_names) if counters[0] > 0 else set()
        new_slots = []
        for p, s in zip(self.parameters, slots):
            if not isinstance(s, Mapping) or set(s) != expected:
                raise ValueError(f"state slots for {p.label} are {sorted(s) if isinstance(s, Mapping) else s!r}; "
                                 f"a {type(self).__name__} after {counters[0]} updates has {sorted(expected)}")
            restored = {}
            for k, v in s.items():
                v = np.asarray(v)
                if v.shape != p.value.shape or v.dtype != p.value.dtype:
                    raise ValueError(f"state slot {k!r} for {p.label} is {v.dtype} {v.shape}; expected "
                                     f"{p.value.dtype} {p.value.shape}")
                if not np.all(np.isfinite(v)):
                    raise ValueError(f"state slot {k!r} for {p.label} holds NaN or infinite values")
                restored[k] = v.copy()
            new_slots.append(restored)
        extra = state.get("extra", {})
        if not isinstance(extra, Mapping):
            raise TypeError(f"state extra must be a dict, got {type(extra).__name__}")
        return {"learner": type(self).__name__, "count": counters[0], "samples_seen": counters[1],
                "slots": new_slots, "extra": self._checked_extra_state(extra, counters[0])}

    def _extra_state(self) -> dict:
        """Rule-specific state beyond slots and counters, as ``{attribute name: value}``."""
        return {}

    def _checked_extra_state(self, extra: Mapping, count: int) -> dict:
        """What :meth:`_extra_state` returned, validated for a learner after ``count`` updates:
        ``{attribute name: value}`` to set."""
        if extra:
            raise ValueError(f"a {type(self).__name__} state has no extra entries, got {sorted(extra)}")
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({len(self.parameters)} parameters, lr={self.lr_schedule!r})"


class SGD(Learner):
    """``w -= lr * g``."""

    def _apply(self, i, w, g):
        lr = self._scalar(self.learning_rate(), w)

        def update(w, g):
            w -= lr * g

        map_chunks(update, w, g)


class MomentumSGD(Learner):
    """Momentum SGD. With ``unit_gain=False`` (default, as ``torch.optim.SGD``)
    ``v = m v + g``; with ``unit_gain=True`` (CNTK's unit-gain form) ``v = m v + (1 - m) g``.
    Then ``w -= lr * v``, or with ``nesterov=True`` ``w -= lr * (g' + m v)`` where ``g'`` is the
    gradient term added to ``v``."""

    slot_names = ("velocity",)

    def __init__(self, parameters, lr, momentum, nesterov: bool = False, unit_gain: bool = False, **kwargs):
        super().__init__(parameters, lr, **kwargs)
        self.momentum_schedule = momentum_schedule(momentum)
        self.nesterov, self.unit_gain = bool(nesterov), bool(unit_gain)

    def _apply(self, i, w, g):
        m = self._scalar(self.momentum_schedule(self.count), w)
        lr = self._scalar(self.learning_rate(), w)
        unit_gain, nesterov = self.unit_gain, self.nesterov

        def update(w, g, v):
            term = (1 - m) * g if unit_gain else g
            v *= m
            v += term
            w -= lr * (term + m * v) if nesterov else lr * v

        map_chunks(update, w, g, self._slot(i, "velocity", w))


class Adam(Learner):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``:
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``w -= lr * (m / (1 - prod b1)) / (sqrt(v / (1 - prod b2)) + epsilon)`` where the products run
    over the momenta used so far (``b1**t`` for constant momenta)."""

    slot_names = ("mean", "variance")

    def __init__(self, parameters, lr, momentum=0.9, variance_momentum=0.999, epsilon: float = 1e-8, **kwargs):
        super().__init__(parameters, lr, **kwargs)
        self.momentum_schedule = momentum_schedule(momentum)
        self.variance_schedule = momentum_schedule(variance_momentum)
        self.epsilon = _number(epsilon, "epsilon")
        self.b1_power = 1.0  # product of the momenta used so far (bias correction)
        self.b2_power = 1.0

    def _begin_step(self):
        self.b1_power *= self.momentum_schedule(self.count)
        self.b2_power *= self.variance_schedule(self.count)

    def _apply(self, i, w, g):
        b1 = self._scalar(self.momentum_schedule(self.count), w)
        b2 = self._scalar(self.variance_schedule(self.count), w)
        step = self._scalar(self.learning_rate() / (1 - self.b1_power), w)
        correction, epsilon = self._scalar(1 - self.b2_power, w), self._scalar(self.epsilon, w)

        def update(w, g, m, v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            w -= step * m / (np.sqrt(v / correction) + epsilon)

        map_chunks(update, w, g, self._slot(i, "mean", w), self._slot(i, "variance", w))

    def _extra_state(self):
        return {"b1_power": self.b1_power, "b2_power": self.b2_power}

    def _checked_extra_state(self, extra, count):
        # the products of the momenta used so far: 1 before the first update, then in [0, 1) (a
        # product of 1 would divide by zero in the bias correction)
        if set(extra) != {"b1_power", "b2_power"}:
            raise ValueError(f"an Adam state has the extra entries b1_power and b2_power, got {sorted(extra)}")
        checked = {k: _number(extra[k], f"state {k}") for k in ("b1_power", "b2_power")}
        for k, v in checked.items():
            if not (v == 1.0 if count == 0 else 0.0 <= v < 1.0):
                raise ValueError(f"state {k} after {count} updates must be "
                                 f"{'1' if count == 0 else 'in [0, 1)'}, got {v!r}")
        return checked


def sgd(parameters: Iterable[Parameter] | Node, lr, l2_regularization_weight: float = 0.0,
        gradient_clipping_threshold_per_sample: float = np.inf, gradient_clipping_with_truncation: bool = True) -> SGD:
    """Plain SGD: ``w -= lr * g`` with ``g`` the gradient of the mean per-sample loss.

    ``lr``: a float or a schedule (:func:`learning_parameter_schedule`). See :class:`Learner` for
    regularisation and clipping.
    """
    return SGD(parameters, lr, l2_regularization_weight=l2_regularization_weight,
               gradient_clipping_threshold_per_sample=gradient_clipping_threshold_per_sample,
               gradient_clipping_with_truncation=gradient_clipping_with_truncation)


def momentum_sgd(parameters: Iterable[Parameter] | Node, lr, momentum, nesterov: bool = False, unit_gain: bool = False,
                 l2_regularization_weight: float = 0.0, gradient_clipping_threshold_per_sample: float = np.inf,
                 gradient_clipping_with_truncation: bool = True) -> MomentumSGD:
    """SGD with momentum (see :class:`MomentumSGD` for the rule); ``lr`` and ``momentum`` are
    floats or schedules; gradients are those of the mean per-sample loss."""
    return MomentumSGD(parameters, lr, momentum, nesterov=nesterov, unit_gain=unit_gain,
                       l2_regularization_weight=l2_regularization_weight,
                       gradient_clipping_threshold_per_sample=gradient_clipping_threshold_per_sample,
                       gradient_clipping_with_truncation=gradient_clipping_with_truncation)


def nesterov(parameters: Iterable[Parameter] | Node, lr, momentum, unit_gain: bool = False, **kwargs) -> MomentumSGD:
    """Nesterov momentum: :func:`momentum_sgd` with ``nesterov=True``."""
    return momentum_sgd(parameters, lr, momentum, nesterov=True, unit_gain=unit_gain, **kwargs)


def adam(parameters: Iterable[Parameter] | Node, lr, momentum=0.9, variance_momentum=0.999, epsilon: float = 1e-8,
         l2_regularization_weight: float = 0.0, gradient_clipping_threshold_per_sample: float = np.inf,
         gradient_clipping_with_truncation: bool = True) -> Adam:
    """Adam (see :class:`Adam`); ``momentum`` is beta1, ``variance_momentum`` beta2."""
    return Adam(parameters, lr, momentum, variance_momentum, epsilon,
                l2_regularization_weight=l2_regularization_weight,
                gradient_clipping_threshold_per_sample=gradient_clipping_threshold_per_sample,
                gradient_clipping_with_truncation=gradient_clipping_with_truncation)


__all__ = [
    "SGD",
    "Adam",
    "Learner",
    "MomentumSGD",
    "Schedule",
    "adam",
    "cosine_decay",
    "learning_parameter_schedule",
    "momentum_schedule",
    "momentum_sgd",
    "nesterov",
    "sgd",
    "step_decay",
]
