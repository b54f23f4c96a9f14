import os

import pytest


# Keep every test's caches, history and lock files out of the user's home.
@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("io-home")
    os.environ.setdefault("INFERENCE_OPTIMIZER_CACHE", str(base / "cache"))
    os.environ.setdefault("INFERENCE_OPTIMIZER_HISTORY_DB", str(base / "history.db"))
    os.environ.setdefault("INFERENCE_OPTIMIZER_LOCK", str(base / "benchmark.lock"))
    yield
