"""ONNX Runtime's telemetry is off wherever optimizer_core runs: no session file in TMPDIR, nothing in HOME."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _files_after(code: str, tmp_path, name: str) -> list[str]:
    tmp, home = tmp_path / f"{name}-tmp", tmp_path / f"{name}-home"
    tmp.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(TMPDIR=str(tmp), HOME=str(home))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    return [os.path.relpath(os.path.join(root, f), tmp_path) for folder in (tmp, home)
            for root, dirs, names in os.walk(folder) for f in [*names, *dirs]]


def test_importing_onnxruntime_after_optimizer_core_writes_nothing(tmp_path):
    plain = _files_after("import onnxruntime", tmp_path, "plain")
    if not plain:
        pytest.skip("this onnxruntime writes no telemetry files on import")
    assert any(p.endswith(".ses") for p in plain)  # what ONNX Runtime 1.32 does on its own
    ours = _files_after("import optimizer_core, onnxruntime; from optimizer_core.runtime import import_onnxruntime; "
                        "import_onnxruntime()", tmp_path, "ours")
    assert ours == []


def test_a_users_own_choice_is_kept(monkeypatch):
    from optimizer_core import ort_telemetry

    monkeypatch.setenv(ort_telemetry.OPT_OUT, "0")
    ort_telemetry.opt_out()
    assert os.environ[ort_telemetry.OPT_OUT] == "0"
    monkeypatch.delenv(ort_telemetry.OPT_OUT)
    ort_telemetry.opt_out()
    assert os.environ[ort_telemetry.OPT_OUT] == "1"


def test_events_are_switched_off_through_onnx_runtimes_api():
    from optimizer_core import ort_telemetry

    calls = []

    class FakeOrt:
        def disable_telemetry_events(self):
            calls.append("off")

    ort_telemetry.disable_events(FakeOrt())
    ort_telemetry.disable_events(object())  # an onnxruntime without the API: nothing to do
    assert calls == ["off"]
