"""Old formats named as such: XGBoost's legacy binary model, ONNX files that spell the default domain
"ai.onnx" (skl2onnx 1.4), and graphs that read a feature beyond the input width they declare."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from optimizer_core.cli import main
from optimizer_core.converters import convert
from optimizer_core.errors import UnsupportedModelError
from optimizer_core.models import load_model
from optimizer_core.models.xgboost_legacy import read_header

FIXTURE = Path(__file__).parents[1] / "fixtures" / "xgboost-1.7.6-legacy-binary.model"


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]


# -- XGBoost legacy binary ----------------------------------------------------------------------------------


def test_legacy_xgboost_file_is_named_with_how_to_convert_it(tmp_path, capsys) -> None:
    """Regression: reported as "not a recognised model format ... not truncated"."""
    with pytest.raises(UnsupportedModelError) as err:
        load_model(FIXTURE)
    text = str(err.value)
    assert "legacy binary format" in text and "written by XGBoost 1.7" in text
    assert "objective binary:logistic, 3 features" in text and "save_model('model.json')" in text
    assert "xgboost==1.7.*" in text and "not a recognised model format" not in text
    _one_line_exit_2(["convert", str(FIXTURE), "--out", str(tmp_path / "m.onnx")], capsys, "legacy binary format")


def _legacy_bytes(*, magic: bool, major: int, objective: bytes, booster: bytes = b"gbtree") -> bytes:
    param = struct.pack("<fIiiiII", 0.0, 7, 3, 1, 0, major, 0 if major == 0 else 2) + bytes(136 - 28)
    names = struct.pack("<Q", len(objective)) + objective + struct.pack("<Q", len(booster)) + booster
    return (b"binf" if magic else b"") + param + names + bytes(64)


def test_legacy_header_before_xgboost_1_and_in_a_memory_snapshot() -> None:
    old = read_header(_legacy_bytes(magic=False, major=0, objective=b"multi:softprob"))
    assert old is not None and old.version is None and old.num_class == 3 and old.num_feature == 7
    with pytest.raises(UnsupportedModelError, match=r"before 1\.0; objective multi:softprob, 7 features, 3 classes"):
        load_model(_legacy_bytes(magic=False, major=0, objective=b"multi:softprob"), name="old.bst")
    snapshot = b"CONFIG-offset:" + struct.pack("<q", 300) + _legacy_bytes(magic=False, major=1, objective=b"reg:linear")
    assert read_header(snapshot).version == "1.2"


@pytest.mark.parametrize(
    "data",
    [
        _legacy_bytes(magic=True, major=1, objective=b"not an objective"),
        _legacy_bytes(magic=True, major=1, objective=b"binary:logistic", booster=b"forest"),
        b"binf" + bytes(100),
        bytes(300),
    ],
)
def test_bytes_that_only_resemble_the_legacy_header_are_not_taken_for_it(data: bytes) -> None:
    assert read_header(data) is None


# -- the default domain spelled "ai.onnx" ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def logreg() -> tuple[LogisticRegression, np.ndarray]:
    X = np.random.default_rng(0).standard_normal((100, 4)).astype(np.float32)
    return LogisticRegression().fit(X, (X[:, 3] > 0).astype(int)), X


@pytest.mark.parametrize("on_nodes", [False, True], ids=["opset-import", "opset-import-and-nodes"])
def test_default_domain_spelled_ai_onnx_is_read(logreg, on_nodes: bool) -> None:
    """Regression: skl2onnx 1.4 (2019) wrote the default domain as "ai.onnx"; ONNX Runtime runs such a file
    but the onnx checker (and so this tool) refused the node form as an invalid model."""
    estimator, X = logreg
    proto = to_onnx(estimator, X[:1], target_opset={"": 9, "ai.onnx.ml": 1})
    for op in proto.opset_import:
        op.domain = "ai.onnx" if op.domain == "" else op.domain
    for node in proto.graph.node if on_nodes else ():
        node.domain = "ai.onnx" if node.domain == "" else node.domain
    data = proto.SerializeToString()
    ort.InferenceSession(data, providers=["CPUExecutionProvider"])  # valid for ONNX Runtime
    model = load_model(data, name="skl2onnx-1.4.onnx")
    np.testing.assert_allclose(model.predict_scores(X), estimator.predict_proba(X), atol=1e-6)
    converted = convert(model)
    assert {op.domain for op in converted.opset_import} == {"", "ai.onnx.ml"}
    session = ort.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["scores"], {"input": X})[0], estimator.predict_proba(X), atol=1e-6)


# -- a feature index beyond the declared input width ---------------------------------------------------------


def _narrowed(estimator: object, X: np.ndarray, width: int) -> bytes:
    proto = to_onnx(estimator, X[:1])
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = width
    return proto.SerializeToString()


def test_tree_reading_a_feature_beyond_the_input_width_is_named(tmp_path, capsys) -> None:
    X = np.random.default_rng(0).standard_normal((100, 4)).astype(np.float32)
    forest = RandomForestClassifier(3, random_state=0).fit(X, (X[:, 3] > 0).astype(int))
    path = tmp_path / "narrow.onnx"
    path.write_bytes(_narrowed(forest, X, 3))
    with pytest.raises(UnsupportedModelError, match=r"\(TreeEnsembleClassifier\) reads feature index 3, beyond the "
                                                    r"3 features its input 'X' declares \(indices 0 to 2\)"):
        load_model(path)
    _one_line_exit_2(["convert", str(path), "--out", str(tmp_path / "out.onnx")], capsys, "reads feature index 3")


def test_linear_model_whose_coefficients_do_not_fit_the_input_width_is_refused(logreg) -> None:
    """ONNX Runtime runs this one without a word, with misaligned coefficients: a silent wrong answer."""
    estimator, X = logreg
    data = _narrowed(estimator, X, 3)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    session.run(None, {"X": X[:2, :3]})  # no error from ONNX Runtime
    with pytest.raises(UnsupportedModelError, match=r"\(LinearClassifier\) holds 8 coefficients, which do not fit the "
                                                    r"3 features its input 'X' declares"):
        load_model(data, name="narrow.onnx")


def test_models_that_fit_their_width_are_not_refused(logreg) -> None:
    estimator, X = logreg
    load_model(onnx.load_from_string(to_onnx(estimator, X[:1]).SerializeToString()).SerializeToString())
