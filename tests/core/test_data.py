import dataclasses
import gzip

import numpy as np
import pandas as pd
import pytest

from optimizer_core.data import check_columns, guess_target, load_dataset
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
        ("x,y,z,w\n1,2,3,4\n", None, "name the target column"),
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


# --------------------------------------------------------------------------- streaming reader (issue 7)


def test_ragged_rows_name_the_line(tmp_path):
    with pytest.raises(InputError, match=r"line 4 has 2 fields but the header has 3") as err:
        load_dataset(_csv(tmp_path, "a,b,c\n1,2,3\n\n7,8\n4,5,6\n"), _model())
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"line 3 has 4 fields"):
        load_dataset(_csv(tmp_path, "a,b,c\r\n1,2,3\r\n4,5,6,\r\n"), _model())
    with pytest.raises(InputError, match=r"line 3 opens a quoted value that is never closed"):
        load_dataset(_csv(tmp_path, 'a,b,c\n1,2,3\n4,"5,6\n7,8,9\n'), _model())


def test_line_endings_blank_lines_and_spaces(tmp_path):
    for text in ("a,b,c\r1,2,3\r4,5,6\r", "a,b,c\r\n1,2,3\r\n\r\n4,5,6", "\n\n a , b , c\n 1 , 2 , 3\n   \n4,5,6\n"):
        if text.startswith("\n"):
            text = text.replace(" a , b , c", "a,b,c")
        np.testing.assert_array_equal(load_dataset(text.encode(), _model()).X, [[1, 2, 3], [4, 5, 6]])


def test_tab_separated_row_of_empty_cells_is_a_row(tmp_path):
    ds = load_dataset(b"a\tb\tc\n\t\t\n1\t2\t3\n", _model())
    assert ds.rows == 2 and np.isnan(ds.X[0]).all()


def test_odd_cells_are_converted_or_named(tmp_path):
    ds = load_dataset(b'a,b,c\n"1",  ,N/A\n" 2 ",?,null\n', _model())
    np.testing.assert_array_equal(np.isnan(ds.X), [[False, True, True], [False, True, True]])
    assert list(ds.X[:, 0]) == [1, 2]
    with pytest.raises(InputError, match="column 'c' has a non-numeric value '0x10' at data row 2"):
        load_dataset(b"a,b,c\n1,2,3\n4,5,0x10\n", _model())


def test_duplicate_check_is_exact(tmp_path):
    ds = load_dataset(b"a,b,c,a.1\n1,2,3,4\n", _model())
    assert ds.ignored_columns == ("a.1",)


def _big_csv(rows: int, *, bad_row: int | None = None, cell: str = "oops") -> bytes:
    lines = ["a,b,c,label"]
    for i in range(rows):
        b = cell if i == bad_row else f"{i % 97}.25"
        lines.append(f"{i},{b},{'' if i % 10 == 0 else -i},{i % 2}")
    return ("\n".join(lines) + "\n").encode()


def test_large_file_streams_in_many_blocks(tmp_path, monkeypatch):
    import optimizer_core.csv_reader as csv_reader

    monkeypatch.setattr(csv_reader, "_BLOCK", 1 << 14)  # many record batches
    monkeypatch.setattr(csv_reader, "_CHUNK", 4099)  # many checking-pass chunks, at odd boundaries
    monkeypatch.setattr(csv_reader, "_PROGRESS_MIN_BYTES", 0)
    path = _csv(tmp_path, _big_csv(30_000))
    calls = []
    ds = load_dataset(path, _model(), target="label", progress=lambda stage, f: calls.append((stage, f)))
    assert ds.X.shape == (30_000, 3) and ds.X.flags.c_contiguous and ds.X.dtype == np.float64
    np.testing.assert_array_equal(ds.X[:, 0], np.arange(30_000))
    assert np.isnan(ds.X[::10, 2]).all() and ds.X[1, 2] == -1
    assert list(ds.y[:4]) == [0, 1, 0, 1]
    fractions = [f for _, f in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions) and len(calls) > 10
    import hashlib

    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    same = load_dataset(path.read_bytes(), _model(), target="label")
    np.testing.assert_array_equal(np.nan_to_num(same.X), np.nan_to_num(ds.X))


def test_bad_value_deep_in_a_large_file_names_its_row(tmp_path, monkeypatch):
    import optimizer_core.csv_reader as csv_reader

    monkeypatch.setattr(csv_reader, "_BLOCK", 1 << 14)
    with pytest.raises(InputError, match="column 'b' has a non-numeric value 'oops' at data row 25001"):
        load_dataset(_csv(tmp_path, _big_csv(30_000, bad_row=25_000)), _model())
    with pytest.raises(InputError, match="column 'b' has an infinite value at data row 20001"):
        load_dataset(_csv(tmp_path, _big_csv(30_000, bad_row=20_000, cell="-inf")), _model())


def test_cell_longer_than_a_block(tmp_path, monkeypatch):
    import optimizer_core.csv_reader as csv_reader

    monkeypatch.setattr(csv_reader, "_BLOCK", 1 << 12)
    text = "a,b,c,notes\n1,2,3," + "x" * 50_000 + "\n4,5,6,short\n"
    np.testing.assert_array_equal(load_dataset(text.encode(), _model()).X, [[1, 2, 3], [4, 5, 6]])


def test_non_utf8_offset_and_split_characters(tmp_path, monkeypatch):
    import optimizer_core.csv_reader as csv_reader

    monkeypatch.setattr(csv_reader, "_CHUNK", 5)  # multi-byte characters cut by every chunk boundary
    text = "a,b,c,é€😀\n1,2,3,é€😀é€😀\n"
    assert load_dataset(text.encode(), _model()).rows == 1
    bad = text.encode() + b"4,5,6,\xc3(\n"
    with pytest.raises(InputError, match=f"not UTF-8 text \\(byte {len(text.encode()) + 6} cannot"):
        load_dataset(bad, _model())
    with pytest.raises(InputError, match="not UTF-8"):
        load_dataset(text.encode() + b"4,5,6,\xe2\x82", _model())  # cut at the end of the file


def test_read_csv_table_keeps_raw_strings():
    from optimizer_core.csv_reader import read_csv_table

    frame, display, digest = read_csv_table(b"a;b\n1; x\n;2\n", name="t.csv")
    assert list(frame.columns) == ["a", "b"] and display == "t.csv" and len(digest) == 64
    assert frame["b"].tolist() == [" x", "2"] and frame["a"].tolist() == ["1", ""]


def test_long_cell_deep_in_the_file(monkeypatch):
    import optimizer_core.csv_reader as csv_reader

    monkeypatch.setattr(csv_reader, "_BLOCK", 1 << 12)
    rows = [f"{i},{i},{i},n" for i in range(2_000)]
    rows[1_500] = "1500,1500,1500," + "x" * 40_000
    ds = load_dataset(("a,b,c,notes\n" + "\n".join(rows) + "\n").encode(), _model())
    np.testing.assert_array_equal(ds.X[:, 0], np.arange(2_000))


@pytest.mark.parametrize("as_frame", [False, True])
def test_a_named_model_never_falls_back_to_file_order(tmp_path, as_frame):
    text = "w,x,y\n1,2,3\n"
    source = pd.read_csv(_csv(tmp_path, text)) if as_frame else _csv(tmp_path, text)
    with pytest.raises(InputError, match=r"none of .* columns match the model's feature names \(the model expects "
                                         r"'a', 'b', 'c'; the file has 'w', 'x', 'y'\)"):
        load_dataset(source, _model())


@pytest.mark.parametrize("as_frame", [False, True])
def test_names_differing_only_in_case_and_spaces_are_matched_with_a_note(tmp_path, as_frame):
    text = " C ,A,B,label\n3,1,2,0\n"
    source = pd.read_csv(_csv(tmp_path, text)) if as_frame else _csv(tmp_path, text)
    ds = load_dataset(source, _model(), target="label")
    np.testing.assert_array_equal(ds.X, [[1, 2, 3]])
    assert ds.column_mapping == "by-name-ignoring-case"
    assert any("ignoring case" in n for n in ds.notes)


def test_case_insensitive_matching_refuses_ambiguous_columns(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_dataset(_csv(tmp_path, "a,A,b,c2\n1,2,3,4\n"), _model(("a", "B", "c")))


def test_a_feature_column_chosen_as_target_is_named_as_such(tmp_path):
    with pytest.raises(InputError, match="target column 'b' is one of the model's feature columns"):
        load_dataset(_csv(tmp_path, "a,b,c,label\n1,2,3,0\n"), _model(), target="b")


def _classifier(classes=("setosa", "versicolor")) -> LoadedModel:
    return dataclasses.replace(_model(), classes=classes)


def test_target_values_outside_the_model_classes_are_named_not_silently_dropped(tmp_path):
    path = _csv(tmp_path, "a,b,c,label\n1,2,3,setosa\n1,2,3,Setosa\n1,2,3,versicolor\n1,2,3,\n")
    ds = load_dataset(path, _classifier(), target="label")
    assert any("1 of 4 rows has a 'label' value that is not among the model's classes ('Setosa')" in n
               for n in ds.notes)
    assert any("1 of 4 rows has no 'label' value" in n for n in ds.notes)


def test_a_target_with_no_known_class_says_metrics_are_skipped(tmp_path):
    path = _csv(tmp_path, "a,b,c,label\n1,2,3,SETOSA\n1,2,3,VERSICOLOR\n")
    ds = load_dataset(path, _classifier(), target="label")
    assert any(n.startswith("metrics skipped: none of the values in 'label' ('SETOSA', 'VERSICOLOR')") for n in ds.notes)


@pytest.mark.parametrize("as_frame", [False, True])
def test_a_non_numeric_regression_target_names_column_and_row(tmp_path, as_frame):
    text = "a,b,c,y\n1,2,3,1.5\n1,2,3,abc\n"
    source = pd.read_csv(_csv(tmp_path, text)) if as_frame else _csv(tmp_path, text)
    model = dataclasses.replace(_model(), task="regression", classes=None)
    with pytest.raises(InputError, match="target column 'y' has a non-numeric value 'abc' at data row 2"):
        load_dataset(source, model, target="y")


def test_text_in_a_categorical_models_column_points_at_category_codes(tmp_path):
    model = dataclasses.replace(_model(), categorical_features=(1,))  # column 'b' holds category codes
    with pytest.raises(InputError, match="non-numeric value 'b'.*the model reads 'b' as category codes: write each"):
        load_dataset(_csv(tmp_path, "a,b,c\n1,b,3\n"), model)
    # text elsewhere, or in the target, is not about category codes (the hint used to follow any text)
    with pytest.raises(InputError) as err:
        load_dataset(_csv(tmp_path, "a,b,c\nx,1,3\n", "other.csv"), model)
    assert "category codes" not in str(err.value)


def test_api_targets_are_checked_and_noted_like_csv_targets():
    model = _classifier()
    X = np.zeros((4, 3))
    with pytest.raises(InputError, match="y has 2 values but the data has 4 rows"):
        load_dataset(X, model, y=["setosa", "versicolor"])
    ds = load_dataset(X, model, y=np.array([["setosa"], ["Setosa"], ["versicolor"], [None]], dtype=object))
    assert ds.target == "y" and list(ds.y[:1]) == ["setosa"]
    assert any("1 of 4 rows has a 'y' value that is not among the model's classes ('Setosa')" in n for n in ds.notes)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    ds = load_dataset(frame, model, y=pd.Series(["SETOSA"] * 4))
    assert ds.target == "y" and any(n.startswith("metrics skipped") for n in ds.notes)
    with pytest.raises(InputError, match="y has shape"):
        load_dataset(frame, model, y=np.zeros((4, 2)))


def test_a_series_or_a_list_as_data_is_handled():
    with pytest.raises(InputError, match="pass a DataFrame with one row per sample"):
        load_dataset(pd.Series([1.0, 2.0, 3.0], index=["a", "b", "c"]), _model())
    ds = load_dataset([[1, 2, 3], [4, 5, 6]], _model(names=None))
    np.testing.assert_array_equal(ds.X, [[1, 2, 3], [4, 5, 6]])


def test_text_labels_for_a_model_that_only_knows_class_numbers_say_so(tmp_path):
    path = _csv(tmp_path, "a,b,c,species\n1,2,3,setosa\n1,2,3,virginica\n")
    ds = load_dataset(path, _classifier(classes=(0, 1, 2)), target="species")
    assert any("stores its classes as 0 to 2 without their names" in n for n in ds.notes)


def test_api_target_arguments_are_forgiving_and_unambiguous():
    frame = pd.DataFrame([[1.0, 2.0, 3.0, 1]], columns=[0, 1, 2, 3])
    ds = load_dataset(frame, _model(names=None), target=3)  # an integer column label
    assert ds.target == "3" and list(ds.y) == [1]
    with pytest.raises(InputError, match="either target= .* or y="):
        load_dataset(frame, _model(names=None), target=3, y=[1])


# --------------------------------------------------------------------------- QA round 3 (finding 16)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("a,b,c\n1,2,3\n".encode("utf-16"), r"is UTF-16 text: save it as UTF-8"),
        ("a,b,c\n1,2,3\n".encode("utf-16-le"), r"is UTF-16 text: save it as UTF-8"),
        ("a,b,c\n1,2,3\n".encode("utf-16-be"), r"is UTF-16 text: save it as UTF-8"),
        ("a,b,c\n1,2,3\n".encode("utf-32"), r"is UTF-32 text: save it as UTF-8"),
        (gzip.compress(b"a,b,c\n1,2,3\n", mtime=0), r"is gzip-compressed: decompress it first"),
        (b"PK\x03\x04\x14\x00\x00\x00", r"is a ZIP archive \(an Excel .xlsx file is one\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", r"is binary, not a CSV text file"),
    ],
    ids=["utf16-bom", "utf16-le", "utf16-be", "utf32", "gzip", "zip", "png"],
)
def test_utf16_and_compressed_files_are_named_for_what_they_are(tmp_path, content, words):
    """Regression: UTF-16 text and gzip files were both called "binary"."""
    with pytest.raises(InputError, match=words) as err:
        load_dataset(_csv(tmp_path, content), _model())
    assert "\n" not in str(err.value)


def test_a_pandas_index_column_is_ignored_with_a_note_for_a_model_with_feature_names(tmp_path):
    """Regression: DataFrame.to_csv() (index kept) gave "column 1 has no name"."""
    frame = pd.DataFrame({"c": [3.0, 6.0], "a": [1.0, 4.0], "b": [2.0, 5.0], "label": [1, 0]}, index=[7, 3])
    path = tmp_path / "with-index.csv"
    frame.to_csv(path)
    ds = load_dataset(path, _model(), target="label")
    np.testing.assert_array_equal(ds.X, [[1, 2, 3], [4, 5, 6]])
    assert ds.ignored_columns == () and list(ds.y) == [1, 0]
    assert any(n.startswith("column 1 has no name and looks like a pandas index") for n in ds.notes)
    read_back = _csv(tmp_path, "Unnamed: 0,a,b,c\n0,1,2,3\n", "again.csv")  # read with pandas, written again
    np.testing.assert_array_equal(load_dataset(read_back, _model()).X, [[1, 2, 3]])


def test_a_pandas_index_column_is_explained_for_a_model_that_takes_columns_by_position(tmp_path):
    path = _csv(tmp_path, ",x,y,z\n0,1,2,3\n")
    with pytest.raises(InputError, match=r"column 1 has no name and looks like a pandas index .*index=False"):
        load_dataset(path, _model(names=None))
    assert "pandas index" in check_columns(["", "x", "y", "z"], None, 3, None, "data.csv")
    assert check_columns(["", "a", "b", "c"], ("a", "b", "c"), 3, None, "data.csv") is None


def test_a_trailing_separator_in_the_header_is_named(tmp_path):
    with pytest.raises(InputError, match="column 4 has no name: the header row ends with a separator"):
        load_dataset(_csv(tmp_path, "a,b,c,\n1,2,3,\n"), _model())
    with pytest.raises(InputError, match="column 2 has no name: the first row must be a header"):
        load_dataset(_csv(tmp_path, "a,,c\n1,2,3\n"), _model())


@pytest.mark.parametrize("as_frame", [False, True])
def test_a_target_name_in_another_case_or_misspelt_is_suggested(tmp_path, as_frame):
    """Regression: --target Y listed the first 5 columns and never suggested 'y'."""
    text = "f1,f2,f3,f4,f5,f6,y\n1,2,3,4,5,6,1\n"
    source = pd.read_csv(_csv(tmp_path, text)) if as_frame else _csv(tmp_path, text)
    model = _model(names=("f1", "f2", "f3"))
    with pytest.raises(InputError, match=r"target column 'Y' is not in .*: did you mean 'y'\?"):
        load_dataset(source, model, target="Y")
    with pytest.raises(InputError, match=r"did you mean 'f6'\?"):
        load_dataset(source, model, target="F66")
    with pytest.raises(InputError, match="check the spelling, or run without a target") as err:
        load_dataset(source, model, target="species")
    assert "did you mean" not in str(err.value)


def test_counts_of_one_are_singular():
    with pytest.raises(InputError, match="y has 2 values but the data has 1 row: pass one per row"):
        load_dataset(np.zeros((1, 3)), _model(), y=[0, 1])
    with pytest.raises(InputError, match="has 1 feature column but the model expects 3"):
        load_dataset(pd.DataFrame({"x": [1.0]}), _model(names=None))


def test_thousands_of_ignored_columns_make_a_short_note(tmp_path):
    """Regression: a CSV with 2,970 extra columns produced a 46 KB note listing every one."""
    from optimizer_core.data import _ignored_note

    names = [f"extra_col_{i}" for i in range(2970)]
    note = _ignored_note(names)
    assert len(note) < 400 and note.startswith("2,970 columns not used by the model were ignored")
    assert "extra_col_9," in note and "extra_col_2969" in note and "extra_col_10," not in note
    assert _ignored_note(["a", "b"]) == "ignored columns not used by the model: a, b"


def test_a_feature_really_named_unnamed_0_is_read_not_dropped_as_an_index(tmp_path):
    """Regression: a model trained on a frame read from an index-carrying CSV has 'Unnamed: 0' as a feature;
    the index heuristic dropped it and then said the column was missing."""
    model = _model(names=("Unnamed: 0", "a", "b"))
    path = _csv(tmp_path, "Unnamed: 0,a,b\n7,1,2\n", "named.csv")
    np.testing.assert_array_equal(load_dataset(path, model).X, [[7, 1, 2]])
    assert check_columns(["Unnamed: 0", "a", "b"], ("Unnamed: 0", "a", "b"), 3, None, "named.csv") is None
