import pytest

from optimizer_core.config import OptimizeConfig
from optimizer_core.demo import demo_files
from optimizer_core.pipeline import optimize


def test_demo_files_are_built_once_and_deterministically(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERENCE_OPTIMIZER_CACHE", str(tmp_path / "a"))
    first = demo_files("xgboost")
    data = first.csv_path.read_bytes(), first.model_path.read_bytes()
    monkeypatch.setenv("INFERENCE_OPTIMIZER_CACHE", str(tmp_path / "b"))
    second = demo_files("xgboost")
    assert (second.csv_path.read_bytes(), second.model_path.read_bytes()) == data
    assert demo_files("xgboost").model_path == second.model_path  # cached, not rebuilt


@pytest.mark.parametrize("kind", ["xgboost", "mlp"])
def test_each_demo_runs_end_to_end(kind):
    files = demo_files(kind)
    report = optimize(str(files.model_path), str(files.csv_path),
                      OptimizeConfig(precisions=("fp32", "int8"), batch_sizes=(1, 8), budget_s=1.0),
                      target=files.target)
    fp32 = report.variant("fp32")
    assert fp32.drift.max_abs <= 1e-5 and fp32.metrics["accuracy"] > 0.9
    int8 = report.variant("int8")
    assert int8.applicable is (kind == "mlp")  # tree ensembles have nothing for int8 to quantize
