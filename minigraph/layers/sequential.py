"""``Sequential``: layers (or functions) applied one after another."""
from __future__ import annotations

from .base import Layer, shown_value


def _flatten(items, label: str) -> list:
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flatten(item, label))
        elif callable(item):
            out.append(item)
        else:
            raise TypeError(f"{label}: {item!r} is not a layer or a function")
    return out


class Sequential(Layer):
    """Sequential(layers, name='')

    Applies ``layers`` in order (nested lists are flattened; plain functions such as ``mg.relu``
    are allowed too), as CNTK's ``Sequential``. Its parameters are those of its layers.

    >>> import minigraph as mg
    >>> from minigraph import layers as L
    >>> gen = Sequential([L.Dense((32, 2, 2), activation=mg.relu),
    ...                   L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=4, activation=mg.relu),
    ...                   L.ConvolutionTranspose((3, 3), 1, strides=2, pad=True, output_shape=8,
    ...                                          activation=mg.sigmoid)])
    >>> gen(mg.input_variable(16)).shape
    (1, 8, 8)
    """

    def __init__(self, layers, name: str = ""):
        super().__init__(name)
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"{self.label}: layers must be a list of layers, got {type(layers).__name__}")
        self.layers = _flatten(layers, self.label)

    @property
    def parameters(self) -> list:
        seen, out = set(), []
        for layer in self.layers:
            for p in getattr(layer, "parameters", []):
                if p not in seen:
                    seen.add(p)
                    out.append(p)
        return out

    def apply(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    # a container of layers, as PyTorch's nn.Sequential ---------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        """One layer (``seq[0]``, ``seq[-1]``), or a slice as a new (unnamed) Sequential of the same layers
        (shared weights)."""
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"{self.label}: index with an int or a slice, got {index!r}")
        if not -len(self.layers) <= index < len(self.layers):
            raise IndexError(f"{self.label}: index {index} out of range for {len(self.layers)} layers")
        return self.layers[index]

    def __repr__(self):
        """One line per layer with its arguments, nested containers indented."""
        name = f" {self.name!r}" if self.name else ""
        lines = [f"{self.kind}{name} ({len(self.layers)} layers)"]
        for i, layer in enumerate(self.layers):
            text = repr(layer) if isinstance(layer, Layer) else shown_value(layer)
            first, *rest = text.splitlines()
            lines.append(f"  ({i}) {first}")
            lines.extend(f"      {line}" for line in rest)
        return "\n".join(lines)
