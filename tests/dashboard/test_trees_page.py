"""Tree ensembles on the dashboard: the "trees kept" choice (a default sweep for every tree ensemble), the metric
tolerance, and the Trade-offs tab's frontier of a stored run with truncated variants."""

from __future__ import annotations

import dataclasses

import pytest

from dashboard import state
from optimizer_core.history import HistoryStore
from tests.core.tree_report_factory import make_tree_report
from tests.dashboard.conftest import assert_clean, new_app, texts, upload, widget


@pytest.fixture
def submitted(monkeypatch) -> list:
    requests: list = []

    def fake_submit(request, model_name, csv_name, demo, inputs=None):
        requests.append(request)
        return "0" * 12

    monkeypatch.setattr(state, "submit", fake_submit)
    return requests


def test_the_demo_offers_trees_kept_with_a_default_sweep_and_submits_it(submitted, history_db):
    at = new_app().run()  # the XGBoost demo: a tree ensemble
    assert_clean(at)
    trees = widget(at.multiselect, "Trees kept")
    assert trees.value == ["25%", "50%", "75%"]
    assert any("XGBoost rounds: 200" in c for c in texts(at.caption))
    at.button(key="run").click().run()
    assert_clean(at)
    (request,) = submitted
    assert request.config.trees == ("25%", "50%", "75%") and request.config.max_metric_loss is None


def test_metric_tolerance_is_submitted_with_a_target_and_off_without_one(submitted, history_db):
    at = new_app().run()
    at.selectbox(key="max-metric-loss").set_value(0.001).run()
    at.button(key="run").click().run()
    assert_clean(at)
    assert submitted[-1].config.max_metric_loss == 0.001
    widget(at.selectbox, "Target column").set_value("(none)").run()
    assert at.selectbox(key="max-metric-loss").disabled
    assert "Choose a target column to judge variants by their metric." in texts(at.caption)
    at.button(key="run").click().run()
    assert submitted[-1].config.max_metric_loss is None


def test_a_model_without_trees_says_why_instead(model_files, csv_bytes, submitted, history_db):
    at = upload(new_app().run(), model_files["sklearn"], ("holdout.csv", csv_bytes))
    assert_clean(at)
    assert not [w for w in at.multiselect if str(w.label).startswith("Trees kept")]
    assert any(c.startswith("Trees kept: not applicable to this model:") for c in texts(at.caption))
    at.button(key="run").click().run()
    assert submitted[-1].config.trees == ()


def test_trade_offs_tab_shows_the_frontier_table_and_deploy_snippets(history_db):
    report = dataclasses.replace(make_tree_report(max_metric_loss=0.002), run_id="run-t")
    HistoryStore(history_db).save(report, model_name="model.json")
    at = new_app()
    at.query_params["run"] = "run-t"
    at.run()
    assert_clean(at)
    tables = [df.value for df in at.dataframe]
    trees = next(t for t in tables if "trees kept" in t.columns)
    assert list(trees["variant"]) == ["rounds-25", "rounds-50", "rounds-75", "fp32"]
    assert list(trees["may be recommended"]) == ["no", "yes", "yes", "yes"]
    assert "Δ ROC AUC" in trees.columns
    snippets = [c.value for c in at.code]
    assert any("iteration_range=(0, 50)" in s for s in snippets)
    assert any('InferenceSession("rounds-50.onnx"' in s for s in snippets)  # the downloaded file's name
    details = next(t for t in tables if "within tolerance" in t.columns)
    assert details.set_index("variant").loc["rounds-50", "within tolerance"].startswith("by metric (-0.0015")


def test_metric_tolerance_shows_its_default_on_first_render(history_db):
    # QA: the select showed "Choose an option" (a None value) instead of "off (drift only)"
    at = new_app().run()
    select = at.selectbox(key="max-metric-loss")
    assert select.value == "off" and select.format_func(select.value) == "off (drift only)"
    assert select.index == 0
