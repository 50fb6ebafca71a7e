"""Notebook display: a node shows as its graph (SVG), a summary as an HTML table; examples/graph.ipynb runs."""
import os
import sys

import pytest

import minigraph as mg
from minigraph import layers as L

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "graph.ipynb")


def test_node_mimebundle_is_svg_and_text():
    y = L.ConvolutionTranspose((3, 3), 2, strides=2, pad=True, name="up")(mg.input_variable((1, 4, 4), name="x"))
    bundle = y._repr_mimebundle_()
    assert bundle["text/plain"] == repr(y)
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml") and "<svg" in bundle["image/svg+xml"]
    assert "uneven&#45;overlap" in y._repr_svg_()  # the lint badge is drawn (Graphviz escapes the dash)


def test_node_without_graphviz_shows_as_text(monkeypatch):
    plot = sys.modules["minigraph.plot"]  # (mg.plot is the function)
    monkeypatch.setattr(plot, "plot", lambda root, **options: "digraph { broken")  # dot fails on it
    bundle = mg.relu(mg.input_variable(3))._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]


def _outputs(notebook):
    return [(cell.source, out) for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def test_example_notebook_executes_and_shows_graph_and_tables():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
    outputs = _outputs(notebook)
    assert not [o for _, o in outputs if o.output_type == "error"]
    kinds = {src.splitlines()[-1].split("#")[0].strip(): set(getattr(o, "data", {})) for src, o in outputs
             if o.output_type == "execute_result"}
    assert {"image/svg+xml", "text/plain"} <= kinds["images"]
    assert {"text/html", "text/plain"} <= kinds["images.summary(batch=64)"]
    svg = next(o.data["image/svg+xml"] for src, o in outputs if src.endswith("warning badge)")
               and o.output_type == "execute_result")
    assert "up1" in svg and "uneven&#45;overlap" in svg
    printed = "".join(o.text for _, o in outputs if o.output_type == "stream")
    assert "valid output_shape on this axis: 7, 8" in printed and "training (forward + backward)" in printed
