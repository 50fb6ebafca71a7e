"""The README's first example, extracted from README.md and run as written, then its promises checked."""
import pathlib
import re

import numpy as np

import minigraph as mg

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _first_python_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    return blocks[0]


def test_readme_first_example_runs_as_written(capsys):
    namespace: dict = {}
    exec(compile(_first_python_block(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    x, w, y, out, g = (namespace[k] for k in ("x", "w", "y", "out", "g"))
    assert [str(d) for d in y.shape] == ["H", "W", "5"]
    assert mg.shapes.shape_str(y.shape) == "(H, W, 5)"
    assert capsys.readouterr().out.splitlines()[0] == "(H, W, 5)"  # the print promised in the README
    data = namespace["data"]
    assert out.shape == (2, 4, 6, 5) and out.dtype == np.float32
    expected = np.maximum(np.tensordot(data.transpose(0, 2, 3, 1), w.value, axes=1), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert set(g) == {x, w}
    assert g[x].shape == data.shape and g[w].shape == w.value.shape
    active = (expected > 0).astype(np.float32)
    np.testing.assert_allclose(g[w], np.einsum("nhwc,nhwk->ck", data.transpose(0, 2, 3, 1), active), rtol=1e-4)
