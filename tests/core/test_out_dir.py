from __future__ import annotations

import os
import stat

import pytest

from optimizer_core.errors import ConfigError
from optimizer_core.out_dir import out_dir_problem, write_file, write_files

FILES = {"report.json": b"{}", "report.html": b"<html></html>", "fp32.onnx": b"onnx"}


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_folder_gets_the_files_with_the_umask_permissions(tmp_path, umask_022):
    out = write_files(tmp_path / "new" / "out", FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert _mode(out) == 0o755
    assert _mode(out / "report.json") == 0o644


def test_an_empty_folder_receives_the_files_and_keeps_its_permissions(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o750)
    write_files(out, FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert _mode(out) == 0o750
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_folder_with_other_files_is_refused_and_left_untouched(tmp_path):
    (tmp_path / "model.json").write_text("precious")
    (tmp_path / "report.json").write_text("{}")
    problem = out_dir_problem(tmp_path)
    assert problem and "'model.json'" in problem and "not empty" in problem
    with pytest.raises(ConfigError, match="not an earlier inference-optimizer output"):
        write_files(tmp_path, FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "report.json"]
    assert (tmp_path / "model.json").read_text() == "precious"


def test_an_earlier_output_is_replaced_whole_so_no_stale_variant_survives(tmp_path):
    out = tmp_path / "out"
    write_files(out, {**FILES, "int8.onnx": b"old", "drift.csv": b"old"})
    out.chmod(0o750)
    write_files(out, {"report.json": b'{"new": 1}', "fp32.onnx": b"new"})
    assert sorted(p.name for p in out.iterdir()) == ["fp32.onnx", "report.json"]
    assert (out / "fp32.onnx").read_bytes() == b"new"
    assert _mode(out) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert "is not a folder" in out_dir_problem(tmp_path / "taken")
    assert out_dir_problem(tmp_path / "missing") is None


def test_only_report_and_model_file_names_are_written(tmp_path):
    with pytest.raises(ValueError, match="plain report or model file name"):
        write_files(tmp_path / "out", {"../evil.onnx": b""})
    with pytest.raises(ValueError, match="plain report or model file name"):
        write_files(tmp_path / "out", {"notes.txt": b""})
    assert not (tmp_path / "out").exists()


def test_write_file_uses_the_umask_permissions(tmp_path, umask_022):
    path = write_file(tmp_path / "sub" / "model.onnx", b"onnx")
    assert path.read_bytes() == b"onnx" and _mode(path) == 0o644
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["model.onnx"]


def test_a_path_under_a_file_is_refused_before_anything_runs(tmp_path):
    """Regression: --out afile/sub ran the whole benchmark, then failed as an 'unexpected FileExistsError'."""
    (tmp_path / "afile").write_text("x")
    problem = out_dir_problem(tmp_path / "afile" / "sub" / "deeper")
    assert problem and "is a file, not a folder" in problem and "afile" in problem
    assert out_dir_problem(tmp_path / "new" / "deeper") is None


def test_a_folder_that_cannot_be_created_is_a_config_error(tmp_path, monkeypatch):
    import pathlib

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    with pytest.raises(ConfigError, match="cannot create the output folder .*Permission denied.*nothing was written"):
        write_files(tmp_path / "a" / "b", {"report.json": b"{}"})


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc")
def test_a_folder_the_filesystem_refuses_is_found_before_the_run():
    """Regression: --out /proc/nope/x passed the permission check (root) and failed only after the benchmark."""
    problem = out_dir_problem("/proc/nope/x")
    assert problem and "cannot be created" in problem
