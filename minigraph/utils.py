"""Image grids of minibatches: :func:`make_grid` and :func:`save_image` (torchvision's semantics, on numpy).

Images are channels first, ``(N, C, H, W)`` with C = 1 or 3 (a single ``(C, H, W)`` or ``(H, W)``
image is a batch of one). Single-channel images are repeated to three channels, as torchvision does,
so every grid is ``(3, rows * (H + padding) + padding, columns * (W + padding) + padding)``.
"""
from __future__ import annotations

import io
import math
import os

import numpy as np

__all__ = ["make_grid", "save_image", "to_uint8"]


def _int_at_least(value, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"make_grid: {what} must be an int >= {low}, got {value!r}")
    return int(value)


def _as_batch(images) -> np.ndarray:
    """``images`` as a float ``(N, C, H, W)`` array with C = 3 (one channel repeated)."""
    if isinstance(images, (list, tuple)):
        images = [np.asarray(i) for i in images]
        shapes = {i.shape for i in images}
        if len(shapes) != 1:
            raise ValueError(f"make_grid: the images of a list must have one shape, got {sorted(shapes)}")
        images = np.stack(images)
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"make_grid: images must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"make_grid: images must be real numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"make_grid: images must be (N, C, H, W), (C, H, W) or (H, W), got shape {arr.shape}")
    if arr.shape[1] not in (1, 3):
        raise ValueError(f"make_grid: images need 1 or 3 channels on axis 1 (channels first), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"make_grid: no pixels to draw in images of shape {arr.shape}")
    floating = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32
    arr = arr.astype(floating, copy=True)
    return np.repeat(arr, 3, axis=1) if arr.shape[1] == 1 else arr


def _normalize(batch: np.ndarray, value_range, scale_each: bool) -> np.ndarray:
    """Clamp to ``value_range`` (default: the min and max, per image with ``scale_each``) and map it to [0, 1]."""
    if value_range is not None:
        if not isinstance(value_range, tuple) or len(value_range) != 2:
            raise ValueError(f"make_grid: value_range must be a tuple (min, max), got {value_range!r}")
        low = np.full((len(batch), 1, 1, 1), float(value_range[0]))
        high = np.full((len(batch), 1, 1, 1), float(value_range[1]))
    elif scale_each:
        low, high = batch.min(axis=(1, 2, 3), keepdims=True), batch.max(axis=(1, 2, 3), keepdims=True)
    else:
        low, high = np.full((len(batch), 1, 1, 1), batch.min()), np.full((len(batch), 1, 1, 1), batch.max())
    low, high = low.astype(batch.dtype), high.astype(batch.dtype)
    span = np.maximum(high - low, batch.dtype.type(1e-5))
    return (np.clip(batch, low, high) - low) / span


def make_grid(images, nrow: int = 8, padding: int = 2, normalize: bool = False, value_range: tuple | None = None,
              scale_each: bool = False, pad_value: float = 0) -> np.ndarray:
    """Tile a batch of images into one ``(3, H', W')`` image: ``nrow`` images per row, ``padding``
    pixels of ``pad_value`` around each (torchvision's ``make_grid``).

    images: ``(N, C, H, W)`` with C = 1 or 3 (or a list of ``(C, H, W)``; a single image is a batch
        of one and is returned without padding, as torchvision does).
    normalize: map ``value_range`` (default: the batch's min and max; each image's own with
        ``scale_each``) to [0, 1], clamping values outside it.
    Returns a float array (the images' float dtype, float32 for integer images).

    >>> make_grid(np.ones((5, 1, 2, 3)), nrow=2, padding=1).shape
    (3, 10, 9)
    """
    nrow = _int_at_least(nrow, 1, "nrow")
    padding = _int_at_least(padding, 0, "padding")
    batch = _as_batch(images)
    if normalize:
        batch = _normalize(batch, value_range, scale_each)
    if len(batch) == 1:
        return batch[0]
    n, channels, h, w = batch.shape
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    cell_h, cell_w = h + padding, w + padding
    # each cell: `padding` rows/columns of pad_value above/left of its image; the grid adds one more strip
    cells = np.full((rows * columns, channels, cell_h, cell_w), pad_value, dtype=batch.dtype)
    cells[:n, :, padding:, padding:] = batch
    tiled = cells.reshape(rows, columns, channels, cell_h, cell_w).transpose(2, 0, 3, 1, 4)
    grid = np.full((channels, rows * cell_h + padding, columns * cell_w + padding), pad_value, dtype=batch.dtype)
    grid[:, :rows * cell_h, :columns * cell_w] = tiled.reshape(channels, rows * cell_h, columns * cell_w)
    return grid


def to_uint8(grid: np.ndarray) -> np.ndarray:
    """A ``(3, H, W)`` image with values in [0, 1] as ``(H, W, 3)`` uint8 pixels, rounded to nearest
    (``floor(255 x + 0.5)`` clamped to [0, 255], as torchvision's ``save_image``)."""
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 3 or grid.shape[0] != 3:
        raise ValueError(f"to_uint8: expected an image (3, H, W), got shape {grid.shape}")
    if not np.all(np.isfinite(grid)):
        raise ValueError("to_uint8: the image holds NaN or infinite values; they have no pixel value")
    return np.floor(np.clip(grid * 255.0 + 0.5, 0, 255)).astype(np.uint8).transpose(1, 2, 0)


def save_image(images, path, nrow: int = 8, padding: int = 2, normalize: bool = False,
               value_range: tuple | None = None, scale_each: bool = False, pad_value: float = 0) -> None:
    """Save :func:`make_grid` of ``images`` (values in [0, 1], or any range with ``normalize=True``)
    as an RGB image file (format from the extension, PNG for ``.png``), atomically: an existing file
    survives a failed write. Needs Pillow (``pip install 'minigraph[examples]'``)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("save_image needs Pillow: pip install 'minigraph[examples]' (or pip install pillow)") \
            from exc
    from .files import write_atomically
    grid = make_grid(images, nrow=nrow, padding=padding, normalize=normalize, value_range=value_range,
                     scale_each=scale_each, pad_value=pad_value)
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    formats = Image.registered_extensions()
    if f".{extension}" not in formats:
        raise ValueError(f"save_image: cannot tell the image format of {path!r} from its extension; "
                         f"use .png (or another Pillow extension)")
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(grid)).save(buffer, format=formats[f".{extension}"])
    write_atomically(path, buffer.getvalue())
