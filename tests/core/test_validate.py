"""validate with the local engine: the same drift and metrics as run on the same rows, mergeable summaries
that do not depend on how the rows were split, worst rows that reproduce, and bad input refused in one line.
(The Ray engine against this one: test_validate_ray.py.)"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from optimizer_core import OptimizeConfig, load_model, optimize, validate
from optimizer_core.cli import main
from optimizer_core.errors import ConfigError, InputError, UnsupportedModelError
from optimizer_core.validation import sketch
from optimizer_core.validation.scoring import labelled_onnx_predictor, load_onnx
from tests.core.validation_data import classifier_files, regressor_files


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    return classifier_files(tmp_path_factory.mktemp("validate-clf"))


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    return regressor_files(tmp_path_factory.mktemp("validate-reg"))


def _run_fp32(model, csv, target):
    """What `run` measures for the fp32 variant on the same rows, with validate's one ONNX Runtime thread."""
    config = OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=1, threads=1)
    report = optimize(str(model), str(csv), config, target=target)
    return report.variant("fp32"), report.native


# --------------------------------------------------------------------------- mergeable summaries


def test_histogram_bounds_numpy_percentile_within_its_resolution_whatever_the_split():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.zeros(300), rng.lognormal(-16, 3, 5000), [np.inf] * 3])
    rng.shuffle(values)
    whole = sketch.Histogram.of(values)
    pieces = sketch.Histogram.empty()
    for part in np.array_split(values, 7)[::-1]:
        pieces = pieces.merge(sketch.Histogram.of(part))
    for q in (0.5, 0.9, 0.99, 0.999, 1.0):
        with np.errstate(invalid="ignore"):
            exact = float(np.percentile(values, 100 * q))
        exact = math.inf if math.isnan(exact) else exact  # inf - inf: the run reads it as unbounded too
        low, high = whole.quantile_bounds(q)
        assert (low, high) == pieces.quantile_bounds(q)
        assert low <= exact <= high
        if math.isfinite(exact) and exact > 0:
            assert high <= exact * (1 + sketch.RESOLUTION)
    assert whole.quantile_bounds(0.0) == (0.0, 0.0)  # a bin of zeros alone is exact


def test_frontier_gives_the_exact_largest_relative_drift_for_any_scale():
    rng = np.random.default_rng(1)
    sizes = rng.lognormal(0, 2, 3000)
    diffs = sizes * rng.uniform(0, 1e-7, 3000)
    diffs[17] = np.inf
    frontier = sketch.Frontier.empty()
    for s, d in zip(np.array_split(sizes, 5), np.array_split(diffs, 5), strict=True):
        frontier = frontier.merge(sketch.Frontier.of(s, d))
    assert frontier.sizes.size < 200  # a frontier, not every row
    finite = np.isfinite(diffs)
    for scale in (1e-3, 1.0, 7.5, 1e3):
        assert frontier.max_ratio(scale) == math.inf
        sub = sketch.Frontier.of(sizes[finite], diffs[finite])
        assert sub.max_ratio(scale) == np.max(diffs[finite] / np.maximum(sizes[finite], scale))


def test_exact_sums_do_not_depend_on_the_order():
    rng = np.random.default_rng(4)
    values = rng.lognormal(0, 8, 2000) * rng.choice([-1, 1], 2000)
    forward, backward = sketch.ExactSum(), sketch.ExactSum()
    for v in values:
        forward.add(v)
    halves = [sketch.ExactSum(), sketch.ExactSum()]
    for i, v in enumerate(values[::-1]):
        halves[i % 2].add(v)
    backward = halves[1].merge(halves[0])
    assert forward.value == backward.value == math.fsum(values)
    forward.add(math.inf)
    assert forward.value == math.inf


def test_top_rows_break_ties_by_file_then_row_whatever_the_merge_order():
    diffs = np.array([0.5, 0.1, 0.5, 0.5, 0.0])
    scores = np.zeros((5, 1))
    a = sketch.TopRows.of(3, diffs, 1, 10, scores, scores)
    b = sketch.TopRows.of(3, diffs, 0, 100, scores, scores)
    for merged in (a.merge(b, 3), b.merge(a, 3)):
        assert list(zip(merged.files.tolist(), merged.rows.tolist(), strict=True)) == [(0, 100), (0, 102), (0, 103)]


def test_roc_auc_from_histograms_is_within_its_stated_bound_of_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 4000)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    p[:500] = np.round(p[:500], 2)  # exact ties
    auc, bound = sketch.roc_auc_bounds(sketch.Histogram.of(p[y == 1], sketch.probability_keys(p[y == 1])),
                                       sketch.Histogram.of(p[y == 0], sketch.probability_keys(p[y == 0])))
    assert abs(auc - roc_auc_score(y, p)) <= bound + 1e-15
    assert bound < 1e-3


def test_probability_keys_are_monotone_and_fine_near_one():
    p = np.sort(np.concatenate([np.linspace(0, 1, 10001), [1 - 1e-9, 1 - 2e-9, 1e-300, 0.5, 1.5, -0.25]]))
    keys = sketch.probability_keys(p)
    assert np.all(np.diff(keys) >= 0)
    assert sketch.probability_keys(np.array([1 - 2e-9]))[0] < sketch.probability_keys(np.array([1 - 1e-9]))[0]


@pytest.mark.parametrize("classes", [(0, 1), ("1.0", "2.0"), ("no", "yes"), (False, True)])
def test_labels_encoded_once_per_value_match_the_runs_row_by_row_encoding(classes):
    from optimizer_core.drift import encode_target
    from optimizer_core.validation.scoring import encode_labels

    y = np.array([1, 1.0, True, "1", " 1 ", "1.0", None, float("nan"), 0, "no", "yes", 2, np.int64(1), "x", 1.5],
                 dtype=object)
    index, missing = encode_labels(np.tile(y, 3), classes)
    assert index.tolist() == encode_target(np.tile(y, 3), classes).tolist()
    assert missing.tolist() == [v is None or (isinstance(v, float) and math.isnan(v)) for v in np.tile(y, 3)]


# --------------------------------------------------------------------------- the same numbers as run


def test_local_classifier_matches_runs_drift_and_metrics_on_the_same_rows(clf):
    variant, native = _run_fp32(clf["model"], clf["all"], "label")
    result = validate(clf["model"], clf["onnx"], [clf["a"], clf["b"], clf["c"]], target="label", engine="local",
                      batch_rows=50)
    d, r = result.drift, variant.drift
    assert result.rows == r.rows == 569
    assert [f["rows"] for f in result.files] == [300, 150, 119]
    assert (d.max_abs, d.label_flips, d.above_thresholds) == (r.max_abs, r.label_flips, r.above_thresholds)
    assert d.mean_abs == pytest.approx(r.mean_abs, rel=1e-12)
    assert d.max_rel == pytest.approx(r.max_rel, rel=1e-12)  # the RMS scale is a sum of squares: last digits
    assert r.p99_abs <= d.p99_abs <= r.p99_abs * (1 + sketch.RESOLUTION)
    for name in ("accuracy", "f1", "log_loss"):
        assert result.metrics["onnx"][name] == pytest.approx(variant.metrics[name], rel=1e-12)
        assert result.metrics["native"][name] == pytest.approx(native.metrics[name], rel=1e-12)
    assert result.metrics["native"]["roc_auc"] == pytest.approx(native.metrics["roc_auc"], abs=1e-4)
    assert "roc_auc" in result.methods and "p99_abs" in result.methods
    # the worst rows: the run's, numbered from 1 in their own file
    run_worst = sorted(w.abs_diff for w in variant.drift_detail.worst)
    assert sorted(w.diff for w in result.worst_rows) == run_worst
    starts = {"a.parquet": 0, "b.csv": 300, "c.parquet": 450}
    run_rows = {w.row for w in variant.drift_detail.worst if w.abs_diff > run_worst[0]}
    ours = {starts[w.file.rsplit("/", 1)[1]] + w.row - 1 for w in result.worst_rows if w.diff > run_worst[0]}
    assert ours == run_rows


def test_worst_rows_reproduce_from_their_file_and_row(clf):
    result = validate(clf["model"], clf["onnx"], [clf["a"], clf["b"], clf["c"]], engine="local", batch_rows=33)
    native = load_model(clf["model"])
    scored = labelled_onnx_predictor(load_onnx(clf["onnx"].read_bytes(), "model.onnx"), 1)

    def onnx(X):
        return scored(X)[0]
    features = list(native.feature_names)
    for worst in result.worst_rows:
        path = worst.file
        frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        X = frame[features].iloc[[worst.row - 1]].to_numpy(dtype=np.float64)
        assert native.predict_scores(X)[0].tolist() == list(worst.native)
        assert np.asarray(onnx(X), dtype=np.float64)[0].tolist() == list(worst.onnx)
        assert np.abs(np.subtract(worst.native, worst.onnx)).max() == worst.diff


def test_the_numbers_do_not_depend_on_batch_size_or_file_order(clf):
    a = validate(clf["model"], clf["onnx"], [clf["a"], clf["b"], clf["c"]], target="label", engine="local",
                 batch_rows=7)
    b = validate(clf["model"], clf["onnx"], [clf["c"], clf["b"], clf["a"]], target="label", engine="local",
                 batch_rows=100_000)
    assert (a.drift.max_abs, a.drift.p99_abs, a.drift.label_flips) == \
        (b.drift.max_abs, b.drift.p99_abs, b.drift.label_flips)
    # per-batch sums change with the batches (the engines, given the same batches, agree exactly)
    assert a.drift.mean_abs == pytest.approx(b.drift.mean_abs, rel=1e-12)
    assert a.drift.max_rel == pytest.approx(b.drift.max_rel, rel=1e-12)
    # ties for the 20th place go to the file given first, so only the rows above them can be compared
    last = a.worst_rows[-1].diff
    assert {(w.file, w.row) for w in a.worst_rows if w.diff > last} == \
        {(w.file, w.row) for w in b.worst_rows if w.diff > last}
    assert a.metrics["onnx"]["roc_auc"] == b.metrics["onnx"]["roc_auc"]
    c = validate(clf["model"], clf["onnx"], [clf["a"], clf["b"], clf["c"]], target="label", engine="local",
                 batch_rows=100_000)
    assert [(w.file, w.row) for w in a.worst_rows] == [(w.file, w.row) for w in c.worst_rows]


def test_local_regressor_matches_runs_relative_drift(reg):
    variant, native = _run_fp32(reg["model"], reg["all"], "y")
    result = validate(reg["model"], reg["onnx"], [reg["a"], reg["b"]], target="y", engine="local", batch_rows=64)
    d, r = result.drift, variant.drift
    assert d.metric == r.metric == "max_rel"
    assert d.max_rel == pytest.approx(r.max_rel, rel=1e-12) and d.max_abs == r.max_abs
    assert r.p99_abs <= d.p99_abs <= r.p99_abs * (1 + sketch.RESOLUTION)
    for name in ("rmse", "mae", "r2"):
        assert result.metrics["onnx"][name] == pytest.approx(variant.metrics[name], rel=1e-9)
        assert result.metrics["native"][name] == pytest.approx(native.metrics[name], rel=1e-9)
    worst = result.worst_rows[0]
    assert worst.rel_diff is not None and worst.rel_diff <= d.max_rel


def test_multiclass_metrics_match_run(tmp_path):
    import xgboost as xgb
    from sklearn.datasets import load_iris

    from optimizer_core import convert

    data = load_iris(as_frame=True)
    X, y = data.data.rename(columns=lambda c: c.replace(" ", "_").strip("_()")), data.target
    xgb.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1).fit(X, y).save_model(tmp_path / "iris.json")
    (tmp_path / "iris.onnx").write_bytes(convert(load_model(tmp_path / "iris.json")).SerializeToString())
    frame = X.assign(species=y.to_numpy())
    frame.to_csv(tmp_path / "iris.csv", index=False)
    frame.iloc[::2].to_parquet(tmp_path / "even.parquet")
    frame.iloc[1::2].to_parquet(tmp_path / "odd.parquet")
    variant, _ = _run_fp32(tmp_path / "iris.json", tmp_path / "iris.csv", "species")
    result = validate(tmp_path / "iris.json", tmp_path / "iris.onnx", str(tmp_path / "*.parquet"), target="species",
                      engine="local", batch_rows=16)
    assert result.rows == 150 and len(result.files) == 2
    assert result.drift.max_abs == variant.drift.max_abs
    for name in ("accuracy", "f1", "log_loss"):
        assert result.metrics["onnx"][name] == pytest.approx(variant.metrics[name], rel=1e-12)
    assert result.metrics["onnx"]["roc_auc"] == pytest.approx(variant.metrics["roc_auc"], abs=1e-3)


# --------------------------------------------------------------------------- sources


def test_folders_globs_and_file_urls_find_the_same_files(clf, tmp_path):
    folder = tmp_path / "data"
    (folder / "part").mkdir(parents=True)
    pd.read_parquet(clf["a"]).to_parquet(folder / "part" / "x.parquet")
    pd.read_csv(clf["b"]).to_csv(folder / "y.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / "README.txt").write_text("not data")
    by_folder = validate(clf["model"], clf["onnx"], folder, engine="local")
    by_url = validate(clf["model"], clf["onnx"], f"file://{folder}", engine="local")
    by_glob = validate(clf["model"], clf["onnx"], [str(folder / "**" / "*.parquet"), str(folder / "*.csv")],
                       engine="local")
    for result in (by_folder, by_url, by_glob):
        assert result.rows == 450
        assert result.drift.max_abs == by_folder.drift.max_abs
    assert by_url.files[0]["path"].startswith("file://")
    assert any("1 file that is neither .csv nor .parquet was skipped" in n for n in by_folder.notes), by_folder.notes


def test_a_csv_with_spaces_around_numbers_is_read_as_run_reads_it(clf, tmp_path):
    frame = pd.read_csv(clf["b"]).astype(object)
    frame["mean_area"] = [f" {v} " for v in frame["mean_area"]]
    frame.iloc[5, 0] = "NA"
    frame.to_csv(tmp_path / "spaced.csv", index=False)
    result = validate(clf["model"], clf["onnx"], tmp_path / "spaced.csv", target="label", engine="local",
                      batch_rows=40)
    variant, _ = _run_fp32(clf["model"], tmp_path / "spaced.csv", "label")
    assert result.rows == 150 and result.drift.max_abs == variant.drift.max_abs


def test_target_notes_count_rows_across_files(clf, tmp_path):
    frame = pd.read_parquet(clf["a"])
    frame["label"] = frame["label"].astype(str).astype(object)  # text labels: "0", "1" match classes 0, 1
    frame.loc[3, "label"] = None
    frame.loc[4, "label"] = "maybe"
    frame.to_parquet(tmp_path / "odd.parquet")
    result = validate(clf["model"], clf["onnx"], [tmp_path / "odd.parquet", clf["b"]], target="label",
                      engine="local")
    assert any(n.startswith("1 of 450 rows has no 'label' value") for n in result.notes), result.notes
    assert any("'maybe'" in n and "left out of the metrics" in n for n in result.notes), result.notes


# --------------------------------------------------------------------------- refusals


def test_an_onnx_file_for_another_model_is_refused(clf, reg, tmp_path):
    import xgboost as xgb

    from optimizer_core import convert

    frame = clf["frame"]
    features = frame.drop(columns="label")

    def onnx_of(model, name):
        model.save_model(tmp_path / f"{name}.json")
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(convert(load_model(tmp_path / f"{name}.json")).SerializeToString())
        return path

    regressor = onnx_of(xgb.XGBRegressor(n_estimators=2).fit(features, frame["label"]), "same-features-regressor")
    renamed = onnx_of(xgb.XGBClassifier(n_estimators=2).fit(features.set_axis([f"f{i}" for i in range(8)], axis=1),
                                                             frame["label"]), "other-names")
    cases = [(reg["onnx"], UnsupportedModelError, "takes 5 features but the model takes 8"),
             (regressor, UnsupportedModelError, "is a regression model but the model is XGBClassifier"),
             (renamed, UnsupportedModelError, "converted from a model with other features"),
             (clf["model"], InputError, "not an ONNX file")]
    for onnx, error, fragment in cases:
        with pytest.raises(error, match=fragment):
            validate(clf["model"], onnx, clf["a"], engine="local")


def test_a_value_that_is_not_a_number_is_named_by_file_and_row(clf, tmp_path):
    frame = pd.read_parquet(clf["c"])
    frame["mean_texture"] = frame["mean_texture"].astype(str).astype(object)  # a text column, as some writers do
    frame.loc[100, "mean_texture"] = "twelve"
    frame.to_parquet(tmp_path / "late.parquet", row_group_size=30)
    with pytest.raises(InputError, match=r"late\.parquet: column 'mean_texture' has a non-numeric value 'twelve' "
                                         r"at data row 101"):
        validate(clf["model"], clf["onnx"], [clf["a"], tmp_path / "late.parquet"], engine="local", batch_rows=16)


def _cli(args, capsys):
    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", ["missing file", "unreadable parquet", "missing columns", "another model",
                                  "empty folder", "bad batch rows"])
def test_bad_input_exits_2_with_one_line_before_any_work(clf, reg, tmp_path, capsys, case):
    data, onnx, extra, fragment = str(clf["a"]), str(clf["onnx"]), [], ""
    if case == "missing file":
        data, fragment = str(tmp_path / "nope.parquet"), "does not exist"
    elif case == "unreadable parquet":
        (tmp_path / "cut.parquet").write_bytes(clf["a"].read_bytes()[:200])
        data, fragment = str(tmp_path / "cut.parquet"), "cut.parquet is not a readable Parquet file"
    elif case == "missing columns":
        pd.read_parquet(clf["a"]).drop(columns=["mean_area"]).to_parquet(tmp_path / "narrow.parquet")
        data, fragment = str(tmp_path / "narrow.parquet"), "narrow.parquet is missing 1 of the model's feature columns"
    elif case == "another model":
        onnx, fragment = str(reg["onnx"]), "made from another model"
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        data, fragment = str(tmp_path / "empty"), "holds no .csv or .parquet files"
    else:
        extra, fragment = ["--batch-rows", "0"], "--batch-rows must be"
    out = tmp_path / "out"
    code, stdout, err = _cli(["validate", str(clf["model"]), onnx, str(clf["b"]), data, "--engine", "local",
                              "--out", str(out), "--quiet", *extra], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()


def test_engine_ray_without_ray_is_one_line(clf, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, _, err = _cli(["validate", str(clf["model"]), str(clf["onnx"]), str(clf["a"]), "--engine", "ray"], capsys)
    assert code == 2
    assert err.strip() == ("error: --engine ray needs Ray: pip install 'inference-optimizer[scale]' "
                           "(or use --engine local)")
    with pytest.raises(ConfigError, match="--ray-address is for --engine ray"):
        validate(clf["model"], clf["onnx"], clf["a"], engine="local", ray_address="auto")


def test_cli_writes_validation_json_and_worst_rows_and_gates(clf, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _cli(["validate", str(clf["model"]), str(clf["onnx"]), str(clf["a"]), str(clf["b"]),
                              "--engine", "local", "--target", "label", "--max-drift", "1e-3", "--out", str(out)],
                             capsys)
    assert code == 0, err
    assert "gate passed" in stdout and "worst rows" in stdout and "roc_auc" in stdout
    assert [line for line in err.splitlines() if line.startswith("[")], "progress lines on stderr"
    doc = json.loads((out / "validation.json").read_text())
    for key in ("engine", "rows", "files", "drift", "metrics", "worst_rows", "rows_per_s", "workers"):
        assert key in doc
    assert doc["engine"] == "local" and doc["rows"] == 450 and doc["workers"] == 1
    assert set(doc["drift"]) >= {"rows", "max_abs", "mean_abs", "p99_abs", "max_rel", "label_flips",
                                 "label_flip_rate", "above_thresholds", "passed"}
    assert set(doc["worst_rows"][0]) >= {"file", "row", "native", "onnx", "diff"}
    worst = pd.read_csv(out / "worst_rows.csv")
    assert list(worst.columns[:3]) == ["file", "row", "diff"] and len(worst) == len(doc["worst_rows"]) == 20
    # an earlier output is replaced; the gate fails with exit 1 and says why on stderr
    code, _, err = _cli(["validate", str(clf["model"]), str(clf["onnx"]), str(clf["a"]), "--engine", "local",
                         "--max-drift", "0", "--out", str(out), "--quiet"], capsys)
    assert code == 1 and "gate failed" in err
    assert json.loads((out / "validation.json").read_text())["rows"] == 300
