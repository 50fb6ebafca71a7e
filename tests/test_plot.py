"""mg.plot: DOT text (nodes, edges, shapes, resolved attributes, clusters), real Graphviz renders,
a DOT snapshot, the missing-``dot`` path, collapsed layers, a 200-node graph."""
import html
import os
import re
import xml.etree.ElementTree as ET

import pytest

import minigraph as mg
from minigraph import layers as L
from minigraph.graph import Function, Inferred, Op, name_scope
from minigraph.plot import output_format

SNAPSHOTS = os.path.join(os.path.dirname(__file__), "snapshots")
NODE_LINE = re.compile(r"^\s*(\w+) \[label=<(.*)>, (.*)\];$")
EDGE_LINE = re.compile(r'^\s*(\w+) -> (\w+)(?: \[(?:label="([^"]*)")?(?:, )?(?:minlen=2)?\])?;$')


def parse_dot(dot: str):
    """{box id: label text without markup}, [(src, dst, edge label)] from mg.plot's DOT text."""
    boxes, edges = {}, []
    for line in dot.splitlines():
        if m := NODE_LINE.match(line):
            boxes[m.group(1)] = html.unescape(re.sub(r"<[^>]+>", " ", m.group(2)))
        elif m := EDGE_LINE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
    return boxes, edges


def clusters_of(dot: str) -> dict:
    """{box id: the labels of the clusters around it, outermost first}."""
    stack, where = [], {}
    for line in dot.splitlines()[1:]:
        if line.strip().startswith("subgraph"):
            stack.append(None)
        elif line.strip().startswith("label=<") and stack:
            stack[-1] = words(re.sub(r"<[^>]+>", " ", line.strip()[len("label=<"):].split(">;")[0]))
        elif line.strip() == "}":
            stack = stack[:-1]
        elif m := NODE_LINE.match(line):
            where[m.group(1)] = tuple(stack)
    return where


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def dense_block(x, units, name):
    """A Dense-like block built from ops in a layer scope: relu(x @ W + b)."""
    with name_scope(name, "Dense"):
        W = mg.parameter((x.shape[-1], units), init=mg.initializers.glorot_uniform(seed=1), name="W")
        b = mg.parameter((units,), init=0.0, name="b")
        return mg.relu(mg.times(x, W) + b, name=f"{name}_out")


def small_model():
    x = mg.input_variable(4, name="x")
    h = dense_block(x, 3, "fc1")
    return dense_block(h, 2, "fc2") * 0.5


class PadOp(Op):
    """Test op: zero-pads a 1-D input; the shape rule resolves the pads it stores on the node."""

    name = "TestPad"

    def infer(self, in_shapes, in_dtypes, attrs, label):
        total = attrs["total"]
        lower, upper = total // 2, total - total // 2
        (n,) = in_shapes[0]
        return Inferred((n + total,), attrs={"lower_pad": (lower,), "upper_pad": (upper,)})

    def describe(self, attrs):
        return {"pads": (attrs["lower_pad"], attrs["upper_pad"]), "hidden": None}


# DOT text ---------------------------------------------------------------------------------------
def test_dot_has_every_node_and_edge_with_shapes():
    y = small_model()
    dot = mg.plot(y)
    boxes, edges = parse_dot(dot)
    order = y.topological_order()
    assert sorted(boxes) == sorted(f"n{i}" for i in range(len(order)))
    for i, node in enumerate(order):
        label = words(boxes[f"n{i}"])
        assert label.startswith(node.op_name), label
        assert node.name in label
        if node.shape != ():
            assert mg.shapes.shape_str(node.shape) in label, label
    ident = {node: f"n{i}" for i, node in enumerate(order)}
    # edges carry the tensor's shape; parameters and constants show theirs in their own box
    expected = {(ident[a], ident[b],
                 None if isinstance(a, (mg.Parameter, mg.Constant)) else mg.shapes.shape_str(a.shape))
                for a, b in y.graph.edges}
    assert set(edges) == expected and len(edges) == len(expected)


def test_dot_labels_show_kinds_counts_and_constants():
    y = small_model()
    boxes, _ = parse_dot(mg.plot(y))
    labels = {words(t) for t in boxes.values()}
    assert "Input x (4,)" in labels
    assert "Parameter W (4, 3) 12 values" in labels and "Parameter b (3,) 3 values" in labels
    assert "Constant = 0.5" in labels
    assert "Times (3,) output_rank 1" in labels
    styles = dict(re.findall(r"^\s*(n\d+) \[label=<.*>, (.*)\];$", mg.plot(y), re.MULTILINE))
    fills = {re.search(r'fillcolor="(#\w+)"', s).group(1) for s in styles.values()}
    assert len(fills) == 4  # input, parameter, constant and op boxes look different


def test_resolved_attributes_from_describe_are_shown():
    x = mg.input_variable(5, name="x")
    y = Function(PadOp(), [x], {"total": 3}, name="pad")
    boxes, edges = parse_dot(mg.plot(y))
    assert words(boxes["n1"]) == "TestPad pad (8,) pads ((1,), (2,))"  # None-valued entries are left out
    assert edges == [("n0", "n1", "(5,)")]


def box_of(boxes: dict, first_words: str) -> str:
    """The one label that starts with ``first_words``."""
    (label,) = [words(t) for t in boxes.values() if words(t).startswith(first_words)]
    return label


def box_of_id(boxes: dict, first_words: str) -> str:
    """The id of the one box whose label starts with ``first_words``."""
    (ident,) = [k for k, t in boxes.items() if words(t).startswith(first_words)]
    return ident


def test_convolution_boxes_show_geometry_and_resolved_pads():
    h = mg.input_variable((32, 2, 2), name="h")
    W = mg.parameter((32, 8, 3, 3), init=mg.initializers.glorot_uniform(seed=1), name="W")
    y = mg.convolution_transpose(W, h, strides=2, auto_padding=[False, True, True], output_shape=(4, 4),
                                 name="up1")
    boxes, edges = parse_dot(mg.plot(y))
    label = box_of(boxes, "ConvolutionTranspose up1")
    assert label.startswith("ConvolutionTranspose up1 (8, 4, 4)")
    for shown in ("kernel_shape (3, 3)", "strides (2, 2)", "dilation (1, 1)", "groups 1", "lower_pad (1, 1)",
                  "upper_pad (0, 0)", "output_shape (4, 4)"):
        assert shown in label, shown
    assert (y.attributes["lower_pad"], y.attributes["upper_pad"]) == ((1, 1), (0, 0))  # resolved, not given
    assert box_of(boxes, "Parameter W") == "Parameter W (32, 8, 3, 3) 2,304 values"
    assert sorted(edges) == [("n0", "n2", "(32, 2, 2)"), ("n1", "n2", None)]


def test_convolution_on_symbolic_sizes_shows_expressions_and_pads():
    x = mg.input_variable((3, "H", "W"), name="x")
    W = mg.parameter((3, 4, 3, 3), init=mg.initializers.glorot_uniform(seed=1), name="W")
    y = mg.convolution_transpose(W, x, strides=2, auto_padding=[False, True, True], name="up")
    boxes, edges = parse_dot(mg.plot(mg.relu(y)))
    label = box_of(boxes, "ConvolutionTranspose up")
    assert label.startswith("ConvolutionTranspose up (4, 2*H - 1, 2*W - 1)")
    assert "lower_pad (1, 1)" in label and "upper_pad (1, 1)" in label
    assert "output_shape (2*H - 1, 2*W - 1)" in label
    assert "(4, 2*H - 1, 2*W - 1)" in [e[2] for e in edges]


def test_symbolic_dims_print_as_expressions():
    x = mg.input_variable((3, "H", "W"), name="x")
    y = mg.relu(x * 2 - 1)
    dot = mg.plot(y)
    assert "(3, H, W)" in dot
    z = mg.input_variable(("2*H - 1",), name="z")
    assert "(2*H - 1,)" in mg.plot(mg.relu(z))


def test_layers_are_nested_clusters_labelled_with_name_and_type():
    x = mg.input_variable(4, name="x")
    with name_scope("encoder", "Sequential"):
        h = dense_block(x, 3, "fc1")
        y = dense_block(h, 2, "fc2")
    dot = mg.plot(y)
    assert dot.count("subgraph cluster_") == 3
    assert "<B>encoder</B> <I>Sequential</I>" in dot and "<B>fc1</B> <I>Dense</I>" in dot
    clusters = clusters_of(dot)
    assert clusters["n0"] == ()  # the input was made outside any layer
    assert clusters["n1"] == ("encoder Sequential", "fc1 Dense")
    assert clusters[f"n{len(y.topological_order()) - 1}"] == ("encoder Sequential", "fc2 Dense")
    # edges entering a cluster span two ranks, so that stacked layers do not step sideways
    entering = {(a, b) for a, b in re.findall(r"(n\d+) -> (n\d+) \[.*minlen=2\]", dot)}
    assert entering and entering == {(a, b) for a, b, _ in parse_dot(dot)[1]
                                      if clusters[a][:len(clusters[b])] != clusters[b]}


def test_dot_is_deterministic_and_independent_of_global_ids():
    first = mg.plot(small_model())
    mg.input_variable(7)  # moves the global id counter
    assert mg.plot(small_model()) == first
    y = small_model()
    assert mg.plot(y) == mg.plot(y)


def test_options_rankdir_dpi_shapes_params():
    y = small_model()
    assert "rankdir=LR" in mg.plot(y, rankdir="LR") and "dpi=150" in mg.plot(y, dpi=150)
    boxes, edges = parse_dot(mg.plot(y, show_shapes=False))
    assert all(label is None for *_, label in edges)
    assert "(3,)" not in words(boxes["n0"] + boxes[max(boxes)])
    boxes, _ = parse_dot(mg.plot(y, show_params=False))
    assert not any("Parameter" in t for t in boxes.values())
    assert any("Times" in t for t in boxes.values())


def test_labels_are_escaped():
    x = mg.input_variable(2, name='a<b & "c">')
    dot = mg.plot(mg.relu(x, name="r\\n"))
    assert "a&lt;b &amp; &quot;c&quot;&gt;" in dot and 'a<b' not in dot


def test_bad_arguments_are_clear_errors(tmp_path):
    y = small_model()
    with pytest.raises(ValueError, match="rankdir must be one of TB, LR, BT, RL"):
        mg.plot(y, rankdir="up")
    with pytest.raises(ValueError, match=r"cannot tell the picture format of .*net\.jpeg"):
        mg.plot(y, tmp_path / "net.jpeg")
    with pytest.raises(ValueError, match="format 'bmp' is not supported"):
        mg.plot(y, tmp_path / "net.png", format="bmp")
    with pytest.raises(TypeError, match="plot needs a graph node"):
        mg.plot(lambda x: x)
    with pytest.raises(ValueError, match=r"plot: dpi must be a number in \[1, 2400\], got 0"):
        mg.plot(y, dpi=0)
    assert output_format("a.GV") == "dot" and output_format("a", "SVG") == "svg"


# collapse_layers ----------------------------------------------------------------------------------
def test_collapse_layers_draws_each_layer_as_one_box():
    y = small_model()
    boxes, edges = parse_dot(mg.plot(y, collapse_layers=True))
    assert words(boxes["L0"]) == "fc1 Dense (3,) 15 parameters"
    assert words(boxes["L1"]) == "fc2 Dense (2,) 8 parameters"
    assert [words(t).split()[0] for t in boxes.values()] == ["Input", "fc1", "fc2", "Constant", "ElementTimes"]
    assert ("n0", "L0", "(4,)") in edges and ("L0", "L1", "(3,)") in edges
    assert ("L1", next(k for k, t in boxes.items() if t.strip().startswith("ElementTimes")), "(2,)") in edges


def test_collapse_keeps_a_wrapping_layer_as_a_cluster_of_its_sublayers():
    x = mg.input_variable(4, name="x")
    with name_scope("gen", "Sequential"):
        y = dense_block(dense_block(x, 3, "fc1"), 2, "fc2")
    dot = mg.plot(y, collapse_layers=True)
    assert clusters_of(dot) == {"n0": (), "L0": ("gen Sequential",), "L1": ("gen Sequential",)}


# rendering with the real dot program ------------------------------------------------------------
def test_png_render_is_a_valid_image(tmp_path):
    from PIL import Image
    path = tmp_path / "new" / "folder" / "net.png"
    dot = mg.plot(small_model(), path)
    assert "digraph" in dot
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.size[1] > 200
    assert os.listdir(path.parent) == ["net.png"]  # no temporary file left behind


def test_svg_render_parses_and_holds_the_labels(tmp_path):
    path = tmp_path / "net.svg"
    mg.plot(small_model(), str(path))
    text = " ".join(ET.parse(path).getroot().itertext())
    for label in ("Input", "fc1", "fc2", "Dense", "Times", "(4, 3)", "12 values"):
        assert label in text, label


def test_pdf_render_and_format_overrides_extension(tmp_path):
    path = tmp_path / "net.pdf"
    mg.plot(small_model(), path)
    assert path.read_bytes()[:5] == b"%PDF-"
    other = tmp_path / "picture"
    mg.plot(small_model(), other, format="svg")
    ET.parse(other)


def test_render_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "net.dot"
    path.write_text("old")
    dot = mg.plot(small_model(), path)
    assert path.read_text() == dot
    assert os.listdir(tmp_path) == ["net.dot"]


def test_missing_dot_program_is_a_clear_error_and_dot_output_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    y = small_model()
    with pytest.raises(mg.RenderError) as info:
        mg.plot(y, tmp_path / "net.png")
    message = str(info.value)
    assert "'dot' program was not found" in message
    assert "apt-get install graphviz" in message and "brew install graphviz" in message and "conda" in message
    assert "'.dot'" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, mg.MinigraphError)
    assert os.listdir(tmp_path) == []  # neither the picture nor a temporary file
    dot = mg.plot(y, tmp_path / "net.dot")
    assert (tmp_path / "net.dot").read_text() == dot


def test_two_hundred_node_graph_renders(tmp_path):
    x = mg.input_variable((8, "H"), name="x")
    h = x
    for i in range(40):
        with name_scope(f"block{i}", "Residual"):
            h = mg.relu(h * 0.9 + mg.tanh(h), name=f"out{i}")
    order = h.topological_order()
    assert len(order) >= 200
    path = tmp_path / "big.svg"
    mg.plot(h, path)
    text = " ".join(ET.parse(path).getroot().itertext())
    assert "out39" in text and "block0" in text


# snapshot ---------------------------------------------------------------------------------------
def test_dot_snapshot_of_a_small_model():
    """The DOT of one small model, byte for byte (regenerate: MINIGRAPH_UPDATE_SNAPSHOTS=1)."""
    dot = mg.plot(small_model())
    path = os.path.join(SNAPSHOTS, "plot_small_model.dot")
    if os.environ.get("MINIGRAPH_UPDATE_SNAPSHOTS"):
        os.makedirs(SNAPSHOTS, exist_ok=True)
        with open(path, "w") as f:
            f.write(dot)
    with open(path) as f:
        assert dot == f.read()


def test_to_networkx_matches_the_drawing():
    y = small_model()
    g = y.to_networkx()
    boxes, edges = parse_dot(mg.plot(y))
    assert g.number_of_nodes() == len(boxes) and g.number_of_edges() == len(edges)
    shapes = [d["shape"] for _, d in sorted(g.nodes(data=True))]
    assert shapes == [mg.shapes.shape_str(n.shape) for n in sorted(y.graph, key=lambda n: n.uid)]


# layers ----------------------------------------------------------------------------------------
def generator():
    """The README's generator: Dense -> ConvolutionTranspose x2, 16-d noise to an 8x8 image."""
    z = mg.input_variable(16, name="z")
    gen = L.Sequential([L.Dense((32, 2, 2), activation=mg.relu, name="fc"),
                        L.ConvolutionTranspose((3, 3), 8, strides=2, pad=True, output_shape=(4, 4),
                                               activation=mg.relu, name="up1"),
                        L.ConvolutionTranspose((4, 4), 1, strides=2, pad=True, output_shape=(8, 8),
                                               activation=mg.sigmoid, name="up2")])
    return gen(z)


def test_generator_layers_are_clusters_holding_their_parameters():
    img = generator()
    dot = mg.plot(img)
    boxes, _ = parse_dot(dot)
    clusters = clusters_of(dot)
    where = {words(boxes[k]): clusters[k] for k in boxes}
    # parameters are made when the layer is, before the Sequential exists: drawn where they are used
    assert where["Parameter W (32, 8, 3, 3) 2,304 values"] == ("Sequential", "up1 ConvolutionTranspose")
    assert where["Parameter b (1, 1, 1) 1 value"] == ("Sequential", "up2 ConvolutionTranspose")
    assert where["Input z (16,)"] == ()
    up1 = box_of(boxes, "ConvolutionTranspose (8, 4, 4)")
    assert "lower_pad (1, 1) · upper_pad (0, 0)" in up1 and "output_shape (4, 4)" in up1
    up2 = box_of(boxes, "ConvolutionTranspose (1, 8, 8)")
    assert "lower_pad (1, 1) · upper_pad (1, 1)" in up2
    assert clusters[box_of_id(boxes, "Sigmoid up2")] == ("Sequential", "up2 ConvolutionTranspose")


def test_generator_collapsed_shows_each_layer_with_shape_pads_and_parameters():
    dot = mg.plot(generator(), collapse_layers=True)
    boxes, edges = parse_dot(dot)
    assert [words(boxes[k]) for k in ("n0", "L0")] == ["Input z (16,)", "fc Dense (32, 2, 2) 2,176 parameters"]
    assert words(boxes["L1"]) == ("up1 ConvolutionTranspose (8, 4, 4) kernel_shape (3, 3) · strides (2, 2) "
                                  "dilation (1, 1) · groups 1 lower_pad (1, 1) · upper_pad (0, 0) "
                                  "output_shape (4, 4) 2,312 parameters ⚠ uneven-overlap")
    assert words(boxes["L2"]).startswith("up2 ConvolutionTranspose (1, 8, 8)")
    assert edges == [("n0", "L0", "(16,)"), ("L0", "L1", "(32, 2, 2)"), ("L1", "L2", "(8, 4, 4)")]
    assert clusters_of(dot) == {"n0": (), "L0": ("Sequential",), "L1": ("Sequential",), "L2": ("Sequential",)}


def test_generator_renders_to_png(tmp_path):
    from PIL import Image
    path = tmp_path / "generator.png"
    mg.plot(generator(), path, dpi=120)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 1000
