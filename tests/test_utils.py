"""make_grid / save_image: hand-computed grids, torchvision's semantics, errors, atomic PNG files."""
import os

import numpy as np
import pytest

from minigraph.utils import make_grid, save_image, to_uint8


def _three_gray_images():
    """Three 1-channel 2x2 images with distinct values."""
    return np.arange(12, dtype=np.float32).reshape(3, 1, 2, 2) / 12


def test_grid_of_gray_images_by_hand():
    imgs = _three_gray_images()
    grid = make_grid(imgs, nrow=2, padding=1, pad_value=0.5)
    p = 0.5
    a, b, c = (imgs[i, 0] for i in range(3))
    # 2 columns x 2 rows of (2 + 1) pixels, plus one strip: 7 x 7; the fourth cell is padding only
    expected = np.array([
        [p, p, p, p, p, p, p],
        [p, a[0, 0], a[0, 1], p, b[0, 0], b[0, 1], p],
        [p, a[1, 0], a[1, 1], p, b[1, 0], b[1, 1], p],
        [p, p, p, p, p, p, p],
        [p, c[0, 0], c[0, 1], p, p, p, p],
        [p, c[1, 0], c[1, 1], p, p, p, p],
        [p, p, p, p, p, p, p],
    ], dtype=np.float32)
    assert grid.shape == (3, 7, 7) and grid.dtype == np.float32
    for channel in grid:  # one channel repeated to three, as torchvision does
        np.testing.assert_array_equal(channel, expected)


def test_grid_of_color_images_and_default_layout():
    imgs = np.random.default_rng(0).uniform(size=(10, 3, 4, 5))
    grid = make_grid(imgs)  # nrow 8, padding 2: two rows
    assert grid.shape == (3, 2 * 6 + 2, 8 * 7 + 2)
    for k in range(10):
        r, c = divmod(k, 8)
        np.testing.assert_array_equal(grid[:, 2 + 6 * r: 6 * r + 6, 2 + 7 * c: 7 * c + 7], imgs[k])
    cells = np.zeros(grid.shape, bool)
    for k in range(10):
        r, c = divmod(k, 8)
        cells[:, 2 + 6 * r: 6 * r + 6, 2 + 7 * c: 7 * c + 7] = True
    assert np.all(grid[~cells] == 0)


def test_padding_zero_and_nrow_larger_than_batch():
    imgs = np.random.default_rng(1).uniform(size=(3, 1, 2, 2))
    grid = make_grid(imgs, nrow=10, padding=0)
    assert grid.shape == (3, 2, 6)
    np.testing.assert_array_equal(grid[0], np.concatenate(list(imgs[:, 0]), axis=1))


def test_normalize_over_the_batch_each_image_and_a_range():
    imgs = np.array([[[[0.0, 2.0]]], [[[4.0, 8.0]]]])  # two 1x1x2 images
    whole = make_grid(imgs, normalize=True, padding=0)[0]
    np.testing.assert_allclose(whole, [[0, 0.25, 0.5, 1.0]])
    each = make_grid(imgs, normalize=True, scale_each=True, padding=0)[0]
    np.testing.assert_allclose(each, [[0, 1, 0, 1]])
    ranged = make_grid(imgs, normalize=True, value_range=(2.0, 6.0), padding=0)[0]
    np.testing.assert_allclose(ranged, [[0, 0, 0.5, 1]])  # clamped to the range first
    np.testing.assert_array_equal(imgs, [[[[0.0, 2.0]]], [[[4.0, 8.0]]]])  # the input is not changed


def test_constant_image_normalizes_without_dividing_by_zero():
    grid = make_grid(np.full((2, 1, 2, 2), 3.0), normalize=True)
    assert np.all(np.isfinite(grid)) and grid.max() == 0


def test_single_image_is_returned_without_padding():
    img = np.random.default_rng(2).uniform(size=(1, 5, 6))
    grid = make_grid(img)
    assert grid.shape == (3, 5, 6)
    np.testing.assert_array_equal(grid[2], img[0])
    assert make_grid(img[0]).shape == (3, 5, 6)  # (H, W)


@pytest.mark.parametrize("images, kw, error, words", [
    (np.zeros((2, 2, 4, 4)), {}, ValueError, "1 or 3 channels"),
    (np.zeros((2, 1, 1, 4, 4)), {}, ValueError, "(N, C, H, W)"),
    (np.zeros(4), {}, ValueError, "(N, C, H, W)"),
    (np.array([["a"]]), {}, TypeError, "numeric"),
    (np.zeros((2, 1, 4, 4), complex), {}, TypeError, "real"),
    (np.zeros((2, 1, 0, 4)), {}, ValueError, "no pixels"),
    (np.zeros((2, 1, 4, 4)), {"nrow": 0}, ValueError, "nrow"),
    (np.zeros((2, 1, 4, 4)), {"padding": -1}, ValueError, "padding"),
    (np.zeros((2, 1, 4, 4)), {"nrow": 2.0}, ValueError, "nrow"),
    (np.zeros((2, 1, 4, 4)), {"normalize": True, "value_range": [0, 1]}, ValueError, "value_range"),
    ([np.zeros((1, 2, 2)), np.zeros((1, 3, 3))], {}, ValueError, "one shape"),
])
def test_bad_input_names_the_argument(images, kw, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        make_grid(images, **kw)


def test_to_uint8_rounds_like_save_image():
    grid = np.array([0.0, 0.5 / 255, 0.499 / 255, 1.0, 1.5, -0.2]).reshape(3, 1, 2)
    assert to_uint8(grid).transpose(2, 0, 1).ravel().tolist() == [0, 1, 0, 255, 255, 0]
    with pytest.raises(ValueError, match="NaN"):
        to_uint8(np.full((3, 1, 1), np.nan))


def test_save_image_writes_the_grid_as_png(tmp_path):
    from PIL import Image
    imgs = np.random.default_rng(4).uniform(size=(5, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "grid.png"
    save_image(imgs, path, nrow=3, padding=1)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        decoded = np.asarray(im)
    np.testing.assert_array_equal(decoded, to_uint8(make_grid(imgs, nrow=3, padding=1)))
    assert [f for f in os.listdir(tmp_path) if f != "grid.png"] == []  # no temporary file left


def test_save_image_failures_keep_the_existing_file(tmp_path):
    path = tmp_path / "grid.png"
    save_image(np.zeros((2, 1, 2, 2)), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="channels"):
        save_image(np.zeros((2, 2, 2, 2)), path)
    with pytest.raises(ValueError, match="NaN"):
        save_image(np.full((2, 1, 2, 2), np.nan), path)
    with pytest.raises(ValueError, match="extension"):
        save_image(np.zeros((2, 1, 2, 2)), tmp_path / "grid.unknown")
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["grid.png"]
