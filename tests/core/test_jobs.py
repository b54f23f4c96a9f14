"""Isolated worker jobs: results come back, crashes and hangs end only their own job, nothing is left."""

import glob
import os
import tempfile

import pytest
from sklearn.datasets import load_breast_cancer

from optimizer_core.config import OptimizeConfig
from optimizer_core.errors import ResourceLimitError
from optimizer_core.jobs import JobManager, JobRequest
from optimizer_core.limits import Limits

CONFIG = OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 4), budget_s=1.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import lightgbm as lgb
    import xgboost as xgb

    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:, :6].rename(columns=lambda c: c.replace(" ", "_"))
    y = data.target
    folder = tmp_path_factory.mktemp("jobs")
    xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y).save_model(folder / "m.json")
    booster = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float)).booster_
    booster.save_model(str(folder / "m.txt"))
    csv = X.iloc[:40].assign(label=y.iloc[:40].to_numpy()).to_csv(index=False).encode()
    return {"xgb": (folder / "m.json").read_bytes(), "lgb": (folder / "m.txt").read_bytes(), "csv": csv}


def _request(files, model="xgb", **kw):
    return JobRequest(model_bytes=files[model], model_name=f"model-{model}", csv_bytes=files["csv"],
                      csv_name="test.csv", config=kw.pop("config", CONFIG), target="label", **kw)


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path, monkeypatch):
    """Job folders go to this test's own temp dir, so other processes' jobs cannot be mistaken for leftovers."""
    job_tmp = tmp_path / "tmp"
    job_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(job_tmp))


def _leftover_job_dirs():
    return glob.glob(os.path.join(tempfile.gettempdir(), "inference-optimizer-job-*"))


def test_job_runs_in_worker_and_returns_report(files):
    manager = JobManager()
    status = manager.wait(manager.submit(_request(files)), timeout_s=180)
    assert status.state == "done", status.message
    report = status.report
    assert [v.name for v in report.variants] == ["native", "fp32"]
    assert "fp32.onnx" in report.artifacts and "drift.csv" in report.artifacts
    assert report.variants[1].drift.max_abs <= 1e-5
    assert not _leftover_job_dirs()  # removed before the job reads as done: a CLI may exit right then


def test_two_concurrent_jobs_keep_results_separate(files):
    manager = JobManager()
    a = manager.submit(_request(files, "xgb"))
    b = manager.submit(_request(files, "lgb"))
    ra, rb = manager.wait(a, 240), manager.wait(b, 240)
    assert ra.state == rb.state == "done", (ra.message, rb.message)
    assert ra.report.model["family"] == "xgboost" and rb.report.model["family"] == "lightgbm"
    assert ra.report.run_id != rb.report.run_id
    assert not _leftover_job_dirs()


def test_bad_model_fails_with_one_line_message(files):
    manager = JobManager()
    request = JobRequest(model_bytes=b"\x80\x04junk", model_name="evil.pkl", csv_bytes=files["csv"],
                         csv_name="test.csv", config=CONFIG)
    status = manager.wait(manager.submit(request), 60)
    assert status.state == "failed"
    assert "evil.pkl is a pickle/joblib file" in status.message and "\n" not in status.message


def test_native_crash_takes_down_only_the_worker(files):
    manager = JobManager()
    status = manager.wait(manager.submit(_request(files), test_fault="segv"), 60)
    assert status.state == "failed"
    assert "crashed (SIGSEGV)" in status.message
    # the manager (and this process) carry on
    assert manager.wait(manager.submit(_request(files)), 180).state == "done"


def test_hanging_job_is_stopped_at_its_timeout(files):
    manager = JobManager(limits=Limits(job_timeout_s=1.0))
    status = manager.wait(manager.submit(_request(files), test_fault="hang:60"), 30)
    assert status.state == "failed"
    assert "exceeded 3 s" in status.message
    assert not _leftover_job_dirs()


def test_oversize_upload_refused_before_any_work(files):
    manager = JobManager(limits=Limits(max_csv_mb=0.00001))
    with pytest.raises(ResourceLimitError, match="over the"):
        manager.submit(_request(files))


def test_worker_environment_has_no_secrets(monkeypatch, tmp_path):
    from optimizer_core.jobs import _worker_env

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    env = _worker_env(tmp_path)
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HOME"].startswith(str(tmp_path))


def test_worker_temp_folder_is_inside_the_job_folder_and_telemetry_is_off(monkeypatch, tmp_path):
    from optimizer_core.jobs import _worker_env

    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    env = _worker_env(tmp_path)
    assert env["TMPDIR"] == str(tmp_path / "tmp") and (tmp_path / "tmp").is_dir()
    assert env["ORT_DISABLE_TELEMETRY"] == "1"


def _telemetry_files(folder) -> list[str]:
    return glob.glob(os.path.join(folder, "**", ".ses"), recursive=True) + glob.glob(
        os.path.join(folder, "**", "DeveloperTools"), recursive=True)


@pytest.mark.parametrize("ending", ["done", "killed"])
def test_what_onnx_runtime_writes_in_the_worker_goes_with_the_job(files, monkeypatch, ending):
    """ONNX Runtime 1.32 writes $TMPDIR/.ses (and a device id under HOME) on import. Even with its telemetry let
    on, the worker's temporary and home folders are the job's, removed when the job ends, done or killed."""
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    manager = JobManager(limits=Limits(job_timeout_s=1.0)) if ending == "killed" else JobManager()
    fault = "hang:60" if ending == "killed" else None
    status = manager.wait(manager.submit(_request(files), test_fault=fault), 180)
    assert status.state == ("done" if ending == "done" else "failed"), status.message
    assert not _leftover_job_dirs()
    assert not _telemetry_files(tempfile.gettempdir())


def test_inspect_model_in_a_worker(files):
    from optimizer_core.errors import OptimizerError
    from optimizer_core.jobs import inspect_model

    preview = inspect_model(files["xgb"], "m.json")
    assert preview["model"]["family"] == "xgboost"
    rows = {p: (applies, reason) for p, applies, reason in preview["applicability"]}
    assert rows["fp32"][0] is True
    assert rows["int8"][0] is False and "TreeEnsemble" in rows["int8"][1]
    with pytest.raises(OptimizerError, match="pickle"):
        inspect_model(b"\x80\x04junk.", "evil.pkl")
    assert not _leftover_job_dirs()


def test_finished_jobs_are_forgotten_beyond_a_limit(files, monkeypatch):
    from optimizer_core import jobs

    monkeypatch.setattr(jobs, "_KEEP_FINISHED", 1)
    manager = JobManager()
    bad = JobRequest(model_bytes=b"\x80\x04junk", model_name="a.pkl", csv_bytes=files["csv"], csv_name="t.csv",
                     config=CONFIG)
    first = manager.submit(bad)
    manager.wait(first, 60)
    second = manager.submit(bad)
    manager.wait(second, 60)
    third = manager.submit(bad)
    manager.wait(third, 60)
    assert manager.get(first) is None and manager.get(third) is not None
    manager.forget(third)
    assert manager.get(third) is None


_ORPHANING_PARENT = """
import sys, tempfile, time
tempfile.tempdir = sys.argv[1]
from optimizer_core.config import OptimizeConfig
from optimizer_core.jobs import JobManager, JobRequest
manager = JobManager()
job = manager.submit(JobRequest(model_path=sys.argv[2], csv_path=sys.argv[3], model_name="m", csv_name="c",
                                config=OptimizeConfig(precisions=("fp32",), batch_sizes=(1,), budget_s=1.0),
                                target="label"), test_fault="hang:60")
while job not in manager._procs:
    time.sleep(0.05)
print(manager._procs[job].pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_worker_exits_when_its_parent_is_killed(files, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "m.json").write_bytes(files["xgb"])
    (tmp_path / "c.csv").write_bytes(files["csv"])
    parent = subprocess.Popen([sys.executable, "-c", _ORPHANING_PARENT, tempfile.gettempdir(),
                               str(tmp_path / "m.json"), str(tmp_path / "c.csv")], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived its parent"


def test_a_worker_whose_parent_died_while_it_started_exits_at_once(tmp_path):
    """Regression: the worker asked os.getppid() for its parent once running; a parent killed while the worker's
    interpreter was still starting was never noticed (getppid() already named init) and the worker lived on
    until its timeout. The parent now names itself in the worker's environment."""
    import json
    import subprocess
    import sys
    import time

    from optimizer_core.worker import PARENT_PID_ENV

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a parent that no longer exists
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "request.json").write_text(json.dumps({"config": {}, "model_file": "m", "csv_file": "c",
                                                      "limits": {}, "test_fault": "hang:60"}))
    started = time.monotonic()
    worker = subprocess.run([sys.executable, "-I", "-m", "optimizer_core.worker", str(job_dir)],
                            env={**os.environ, PARENT_PID_ENV: str(gone.pid)}, capture_output=True, timeout=50)
    assert worker.returncode == 5 and time.monotonic() - started < 30  # not after the 60 s hang


def test_a_worker_whose_parent_died_before_it_started_exits(files, tmp_path):
    """Regression: a parent killed while its worker was still starting left the worker running (it took init for
    its parent), here until its 60 s hang ended."""
    import json
    import subprocess
    import sys

    from optimizer_core.jobs import _worker_env

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job = tmp_path / "job"
    (job / "cwd").mkdir(parents=True)
    (job / "m.json").write_bytes(files["xgb"])
    (job / "c.csv").write_bytes(files["csv"])
    (job / "request.json").write_text(json.dumps({
        "config": CONFIG.to_dict(), "model_file": str(job / "m.json"), "csv_file": str(job / "c.csv"),
        "model_name": "m", "csv_name": "c", "limits": {}, "test_fault": "hang:60"}))
    env = _worker_env(job) | {"INFERENCE_OPTIMIZER_PARENT_PID": str(gone.pid)}
    worker = subprocess.run([sys.executable, "-I", "-m", "optimizer_core.worker", str(job)], cwd=job / "cwd",
                            env=env, capture_output=True, timeout=50)
    assert worker.returncode == 5


def test_job_folders_of_dead_processes_are_swept_and_live_ones_kept(tmp_path, monkeypatch):
    import subprocess
    import sys

    from optimizer_core.jobs import sweep_orphaned_job_dirs

    # a temp folder of its own: the machine's may hold real orphans, and nothing is left behind
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    orphan = tempfile.mkdtemp(prefix=f"inference-optimizer-job-abc123-p{dead_pid}-")
    ours = tempfile.mkdtemp(prefix=f"inference-optimizer-job-def456-p{os.getpid()}-")
    legacy = tempfile.mkdtemp(prefix="inference-optimizer-job-0123456789ab-")
    removed = sweep_orphaned_job_dirs()
    assert [str(p) for p in removed] == [orphan]
    assert os.path.isdir(ours) and os.path.isdir(legacy)


def test_size_limit_messages_never_round_to_zero():
    """Regression: a 0.001 MB limit read 'the CSV is 0 MB, over the 0 MB limit ... on the server'."""
    from optimizer_core.errors import ResourceLimitError

    with pytest.raises(ResourceLimitError) as info:
        Limits(max_csv_mb=0.001).check_sizes(model_bytes=10, csv_bytes=5000)
    message = str(info.value)
    assert "5.0 kB, over the 1.0 kB limit" in message and "on the server" not in message


def test_a_size_just_over_the_limit_never_reads_as_equal_to_it():
    from optimizer_core.errors import ResourceLimitError

    with pytest.raises(ResourceLimitError) as info:
        Limits(max_model_mb=500).check_sizes(model_bytes=500 * 2**20 + 10, csv_bytes=0)
    assert "524,288,010 bytes, over the 524,288,000-byte limit" in str(info.value)
