"""Fuzz the format sniffer and the loader: any bytes give a LoadedModel or an OptimizerError, nothing else.

Only parsers that are safe in-process are fuzzed here: the sniffer (json, protobuf) and the ONNX path
(protobuf, onnx checker, ONNX Runtime session creation, no inference). LightGBM's and XGBoost's C++
parsers are NOT fed mutated files in-process: a one-byte edit of a LightGBM text model aborts the
interpreter (SIGABRT, lightgbm 4.7), and an XGBoost JSON tree with an out-of-range child index loads
and then segfaults on predict (xgboost 3.2). Those files are only sniffed here; parsing them is the
job of the isolated worker process.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from optimizer_core.errors import ModelLoadError, OptimizerError
from optimizer_core.models import LoadedModel, load_model, sniff_format

FORMATS = {"pickle", "skops", "xgboost-json", "xgboost-ubj", "lightgbm-text", "onnx"}
# Formats whose parser is native code that can crash the process on crafted input (see module doc).
NATIVE_PARSER_FORMATS = {"xgboost-json", "xgboost-ubj", "lightgbm-text"}

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    """Tiny valid model files, one per format that has a parser."""
    import lightgbm as lgb
    import xgboost as xgb
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    X = rng.rand(60, 3)
    y = (X[:, 0] > 0.5).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 3, "min_data_in_leaf": 5, "verbose": -1},
                        lgb.Dataset(X, y), num_boost_round=2)
    xgb_booster = xgb.XGBClassifier(n_estimators=2, max_depth=2).fit(X, y).get_booster()
    X32 = X.astype(np.float32)
    return {
        "onnx": to_onnx(LogisticRegression().fit(X32, y), X32[:1]).SerializeToString(),
        "lightgbm-text": booster.model_to_string().encode(),
        "xgboost-json": bytes(xgb_booster.save_raw("json")),
        "xgboost-ubj": bytes(xgb_booster.save_raw("ubj")),
    }


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after 1-4 random edits: byte overwrite, truncation, insertion, deletion."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        edit = draw(st.sampled_from(["overwrite", "truncate", "insert", "delete"]))
        if edit == "overwrite":
            buf[i] = draw(st.integers(0, 255))
        elif edit == "truncate":
            del buf[i:]
        elif edit == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del buf[i : i + draw(st.integers(1, 64))]
    return bytes(buf)


# Prefixes steer random bytes into each branch of the sniffer (pickle, zlib, zip, JSON, protobuf).
steered_bytes = st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.sampled_from([b"\x80\x04", b"\x78\x9c", b"PK\x03\x04", b"{", b"  {\"learner\":", b"\x08\x07",
                               b"tree\n", b"(", b"c"]),
              st.binary(max_size=2048)).map(b"".join),
)


def _sniff_or_refuse(data: bytes) -> str | None:
    try:
        fmt = sniff_format(data)
    except OptimizerError as e:
        assert "\n" not in str(e)
        return None
    assert fmt in FORMATS
    return fmt


def _load_or_refuse(data: bytes) -> None:
    try:
        loaded = load_model(data)
    except OptimizerError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(loaded, LoadedModel)


@FUZZ
@given(data=steered_bytes)
def test_sniff_any_bytes(data: bytes) -> None:
    _sniff_or_refuse(data)


@FUZZ
@given(data=steered_bytes)
def test_load_any_bytes(data: bytes) -> None:
    assume(_sniff_or_refuse(data) not in NATIVE_PARSER_FORMATS)
    _load_or_refuse(data)


@pytest.mark.parametrize("fmt", ["onnx", "lightgbm-text", "xgboost-json", "xgboost-ubj"])
def test_seeds_sniff_as_their_format(fmt: str, seeds: dict[str, bytes]) -> None:
    assert sniff_format(seeds[fmt]) == fmt


@pytest.mark.parametrize("fmt", ["onnx", "lightgbm-text", "xgboost-json", "xgboost-ubj"])
@FUZZ
@given(data=st.data())
def test_sniff_mutated_model_files(fmt: str, seeds: dict[str, bytes], data: st.DataObject) -> None:
    _sniff_or_refuse(data.draw(mutated(seeds[fmt])))


@FUZZ
@given(data=st.data())
def test_load_mutated_onnx(seeds: dict[str, bytes], data: st.DataObject) -> None:
    mutant = data.draw(mutated(seeds["onnx"]))
    assume(_sniff_or_refuse(mutant) not in NATIVE_PARSER_FORMATS)
    _load_or_refuse(mutant)


EXTREME_INTS = st.one_of(st.integers(-3, 8), st.sampled_from([2**31 - 1, -(2**31), 2**40, -(2**63)]))


def _mutate_field(model: onnx.ModelProto, data: st.DataObject) -> None:
    """One structural edit: a node attribute, an op type or domain, or an input/output type or shape."""
    graph = model.graph
    target = data.draw(st.sampled_from(["attribute", "op", "io_type", "io_dim"]))
    if target in ("attribute", "op"):
        node = graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
        if target == "op" or not node.attribute:
            node.op_type = data.draw(st.sampled_from(["ZipMap", "Cast", "Identity", "Softmax", "If", "Nope"]))
            node.domain = data.draw(st.sampled_from(["", "ai.onnx.ml", "com.microsoft", "com.evil"]))
            return
        attr = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
        if len(attr.ints):
            attr.ints[data.draw(st.integers(0, len(attr.ints) - 1))] = data.draw(EXTREME_INTS)
        elif len(attr.floats):
            del attr.floats[data.draw(st.integers(0, len(attr.floats) - 1)):]
        elif len(attr.strings):
            attr.strings.append(data.draw(st.binary(max_size=8)))
        else:
            attr.i = data.draw(EXTREME_INTS)
        return
    value = data.draw(st.sampled_from(list(graph.input) + list(graph.output)))
    if not value.type.HasField("tensor_type"):
        value.type.sequence_type.elem_type.map_type.key_type = data.draw(st.integers(0, 20))
    elif target == "io_type":
        value.type.tensor_type.elem_type = data.draw(st.integers(0, 25))
    else:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[data.draw(st.integers(0, len(dims) - 1))].dim_value = data.draw(EXTREME_INTS)


@FUZZ
@given(data=st.data())
def test_load_structurally_mutated_onnx(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Well-formed protobuf with wrong attributes/types reaches the checker and ONNX Runtime (no inference)."""
    model = onnx.load_model_from_string(seeds["onnx"])
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate_field(model, data)
    _load_or_refuse(model.SerializeToString())


@FUZZ
@given(data=st.data())
def test_sniff_mutated_xgboost_json_documents(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Valid JSON with edited values still sniffs as XGBoost JSON (parsing it is left to the worker)."""
    doc = json.loads(seeds["xgboost-json"])
    trees = doc["learner"]["gradient_booster"]["model"]["trees"]
    tree = trees[data.draw(st.integers(0, len(trees) - 1))]
    key = data.draw(st.sampled_from(["left_children", "right_children", "split_indices", "parents"]))
    values = tree[key]
    values[data.draw(st.integers(0, len(values) - 1))] = data.draw(st.integers(-(2**63), 2**63 - 1))
    assert sniff_format(json.dumps(doc).encode()) == "xgboost-json"


# -- sniffer defects found by fuzzing (models/__init__.py is not this test's to fix) ---------------------


def test_deeply_nested_json_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError):
        sniff_format(b'{"a":' * 100_000)


def test_truncated_xgboost_json_is_not_sniffed_as_ubj(seeds: dict[str, bytes]) -> None:
    truncated = seeds["xgboost-json"][:500]
    with pytest.raises(ModelLoadError, match="JSON"):
        sniff_format(truncated)


def test_path_with_nul_byte_is_a_load_error() -> None:
    with pytest.raises(ModelLoadError):
        load_model("model\x00.onnx")
