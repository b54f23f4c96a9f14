"""Fuzz CSV loading: any input gives a Dataset of the right shape or one InputError line, nothing else.

Inputs: arbitrary bytes, arbitrary text, and structured CSVs (random headers, numbers, empty cells,
words, quotes, separators, unicode, very long cells, ragged rows), each loaded from bytes and from a
file. Plus a round-trip property: a float matrix with NaNs written by pandas reads back exactly, by
name, whatever the column order.
"""

from __future__ import annotations

import os
import tempfile
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optimizer_core.data import Dataset, load_dataset
from optimizer_core.errors import InputError, OptimizerError
from optimizer_core.models.base import LoadedModel

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
NAMES = ("a", "b", "c")


def _model(names: tuple[str, ...] | None = NAMES, n_features: int | None = None) -> LoadedModel:
    n = n_features if n_features is not None else len(names or NAMES)
    return LoadedModel(
        family="sklearn", estimator="Dummy", task="binary", n_features=n,
        feature_names=tuple(names) if names else None, classes=(0, 1), format="memory",
        source_bytes=0, source_sha256="", native=None, predictor=lambda X: np.zeros((len(X), 2)),
    )


def _check(data: bytes, model: LoadedModel, target: str | None = None) -> Dataset | None:
    """Load from bytes and from a file: both agree, and each is a Dataset or a one-line InputError."""
    outcomes = []
    fd, path = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        for source in (data, path):
            try:
                ds = load_dataset(source, model, target=target, name="fuzz.csv")
            except InputError as e:
                message = str(e)
                assert message and "\n" not in message and "\r" not in message, repr(message)
                assert isinstance(e, OptimizerError)
                outcomes.append(("error", message))
                continue
            assert isinstance(ds, Dataset)
            assert ds.X.dtype == np.float64 and ds.X.ndim == 2 and ds.X.flags.c_contiguous
            assert ds.X.shape[1] == model.n_features and ds.X.shape[0] >= 1
            assert not np.isinf(ds.X).any()
            if ds.y is not None:
                assert ds.y.shape == (ds.X.shape[0],)
            outcomes.append(("ok", ds.X.shape, np.isnan(ds.X).tobytes(), np.nan_to_num(ds.X).tobytes()))
    finally:
        os.unlink(path)
    assert outcomes[0] == outcomes[1], "bytes and file sources disagree"
    return ds if outcomes[0][0] == "ok" else None


# --------------------------------------------------------------------------- unstructured input


@FUZZ
@given(data=st.binary(max_size=2048), positional=st.booleans())
def test_arbitrary_bytes(data, positional):
    _check(data, _model(None if positional else NAMES))


@FUZZ
@given(text=st.text(max_size=600), positional=st.booleans())
def test_arbitrary_text(text, positional):
    _check(text.encode("utf-8"), _model(None if positional else NAMES))


# --------------------------------------------------------------------------- structured CSVs

_NUMBER = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.floats(-1e6, 1e6).map(lambda f: f"{f:.3e}"),
    st.sampled_from(["1e400", "-0", ".5", "5.", "+3", " 7 ", "0x10", "1_000", "1,5", "١٢", "inf", "-nan"]),
)
_CELL = st.one_of(
    _NUMBER,
    _NUMBER,
    st.sampled_from(["", " ", "NA", "N/A", "nan", "NaN", "null", "NULL", "None", "?", '""', '" 1 "']),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(alphabet="\"',;|\t\r\n xé€😀", max_size=6),
    st.integers(1000, 70_000).map(lambda n: "9" * n),  # very long cells
)
_HEADER_NAME = st.one_of(
    st.sampled_from(["a", "b", "c", "label", "extra", "", " a", "a ", "1", "Unnamed: 0", '"a"', "a,b", "é"]),
    st.text(max_size=8),
)


@st.composite
def _csv_documents(draw):
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = draw(st.one_of(
        st.permutations(["a", "b", "c", "label"]).map(list),
        st.lists(_HEADER_NAME, min_size=1, max_size=6),
    ))
    n_rows = draw(st.integers(0, 8))
    rows = []
    for _ in range(n_rows):
        width = draw(st.one_of(st.just(len(header)), st.integers(0, len(header) + 2)))  # mostly well-formed
        rows.append([draw(_CELL) for _ in range(width)])
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8"), header


@FUZZ
@given(doc=_csv_documents(), positional=st.booleans(), use_target=st.booleans())
def test_structured_csv(doc, positional, use_target):
    data, header = doc
    target = "label" if use_target and "label" in header else None
    ds = _check(data, _model(None if positional else NAMES), target=target)
    if ds is not None and not positional:
        assert ds.feature_names == NAMES


@FUZZ
@given(doc=_csv_documents(), cut=st.integers(0, 4096), junk=st.binary(min_size=1, max_size=4))
def test_structured_csv_damaged(doc, cut, junk):
    """A structured CSV with a few bytes spliced in (invalid UTF-8, NUL, stray quotes)."""
    data, _ = doc
    cut = min(cut, len(data))
    _check(data[:cut] + junk + data[cut:], _model())


def _outcome(data: bytes, model: LoadedModel) -> tuple:
    try:
        ds = load_dataset(data, model, target=None, name="fuzz.csv")
    except InputError as e:
        return ("error", str(e))
    return ("ok", ds.X.shape, np.isnan(ds.X).tobytes(), np.nan_to_num(ds.X).tobytes(), ds.sha256)


@FUZZ
@given(doc=_csv_documents(), repeat=st.integers(1, 6), block=st.sampled_from([64, 256, 4096]),
       chunk=st.integers(1, 64))
def test_block_and_chunk_boundaries_do_not_change_the_result(doc, repeat, block, chunk):
    """Tiny pyarrow blocks and checking-pass chunks cut rows, \r\n pairs and UTF-8 characters."""
    import optimizer_core.csv_reader as data_module

    data, header = doc
    head, _, body = data.partition(b"\n")
    if body:
        body = body if body.endswith((b"\n", b"\r")) else body + b"\n"
        data = head + b"\n" + body * repeat
    model = _model()
    expected = _outcome(data, model)
    with mock.patch.object(data_module, "_BLOCK", block), mock.patch.object(data_module, "_CHUNK", chunk), \
            mock.patch.object(data_module, "_HEAD", max(chunk, 16)):
        got = _outcome(data, model)
    if expected[0] == got[0] == "error":
        return  # which of two problems is reported first may depend on where a block ends
    assert got == expected


# --------------------------------------------------------------------------- round trip


@st.composite
def _matrices(draw):
    rows = draw(st.integers(1, 40))
    cols = draw(st.integers(1, 6))
    values = draw(hnp.arrays(np.float64, (rows, cols),
                             elements=st.floats(allow_nan=True, allow_infinity=False, width=64)))
    order = draw(st.permutations(range(cols)))
    return values, list(order)


@FUZZ
@given(case=_matrices(), sep=st.sampled_from([",", ";", "\t", "|"]), extra=st.booleans())
def test_pandas_written_matrix_round_trips_by_name(case, sep, extra):
    values, order = case
    names = tuple(f"f{j}" for j in range(values.shape[1]))
    frame = pd.DataFrame(values, columns=list(names))[[names[j] for j in order]]
    if extra:
        frame.insert(0, "comment", ["x, \"quoted\"\nline"] * len(frame))
    data = frame.to_csv(index=False, sep=sep).encode("utf-8")
    assume(not all(c == "comment" or _is_number(c) for c in frame.columns))  # never: names are fN
    ds = load_dataset(data, _model(names), name="roundtrip.csv")
    assert ds.column_mapping == "by-name"
    np.testing.assert_array_equal(np.isnan(ds.X), np.isnan(values))
    np.testing.assert_array_equal(np.nan_to_num(ds.X), np.nan_to_num(values))
    assert ds.ignored_columns == (("comment",) if extra else ())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
