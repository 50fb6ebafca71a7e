"""Data from memory and disk: sources of samples and the minibatches drawn from them.

    src = mg.data.ImageFolder("faces/", size=(32, 32), channels=3, value_range=(-1, 1))
    mb = mg.data.MinibatchSource(src, minibatch_size=64, shuffle=True, seed=0, prefetch=2)
    for feed in mb:          # {"image": (64, 3, 32, 32) float32, "label": (64,) int64}
        ...

Sources (:class:`ArraySource`, :class:`ImageFolder`) have ``len()`` and ``read(indices)``;
:class:`MinibatchSource` orders, batches, prefetches, partitions and checkpoints them.
"""
from .arrays import ArraySource
from .images import EXTENSIONS, ImageFolder, folder_info
from .minibatch import MinibatchSource

__all__ = ["ArraySource", "ImageFolder", "MinibatchSource", "folder_info", "EXTENSIONS"]
