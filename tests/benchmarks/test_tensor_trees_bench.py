"""benchmarks.tensor_trees: its arguments and the met / NOT met lines (the timings themselves are its run's)."""

import pytest

from benchmarks import tensor_trees
from benchmarks.reference_models import REFERENCE_MODELS
from optimizer_core.report import DriftStats, LatencyStats


def test_defaults_reach_65536_rows_and_only_tree_models_are_taken(capsys):
    args = tensor_trees.parse_args([])
    assert args.models == ["xgboost"] and args.batch_sizes[-1] == 65_536
    with pytest.raises(SystemExit):
        tensor_trees.parse_args(["--models", "mlp"])
    assert "mlp is not a tree model" in capsys.readouterr().err


def _stats(batch: int, p50: float) -> LatencyStats:
    return LatencyStats(batch, 10, p50, 1.0, p50, p50, p50, p50, p50, None, None, batch / p50 * 1e6, p50, p50)


def _measured(fp16_bytes: int) -> tensor_trees.Measured:
    drift = DriftStats(rows=10, max_abs=0.1, mean_abs=0.01, p99_abs=0.05, max_rel=0.1, label_flips=0,
                       label_flip_rate=0.0)
    latency = {name: (_stats(65_536, p50),) for name, p50 in
               (("native t1", 100.0), ("tree-ensemble cpu", 50.0), ("tensor fp32 cpu", 200.0),
                ("tensor fp16 cpu", 210.0))}
    return tensor_trees.Measured(REFERENCE_MODELS["xgboost"], latency,
                                 {"tree-ensemble": 1000, "tensor fp32": 500, "tensor fp16": fp16_bytes},
                                 {"tree-ensemble": drift, "tensor fp32": drift, "tensor fp16": drift},
                                 ("native t1",), ())


def test_targets_say_met_or_not_met_and_what_a_gpu_column_needs(monkeypatch):
    monkeypatch.setattr(tensor_trees, "gpu_providers", lambda: [])
    lines = tensor_trees.target_lines([_measured(600), _measured(601)], (65_536,))
    assert lines[0].endswith("fp16 file 0.60x the TreeEnsemble file (target <= 0.6x): met")
    assert lines[1].endswith("(target <= 0.6x): NOT met")
    assert "need onnxruntime-gpu" in lines[-1] and len(lines) == 3


def test_the_cuda_target_compares_with_the_best_cpu_option(monkeypatch):
    monkeypatch.setattr(tensor_trees, "gpu_providers", lambda: ["CUDAExecutionProvider"])
    measured = _measured(100)
    measured.latency["tensor fp16 cuda"] = (_stats(65_536, 10.0),)
    lines = tensor_trees.target_lines([measured], (65_536,))
    assert "5.0x faster than the best CPU option (target >= 5x): met" in lines[1]
    assert "tensor fp16 cuda" in tensor_trees.table([measured], (65_536,))[1]
