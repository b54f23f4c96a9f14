"""QA round 1, item 4: validate's ROC AUC error bound is printed rounded up (a bound of 5.0408e-05 printed as
"±5.0e-05" claimed less than was shown: the real error was 5.04e-05)."""

from __future__ import annotations

import re

import pytest

from optimizer_core import validate
from optimizer_core.validation import aggregate as aggregate_module
from optimizer_core.validation.summary import rounded_up
from tests.core.validation_data import classifier_files


@pytest.mark.parametrize("value, shown", [(5.0408e-05, "5.1e-05"), (5e-05, "5.0e-05"), (9.96e-05, "1.0e-04"),
                                          (0.12345, "1.3e-01"), (3.1e-07, "3.1e-07"), (1.0, "1.0e+00"),
                                          (0.0, "0.0e+00")])
def test_bounds_are_rounded_up_to_two_digits(value, shown):
    assert rounded_up(value) == shown
    assert float(shown) >= value


def test_the_printed_auc_bound_is_never_below_the_bound_or_the_real_error(tmp_path, monkeypatch):
    files = classifier_files(tmp_path)
    stated = []
    original = aggregate_module.roc_auc_bounds_or_zero

    def spy(positives, negatives):
        found = original(positives, negatives)
        stated.append(found[1])
        return found

    monkeypatch.setattr(aggregate_module, "roc_auc_bounds_or_zero", spy)
    result = validate(files["model"], files["onnx"], [files["all"]], target="label", engine="local")
    text = result.methods["roc_auc"]
    printed = float(re.search(r"within ±(\S+) of the exact value", text).group(1))
    assert stated and printed >= max(stated)

    from sklearn.metrics import roc_auc_score

    from optimizer_core import load_model

    native = load_model(files["model"])
    frame = files["frame"]
    exact = roc_auc_score(frame["label"], native.predict_scores(frame.drop(columns="label").to_numpy())[:, 1])
    assert abs(result.metrics["native"]["roc_auc"] - exact) <= printed
