"""Property-based fuzzing (hypothesis) of what a user hands ACTIVE: annotation files in every
format, mutated at random, either load (into boxes that are all usable) or raise a DataError
naming the file, never another exception; and every numeric flag, given any text, either parses
(into a value in its range) or exits 2 with argparse's message, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from active.cli import build_parser
from active.data.convert import write_dataset
from active.data.dataset import load_dataset
from active.errors import DataError
from conftest import make_records

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

#: Text a field may be given: numbers of every kind, the special floats, and junk.
NUMBERISH = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-1e4, 1e4).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["nan", "-inf", "inf", "1e999", "-0", "", " ", "0x10", "1_0", "\u0663",
                     "1e-400", "3.", ".5", "--1", "+7"]),
    st.text(max_size=8),
)


def _one_frame(root: Path, fmt: str) -> Path:
    recs = [r for r in make_records(n_videos=1, n_frames=4, seed=3) if len(r) >= 2][:1]
    return write_dataset(recs, root, fmt)


def _check_load(path: Path, owned: Path) -> None:
    """Load ``path``: the records' boxes must be usable, or the error a DataError in ``owned``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = load_dataset(path)
    except DataError as exc:
        assert exc.path is not None, exc
        assert exc.path == owned or owned in exc.path.parents, exc
        assert str(exc).startswith(str(exc.path))
        return
    for r in records:
        b = r.boxes.astype(np.float64)
        assert np.isfinite(b).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= r.width).all() and (b[:, 3] <= r.height).all()
        assert len(r.labels) == len(b)


# ---------------------------------------------------------------- VOC XML (SVIA layout) ---

@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = _one_frame(tmp_path_factory.mktemp("voc") / "svia", "svia")
    xml = next((root / "Subset-A").glob("*.xml"))
    return root, xml, xml.read_text()


VOC_TAGS = ["width", "height", "xmin", "ymin", "xmax", "ymax", "name", "track_id", "size",
            "bndbox", "object", "annotation"]


@FUZZ
@given(tag=st.sampled_from(VOC_TAGS), nth=st.integers(0, 3), value=NUMBERISH)
def test_voc_field_values(voc, tag, nth, value) -> None:
    root, xml, original = voc
    parts = original.split(f"<{tag}>")
    if len(parts) > 1:
        i = 1 + nth % (len(parts) - 1)
        rest = parts[i].split(f"</{tag}>", 1)
        parts[i] = escape(value) + (f"</{tag}>" + rest[1] if len(rest) > 1 else "")
    xml.write_text(f"<{tag}>".join(parts))
    _check_load(root, xml)


@FUZZ
@given(cut=st.integers(0, 10**6), length=st.integers(0, 40), payload=st.binary(max_size=40))
def test_voc_bytes(voc, cut, length, payload) -> None:
    root, xml, original = voc
    data = original.encode()
    at = cut % (len(data) + 1)
    xml.write_bytes(data[:at] + payload + data[at + length:])
    _check_load(root, xml)


# ----------------------------------------------------------------------------- YOLO txt ---

@pytest.fixture(scope="module")
def yolo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = _one_frame(tmp_path_factory.mktemp("yolo") / "y", "yolo")
    return root, next((root / "labels").rglob("*.txt"))


@FUZZ
@given(lines=st.lists(st.lists(NUMBERISH.filter(lambda t: t.strip() and not any(
    c.isspace() for c in t)), min_size=0, max_size=7), max_size=4))
def test_yolo_label_lines(yolo, lines) -> None:
    root, label = yolo
    label.write_text("\n".join(" ".join(cols) for cols in lines), encoding="utf-8")
    _check_load(root, root)


@FUZZ
@given(content=st.binary(max_size=80))
def test_yolo_label_bytes(yolo, content) -> None:
    root, label = yolo
    label.write_bytes(content)
    _check_load(root, root)


# ---------------------------------------------------------------------------- COCO JSON ---

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=8)


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = _one_frame(tmp_path_factory.mktemp("coco") / "c", "coco")
    return path, json.loads(path.read_text())


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@FUZZ
@given(data=st.data())
def test_coco_structure(coco, data) -> None:
    path, original = coco
    doc = json.loads(json.dumps(original))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(_paths(doc))))
        value = data.draw(JSON)
        if not where:
            doc = value
            continue
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        if isinstance(parent, dict | list):
            parent[where[-1]] = value
    path.write_text(json.dumps(doc))  # NaN and Infinity included, as Python writes them
    _check_load(path, path)


@FUZZ
@given(cut=st.integers(0, 10**6), length=st.integers(0, 30), payload=st.binary(max_size=30))
def test_coco_bytes(coco, cut, length, payload) -> None:
    path, original = coco
    data = json.dumps(original).encode()
    at = cut % (len(data) + 1)
    path.write_bytes(data[:at] + payload + data[at + length:])
    _check_load(path, path)


# --------------------------------------------------------------- numeric CLI arguments ---

def _finite(v: float) -> bool:
    return math.isfinite(v)


#: (the command up to the flag, the flag, what a parsed value must satisfy)
FLAGS = [
    (["detect", "x.png"], "--conf", lambda v: 0 <= v <= 1),
    (["detect", "x.png"], "--iou", lambda v: 0 <= v <= 1),
    (["detect", "x.png"], "--max-det", lambda v: v >= 1),
    (["detect", "x.png"], "--threads", lambda v: v >= 1),
    (["detect", "x.png"], "--batch", lambda v: v >= 1),
    (["detect", "x.png"], "--imgsz", lambda v: all(32 <= x <= 4096 and x % 32 == 0 for x in v)),
    (["detect", "x.png"], "--um-per-px", lambda v: v > 0 and _finite(v)),
    (["analyze", "x.mp4"], "--conf", lambda v: 0 <= v <= 1),
    (["analyze", "x.mp4"], "--threads", lambda v: v >= 1),
    (["analyze", "x.mp4"], "--vap-window", lambda v: v >= 3 and v % 2 == 1),
    (["analyze", "x.mp4"], "--fps", lambda v: v > 0 and _finite(v)),
    (["analyze", "x.mp4"], "--chamber-depth", lambda v: v > 0 and _finite(v)),
    (["analyze", "x.mp4"], "--dilution", lambda v: v > 0 and _finite(v)),
    (["eval", "--weights", "w.pt", "--data", "d"], "--conf", lambda v: 0 <= v <= 1),
    (["eval", "--weights", "w.pt", "--data", "d"], "--iou", lambda v: 0 <= v <= 1),
    (["eval", "--weights", "w.pt", "--data", "d"], "--fold", lambda v: v >= 0),
    (["demo"], "--frames", lambda v: v >= 1),
    (["demo"], "--seed", lambda v: v >= 0),
    (["train"], "--threads", lambda v: v >= 1),
    (["train"], "--epochs", lambda v: all(x >= 0 for x in v)),
    (["train"], "--fold", lambda v: v >= 0),
    (["data", "split", "d", "--out", "s.json"], "--folds", lambda v: v == 0 or v >= 2),
    (["synth"], "--videos", lambda v: v >= 1),
    (["calibrate", "d", "--out", "p.json"], "--threads", lambda v: v >= 1),
    (["cv"], "--folds", lambda v: v >= 3),
    (["model", "info", "active-i"], "--runs", lambda v: v >= 0),
    (["rescorer", "--weights", "w", "--data", "d", "--split", "s", "--out", "r"], "--context",
     lambda v: v > 0 and _finite(v)),
]


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(which=st.integers(0, len(FLAGS) - 1), text=NUMBERISH, joined=st.booleans())
def test_numeric_flags_parse_or_exit_2(parser, which, text, joined) -> None:
    prefix, flag, ok = FLAGS[which]
    argv = [*prefix, f"{flag}={text}"] if joined else [*prefix, flag, text]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 2
        assert "error:" in err.getvalue()
        return
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    assert ok(value), (flag, text, value)
    if isinstance(value, float):
        assert _finite(value)
