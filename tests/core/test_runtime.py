"""Providers as data, sessions that say where they really ran, and fallbacks that never crash."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from optimizer_core import environment
from optimizer_core.environment import physical_cores
from optimizer_core.errors import ConfigError, RuntimeNotInstalledError, UnsupportedModelError
from optimizer_core.runtime import CPU, SessionSettings, create_session, provider_table, resolve_provider

CUDA = "CUDAExecutionProvider"
CPU_ONLY = ort.get_available_providers() in (["CPUExecutionProvider"], ["AzureExecutionProvider", CPU])
cpu_only = pytest.mark.skipif(not CPU_ONLY, reason="this onnxruntime build has accelerator providers")


def _model_bytes(n_features: int = 4) -> bytes:
    """input [N, F] -> MatMul -> Add -> scores [N, 2]."""
    weights = helper.make_tensor("W", TensorProto.FLOAT, [n_features, 2], np.ones(n_features * 2).tolist())
    bias = helper.make_tensor("B", TensorProto.FLOAT, [2], [0.5, -0.5])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["mm"], name="mm"),
         helper.make_node("Add", ["mm", "B"], ["scores"], name="add")],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


MODEL = _model_bytes()


# --------------------------------------------------------------------------- providers

def test_provider_table_lists_cpu_available_and_cuda_missing_with_reason():
    table = {p.short: p for p in provider_table()}
    assert table["cpu"].available and table["cpu"].ort_name == CPU and table["cpu"].reason is None
    for short in ("cuda", "tensorrt", "openvino", "dml", "coreml", "rocm", "migraphx", "qnn", "xnnpack"):
        assert short in table
    if CPU_ONLY:
        cuda = table["cuda"]
        assert cuda.ort_name == CUDA and not cuda.available
        assert "not in this onnxruntime build" in cuda.reason and "[gpu]" in cuda.reason
    # providers ORT knows beyond the short-name table are listed by their own names
    assert {p.ort_name for p in provider_table()} >= set(ort.get_all_providers())


@cpu_only
def test_auto_resolves_to_cpu_on_a_cpu_only_build():
    assert resolve_provider("auto") == CPU


@pytest.mark.parametrize("name, expected", [
    ("cpu", CPU), ("CPU", CPU), ("cuda", CUDA), ("CUDAExecutionProvider", CUDA),
    ("cudaexecutionprovider", CUDA), ("tensorrt", "TensorrtExecutionProvider"), ("dml", "DmlExecutionProvider"),
    ("VitisAIExecutionProvider", "VitisAIExecutionProvider"), ("vitisai", "VitisAIExecutionProvider"),
])
def test_resolve_provider_accepts_short_and_ort_names(name, expected):
    assert resolve_provider(name) == expected


def test_unknown_provider_is_a_config_error_listing_valid_names():
    with pytest.raises(ConfigError, match="unknown provider 'warp-drive'.*auto, cpu, cuda"):
        resolve_provider("warp-drive")


# --------------------------------------------------------------------------- sessions

@cpu_only
def test_cuda_on_a_cpu_only_build_falls_back_to_cpu_with_a_note():
    session, info = create_session(MODEL, SessionSettings(provider="cuda"))
    assert info.provider_requested == "cuda"
    assert info.provider_used == CPU
    assert info.fell_back is True
    assert info.providers == (CPU,)
    assert any("CUDAExecutionProvider is not available" in n and "ran on CPUExecutionProvider" in n
               for n in info.notes)
    out = session.run(["scores"], {"input": np.ones((3, 4), np.float32)})[0]
    np.testing.assert_allclose(out, np.tile([4.5, 3.5], (3, 1)))


def test_cpu_session_reports_placement_and_no_fallback():
    _, info = create_session(MODEL, SessionSettings(provider="cpu"))
    assert info.provider_used == CPU and not info.fell_back and info.notes == ()
    assert info.node_placement is not None and set(info.node_placement) == {CPU}
    assert info.node_placement == {CPU: ["Gemm"]}  # op types as ORT ran them: MatMul+Add fused
    _, unoptimized = create_session(MODEL, SessionSettings(graph_optimization="disable"))
    assert unoptimized.node_placement == {CPU: ["Add", "MatMul"]}
    assert info.init_ms > 0
    assert info.rss_delta_mb is not None


class _RealSession:
    """Keeps a handle on the real InferenceSession before a test replaces it."""

    cls = ort.InferenceSession


def _pretend_cuda_is_available(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])


def test_provider_that_raises_while_creating_the_session_falls_back_with_the_error(monkeypatch):
    _pretend_cuda_is_available(monkeypatch)
    calls = []

    def fake_session(model, sess_options=None, providers=None, **kwargs):
        calls.append(list(providers))
        if CUDA in providers:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\nmore details")
        return _RealSession.cls(model, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    session, info = create_session(MODEL, SessionSettings(provider="cuda"))
    assert calls == [[CUDA, CPU], [CPU]]
    assert info.provider_requested == "cuda" and info.provider_used == CPU and info.fell_back
    assert any("CUDAExecutionProvider failed while creating the session" in n
               and "RuntimeError: CUDA failure 100: no CUDA-capable device is detected" in n for n in info.notes)
    assert info.settings["provider_chain"] == [CPU]
    assert session.run(None, {"input": np.zeros((1, 4), np.float32)})[0].shape == (1, 2)


class _ClaimsCuda:
    """A real CPU session that claims CUDA is registered (as a GPU build would)."""

    def __init__(self, real, *, profile: bool = True):
        self._real = real
        self._profile = profile

    def get_providers(self):
        return [CUDA, CPU]

    def end_profiling(self):
        path = self._real.end_profiling()
        return path if self._profile else ""

    def __getattr__(self, name):
        return getattr(self._real, name)


def _fake_gpu_session(monkeypatch, *, profile: bool = True):
    _pretend_cuda_is_available(monkeypatch)

    def fake_session(model, sess_options=None, providers=None, **kwargs):
        real = _RealSession.cls(model, sess_options=sess_options, providers=[CPU], **kwargs)
        return _ClaimsCuda(real, profile=profile)

    monkeypatch.setattr(ort, "InferenceSession", fake_session)


def test_registered_provider_that_took_no_nodes_is_not_reported_as_used(monkeypatch):
    _fake_gpu_session(monkeypatch)
    _, info = create_session(MODEL, SessionSettings(provider="cuda"))
    assert info.providers == (CUDA, CPU)
    assert info.provider_used == CPU and info.fell_back
    assert set(info.node_placement) == {CPU}
    assert any("CUDAExecutionProvider took no nodes" in n for n in info.notes)


def test_unobservable_placement_is_said_not_guessed(monkeypatch):
    _fake_gpu_session(monkeypatch, profile=False)
    _, info = create_session(MODEL, SessionSettings(provider="cuda"))
    assert info.node_placement is None
    assert info.provider_used == CUDA and not info.fell_back  # the registered provider, flagged as unverified
    assert any("node placement not observable" in n for n in info.notes)
    assert any("could not be observed" in n for n in info.notes)


def test_a_model_cpu_cannot_load_is_an_unsupported_model_error():
    with pytest.raises(UnsupportedModelError, match="ONNX Runtime cannot load this model"):
        create_session(b"not an onnx model", SessionSettings())


# --------------------------------------------------------------------------- settings

def test_thread_counts_are_set_explicitly_and_recorded():
    session, info = create_session(MODEL, SessionSettings(intra_op_threads=1, inter_op_threads=1))
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert info.settings["intra_op_threads"] == 1 and info.settings["inter_op_threads"] == 1

    session, info = create_session(MODEL, SessionSettings())  # None -> physical cores, resolved
    assert session.get_session_options().intra_op_num_threads == physical_cores()
    assert info.settings["intra_op_threads"] == physical_cores()
    assert SessionSettings().to_dict()["intra_op_threads"] == physical_cores()


def test_allow_spinning_off_is_applied_and_recorded():
    session, info = create_session(MODEL, SessionSettings(allow_spinning=False))
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert info.settings["allow_spinning"] is False
    session, _ = create_session(MODEL, SessionSettings(allow_spinning=True))
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_execution_mode_and_graph_level_are_applied():
    settings = SessionSettings(execution_mode="parallel", inter_op_threads=2, graph_optimization="basic")
    session, info = create_session(MODEL, settings)
    options = session.get_session_options()
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert info.settings["execution_mode"] == "parallel" and info.settings["graph_optimization"] == "basic"


def test_optimized_model_path_writes_the_optimized_model(tmp_path):
    target = tmp_path / "optimized.onnx"
    _, info = create_session(MODEL, SessionSettings(optimized_model_path=str(target)))
    assert target.exists() and target.stat().st_size > 0
    assert onnx.load(str(target)).graph.node
    assert info.settings["optimized_model_path"] == str(target)


@pytest.mark.parametrize("kwargs, message", [
    ({"intra_op_threads": 0}, "intra-op threads"),
    ({"inter_op_threads": 0}, "inter-op threads"),
    ({"execution_mode": "async"}, "execution mode"),
    ({"graph_optimization": "max"}, "graph optimization level"),
])
def test_invalid_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SessionSettings(**kwargs)


# --------------------------------------------------------------------------- packages

def _fake_versions(installed):
    def version(name):
        if name in installed:
            return "1.32.0"
        raise importlib.metadata.PackageNotFoundError(name)
    return version


def test_both_cpu_and_gpu_packages_warn_once(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", _fake_versions({"onnxruntime", "onnxruntime-gpu"}))
    monkeypatch.setattr(environment, "_packages_checked", False)
    with pytest.warns(RuntimeWarning, match="onnxruntime and onnxruntime-gpu are installed together.*reinstall"):
        environment.import_onnxruntime()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        environment.import_onnxruntime()  # once per process


def test_a_single_package_does_not_warn(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", _fake_versions({"onnxruntime"}))
    monkeypatch.setattr(environment, "_packages_checked", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        environment.import_onnxruntime()
    assert environment.package_conflict() is None


def test_missing_onnxruntime_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(environment, "_ort_module", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(RuntimeNotInstalledError, match=r"pip install 'inference-optimizer\[cpu\]'"):
        environment.import_onnxruntime()


def test_importing_the_core_does_not_import_onnxruntime():
    code = ("import sys, optimizer_core.runtime, optimizer_core.variants, optimizer_core.variants.base; "
            "assert 'onnxruntime' not in sys.modules, 'onnxruntime imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True)
