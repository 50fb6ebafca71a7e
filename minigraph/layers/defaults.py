"""``default_options``: change the defaults of layer arguments for a block of code, as CNTK's.

>>> import minigraph as mg
>>> from minigraph import layers as L
>>> with L.default_options(activation=mg.relu, pad=True):
...     up = L.ConvolutionTranspose((3, 3), 8, strides=2)    # relu, pad=True
...     out = L.ConvolutionTranspose((3, 3), 1, activation=mg.sigmoid)  # explicit wins
>>> up.arguments["pad"], up.arguments["activation"] is mg.relu, out.arguments["activation"] is mg.sigmoid
(True, True, True)

An option applies to every layer created inside the block whose signature has an argument of that
name and that was not given explicitly; inner blocks override outer ones. ``default_options_for``
restricts options to some layer types.
"""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

_stack: list[tuple[tuple[type, ...] | None, dict]] = []


def _known_arguments(types) -> set[str]:
    from .base import LAYER_TYPES
    classes = LAYER_TYPES.values() if types is None else types
    return {k for cls in classes for k in inspect.signature(cls.__init__).parameters if k not in ("self", "name")}


def _push(types, options: dict) -> None:
    known = _known_arguments(types)
    for key in options:
        if key not in known:
            from .base import closest
            whose = "no layer" if types is None else f"none of {', '.join(t.__name__ for t in types)}"
            raise TypeError(f"default_options: {whose} takes an argument {key!r}{closest(key, known)}")
    _stack.append((types, dict(options)))


@contextlib.contextmanager
def default_options(**options) -> Iterator[None]:
    """Defaults for every layer created in the ``with`` block (e.g. ``activation``, ``init``,
    ``pad``, ``bias``, ``init_bias``); an unknown option name is an error."""
    _push(None, options)
    try:
        yield
    finally:
        _stack.pop()


@contextlib.contextmanager
def default_options_for(layer_types, **options) -> Iterator[None]:
    """Like :func:`default_options`, for the given layer type(s) only (and their 1D/2D/3D variants)."""
    types = tuple(layer_types) if isinstance(layer_types, (list, tuple)) else (layer_types,)
    for t in types:
        if not isinstance(t, type):
            raise TypeError(f"default_options_for: {t!r} is not a layer type (pass e.g. L.Dense)")
    _push(types, options)
    try:
        yield
    finally:
        _stack.pop()


def overrides(cls: type, names) -> dict:
    """The innermost active option for each of ``names`` (arguments not given explicitly) of ``cls``."""
    found: dict = {}
    for types, options in reversed(_stack):
        if types is not None and not issubclass(cls, types):
            continue
        for key in names:
            if key in options and key not in found:
                found[key] = options[key]
    return found
