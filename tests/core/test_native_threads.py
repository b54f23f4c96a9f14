"""The native model on one thread beside its default threads: timed in every run, and the headline ratio and
the recommendation compare against the faster of the two (a busy machine makes the default far slower)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from optimizer_core import native_threads
from optimizer_core import summary as F
from optimizer_core.config import OptimizeConfig
from optimizer_core.models import model_from_object
from optimizer_core.report import Report
from optimizer_core.tune import recommend
from tests.core.report_factory import make_latency, make_report


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def xgb(data):
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=10, max_depth=3).fit(*data)


def test_which_models_already_run_on_one_thread(data, xgb):
    import lightgbm
    import xgboost

    X, y = data
    assert native_threads.runs_single_threaded(RandomForestClassifier(n_estimators=3).fit(X, y))  # joblib: 1 job
    assert not native_threads.runs_single_threaded(RandomForestClassifier(n_estimators=3, n_jobs=-1).fit(X, y))
    assert not native_threads.runs_single_threaded(
        make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, n_jobs=2)).fit(X, y))
    assert not native_threads.runs_single_threaded(xgb)  # XGBoost reads n_jobs=None as every core
    assert native_threads.runs_single_threaded(xgboost.XGBClassifier(n_estimators=3, n_jobs=1).fit(X, y))
    booster = xgb.get_booster().copy()
    assert not native_threads.runs_single_threaded(booster)
    booster.set_param({"nthread": 1})
    assert native_threads.runs_single_threaded(booster)
    lgbm = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=3)
    assert not native_threads.runs_single_threaded(lgbm)  # a Booster predicts on OpenMP's default
    assert not native_threads.runs_single_threaded(lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y))


def test_pinned_predictors_predict_the_same_and_leave_the_model_untouched(data, xgb):
    import lightgbm

    X, y = data
    forest = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, n_jobs=2, random_state=0))
    booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=5)
    for model in (xgb, xgb.get_booster(), forest.fit(X, y), booster,
                  lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)):
        loaded = model_from_object(model)
        pinned = native_threads.single_thread_predictor(loaded, cores=2)
        assert pinned is not None, type(model)
        np.testing.assert_allclose(pinned(X[:20]), loaded.predictor(X[:20]), rtol=1e-6, atol=1e-7)
    assert forest.get_params()["randomforestclassifier__n_jobs"] == 2
    pinned_forest = native_threads.pinned_clone(forest, 1)
    assert pinned_forest.steps[-1][1].n_jobs == 1
    assert pinned_forest.steps[-1][1].estimators_ is forest.steps[-1][1].estimators_  # shared, not copied
    assert xgb.get_params()["n_jobs"] is None
    assert native_threads.single_thread_predictor(model_from_object(xgb), cores=1) is None
    assert native_threads.single_thread_predictor(model_from_object(LogisticRegression().fit(X, y)), cores=2) is None


def test_lightgbm_is_asked_for_one_thread_per_call(data, monkeypatch):
    import lightgbm

    X, y = data
    booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=3)
    wrapper = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
    seen = []
    original = lightgbm.Booster.predict

    def predict(self, data, *args, **kwargs):
        seen.append(kwargs.get("num_threads"))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(lightgbm.Booster, "predict", predict)
    native_threads.pinned_predictor(model_from_object(booster), 1)(X[:3])
    native_threads.pinned_predictor(model_from_object(wrapper), 1)(X[:3])
    assert seen == [1, 1]
    assert wrapper.get_params()["n_jobs"] is None  # the user's wrapper is not changed


def _untuned(native_p50: float, single_p50: float, fp32_p50: float, *, noisy_single: bool = False) -> Report:
    report = make_report(variants=("native", "fp32"))
    variants = []
    for v in report.variants:
        p50 = native_p50 if v.precision == "native" else fp32_p50
        variants.append(dataclasses.replace(v, latency=(make_latency(1, p50, calls=600, seed=1),)))
    single = dataclasses.replace(variants[0], name="native t1", latency=(
        dataclasses.replace(make_latency(1, single_p50, calls=600, seed=2), noisy=noisy_single,
                            noise_reasons=("busy",) if noisy_single else ()),))
    report = dataclasses.replace(report, variants=tuple(variants), native_configurations=(single,), tuning=None)
    return dataclasses.replace(report, recommendation=recommend(report, tolerance=1e-4))


def test_the_headline_and_the_recommendation_use_the_faster_native_configuration():
    """Regression: an untuned run quoted fp32 against native at its default threads only, which a busy machine
    slows enormously (the same model: 14.7x on a quiet machine, 2,508x on a busy one)."""
    slow_default = _untuned(native_p50=28_000.0, single_p50=140.0, fp32_p50=10.0)
    h = F.headline_values(slow_default)
    assert h["speedup_batch1"] == pytest.approx(14.0, rel=1e-3)
    assert h["speedup_baseline"] == "native t1" and h["speedup_tuned"] is False
    assert "vs native t1" in F.headline(slow_default)["Speedup at batch 1"]
    assert "14.0x faster than native t1" in slow_default.recommendation.details["1"]

    fast_default = _untuned(native_p50=120.0, single_p50=140.0, fp32_p50=10.0)
    h = F.headline_values(fast_default)
    assert h["speedup_baseline"] == "native" and h["speedup_batch1"] == pytest.approx(12.0, rel=1e-3)

    native_wins = _untuned(native_p50=28_000.0, single_p50=8.0, fp32_p50=10.0)
    rec = native_wins.recommendation
    assert rec.by_batch_size == {"1": "native"} and rec.configuration(1) == "native t1"
    assert "num_threads=1 for LightGBM" in rec.details["1"]


def test_a_noisy_single_thread_baseline_marks_the_headline_noisy():
    assert F.headline_values(_untuned(28_000.0, 140.0, 10.0, noisy_single=True))["speedup_noisy"] is True
    assert F.headline_values(_untuned(28_000.0, 140.0, 10.0))["speedup_noisy"] is False


def test_native_configurations_survive_report_json():
    report = _untuned(28_000.0, 140.0, 10.0)
    back = Report.from_json(report.to_json())
    assert [v.name for v in back.native_configurations] == ["native t1"]
    assert back.measured("native t1").latency[0].p50_us == pytest.approx(140.0, rel=1e-6)
    assert json.loads(report.to_json())["native_configurations"][0]["precision"] == "native"
    older = json.loads(report.to_json())
    del older["native_configurations"]  # reports written before the field
    assert Report.from_dict(older).native_configurations == ()


def test_a_run_times_native_on_one_thread_and_quotes_the_faster(data, xgb, monkeypatch):
    """A default-threads native made slow on purpose (as a busy machine makes it): the run times native t1 beside
    it, and the headline, the recommendation and the explanations compare fp32 with native t1."""
    from optimizer_core import optimize, pipeline

    monkeypatch.setattr(pipeline, "physical_cores", lambda: 2)
    X, y = data
    loaded = model_from_object(xgb)
    fast = loaded.predictor

    def slow_default(batch):
        time.sleep(0.003)
        return fast(batch)

    report = optimize(dataclasses.replace(loaded, predictor=slow_default), X, OptimizeConfig(
        precisions=("fp32",), batch_sizes=(1, 16), budget_s=2.0), y=y)
    single = report.measured("native t1")
    assert [v.name for v in report.variants] == ["native", "fp32"]  # the variants are unchanged
    assert single is not None and single.precision == "native"
    assert [s.batch_size for s in single.latency] == [1, 16]
    native_p50 = report.native.latency_at(1).p50_us
    assert native_p50 >= 3000 > single.latency_at(1).p50_us
    h = F.headline_values(report)
    assert h["speedup_baseline"] == "native t1"
    assert h["speedup_batch1"] == pytest.approx(single.latency_at(1).p50_us / report.variant("fp32").latency_at(1).p50_us)
    assert "than native t1" in report.recommendation.details["1"] or report.recommendation.configuration(1) == "native t1"
    assert any("comparisons use native t1" in line for line in report.explanations)
    assert json.loads(report.to_json())["native_configurations"][0]["name"] == "native t1"


def test_every_variants_table_lists_native_t1_right_under_native():
    """The CLI table, report.html and the notebook display list the native model on one thread where they list
    native, with its timings from report.json and no drift of its own (it is the native model, timed only)."""
    import re

    from optimizer_core.views.cli_table import format_summary
    from optimizer_core.views.html import render_html
    from optimizer_core.views.notebook import report_html

    report = Report.from_json(_untuned(28_000.0, 140.0, 10.0).to_json())  # as a stored run reads it back
    assert [v.name for v in F.listed_variants(report)] == ["native", "native t1", "fp32"]
    assert F.is_native_configuration(report, report.native_configurations[0])
    assert not F.is_native_configuration(report, report.native)
    names = [line.split("  ")[0].strip() for line in format_summary(report).splitlines()[3:6]]
    assert names == ["native", "native t1", "fp32"]
    for page in (render_html(report), report_html(report, figures=False)):
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S)
        first_cells = [re.sub(r"<[^>]+>", "", re.split(r"</td>", row)[0]).strip() for row in rows if "<td" in row]
        variants = [c for c in first_cells if c in ("native", "native t1", "fp32")]
        assert variants[:3] == ["native", "native t1", "fp32"], variants
        single_row = next(row for row in rows if re.search(r"<td[^>]*>(<span[^>]*></span>)?native t1</td>", row))
        assert "140" in single_row and "reference" not in single_row
