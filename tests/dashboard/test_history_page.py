"""The History page through AppTest: list, open read-only by ?run=ID, compare two runs, delete with
confirmation. Runs are stored directly (synthetic reports), so no job has to run."""

from __future__ import annotations

import dataclasses
import math

import pytest

from optimizer_core.history import HistoryStore
from tests.core.report_factory import make_report
from tests.dashboard.conftest import assert_clean, new_app, texts

HISTORY = "views/history.py"


@pytest.fixture
def stored(history_db):
    store = HistoryStore(history_db)
    a = dataclasses.replace(
        make_report("binary"),
        run_id="run-a",
        created_at="2025-01-01T10:00:00+00:00",
        artifacts={"model.fp32.onnx": b"a", "drift.csv": b"row\n0\n"},
    )
    b = dataclasses.replace(
        make_report("regression", batch_sizes=(1, 64)),
        run_id="run-b",
        created_at="2025-01-02T10:00:00+00:00",
        artifacts={"model.fp32.onnx": b"b"},
    )
    store.save(a, model_name="churn.json")
    store.save(b, model_name="price.txt")
    return store


def _history(query: dict[str, str] | None = None):
    """The History page; with ``query``, opened by its address (a new session), as a shared link is."""
    at = new_app()
    if query:
        at.query_params.update(query)
        at.run()
    else:
        at.run()
        at.switch_page(HISTORY)
        at.run()
    assert_clean(at)
    return at


def test_empty_history_says_how_to_fill_it(history_db):
    at = _history()
    assert any("No runs yet" in i for i in texts(at.info))


def test_lists_runs_newest_first_with_links(stored):
    at = _history()
    table = at.dataframe[0].value
    assert list(table["run id"]) == ["run-b", "run-a"]
    assert list(table["model"]) == ["price.txt", "churn.json"]
    assert list(table["open"]) == ["./run?run=run-b", "./run?run=run-a"]
    assert table["Speedup at batch 1"].iloc[1].endswith("vs native)")


def test_opens_a_stored_run_read_only_from_the_query_parameter(stored):
    at = _history({"run": "run-a"})
    assert at.title[0].value == "Run run-a"
    assert [m.label for m in at.metric][:2] == ["Speedup at batch 1", "Best throughput"]
    downloads = [b.label for b in at.get("download_button")]
    assert {"report.html", "report.json", "drift.csv", "model.fp32.onnx"} <= set(downloads)
    assert not [b for b in at.button if b.key in ("run", "delete")]  # nothing to change here


def test_a_shared_link_to_the_root_opens_the_run(stored):
    at = new_app()
    at.query_params["run"] = "run-b"
    at.run()
    assert_clean(at)
    assert at.title[0].value == "Run run-b"
    assert [m.value for m in at.metric][4] == "n/a"  # regression: no label flips


def test_unknown_run_is_an_error_not_an_exception(stored):
    at = _history({"run": "nope"})
    errors = texts(at.error)
    assert len(errors) == 1 and "nope" in errors[0]


def test_compare_two_runs_side_by_side(stored):
    at = _history()
    assert at.selectbox(key="compare-a").value == "run-a"
    assert at.selectbox(key="compare-b").value == "run-b"
    assert len(at.metric) == 10  # five headline metrics for each run
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    p50 = frames[("batch size", "variant", "run A", "run B", "B vs A")]
    row = p50[(p50["batch size"] == 1024) & (p50["variant"] == "native")].iloc[0]
    assert row["run A"].endswith("s") and row["run B"] == "—"  # run B did not measure batch 1024
    assert row["B vs A"] == "—"
    both = p50[(p50["run A"] != "—") & (p50["run B"] != "—")]
    assert not both.empty
    assert both["B vs A"].str.fullmatch(r"same|\d+\.\d\dx (slower|faster)").all()
    drift = frames[
        ("variant", "run A max |diff|", "run B max |diff|", "run A label flips", "run B label flips")
    ]
    assert set(drift["variant"]) == {"fp32", "int8"}
    assert (drift["run B label flips"] == "n/a").all()  # regression
    at.selectbox(key="compare-a").set_value("run-b").run()
    assert_clean(at)
    assert any("Pick two different runs" in i for i in texts(at.info))


def test_delete_asks_for_confirmation(stored):
    at = _history()
    at.selectbox(key="delete-which").set_value("run-a")
    at.button(key="delete").click().run()
    assert_clean(at)
    assert any("cannot be undone" in w for w in texts(at.warning))
    at.button(key="delete-cancel").click().run()
    assert [r.run_id for r in stored.list_runs()] == ["run-b", "run-a"]

    at.selectbox(key="delete-which").set_value("run-a")
    at.button(key="delete").click().run()
    at.button(key="delete-confirm").click().run()
    assert_clean(at)
    assert [r.run_id for r in stored.list_runs()] == ["run-b"]
    assert list(at.dataframe[0].value["run id"]) == ["run-b"]
    assert any(s.startswith("Deleted run run-a") for s in texts(at.success))  # said, not just gone


@pytest.mark.parametrize("destination", [HISTORY, "views/optimize.py"])
def test_leaving_a_stored_run_drops_it_from_the_address(stored, destination):
    """The History and Optimize tabs (and the 'All runs' link, a switch to History) leave ?run=ID behind,
    so a reload or a bookmark opens the page the user went to, not the stored run."""
    at = _history({"run": "run-a"})
    assert at.title[0].value == "Run run-a" and at.query_params == {"run": "run-a"}
    at.selectbox(key="stored-run-a-lat-batch").set_value(1024).run()  # using the run's own widgets keeps it
    assert at.title[0].value == "Run run-a" and at.query_params == {"run": "run-a"}

    at.switch_page(destination).run()  # Streamlit keeps the query string on a page switch
    assert_clean(at)
    assert "run" not in at.query_params
    assert at.title[0].value in ("Run history", "Optimize a model for ONNX Runtime")
    at.run()  # what a reload of that address shows
    assert at.title[0].value != "Run run-a"


# --------------------------------------------------------------------------- QA 3 #6 comparing unlike runs


def _different_work(at) -> list[str]:
    return [w for w in texts(at.warning) if "measured different work" in w]


def _compare_charts(monkeypatch) -> dict[str, object]:
    from dashboard import render

    drawn: dict[str, object] = {}
    original = render.chart

    def recording(fig, *, key):
        drawn[key] = fig
        return original(fig, key=key)

    monkeypatch.setattr(render, "chart", recording)
    return drawn


def test_comparing_different_models_warns_and_shares_the_y_axis(stored, monkeypatch):
    charts = _compare_charts(monkeypatch)
    at = _history()
    warning = _different_work(at)
    assert len(warning) == 1, texts(at.warning)
    assert "differ in model (A: churn.json · " in warning[0] and "B: price.txt · " in warning[0]
    assert '"B vs A" ratios below compare different work' in warning[0]
    a, b = charts["compare-A-throughput"], charts["compare-B-throughput"]
    assert a.layout.yaxis.range is not None and a.layout.yaxis.range == b.layout.yaxis.range
    low, high = a.layout.yaxis.range
    for fig in (a, b):  # every point of either chart inside the shared range (log axis: decades)
        ys = [math.log10(y) for trace in fig.data for y in trace.y if y and y > 0]
        assert low < min(ys) and max(ys) < high


def test_two_runs_of_the_same_model_and_data_compare_without_a_warning(history_db):
    store = HistoryStore(history_db)
    for run_id, day in (("run-1", "01"), ("run-2", "02")):
        report = dataclasses.replace(make_report("binary"), run_id=run_id, created_at=f"2025-01-{day}T10:00:00")
        store.save(report, model_name="churn.json")
    at = _history()
    assert at.selectbox(key="compare-a").value == "run-1"
    assert not _different_work(at)
    other_data = dataclasses.replace(store.load("run-1"), data={**store.load("run-1").data, "rows": 10})
    store.save(other_data, model_name="churn.json")
    at = _history()
    warning = _different_work(at)
    assert warning and "differ in data (A: 10 rows of synthetic.csv; B: 400 rows of synthetic.csv)" in warning[0]
    assert "model (" not in warning[0]


def test_history_shows_the_database_file_name_not_its_folder(stored, history_db):
    at = _history()
    caption = next(c for c in texts(at.caption) if c.startswith("Every finished run is saved here"))
    assert "history.db" in caption and str(history_db.parent) not in caption
