"""Run history: roundtrip, transactional saves, concurrent writers, comparison."""

import dataclasses
import sqlite3
import threading

import pytest

from optimizer_core.history import HistoryError, HistoryStore, RunNotFoundError, default_path
from tests.core.report_factory import make_report

ARTIFACTS = {
    "fp32.onnx": b"\x08\x07onnx-bytes",
    "int8.onnx": b"\x08\x07smaller",
    "drift.csv": b"row,abs_diff\n0,0\n",
}


def _report(run_id: str, **kw):
    return dataclasses.replace(make_report(**kw), run_id=run_id, artifacts=dict(ARTIFACTS))


@pytest.fixture
def store(tmp_path):
    return HistoryStore(tmp_path / "nested" / "history.db")


def test_save_list_load_delete_roundtrip(store):
    report = _report("run-a")
    assert store.save(report, model_name="model.json") == "run-a"
    runs = store.list_runs()
    assert [r.run_id for r in runs] == ["run-a"]
    summary = runs[0]
    assert summary.model_name == "model.json"
    assert (summary.family, summary.estimator, summary.task, summary.rows) == (
        "xgboost",
        "XGBClassifier",
        "binary",
        400,
    )
    assert summary.variants == ("native", "fp32", "fp16", "int8")
    assert summary.headline["Speedup at batch 1"].endswith("vs native)")
    loaded = store.load("run-a")
    assert loaded == report  # the dataclasses compare equal field by field (artifacts excluded)
    assert loaded.artifacts == ARTIFACTS
    assert loaded.to_dict() == report.to_dict()
    assert store.delete("run-a") is True
    assert store.list_runs() == []
    assert store.delete("run-a") is False
    with pytest.raises(RunNotFoundError, match="run-a"):
        store.load("run-a")
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM artifacts").fetchone() == (0,)


def test_list_is_newest_first_and_saving_again_replaces(store):
    old = dataclasses.replace(_report("old"), created_at="2025-01-01T00:00:00+00:00")
    new = dataclasses.replace(_report("new", task="regression"), created_at="2025-03-01T00:00:00+00:00")
    store.save(old, model_name="a")
    store.save(new, model_name="b")
    assert [r.run_id for r in store.list_runs()] == ["new", "old"]
    store.save(dataclasses.replace(old, artifacts={"only.onnx": b"x"}), model_name="renamed")
    assert [r.model_name for r in store.list_runs()] == ["b", "renamed"]
    assert store.load("old").artifacts == {"only.onnx": b"x"}
    assert store.list_runs(limit=1)[0].run_id == "new"


def test_a_failing_save_leaves_nothing(store):
    store.save(_report("kept"), model_name="kept")
    broken = dataclasses.replace(_report("broken"), artifacts={"a.onnx": b"ok", "b.onnx": object()})
    with pytest.raises(HistoryError, match="could not be saved"):
        store.save(broken, model_name="broken")
    assert [r.run_id for r in store.list_runs()] == ["kept"]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM artifacts WHERE run_id = 'broken'").fetchone() == (0,)
    # replacing an existing run with a broken copy keeps the old copy intact
    with pytest.raises(HistoryError):
        store.save(dataclasses.replace(_report("kept"), artifacts={"x": None}), model_name="again")
    assert store.load("kept").artifacts == ARTIFACTS


def test_concurrent_saves_from_two_threads(store):
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(prefix: str) -> None:
        try:
            own = HistoryStore(store.path)
            barrier.wait()
            for i in range(15):
                own.save(_report(f"{prefix}-{i}"), model_name=prefix)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = {r.run_id for r in store.list_runs()}
    assert ids == {f"{p}-{i}" for p in ("left", "right") for i in range(15)}
    assert store.load("right-14").artifacts == ARTIFACTS


def test_compare_two_runs(store):
    store.save(_report("a"), model_name="a")
    store.save(_report("b", native_wins_large_batch=False, batch_sizes=(1, 64)), model_name="b")
    c = store.compare("a", "b")
    assert (c.a.run_id, c.b.run_id) == ("a", "b")
    assert [h.label for h in c.headline][0] == "Speedup at batch 1"
    rows = {(size, name): (pa, pb) for size, name, pa, pb in c.p50_us}
    assert rows[(1, "native")][0] > 0 and rows[(1, "native")][1] > 0
    assert rows[(1024, "fp32")][1] is None  # run b did not measure batch 1024
    assert "fp16" not in {name for _, name, _, _ in c.p50_us}  # not applicable: never timed
    drift = {row[0]: row[1:] for row in c.drift}
    assert set(drift) == {"fp32", "int8"} and drift["int8"][0] > drift["fp32"][0]


def test_default_path_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INFERENCE_OPTIMIZER_HISTORY_DB", str(tmp_path / "x" / "h.db"))
    assert default_path() == tmp_path / "x" / "h.db"
    assert HistoryStore().path == tmp_path / "x" / "h.db"
    assert (tmp_path / "x" / "h.db").exists()
    monkeypatch.delenv("INFERENCE_OPTIMIZER_HISTORY_DB")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_path() == tmp_path / "home" / ".local/share/inference-optimizer/history.db"


def test_unwritable_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(HistoryError, match="cannot be opened"):
        HistoryStore(blocker / "history.db")


def _tables(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        (["CREATE TABLE users (id INT)", "CREATE TABLE orders (id INT)"], r"it has tables 'orders', 'users'\)"),
        (["CREATE TABLE runs (x INT)"], r"its table 'runs' has other columns: x\)"),
    ],
)
def test_another_applications_database_is_refused_and_left_untouched(tmp_path, schema, words):
    """Regression: `history list --db other-app.db` added an `artifacts` table to it, then failed."""
    path = tmp_path / "other-app.db"
    with sqlite3.connect(path) as conn:
        for statement in schema:
            conn.execute(statement)
    conn.close()
    before, tables = path.read_bytes(), _tables(path)
    with pytest.raises(HistoryError, match=words) as err:
        HistoryStore(path)
    message = str(err.value)
    assert message.startswith(f"{path} is not an inference-optimizer history (") and "pass another --db" in message
    assert "writable" not in message and "\n" not in message
    assert path.read_bytes() == before and _tables(path) == tables
    assert not (tmp_path / "other-app.db-wal").exists()


def test_an_empty_or_own_database_is_accepted(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    HistoryStore(empty).save(_report("a"), model_name="a")
    assert [r.run_id for r in HistoryStore(empty).list_runs()] == ["a"]  # reopening its own tables is fine
    with sqlite3.connect(tmp_path / "no-tables.db") as conn:
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    assert HistoryStore(tmp_path / "no-tables.db").list_runs() == []


def test_a_corrupt_database_is_named_as_such_not_as_a_permission_problem(tmp_path):
    """Regression: a truncated database got the hint "check that the folder is writable"."""
    good = HistoryStore(tmp_path / "h.db")
    for i in range(20):
        good.save(_report(f"run-{i}"), model_name="m")
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes((tmp_path / "h.db").read_bytes()[:8192])
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_bytes(b"just some text, not SQLite at all\n" * 200)
    for path in (truncated, not_sqlite):
        with pytest.raises(HistoryError) as err:
            HistoryStore(path).list_runs()
        message = str(err.value)
        assert message.startswith(f"{path} is not a valid history database (") and "move it aside" in message
        assert "writable" not in message and "\n" not in message


def test_a_folder_given_as_the_database_says_so(tmp_path):
    with pytest.raises(HistoryError, match="is a folder: give the path of a history file"):
        HistoryStore(tmp_path)
