"""A folder of image files as a data source (:class:`ImageFolder`), and :func:`folder_info`
(what ``python -m minigraph data-info DIR`` prints).

Decoding uses Pillow, an optional extra: ``pip install "minigraph[images]"``.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..checks import check_ints
from ..errors import DataError
from .arrays import Transform, apply_transform, check_transform, check_value_range, scale_integers

EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "gif", "webp")
RESAMPLING = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")
GREY_MODES = frozenset({"1", "L", "LA", "La"})
COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
"""8-bit modes, by the channel count they convert to when ``channels`` is not given (alpha is dropped)."""
SHOWN = 5
"""Examples listed in an error message."""


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('ImageFolder needs Pillow to decode images: pip install "minigraph[images]" '
                          '(or pip install pillow)') from None
    return Image


def _natural_channels(mode: str) -> int:
    """1 for grey modes, 3 for colour ones; DataError for 16-bit and float modes (not 8-bit data)."""
    if mode in GREY_MODES:
        return 1
    if mode in COLOUR_MODES:
        return 3
    raise DataError(f"image mode {mode} (16-bit or float pixels) is not supported; save it with 8-bit channels")


def _matches(name: str, extensions: frozenset[str]) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1][1:].lower() in extensions


def image_files(folder: str, extensions: frozenset[str], recursive: bool = True) -> list[str]:
    """Image files under ``folder`` (by extension, case-insensitive; hidden files and folders
    skipped), sorted by path, deterministically on every machine."""
    if not recursive:
        return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                      if _matches(f, extensions) and os.path.isfile(os.path.join(folder, f)))
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # sorted in place: os.walk follows this order
        found += [os.path.join(top, f) for f in sorted(files) if _matches(f, extensions)]
    return found


def class_folders(root: str) -> list[str]:
    """The sorted names of the (non-hidden) subfolders of ``root``: the class list."""
    return sorted(d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))


def check_folder(root, label: str) -> str:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{label}: root must be a folder path, got {type(root).__name__}")
    root = os.fspath(root)
    if not os.path.exists(root):
        raise DataError(f"{label}: folder {root} does not exist")
    if not os.path.isdir(root):
        raise DataError(f"{label}: {root} is a file, not a folder of images")
    return root


def check_extensions(extensions, label: str) -> frozenset[str]:
    if isinstance(extensions, str) or not all(isinstance(e, str) and e.strip(".") for e in extensions):
        raise TypeError(f"{label}: extensions must be a list of file extensions like ('png', 'jpg'), "
                        f"got {extensions!r}")
    return frozenset(e.lower().lstrip(".") for e in extensions)


def read_header(path: str, decode: bool) -> tuple[tuple[int, int], str]:
    """``((width, height), mode)`` of an image file; with ``decode`` the pixels are decoded too
    (finds truncated files, which the header alone does not show). Raises OSError/ValueError/
    SyntaxError (Pillow's errors) for a file that cannot be read."""
    with _pillow().open(path) as im:
        if decode:
            im.load()
        return im.size, im.mode


def _scan(files: list[str], decode: bool) -> tuple[list[tuple[str, tuple[int, int], str]], list[tuple[str, str]]]:
    """Headers of ``files``: ``(readable [(path, (w, h), mode)], unreadable [(path, reason)])``."""
    readable, unreadable = [], []
    for path in files:
        try:
            size, mode = read_header(path, decode)
            _natural_channels(mode)
        except (OSError, ValueError, SyntaxError, DataError) as exc:  # Pillow's ways of saying "not an image"
            unreadable.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        readable.append((path, size, mode))
    return readable, unreadable


def _listing(groups: Counter, examples: dict, what) -> str:
    return "; ".join(f"{what(k)} ({n} files, e.g. {examples[k]})" for k, n in groups.most_common(SHOWN))


class ImageFolder:
    """The images under ``root`` as a data source with streams ``image`` ``(N, C, H, W)`` float32
    and, with class subfolders, ``label`` ``(N,)`` int64.

    labels: ``"folders"``: each subfolder of ``root`` is a class (sorted names; label = position in
        :attr:`classes`), its images found recursively; ``None``: a flat folder (every image under
        ``root``), no labels. Files are found by extension (case-insensitive), hidden ones skipped,
        and sorted by path: the same list, in the same order, on every machine.
    size: ``(H, W)`` (or one int for a square) to resize every image to, with Pillow's ``resample``
        filter (default ``"bilinear"``, which averages over the whole footprint when shrinking:
        Pillow antialiases); the aspect ratio is not kept. Without it all images must have one size.
    channels: 1 (grey: Pillow's ``convert("L")``, ITU-R 601 luma) or 3 (RGB); alpha is dropped.
        Without it all images must have the same channel count (grey or colour).
    value_range: 8-bit pixel values 0..255 map linearly onto ``(low, high)`` (float32).
    on_error: ``"raise"``: a file that is not an image raises DataError naming it, when the folder
        is opened (headers are read then) or when a truncated file is decoded; ``"skip"``: every
        file is decoded once when the folder is opened, and unreadable ones are left out with one
        warning (listed in :attr:`skipped`), so the file list is fixed before training starts.
    transform: ``transform(batch_dict) -> batch_dict``, run on every minibatch after scaling.
    """

    label = "ImageFolder"

    def __init__(self, root, size: int | Sequence[int] | None = None, channels: int | None = None,
                 value_range: tuple[float, float] = (0, 1), extensions: Sequence[str] = EXTENSIONS,
                 labels: str | None = "folders", on_error: str = "raise", resample: str = "bilinear",
                 transform: Transform | None = None):
        Image = _pillow()
        label = self.label
        size = check_ints(size, "size", label, minimum=1, optional=True)
        if size is not None and len(size) not in (1, 2):
            raise DataError(f"{label}: size must be (height, width) or one int, got {size!r}")
        if channels not in (None, 1, 3) or isinstance(channels, bool):
            raise DataError(f"{label}: channels must be 1 (grey), 3 (RGB) or None (as the files are), got {channels!r}")
        if labels not in ("folders", None):
            raise DataError(f"{label}: labels must be 'folders' (class subfolders) or None (a flat folder), "
                            f"got {labels!r}")
        if on_error not in ("raise", "skip"):
            raise DataError(f"{label}: on_error must be 'raise' or 'skip', got {on_error!r}")
        if resample not in RESAMPLING:
            raise DataError(f"{label}: resample must be one of {', '.join(RESAMPLING)}, got {resample!r}")
        self.value_range = check_value_range(value_range, label)
        self.transform = check_transform(transform, label)
        self.root = check_folder(root, label)
        self.resample = resample
        self._filter = getattr(Image.Resampling, resample.upper())
        exts = check_extensions(extensions, label)

        files, targets, self.classes = self._find(exts, labels)
        readable, unreadable = _scan(files, decode=on_error == "skip")
        if unreadable and on_error == "raise":
            shown = "; ".join(f"{p}: {why}" for p, why in unreadable[:SHOWN])
            raise DataError(f"{label}: {len(unreadable)} of {len(files)} files cannot be read as images: {shown}"
                            f"{' ...' if len(unreadable) > SHOWN else ''} (remove them, or pass on_error='skip')")
        self.skipped = unreadable
        if unreadable:
            warnings.warn(f"{label}: skipped {len(unreadable)} of {len(files)} files that cannot be read as images "
                          f"(first: {unreadable[0][0]}: {unreadable[0][1]})", stacklevel=2)
            if not readable:
                raise DataError(f"{label}: none of the {len(files)} image files in {self.root} can be read")
        target_of = dict(zip(files, targets))
        self.files = [p for p, _, _ in readable]
        self.targets = None if labels is None else np.array([target_of[p] for p in self.files], np.int64)
        self.size = self._common_size(readable, size)
        self.channels = self._common_channels(readable, channels)
        self._mode = "L" if self.channels == 1 else "RGB"

    def _find(self, exts: frozenset[str], labels: str | None) -> tuple[list[str], list[int], list[str]]:
        """Files, their class numbers and the class names (empty for a flat folder)."""
        where = f"{self.label}: {self.root}"
        if labels is None:
            files = image_files(self.root, exts)
            if not files:
                raise DataError(f"{where} holds no image files (extensions {', '.join(sorted(exts))})")
            return files, [0] * len(files), []
        classes = class_folders(self.root)
        loose = image_files(self.root, exts, recursive=False)
        if not classes:
            hint = " (for a flat folder without labels pass labels=None)" if loose else ""
            raise DataError(f"{where} has no class subfolders{hint}" if loose else f"{where} is empty: no class "
                            f"subfolders and no image files (extensions {', '.join(sorted(exts))})")
        if loose:
            raise DataError(f"{where} has {len(loose)} image files outside the class subfolders (e.g. {loose[0]}); "
                            f"move them into a class folder, or pass labels=None to use every image without labels")
        files, targets, empty = [], [], []
        for number, name in enumerate(classes):
            found = image_files(os.path.join(self.root, name), exts)
            empty += [] if found else [name]
            files += found
            targets += [number] * len(found)
        if empty:
            raise DataError(f"{where}: class folders without image files (extensions {', '.join(sorted(exts))}): "
                            f"{', '.join(empty[:SHOWN])}{' ...' if len(empty) > SHOWN else ''}")
        return files, targets, classes

    def _common_size(self, readable, size: tuple | None) -> tuple[int, int]:
        """``(H, W)`` of every image: ``size`` when given, else the one size the files share."""
        if size is not None:
            return (size[0], size[0]) if len(size) == 1 else size
        sizes = Counter(s for _, s, _ in readable)
        if len(sizes) > 1:
            examples = {s: p for p, s, _ in reversed(readable)}
            raise DataError(f"{self.label}: images in {self.root} have {len(sizes)} different sizes (width x height): "
                            f"{_listing(sizes, examples, lambda s: f'{s[0]}x{s[1]}')}; pass size=(height, width) "
                            f"to resize them all")
        width, height = next(iter(sizes))
        return height, width

    def _common_channels(self, readable, channels: int | None) -> int:
        if channels is not None:
            return channels
        counts = Counter(_natural_channels(m) for _, _, m in readable)
        if len(counts) > 1:
            examples = {_natural_channels(m): p for p, _, m in reversed(readable)}
            raise DataError(f"{self.label}: images in {self.root} mix grey and colour: "
                            f"{_listing(counts, examples, lambda c: 'grey' if c == 1 else 'colour')}; pass channels=1 "
                            f"or channels=3 to convert them all")
        return next(iter(counts))

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def names(self) -> tuple[str, ...]:
        return ("image",) if self.targets is None else ("image", "label")

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, index: int) -> np.ndarray:
        """Sample ``index`` as 8-bit pixels ``(H, W, C)``, converted and resized; DataError naming the file."""
        path = self.files[index]
        height, width = self.size
        try:
            with _pillow().open(path) as im:
                if im.mode != self._mode:  # convert() copies even when the mode is already right
                    im = im.convert(self._mode)
                if im.size != (width, height):
                    im = im.resize((width, height), self._filter)
                pixels = np.asarray(im)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{self.label}: cannot read {path}: {type(exc).__name__}: {exc}") from None
        if pixels.shape[:2] != (height, width):
            raise DataError(f"{self.label}: {path} is {pixels.shape[1]}x{pixels.shape[0]} now, not "
                            f"{width}x{height} as when the folder was opened; pass size= to resize")
        return pixels.reshape(height, width, self.channels)

    def read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The samples at ``indices`` (in that order): ``image`` ``(N, C, H, W)`` float32 in
        ``value_range`` (and ``label`` ``(N,)`` int64)."""
        pixels = np.empty((len(indices), *self.size, self.channels), np.uint8)
        for row, index in enumerate(indices):  # one file per sample: decoding is per file
            pixels[row] = self.decode(int(index))
        batch = {"image": np.ascontiguousarray(scale_integers(pixels, self.value_range).transpose(0, 3, 1, 2))}
        if self.targets is not None:
            batch["label"] = self.targets[indices]
        return apply_transform(self.transform, batch, len(indices), self.label)

    def __repr__(self) -> str:
        classes = f", {len(self.classes)} classes" if self.classes else ""
        return (f"ImageFolder({self.root!r}: {len(self)} images{classes}, {self.channels}x{self.size[0]}x"
                f"{self.size[1]}, value_range={self.value_range})")


def folder_info(root, extensions: Sequence[str] = EXTENSIONS) -> dict:
    """What a folder of images holds, every file decoded: ``files`` (count), ``classes``
    ({subfolder: image count}; ``"."`` for images directly in ``root``), ``sizes`` ({"WxH": count}),
    ``modes`` ({Pillow mode: count}) and ``unreadable`` ([(path, reason)])."""
    _pillow()
    label = "folder_info"
    root = check_folder(root, label)
    exts = check_extensions(extensions, label)
    groups = {".": image_files(root, exts, recursive=False)}
    groups.update({name: image_files(os.path.join(root, name), exts) for name in class_folders(root)})
    groups = {k: v for k, v in groups.items() if v or k != "."}
    files = [f for group in groups.values() for f in group]
    readable, unreadable = _scan(files, decode=True)
    return {"root": root, "files": len(files),
            "classes": {name: len(group) for name, group in groups.items()},
            "sizes": dict(Counter(f"{w}x{h}" for _, (w, h), _ in readable).most_common()),
            "modes": dict(Counter(m for _, _, m in readable).most_common()),
            "unreadable": unreadable}
