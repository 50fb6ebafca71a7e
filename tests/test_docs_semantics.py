"""docs/semantics.md is executable: its worked-examples table and its code examples are checked here.

Each table row builds the transposed convolution on one axis and checks the output size, the pads
stored on the node, the values against the loop oracle (tests/oracles.py) and the round trip (a
convolution with the same options maps the output size back to the input size).
"""
import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import minigraph as mg

import oracles

DOC = Path(__file__).resolve().parent.parent / "docs" / "semantics.md"


def _table_rows() -> list[dict]:
    section = DOC.read_text().split("## Worked examples", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
    return rows


def _pad_arguments(pad: str) -> dict:
    explicit = re.fullmatch(r"\((-?\d+), (-?\d+)\)", pad)
    if explicit:
        return {"lower_pad": int(explicit[1]), "upper_pad": int(explicit[2])}
    return {"auto_padding": {"True": True, "False": False}.get(pad, pad)}


ROWS = _table_rows()


def test_the_table_has_every_mode():
    assert len(ROWS) >= 20
    assert {r["pad"] for r in ROWS} >= {"True", "False", "(1, 1)", "same_upper", "same_lower", "valid"}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: "-".join(r.values()))
def test_worked_example(row):
    n, k, s, d = (int(row[c]) for c in ("n", "K", "s", "d"))
    want = None if row["output_shape"] == "-" else (int(row["output_shape"]),)
    size, lo, hi = int(row["N"]), int(row["lo"]), int(row["hi"])
    options = dict(strides=s, dilation=d, **_pad_arguments(row["pad"]))
    w = np.random.default_rng(0).standard_normal((1, 1, k))
    x = mg.input_variable((1, n), dtype=np.float64)
    y = mg.convolution_transpose(mg.parameter(init=w), x, output_shape=want, **options)
    assert y.shape == (1, size)
    assert (y.attributes["lower_pad"], y.attributes["upper_pad"]) == ((lo,), (hi,))
    data = np.random.default_rng(1).standard_normal((2, 1, n))
    expected = oracles.scatter(data, w, (size,), strides=(s,), lower=(lo,), dilation=(d,))
    np.testing.assert_allclose(y.eval({x: data}), expected, rtol=1e-12, atol=1e-12)
    back = mg.convolution(mg.parameter(init=w), mg.input_variable((1, size), dtype=np.float64), **options)
    assert back.shape == (1, n)


def test_code_examples():
    failures, tried = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert tried >= 15 and failures == 0


def test_code_and_tests_cite_the_repository_only():
    """Semantics references point at docs/semantics.md, never at a file outside the repository."""
    root = DOC.parent.parent
    outside = re.compile(r"SEMANTICS\.md|\.\./shared|seed/ConvolutionTranspose")
    offenders = [f"{path.relative_to(root)}:{number}"
                 for folder in ("minigraph", "tests", "benchmarks", "examples", "docs")
                 for path in sorted((root / folder).rglob("*")) if path.suffix in (".py", ".md", ".toml", ".json")
                 for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                 if outside.search(line) and path != Path(__file__).resolve()]
    assert not offenders, offenders
