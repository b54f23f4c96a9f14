"""ONNX Runtime providers and sessions: which providers exist, which one a session really used.

Capabilities are data: ``provider_table()`` lists every provider this tool knows (short name, ORT
name, available here or why not), built from ``onnxruntime.get_available_providers()``.
``create_session`` never trusts the request: it compares ``session.get_providers()`` with what was
asked (as Olive's ``check_ort_fallback`` does), observes where nodes actually ran, and records any
fallback in words. A provider that is missing or fails while the session is created falls back to
CPU with a note; it never crashes the run.

onnxruntime is imported lazily (``import_onnxruntime()``), never when ``optimizer_core`` is imported.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from optimizer_core.errors import ConfigError, RuntimeNotInstalledError, UnsupportedModelError

CPU = "CPUExecutionProvider"
INSTALL_ADVICE = "ONNX Runtime is not installed: pip install 'inference-optimizer[cpu]' (or [gpu] for CUDA)"

# Distributions that all install the same `onnxruntime` module: more than one means the last one
# installed wins file by file, and CUDA (or OpenVINO, DirectML...) can silently vanish.
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-qnn",
    "onnxruntime-rocm",
    "onnxruntime-migraphx",
    "onnxruntime-silicon",
)

# short name -> ORT name, and where to get a build that has it. Any other provider ORT knows is
# accepted by its own name (case-insensitive, with or without the "ExecutionProvider" suffix).
_KNOWN: tuple[tuple[str, str, str], ...] = (
    ("cpu", CPU, "every onnxruntime build"),
    ("cuda", "CUDAExecutionProvider", "install inference-optimizer[gpu] (onnxruntime-gpu) on a machine with CUDA"),
    ("tensorrt", "TensorrtExecutionProvider",
     "install inference-optimizer[gpu] (onnxruntime-gpu) and NVIDIA TensorRT"),
    ("openvino", "OpenVINOExecutionProvider", "install onnxruntime-openvino instead of onnxruntime"),
    ("dml", "DmlExecutionProvider", "install onnxruntime-directml instead of onnxruntime (Windows)"),
    ("coreml", "CoreMLExecutionProvider", "use the macOS onnxruntime package"),
    ("rocm", "ROCMExecutionProvider", "install onnxruntime-rocm (AMD GPUs)"),
    ("migraphx", "MIGraphXExecutionProvider", "install onnxruntime-migraphx (AMD GPUs)"),
    ("qnn", "QNNExecutionProvider", "install onnxruntime-qnn (Qualcomm NPUs)"),
    ("xnnpack", "XnnpackExecutionProvider", "build onnxruntime with --use_xnnpack"),
    ("cann", "CANNExecutionProvider", "install the Huawei CANN build of onnxruntime"),
    ("acl", "ACLExecutionProvider", "build onnxruntime with --use_acl (Arm Compute Library)"),
    ("armnn", "ArmNNExecutionProvider", "build onnxruntime with --use_armnn"),
    ("dnnl", "DnnlExecutionProvider", "build onnxruntime with --use_dnnl (oneDNN)"),
    ("webgpu", "WebGpuExecutionProvider", "build onnxruntime with --use_webgpu"),
    ("azure", "AzureExecutionProvider", "install onnxruntime 1.16 or later"),
)
# 'auto' picks the first available of these. TensorRT is left to an explicit request: it needs a
# separate TensorRT install (onnxruntime-gpu lists it even without one) and builds engines for
# minutes at session creation. CoreML, QNN and friends change numerics and need per-model setup.
AUTO_ORDER = ("CUDAExecutionProvider", "ROCMExecutionProvider", "MIGraphXExecutionProvider",
              "DmlExecutionProvider", "OpenVINOExecutionProvider")
# nodes ORT adds to move tensors between devices: they do not mean a provider did the work
_COPY_OPS = ("MemcpyToHost", "MemcpyFromHost")

GRAPH_LEVELS = ("disable", "basic", "extended", "layout", "all")
EXECUTION_MODES = ("sequential", "parallel")

_ort_module: Any = None
_packages_checked = False


# --------------------------------------------------------------------------- import and packages

def import_onnxruntime() -> Any:
    """The onnxruntime module (imported on first use), warning once about conflicting packages."""
    global _ort_module, _packages_checked
    if not _packages_checked:
        _packages_checked = True
        message = package_conflict()
        if message:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
    if _ort_module is None:
        try:
            import onnxruntime
        except ImportError as e:
            raise RuntimeNotInstalledError(INSTALL_ADVICE) from e
        from optimizer_core.ort_telemetry import disable_events

        disable_events(onnxruntime)
        _ort_module = onnxruntime
    return _ort_module


def installed_ort_distributions() -> tuple[str, ...]:
    """The onnxruntime distributions pip has installed (they all provide the same module)."""
    found = []
    for name in ORT_DISTRIBUTIONS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return tuple(found)


def package_conflict() -> str | None:
    """One line explaining a conflicting onnxruntime install, or None when there is none."""
    found = installed_ort_distributions()
    if len(found) < 2:
        return None
    names = " and ".join(found)
    return (
        f"{names} are installed together: they provide the same 'onnxruntime' module, so CUDA (or "
        f"another accelerator) can silently vanish; run pip uninstall -y {' '.join(found)} and reinstall "
        "exactly one (pip install 'inference-optimizer[cpu]' or '[gpu]')"
    )


# --------------------------------------------------------------------------- providers as data

@dataclass(frozen=True)
class ProviderInfo:
    short: str
    ort_name: str
    available: bool
    reason: str | None = None  # why it is unavailable here, in words


def _suffixless(ort_name: str) -> str:
    return ort_name.removesuffix("ExecutionProvider").lower()


def _short_name(ort_name: str) -> str:
    return next((short for short, name, _ in _KNOWN if name == ort_name), _suffixless(ort_name))


def _build_description() -> str:
    found = installed_ort_distributions()
    if found == ("onnxruntime",):
        return "CPU-only package"
    return ", ".join(found) if found else "unknown package"


def provider_table() -> tuple[ProviderInfo, ...]:
    """Every provider this tool knows, available in this onnxruntime build or with the reason why not."""
    ort = import_onnxruntime()
    available = set(ort.get_available_providers())
    known = [(short, name, hint) for short, name, hint in _KNOWN]
    listed = {name for _, name, _ in known}
    for name in ort.get_all_providers():
        if name not in listed:
            known.append((_suffixless(name), name, "install a build of onnxruntime that includes it"))
            listed.add(name)
    build = _build_description()
    rows = []
    for short, name, hint in known:
        ok = name in available
        reason = None if ok else f"not in this onnxruntime build ({build}); {hint}"
        rows.append(ProviderInfo(short=short, ort_name=name, available=ok, reason=reason))
    return tuple(rows)


def resolve_provider(name: str) -> str:
    """The ORT provider name for ``name``: a short name (cpu, cuda, ...), an ORT name, or 'auto'.

    'auto' is the best available accelerator (CUDA, ROCm, MIGraphX, DirectML, OpenVINO), else CPU.
    A known provider that this build lacks still resolves; ``create_session`` then falls back.
    """
    key = name.strip().lower()
    ort = import_onnxruntime()
    if key == "auto":
        available = set(ort.get_available_providers())
        return next((p for p in AUTO_ORDER if p in available), CPU)
    for short, ort_name, _ in _KNOWN:
        if key in (short, ort_name.lower(), _suffixless(ort_name)):
            return ort_name
    for ort_name in list(ort.get_all_providers()) + list(ort.get_available_providers()):
        if key in (ort_name.lower(), _suffixless(ort_name)):
            return ort_name
    valid = ", ".join(["auto"] + [short for short, _, _ in _KNOWN])
    raise ConfigError(f"unknown provider {name!r}: choose from {valid} (or a full ONNX Runtime provider name)")


# --------------------------------------------------------------------------- session settings

@dataclass(frozen=True)
class SessionSettings:
    """Every session option that changes speed, set explicitly and recorded resolved."""

    provider: str = "cpu"
    intra_op_threads: int | None = None  # None: the number of physical cores
    inter_op_threads: int = 1
    execution_mode: Literal["sequential", "parallel"] = "sequential"
    graph_optimization: Literal["disable", "basic", "extended", "layout", "all"] = "all"
    allow_spinning: bool = True
    optimized_model_path: str | None = None

    def __post_init__(self) -> None:
        if self.intra_op_threads is not None and self.intra_op_threads < 1:
            raise ConfigError(f"intra-op threads must be at least 1 (got {self.intra_op_threads})")
        if self.inter_op_threads < 1:
            raise ConfigError(f"inter-op threads must be at least 1 (got {self.inter_op_threads})")
        if self.execution_mode not in EXECUTION_MODES:
            raise ConfigError(f"unknown execution mode {self.execution_mode!r}: choose sequential or parallel")
        if self.graph_optimization not in GRAPH_LEVELS:
            raise ConfigError(
                f"unknown graph optimization level {self.graph_optimization!r}: choose from {', '.join(GRAPH_LEVELS)}"
            )

    def resolved_intra_op_threads(self) -> int:
        from optimizer_core.environment import physical_cores

        return self.intra_op_threads if self.intra_op_threads is not None else physical_cores()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"intra_op_threads": self.resolved_intra_op_threads()}

    def session_options(self, ort: Any) -> Any:
        """An ``ort.SessionOptions`` with every setting applied explicitly."""
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.resolved_intra_op_threads()
        so.inter_op_num_threads = self.inter_op_threads
        so.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if self.execution_mode == "parallel"
                             else ort.ExecutionMode.ORT_SEQUENTIAL)
        so.graph_optimization_level = _graph_level(ort, self.graph_optimization)
        spin = "1" if self.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
        if self.optimized_model_path:
            so.optimized_model_filepath = str(self.optimized_model_path)
        so.log_severity_level = 3  # errors only: fallbacks are reported in notes instead
        return so


def _graph_level(ort: Any, level: str) -> Any:
    levels = ort.GraphOptimizationLevel
    names = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
             "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}
    value = getattr(levels, names[level], None)
    if value is None:
        raise ConfigError(f"graph optimization level {level!r} needs a newer onnxruntime: use 'extended' or 'all'")
    return value


# --------------------------------------------------------------------------- sessions

@dataclass(frozen=True)
class SessionInfo:
    """What a session really is, next to what was asked for."""

    provider_requested: str  # as the user gave it: "cuda", "auto", ...
    provider_used: str  # ORT name of the first provider that ran nodes (the first registered one,
    # flagged in notes as unverified, when placement could not be observed)
    providers: tuple[str, ...]  # session.get_providers()
    fell_back: bool
    notes: tuple[str, ...]
    init_ms: float
    rss_delta_mb: float | None
    settings: dict[str, Any]
    node_placement: dict[str, list[str]] | None  # ORT provider -> op types it ran; None: not observed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_session(model_bytes: bytes, settings: SessionSettings) -> tuple[Any, SessionInfo]:
    """Create an InferenceSession for ``model_bytes`` and report where it really runs.

    A requested provider that this build lacks, or that raises while the session is created, falls
    back to CPU with a note. Node placement is observed by profiling one run of a single zero row
    (which also warms the session up). ORT's own silent fallback is disabled, so a provider that
    fails later, inside ``session.run``, raises instead of quietly measuring CPU under its name.
    """
    ort = import_onnxruntime()
    target = resolve_provider(settings.provider)
    notes: list[str] = []
    chain = [target, CPU] if target != CPU else [CPU]
    if target != CPU and target not in ort.get_available_providers():
        notes.append(f"{target} is not available in this onnxruntime build ({_build_description()}): "
                     f"ran on {CPU}")
        chain = [CPU]
    if settings.provider.strip().lower() == "auto" and target == CPU:
        notes.append(f"auto: no accelerator provider in this onnxruntime build, so {CPU} was used")
    profile_dir = tempfile.mkdtemp(prefix="io-profile-")
    try:
        session, chain, init_ms, rss_delta = _try_create(ort, model_bytes, settings, chain, notes, profile_dir)
        placement, placement_note = observe_placement(session)
    finally:
        shutil.rmtree(profile_dir, ignore_errors=True)
    providers = tuple(session.get_providers())
    if placement_note:
        notes.append(placement_note)
    used = _provider_used(providers, placement)
    if target in chain and target != CPU and target not in providers:
        notes.append(f"{target} was requested but ONNX Runtime did not register it (session providers: "
                     f"{', '.join(providers)}): ran on {used}")
    notes.extend(_placement_notes(target, providers, placement))
    info = SessionInfo(
        provider_requested=settings.provider,
        provider_used=used,
        providers=providers,
        fell_back=used != target,
        notes=tuple(dict.fromkeys(notes)),
        init_ms=round(init_ms, 3),
        rss_delta_mb=rss_delta,
        settings=settings.to_dict() | {"provider_resolved": target, "provider_chain": list(chain)},
        node_placement=placement,
    )
    return session, info


def _try_create(ort: Any, model_bytes: bytes, settings: SessionSettings, chain: list[str], notes: list[str],
                profile_dir: str) -> tuple[Any, list[str], float, float | None]:
    """Create the session on ``chain``; if an accelerator raises, retry on CPU alone.

    Returns the session, the provider chain that worked, the creation wall time (ms) and the change
    in process RSS (MB). ORT's own silent fallback is disabled so that a failure is seen and noted.
    """
    chains = [chain] if chain == [CPU] else [chain, [CPU]]
    for i, providers in enumerate(chains):
        options = settings.session_options(ort)
        options.enable_profiling = True  # for observe_placement; ended after one probe run
        options.profile_file_prefix = os.path.join(profile_dir, f"ort{i}")
        rss_before = _rss_mb()
        started = time.perf_counter()
        try:
            session = ort.InferenceSession(model_bytes, sess_options=options, providers=providers,
                                           enable_fallback=0)
        except Exception as e:
            from optimizer_core.errors import describe_ort_error

            if i + 1 < len(chains):
                notes.append(f"{providers[0]} failed while creating the session ({type(e).__name__}: "
                             f"{describe_ort_error(e)}): "
                             f"ran on {CPU}")
                continue
            raise UnsupportedModelError(
                f"ONNX Runtime cannot load this model on {CPU} ({describe_ort_error(e)}): leave this precision "
                "out (--precision), or export the model to ONNX yourself and pass the .onnx file"
            ) from e
        init_ms = (time.perf_counter() - started) * 1e3
        rss_after = _rss_mb()
        rss_delta = None if rss_before is None or rss_after is None else round(rss_after - rss_before, 2)
        return session, providers, init_ms, rss_delta
    raise AssertionError("unreachable")  # pragma: no cover


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return lines[0][:240] if lines else type(e).__name__


# --------------------------------------------------------------------------- node placement

_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
}


def observe_placement(session: Any) -> tuple[dict[str, list[str]] | None, str | None]:
    """Which provider ran which op types, read from ORT's profiler over one run of a zero row.

    ORT has no public placement API; its profiler records, per executed node, the provider that ran
    it (after graph optimization, so fused op types appear as ORT ran them). Profiling is enabled on
    the session itself and ended right after the probe, so later runs are not profiled.
    Returns (placement, None) or (None, why it could not be observed).
    """
    feeds = probe_feeds(session)
    if feeds is None:
        _end_profiling(session)
        return None, "node placement not observable: the model's inputs have types the probe cannot build"
    try:
        session.run(None, feeds)
    except Exception as e:
        _end_profiling(session)
        return None, f"node placement not observable: a one-row probe run failed ({_first_line(e)})"
    path = _end_profiling(session)
    if not path:
        return None, "node placement not observable: ONNX Runtime wrote no profile for this session"
    try:
        events = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"node placement not observable: ORT's profile could not be read ({_first_line(e)})"
    finally:
        Path(path).unlink(missing_ok=True)
    placement: dict[str, set[str]] = {}
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or event.get("cat") != "Node":
            continue
        args = event.get("args") or {}
        if args.get("provider") and args.get("op_name"):
            placement.setdefault(args["provider"], set()).add(args["op_name"])
    if not placement:
        return None, "node placement not observable: ORT's profile recorded no node events"
    return {provider: sorted(ops) for provider, ops in placement.items()}, None


def probe_feeds(session: Any) -> dict[str, np.ndarray] | None:
    """One all-zero row for every input of ``session`` (None if an input type is not a plain tensor)."""
    feeds = {}
    for node_arg in session.get_inputs():
        dtype = _NUMPY_TYPES.get(node_arg.type)
        if dtype is None:
            return None
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (node_arg.shape or [])]
        feeds[node_arg.name] = np.zeros(shape, dtype=dtype)
    return feeds


def _end_profiling(session: Any) -> str | None:
    try:
        return session.end_profiling() or None
    except Exception:
        return None


def _provider_used(providers: tuple[str, ...], placement: dict[str, list[str]] | None) -> str:
    """The first registered provider that ran real work (not just device copies)."""
    if placement is None:
        return providers[0] if providers else CPU
    for provider in providers:
        ops = [op for op in placement.get(provider, []) if op not in _COPY_OPS]
        if ops:
            return provider
    return CPU


def _placement_notes(target: str, providers: tuple[str, ...], placement: dict[str, list[str]] | None) -> list[str]:
    if target == CPU or target not in providers:
        return []
    if placement is None:
        return [f"{target} is registered, but which nodes it ran could not be observed: "
                "treat its share of the work as unknown"]
    on_cpu = [op for op in placement.get(CPU, []) if op not in _COPY_OPS]
    on_target = [op for op in placement.get(target, []) if op not in _COPY_OPS]
    if on_cpu and not on_target:
        return [f"{target} took no nodes: every op ({', '.join(on_cpu)}) ran on {CPU} "
                f"({target} has no kernel for them)"]
    if on_cpu:
        return [f"fell back to {CPU} for {', '.join(on_cpu)} ({target} has no kernel for them); "
                f"{target} ran {', '.join(on_target)}"]
    return []


__all__ = [
    "ProviderInfo", "SessionInfo", "SessionSettings", "create_session", "import_onnxruntime",
    "installed_ort_distributions", "observe_placement", "package_conflict", "probe_feeds", "provider_table",
    "resolve_provider",
]
