import numpy as np
import pandas as pd
import pytest

from optimizer_core.data import guess_target, load_dataset
from optimizer_core.errors import InputError
from optimizer_core.models.base import LoadedModel


def _model(names=("a", "b", "c")) -> LoadedModel:
    return LoadedModel(
        family="sklearn", estimator="Dummy", task="binary", n_features=3,
        feature_names=tuple(names) if names else None, classes=(0, 1), format="memory",
        source_bytes=0, source_sha256="", native=None, predictor=lambda X: np.zeros((len(X), 2)),
    )


def _csv(tmp_path, text: str | bytes, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_columns_matched_by_name_in_any_order_extra_ignored(tmp_path):
    path = _csv(tmp_path, "c,extra,a,b,label\n3,9,1,2,1\n6,9,4,5,0\n")
    ds = load_dataset(path, _model(), target="label")
    np.testing.assert_array_equal(ds.X, [[1, 2, 3], [4, 5, 6]])
    assert ds.ignored_columns == ("extra",)
    assert any("extra" in n for n in ds.notes)
    assert list(ds.y) == [1, 0]
    assert ds.column_mapping == "by-name"


def test_empty_cells_and_nan_stay_missing(tmp_path):
    path = _csv(tmp_path, "a,b,c\n1,,3\nNaN,2,nan\n")
    ds = load_dataset(path, _model())
    assert np.isnan(ds.X[0, 1]) and np.isnan(ds.X[1, 0]) and np.isnan(ds.X[1, 2])
    assert ds.X[0, 0] == 1


def test_positional_when_model_has_no_names(tmp_path):
    path = _csv(tmp_path, "x,y,z\n1,2,3\n")
    ds = load_dataset(path, _model(names=None))
    assert ds.column_mapping == "positional"
    np.testing.assert_array_equal(ds.X, [[1, 2, 3]])


def test_semicolon_separated(tmp_path):
    ds = load_dataset(_csv(tmp_path, "a;b;c\n1;2;3\n"), _model())
    np.testing.assert_array_equal(ds.X, [[1, 2, 3]])


@pytest.mark.parametrize(
    ("content", "model_names", "fragment"),
    [
        ("", ("a", "b", "c"), "empty"),
        ("   \n\n", ("a", "b", "c"), "empty"),
        ("a,b,c\n", ("a", "b", "c"), "no data rows"),
        ("a,b,label\n1,2,0\n", ("a", "b", "c"), "missing 1 of the model's feature columns: 'c'"),
        ("a,b,c\n1,oops,3\n", ("a", "b", "c"), "column 'b' has a non-numeric value 'oops' at data row 1"),
        ("x,y\n1,2\n", None, "2 feature columns but the model expects 3"),
        ("x,y,z,w\n1,2,3,4\n", None, "pass --target"),
        ("a,b,c\n1,2,3\n4,5,6,7\n", ("a", "b", "c"), "not a well-formed CSV"),
        ("1,2,3\n4,5,6\n", None, "no header row"),
        ("a,a,c\n1,2,3\n", None, "duplicate column names"),
        ("a,b,c\n1,inf,3\n", ("a", "b", "c"), "infinite value"),
    ],
)
def test_bad_csv_errors_name_the_problem(tmp_path, content, model_names, fragment):
    path = _csv(tmp_path, content)
    with pytest.raises(InputError) as err:
        load_dataset(path, _model(model_names))
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_binary_and_non_utf8_content(tmp_path):
    with pytest.raises(InputError, match="binary"):
        load_dataset(_csv(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00"), _model())
    with pytest.raises(InputError, match="not UTF-8"):
        load_dataset(_csv(tmp_path, b"a,b,c\n1,2,3\n" + b"\xff\xfe9,9,9\n", "latin.csv"), _model())


def test_absent_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv", _model())
    with pytest.raises(InputError, match="folder"):
        load_dataset(tmp_path, _model())


def test_unknown_target_column(tmp_path):
    with pytest.raises(InputError, match="target column 'label' is not in"):
        load_dataset(_csv(tmp_path, "a,b,c\n1,2,3\n"), _model(), target="label")


def test_utf8_bom_header(tmp_path):
    ds = load_dataset(_csv(tmp_path, "\ufeffa,b,c\n1,2,3\n".encode()), _model())
    assert ds.feature_names == ("a", "b", "c")


def test_dataframe_and_array_inputs():
    frame = pd.DataFrame({"b": [2.0], "a": [1.0], "c": [3.0]})
    np.testing.assert_array_equal(load_dataset(frame, _model()).X, [[1, 2, 3]])
    ds = load_dataset(np.array([[1, 2, 3]]), _model(), y=[1])
    assert ds.rows == 1 and list(ds.y) == [1]
    with pytest.raises(InputError, match="shape"):
        load_dataset(np.zeros((2, 5)), _model())


def test_guess_target():
    assert guess_target(["f1", "Label"]) == "Label"
    assert guess_target(["f1", "y"]) == "y"
    assert guess_target(["f1", "f2"]) is None
