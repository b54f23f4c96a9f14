from benchmarks import trees
from optimizer_core.report import LatencyStats


def test_the_targets_variants_and_batch_size_are_always_measured():
    args = trees.parse_args(["--batch-sizes", "1,16", "--trees", "10%"])
    assert args.batch_sizes == (1, 16, trees.TARGET_BATCH)
    assert args.trees == ("10%", "50%", "25%")


def _stats(batch: int, p50: float) -> LatencyStats:
    return LatencyStats(batch, 100, p50, 1.0, p50, p50, p50, p50, p50, None, None, batch / p50 * 1e6, p50, p50)


def test_target_lines_say_met_and_not_met_from_the_ratio():
    asked = {"fp32": "100%", "rounds-100": "50%", "rounds-50": "25%"}
    latency = {"fp32": (_stats(4096, 100.0),), "rounds-100": (_stats(4096, 60.0),), "rounds-50": (_stats(4096, 45.0),)}
    lines = trees.target_lines(asked, latency)
    assert lines[0].endswith("0.60x the full fp32 model's (target <= 0.65x): met")
    assert lines[1].endswith("0.45x the full fp32 model's (target <= 0.4x): NOT met")
