"""validate on Ray Data (a local Ray, 2 CPUs, started once for this module): the same numbers as the local
engine, errors from workers as one line, and no Ray process left behind."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest

from optimizer_core import validate
from optimizer_core.cli import main
from tests.core.validation_data import classifier_files, regressor_files

ray = pytest.importorskip("ray", reason="Ray is in the [scale] extra ([dev] includes it)")
pytestmark = pytest.mark.timeout(600)

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # never reach the network


def _ray_processes(temp_dir: str) -> list:
    """Live processes of the Ray started with ``temp_dir``: its daemons name the folder on their command line,
    its workers inherit it in their environment."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if temp_dir in " ".join(proc.info["cmdline"] or []) or proc.environ().get("RAY_TMPDIR") == temp_dir:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found if p.pid != os.getpid()]


@pytest.fixture(scope="module")
def ray_session():
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    os.environ["RAY_TMPDIR"] = temp_dir
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 << 20,
             log_to_driver=False, logging_level=logging.ERROR, _temp_dir=temp_dir)
    try:
        yield temp_dir
    finally:
        ray.shutdown()
        os.environ.pop("RAY_TMPDIR", None)
        shutil.rmtree(temp_dir, ignore_errors=True)  # Ray's session logs


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    return classifier_files(tmp_path_factory.mktemp("validate-ray-clf"))


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    return regressor_files(tmp_path_factory.mktemp("validate-ray-reg"))


def test_ray_and_local_give_the_same_numbers_for_a_classifier(ray_session, clf):
    data = [clf["a"], clf["b"], clf["c"]]  # batches of 16, units of 256 rows: 4 units for 2 workers
    on_ray = validate(clf["model"], clf["onnx"], data, target="label", engine="ray", batch_rows=16)
    local = validate(clf["model"], clf["onnx"], data, target="label", engine="local", batch_rows=16)
    assert on_ray.engine == "ray" and on_ray.workers == 2 and local.workers == 1
    assert on_ray.rows == local.rows == 569 and on_ray.files == local.files
    assert on_ray.drift == local.drift  # exact sums: every field to the last digit
    assert on_ray.metrics == local.metrics
    assert on_ray.worst_rows == local.worst_rows
    assert on_ray.notes == local.notes
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_ray_and_local_give_the_same_numbers_for_a_regressor(ray_session, reg):
    data = [reg["a"], reg["b"]]
    on_ray = validate(reg["model"], reg["onnx"], data, target="y", engine="ray", batch_rows=32)
    local = validate(reg["model"], reg["onnx"], data, target="y", engine="local", batch_rows=32)
    assert on_ray.drift == local.drift and on_ray.drift.metric == "max_rel"
    assert on_ray.worst_rows == local.worst_rows
    for side in ("native", "onnx"):
        assert on_ray.metrics[side]["rmse"] == local.metrics[side]["rmse"]
        assert on_ray.metrics[side]["r2"] == pytest.approx(local.metrics[side]["r2"], rel=1e-12)  # merge order


def test_a_bad_value_a_worker_finds_is_one_line_and_exit_2(ray_session, clf, tmp_path, capsys):
    frame = pd.read_csv(clf["b"]).astype(object)
    frame.iloc[77, 2] = "n/a?"
    frame.to_csv(tmp_path / "late.csv", index=False)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        main(["validate", str(clf["model"]), str(clf["onnx"]), str(clf["a"]), str(tmp_path / "late.csv"),
              "--engine", "ray", "--out", str(out), "--quiet"])
    code = stopped.value.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "late.csv: column" in lines[0] and "'n/a?' at data row 78" in lines[0]
    assert not out.exists()


def test_the_cli_on_its_own_ray_shuts_every_ray_process_down(ray_session, clf, tmp_path, request):
    temp_dir = tempfile.mkdtemp(prefix="ray-cli-", dir="/tmp")
    request.addfinalizer(lambda: shutil.rmtree(temp_dir, ignore_errors=True))
    env = dict(os.environ, RAY_TMPDIR=temp_dir, RAY_USAGE_STATS_ENABLED="0")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "optimizer_core.cli", "validate", str(clf["model"]), str(clf["onnx"]), str(clf["a"]),
         str(clf["c"]), "--engine", "ray", "--target", "label", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr
    stages = [line for line in proc.stderr.splitlines() if line.strip()]
    assert stages and all(line.startswith("[") for line in stages), proc.stderr  # progress lines, no Ray chatter
    doc = json.loads((out / "validation.json").read_text())
    assert doc["engine"] == "ray" and doc["rows"] == 419 and doc["workers"] >= 1
    deadline = time.monotonic() + 20
    while (left := _ray_processes(temp_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [p.cmdline() for p in left]


def test_shutting_down_leaves_no_ray_worker(ray_session):
    assert _ray_processes(ray_session), "the session's Ray processes should be visible while it runs"
    ray.shutdown()
    deadline = time.monotonic() + 20
    while (left := _ray_processes(ray_session)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [p.cmdline() for p in left]
    assert not ray.is_initialized()
