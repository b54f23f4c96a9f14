"""The tensorized tree pass: tree ensembles as standard ONNX operators (fp32 exact, fp16 measured), refusals
with reasons, ONNX Runtime's own TreeEnsemble semantics, and every operator a CUDA kernel exists for."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from sklearn.datasets import make_classification, make_regression

from optimizer_core import bench
from optimizer_core.converters import convert
from optimizer_core.converters.contract import normalize
from optimizer_core.drift import compute_drift
from optimizer_core.models import model_from_object
from optimizer_core.report import LatencyStats
from optimizer_core.variants import applicability, build_variant, tree_tensor
from optimizer_core.variants.tree_ensemble_reader import NotTensorizable

N_FEATURES = 8


def _with_nan(X: np.ndarray, seed: int) -> np.ndarray:
    X = X.astype(np.float32).copy()
    X[np.random.default_rng(seed).random(X.shape) < 0.1] = np.nan
    return X


@pytest.fixture(scope="module")
def datasets():
    Xb, yb = make_classification(1500, N_FEATURES, n_informative=5, random_state=0)
    Xm, ym = make_classification(1500, N_FEATURES, n_informative=5, n_classes=3, random_state=1)
    Xr, yr = make_regression(1500, N_FEATURES, n_informative=5, noise=5.0, random_state=2)
    return {"binary": (_with_nan(Xb, 0), yb), "multiclass": (_with_nan(Xm, 1), ym),
            "regression": (_with_nan(Xr, 2), yr), "binary_dense": (Xb.astype(np.float32), yb),
            "multiclass_dense": (Xm.astype(np.float32), ym), "regression_dense": (Xr.astype(np.float32), yr)}


def _xgb(cls, **kw):
    import xgboost

    return getattr(xgboost, cls)(n_jobs=1, **kw)


def _lgb(cls, **kw):
    import lightgbm

    return getattr(lightgbm, cls)(n_jobs=1, verbose=-1, **kw)


def _sk(cls, **kw):
    from sklearn import ensemble, tree

    return getattr(ensemble, cls, None)(**kw) if hasattr(ensemble, cls) else getattr(tree, cls)(**kw)


# (id, estimator factory, dataset): every family the fp32 path supports, binary / multiclass / regression, with NaN
# where the estimator takes it
FAMILIES = [
    ("xgb-binary", lambda: _xgb("XGBClassifier", n_estimators=20, max_depth=5), "binary"),
    ("xgb-multiclass", lambda: _xgb("XGBClassifier", n_estimators=10, max_depth=4), "multiclass"),
    ("xgb-regression", lambda: _xgb("XGBRegressor", n_estimators=20, max_depth=6), "regression"),
    ("xgb-shallow", lambda: _xgb("XGBClassifier", n_estimators=20, max_depth=2), "binary"),
    ("xgb-forest", lambda: _xgb("XGBRFClassifier", n_estimators=5, max_depth=4), "multiclass"),
    ("lgb-binary", lambda: _lgb("LGBMClassifier", n_estimators=20), "binary"),
    ("lgb-multiclass", lambda: _lgb("LGBMClassifier", n_estimators=10, num_leaves=15), "multiclass"),
    ("lgb-regression", lambda: _lgb("LGBMRegressor", n_estimators=20, max_depth=5), "regression"),
    ("sk-tree", lambda: _sk("DecisionTreeClassifier", max_depth=6, random_state=0), "binary"),
    ("sk-forest", lambda: _sk("RandomForestClassifier", n_estimators=10, max_depth=6, random_state=0), "multiclass"),
    ("sk-deep-forest", lambda: _sk("RandomForestRegressor", n_estimators=5, random_state=0), "regression"),
    ("sk-extra-trees", lambda: _sk("ExtraTreesRegressor", n_estimators=10, max_depth=3, random_state=0),
     "regression_dense"),
    ("sk-gb-binary", lambda: _sk("GradientBoostingClassifier", n_estimators=20, random_state=0), "binary_dense"),
    ("sk-gb-multiclass", lambda: _sk("GradientBoostingClassifier", n_estimators=10, random_state=0),
     "multiclass_dense"),
    ("sk-gb-regression", lambda: _sk("GradientBoostingRegressor", n_estimators=20, max_depth=5, random_state=0),
     "regression_dense"),
    ("sk-hgb-binary", lambda: _sk("HistGradientBoostingClassifier", max_iter=20, random_state=0), "binary"),
    ("sk-hgb-multiclass", lambda: _sk("HistGradientBoostingClassifier", max_iter=10, random_state=0), "multiclass"),
    ("sk-hgb-regression", lambda: _sk("HistGradientBoostingRegressor", max_iter=20, random_state=0), "regression"),
]


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _scores(model: onnx.ModelProto, X: np.ndarray) -> np.ndarray:
    return _session(model).run(["scores"], {"input": X.astype(np.float32)})[0]


@pytest.fixture(scope="module")
def converted(datasets):
    """id -> (loaded model, its fp32 ONNX graph, X, task)."""
    out = {}
    for name, make, dataset in FAMILIES:
        X, y = datasets[dataset]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = model_from_object(make().fit(X, y))
        out[name] = (loaded, convert(loaded), X, loaded.task)
    return out


@pytest.mark.parametrize("name", [f[0] for f in FAMILIES])
def test_tensor_fp32_equals_native_and_uses_no_ml_operator(converted, name):
    loaded, fp32, X, task = converted[name]
    ok, reason = applicability("tensor", fp32, loaded)
    assert ok, reason
    variant = build_variant("tensor", fp32, loaded=loaded)
    assert variant.applicable and variant.graph == "tensor", variant.notes
    assert {n.domain for n in variant.model.graph.node} <= {"", "ai.onnx"}
    assert all(op.domain != "ai.onnx.ml" for op in variant.model.opset_import)
    drift = compute_drift(loaded.predict_scores(X), _scores(variant.model, X), task)
    assert drift.value <= 1e-5, (name, drift.describe())
    assert drift.label_flips in (0, None)
    assert any("no ai.onnx.ml" in note for note in variant.notes)
    assert any(note == tree_tensor.CPU_CAVEAT for note in variant.notes)


def test_every_layout_is_exercised(converted):
    """gemm for shallow trees, the perfect layout up to depth 10, the traversal beyond (Hummingbird's rule)."""
    strategies = {}
    for name, (_, fp32, _, _) in converted.items():
        for plan in build_variant("tensor", fp32, loaded=None).config["ensembles"]:
            strategies.setdefault(plan["strategy"], []).append(name)
    assert set(strategies) == {"gemm", "perfect", "traversal"}, strategies
    assert "sk-gb-binary" in strategies["gemm"] and "sk-deep-forest" in strategies["traversal"]


def test_comparison_rule_of_the_file_is_kept(converted):
    xgb_plan = build_variant("tensor", converted["xgb-binary"][1], loaded=None).config["ensembles"][0]
    sk_plan = build_variant("tensor", converted["sk-forest"][1], loaded=None).config["ensembles"][0]
    assert xgb_plan["comparisons"] == ["x < threshold"]  # XGBoost: BRANCH_LT
    assert sk_plan["comparisons"] == ["x <= threshold"]  # scikit-learn: BRANCH_LEQ


@pytest.fixture(scope="module")
def larger_models(datasets):
    """Models large enough that the graph's few hundred operator nodes do not dominate the file."""
    X, y = datasets["binary"]
    Xd, yd = datasets["binary_dense"]
    models = {
        "xgboost": _xgb("XGBClassifier", n_estimators=100, max_depth=6).fit(X, y),
        "lightgbm": _lgb("LGBMClassifier", n_estimators=100, num_leaves=31).fit(X, y),
        "random-forest": _sk("RandomForestClassifier", n_estimators=30, max_depth=8, random_state=0).fit(X, y),
        "gradient-boosting": _sk("GradientBoostingClassifier", n_estimators=100, random_state=0).fit(Xd, yd),
    }
    return {name: (model_from_object(m), Xd if name == "gradient-boosting" else X) for name, m in models.items()}


@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "random-forest", "gradient-boosting"])
def test_fp16_tree_file_is_at_most_0_6x_the_tree_ensemble_file_and_its_drift_is_measured(larger_models, name):
    loaded, X = larger_models[name]
    fp32 = convert(loaded)
    variant = build_variant("fp16", fp32, loaded=loaded)
    assert variant.applicable and variant.graph == "tensor" and variant.config["dtype"] == "float16"
    ratio = variant.size_bytes / fp32.ByteSize()
    assert ratio <= 0.6, (name, variant.size_bytes, fp32.ByteSize())
    assert any(i.data_type == TensorProto.FLOAT16 for i in variant.model.graph.initializer)
    drift = compute_drift(loaded.predict_scores(X), _scores(variant.model, X), "binary")
    assert 0 < drift.max_abs < 0.5 and drift.label_flip_rate < 0.05, drift
    note = next(n for n in variant.notes if n.startswith("float16:"))
    assert "thresholds changed value" in note and "stay float32" in note


def test_fp16_says_when_thresholds_leave_its_range():
    X, y = make_regression(400, 3, random_state=0)
    X = (X * 1e5).astype(np.float32)
    loaded = model_from_object(_xgb("XGBRegressor", n_estimators=5, max_depth=3).fit(X, y))
    variant = build_variant("fp16", convert(loaded), loaded=loaded)
    assert variant.applicable
    assert any("became infinite" in note for note in variant.notes)


def test_lightgbm_categorical_equality_chains_are_rewritten():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4)).astype(np.float32)
    X[:, 0] = rng.integers(0, 12, 2000)
    y = ((X[:, 0] % 3 == 0) ^ (X[:, 1] > 0)).astype(int)
    loaded = model_from_object(_lgb("LGBMClassifier", n_estimators=10).fit(X, y, categorical_feature=[0]))
    variant = build_variant("tensor", convert(loaded), loaded=loaded)
    assert variant.applicable, variant.notes
    assert "x == threshold" in variant.config["ensembles"][0]["comparisons"]
    assert compute_drift(loaded.predict_scores(X), _scores(variant.model, X), "binary").max_abs <= 1e-5


def test_pipeline_with_scaler_and_imputer_is_rewritten_whole():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(600, 5, random_state=0)
    X = _with_nan(X, 3)
    est = make_pipeline(SimpleImputer(), StandardScaler(), RandomForestClassifier(10, max_depth=5, random_state=0))
    loaded = model_from_object(est.fit(X, y))
    fp32 = convert(loaded)
    assert {"Scaler", "Imputer"} <= {n.op_type for n in fp32.graph.node}
    variant = build_variant("tensor", fp32, loaded=loaded)
    assert variant.applicable, variant.notes
    assert not any(n.domain == "ai.onnx.ml" for n in variant.model.graph.node)
    assert compute_drift(est.predict_proba(X), _scores(variant.model, X), "binary").max_abs <= 1e-5


def test_not_applicable_says_why():
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    X, y = make_classification(300, 4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = convert(model_from_object(MLPClassifier((8,), max_iter=20, random_state=0).fit(X, y)))
    ok, reason = applicability("tensor", mlp, None)
    assert not ok and "no tree ensemble" in reason
    variant = build_variant("tensor", mlp, loaded=None)
    assert not variant.applicable and variant.model is None and "no tree ensemble" in variant.notes[0]

    pipe = make_pipeline(Normalizer(), _sk("RandomForestClassifier", n_estimators=3, max_depth=3)).fit(X, y)
    fp32 = convert(model_from_object(pipe))
    for precision in ("tensor", "fp16"):
        ok, reason = applicability(precision, fp32, None)
        assert not ok and "Normalizer" in reason, reason


def test_a_used_label_output_is_refused():
    graph = _random_classifier_graph(np.random.default_rng(0))
    graph.graph.output.append(helper.make_tensor_value_info("label", TensorProto.INT64, [None]))
    with pytest.raises(NotTensorizable, match="label output"):
        tree_tensor.build(graph)


# --------------------------------------------------------------------------- ONNX Runtime's semantics, fuzzed

_MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _random_ensemble(rng: np.random.Generator, classifier: bool) -> tuple[onnx.ModelProto, int]:
    """A random TreeEnsemble node: mixed modes, NaN directions, base values, post-transforms, weights on one or
    several outputs, sometimes on some leaves only."""
    n_out = int(rng.choice([2, 2, 3])) if classifier else int(rng.choice([1, 1, 2]))
    modes = _MODES if rng.random() < 0.5 else [_MODES[int(rng.integers(6))]]
    positive, every_leaf = rng.random() < 0.3, rng.random() < 0.8
    nodes, weights = [], []
    for tree in range(int(rng.integers(1, 6))):
        one = [0] if classifier and n_out == 2 and rng.random() < 0.6 else [int(rng.integers(n_out))]
        outputs = one if rng.random() < 0.5 else list(range(n_out))
        depth, counter = int(rng.integers(1, 13)), [0]

        def grow(d, tree=tree, depth=depth, counter=counter, outputs=outputs):
            nid = counter[0]
            counter[0] += 1
            if d >= depth or (d > 0 and rng.random() < 0.3):
                nodes.append([tree, nid, 0, "LEAF", 0.0, 0, 0, 0])
                for out in outputs:
                    if every_leaf or rng.random() < 0.6:
                        weights.append((tree, nid, out, float(rng.random() if positive else rng.normal())))
                return nid
            entry = [tree, nid, int(rng.integers(4)), _MODES[0] if not modes else modes[int(rng.integers(len(modes)))],
                     float(rng.choice([-1.0, 0.0, 0.5, 1.0, rng.normal()])), 0, 0, int(rng.random() < 0.5)]
            nodes.append(entry)
            entry[5], entry[6] = grow(d + 1), grow(d + 1)
            return nid

        grow(0)
    if not weights:
        weights.append((0, nodes[-1][1], 0, 0.5))
    columns = list(zip(*nodes, strict=True))
    prefix = "class" if classifier else "target"
    attrs = dict(nodes_treeids=columns[0], nodes_nodeids=columns[1], nodes_featureids=columns[2],
                 nodes_modes=columns[3], nodes_values=columns[4], nodes_truenodeids=columns[5],
                 nodes_falsenodeids=columns[6], nodes_missing_value_tracks_true=columns[7],
                 post_transform=str(rng.choice(["NONE", "LOGISTIC", "SOFTMAX"])))
    w = list(zip(*weights, strict=True))
    attrs.update({f"{prefix}_treeids": w[0], f"{prefix}_nodeids": w[1], f"{prefix}_ids": w[2],
                  f"{prefix}_weights": w[3]})
    if n_base := int(rng.choice([0, 1, n_out])):
        attrs["base_values"] = [float(rng.normal()) for _ in range(n_base)]
    if classifier:
        node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probs"], domain="ai.onnx.ml",
                                classlabels_int64s=list(range(n_out)), **attrs)
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, n_out])]
    else:
        node = helper.make_node("TreeEnsembleRegressor", ["input"], ["probs"], domain="ai.onnx.ml", n_targets=n_out,
                                aggregate_function=str(rng.choice(["SUM", "AVERAGE"])), **attrs)
        outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, n_out])]
    graph = helper.make_graph([node], "fuzz", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
                              outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    return normalize(model, scores_tensor="probs", n_features=4, n_outputs=n_out), n_out


def _random_classifier_graph(rng: np.random.Generator) -> onnx.ModelProto:
    while True:
        model, _ = _random_ensemble(rng, classifier=True)
        try:
            tree_tensor.build(model)
            return model
        except NotTensorizable:
            continue


def _ort_accepts(model: onnx.ModelProto) -> ort.InferenceSession | None:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.run(["scores"], {"input": np.zeros((1, 4), np.float32)})
    except Exception:
        return None  # ONNX Runtime itself refuses it (e.g. base_values of the wrong length)
    return session


@pytest.mark.parametrize("seed", range(4))
def test_random_ensembles_match_onnx_runtime_or_are_refused_with_a_reason(seed):
    rng = np.random.default_rng(seed)
    built = 0
    for case in range(60):
        model, _ = _random_ensemble(rng, classifier=bool(case % 3))
        reference = _ort_accepts(model)
        if reference is None:
            continue
        try:
            rewritten = tree_tensor.build(model).model
        except NotTensorizable as e:
            assert "depends on the row" in str(e) or "single column" in str(e), str(e)
            continue
        built += 1
        X = tree_tensor.probe_rows(model, 4, rows=1500, seed=case + 100)
        expected = reference.run(["scores"], {"input": X})[0]
        np.testing.assert_allclose(_scores(rewritten, X), expected, rtol=1e-5, atol=1e-5, err_msg=f"case {case}")
    assert built >= 30


# --------------------------------------------------------------------------- GPU readiness without a GPU

# The CUDA table of ONNX Runtime's docs/OperatorKernels.md (microsoft/onnxruntime at 001d12d, the kernels of the
# 1.2x/1.3x releases): per operator, the opset ranges a CUDA kernel is registered for and its element types by
# type constraint. Only the rows the tensor graphs (and the converters' graphs around them) use.
_FLOATS = {"float", "float16", "double", "bfloat16"}
_INTS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_ALL = _FLOATS | _INTS | {"bool"}
CUDA_KERNELS = {
    # op: (opset ranges, {input index or "out": constraint}, {constraint: types})
    "Gather": ([(13, None), (11, 12), (1, 10)], {0: "T", 1: "Tind", "out": "T"},
               {"T": _ALL, "Tind": {"int32", "int64"}}),
    "GatherElements": ([(13, None), (11, 12)], {0: "T", 1: "Tind", "out": "T"},
                       {"T": _ALL, "Tind": {"int32", "int64"}}),
    "Less": ([(13, None), (9, 12)], {0: "T", 1: "T", "out": "T1"},
             {"T": {"double", "float", "float16", "int32", "int64", "uint32", "uint64"}, "T1": {"bool"}}),
    "LessOrEqual": ([(16, None), (12, 15)], {0: "T", 1: "T", "out": "T1"},
                    {"T": {"double", "float", "float16", "int32", "int64", "uint32", "uint64"}, "T1": {"bool"}}),
    "Equal": ([(13, None), (11, 12)], {0: "T", 1: "T", "out": "T1"},
              {"T": {"bool", "double", "float", "float16", "int32", "int64", "uint32", "uint64"}, "T1": {"bool"}}),
    "Not": ([(1, None)], {0: "T", "out": "T"}, {"T": {"bool"}}),
    "And": ([(7, None)], {0: "T", 1: "T", "out": "T1"}, {"T": {"bool"}, "T1": {"bool"}}),
    "Or": ([(7, None)], {0: "T", 1: "T", "out": "T1"}, {"T": {"bool"}, "T1": {"bool"}}),
    "IsNaN": ([(20, None), (13, 19), (9, 12)], {0: "T1", "out": "T2"},
              {"T1": {"bfloat16", "double", "float", "float16"}, "T2": {"bool"}}),
    "Cast": ([(23, None), (21, 22), (19, 20), (13, 18), (9, 12), (6, 8)], {0: "T1", "out": "T2"},
             {"T1": _ALL, "T2": _ALL}),
    "Add": ([(14, None), (13, 13), (7, 12)], {0: "T", 1: "T", "out": "T"}, {"T": _FLOATS | _INTS}),
    "Sub": ([(14, None), (13, 13), (7, 12)], {0: "T", 1: "T", "out": "T"}, {"T": _FLOATS | _INTS}),
    "Mul": ([(14, None), (13, 13), (7, 12)], {0: "T", 1: "T", "out": "T"}, {"T": _FLOATS | _INTS}),
    "Div": ([(14, None), (13, 13), (7, 12)], {0: "T", 1: "T", "out": "T"}, {"T": _FLOATS | _INTS}),
    "Neg": ([(13, None), (6, 12)], {0: "T", "out": "T"}, {"T": _FLOATS | {"int8", "int16", "int32", "int64"}}),
    "Exp": ([(13, None), (6, 12)], {0: "T", "out": "T"}, {"T": _FLOATS}),
    "Sigmoid": ([(13, None), (6, 12)], {0: "T", "out": "T"}, {"T": _FLOATS}),
    "Softmax": ([(13, None), (11, 12), (1, 10)], {0: "T", "out": "T"}, {"T": _FLOATS}),
    "MatMul": ([(13, None), (9, 12), (1, 8)], {0: "T", 1: "T", "out": "T"}, {"T": _FLOATS}),
    "ReduceSum": ([(13, None), (1, 12)], {0: "T", 1: "axes", "out": "T"},
                  {"T": _FLOATS | {"int32", "int64"}, "axes": {"int64"}}),
    "Concat": ([(13, None), (11, 12), (4, 10)], {0: "T", 1: "T", "out": "T"}, {"T": _ALL}),
    "Reshape": ([(23, None), (21, 22), (19, 20), (14, 18), (13, 13), (5, 12)], {0: "T", 1: "shape", "out": "T"},
                {"T": _ALL, "shape": {"int64"}}),
    "Transpose": ([(23, None), (21, 22), (13, 20), (1, 12)], {0: "T", "out": "T"}, {"T": _ALL}),
    "Identity": ([(19, None), (14, 18), (13, 13), (1, 12)], {0: "T", "out": "T"}, {"T": _ALL}),
    "Where": ([(16, None), (9, 15)], {0: "B", 1: "T", 2: "T", "out": "T"},
              {"B": {"bool"}, "T": {"bfloat16", "double", "float", "float16", "int32", "int64", "uint8"}}),
}
_TYPE_NAMES = {TensorProto.FLOAT: "float", TensorProto.FLOAT16: "float16", TensorProto.DOUBLE: "double",
               TensorProto.BOOL: "bool", TensorProto.INT8: "int8", TensorProto.INT16: "int16",
               TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.UINT8: "uint8",
               TensorProto.UINT16: "uint16", TensorProto.UINT32: "uint32", TensorProto.UINT64: "uint64"}


def _missing_cuda_kernels(model: onnx.ModelProto) -> list[str]:
    """Nodes of ``model`` that ONNX Runtime's CUDA provider has no kernel for (operator, opset or element type)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = {i.name: i.data_type for i in inferred.graph.initializer}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    opset = next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))
    problems = []
    for node in inferred.graph.node:
        if node.op_type not in CUDA_KERNELS:
            problems.append(f"{node.op_type}: not in the table")
            continue
        ranges, slots, constraints = CUDA_KERNELS[node.op_type]
        since = onnx.defs.get_schema(node.op_type, opset).since_version
        if not any(lo <= since and (hi is None or since <= hi) for lo, hi in ranges):
            problems.append(f"{node.op_type}-{since}: no CUDA kernel for this opset")
        tensors = [(i, name) for i, name in enumerate(node.input)] + [("out", node.output[0])]
        for slot, name in tensors:
            constraint = slots.get(slot, slots.get(0) if isinstance(slot, int) and slot > 0 else None)
            type_name = _TYPE_NAMES.get(types.get(name), f"unknown({types.get(name)})")
            if constraint is not None and type_name not in constraints[constraint]:
                problems.append(f"{node.op_type} {slot}: {type_name} not in CUDA's {constraint}")
    return problems


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_every_operator_and_element_type_has_a_cuda_kernel(converted, dtype):
    """No node of a tensor graph is forced back to the CPU by a missing CUDA kernel (checked against the kernel
    table, since no GPU is available where the tests run)."""
    for name, (_, fp32, _, _) in converted.items():
        model = tree_tensor.build(fp32, dtype).model
        assert _missing_cuda_kernels(model) == [], name


def test_the_kernel_check_catches_a_tree_ensemble(converted):
    fp32 = converted["xgb-binary"][1]
    assert any("TreeEnsembleClassifier" in p for p in _missing_cuda_kernels(fp32))


# --------------------------------------------------------------------------- honest explanation on a CPU

def _stats(batch: int, p50: float) -> LatencyStats:
    return LatencyStats(batch_size=batch, calls=500, mean_us=p50, std_us=1.0, min_us=p50 * 0.9, max_us=p50 * 1.1,
                        p50_us=p50, p90_us=p50, p95_us=p50, p99_us=p50, p999_us=None, rows_per_s=batch / p50 * 1e6,
                        p50_ci_low_us=p50 * 0.99, p50_ci_high_us=p50 * 1.01)


def test_a_slower_tensor_variant_on_the_cpu_names_the_reason():
    latency = {"native": (_stats(256, 100.0),), "fp32": (_stats(256, 80.0),), "tensor": (_stats(256, 300.0),)}
    context = {"graphs": {"fp32": "tree-ensemble", "tensor": "tensor"}, "tree_model": True, "n_trees": 200,
               "providers_used": {"fp32": "CPUExecutionProvider", "tensor": "CPUExecutionProvider"}}
    lines = bench.explain("native", latency, (), context)
    line = next(text for text in lines if "tensor is" in text)
    assert "tensor graph of the trees, run on the CPU" in line and "GPUs" in line
    assert "tree-ensemble kernel switches strategy" not in line
    context["providers_used"]["tensor"] = "CUDAExecutionProvider"
    line = next(text for text in bench.explain("native", latency, (), context) if "tensor is" in text)
    assert "run on the CPU" not in line


# --------------------------------------------------------------------------- the pipeline and the native GPU peer

@pytest.fixture(scope="module")
def small_xgb(datasets):
    X, y = datasets["binary"]
    return _xgb("XGBClassifier", n_estimators=10, max_depth=4).fit(X, y), X[:300], y[:300]


def test_optimize_reports_the_graph_of_every_variant(small_xgb):
    from optimizer_core import OptimizeConfig, Report, optimize

    model, X, _ = small_xgb
    config = OptimizeConfig(precisions=("fp32", "tensor", "fp16", "int8"), batch_sizes=(1, 64), budget_s=1.0)
    report = optimize(model, X, config)
    graphs = {v.name: (v.graph, v.applicable) for v in report.variants}
    assert graphs == {"native": (None, True), "fp32": ("tree-ensemble", True), "tensor": ("tensor", True),
                      "fp16": ("tensor", True), "int8": (None, False)}
    assert report.variant("tensor").drift.max_abs <= 1e-5
    assert report.variant("tensor").node_placement == {"CPUExecutionProvider": report.variant("tensor")
                                                       .node_placement["CPUExecutionProvider"]}
    again = Report.from_json(report.to_json())
    assert again.variant("tensor").graph == "tensor"


def test_no_native_gpu_peer_without_cuda_says_why(small_xgb):
    from optimizer_core.models import native_gpu

    model, _, _ = small_xgb
    peer, reason = native_gpu.cuda_peer(model_from_object(model))
    if native_gpu.xgboost_has_cuda() and native_gpu.cuda_devices():
        pytest.skip("this machine has CUDA: the peer exists")
    assert peer is None and ("no CUDA support" in reason or "no CUDA device" in reason)
    sk = model_from_object(_sk("DecisionTreeClassifier", max_depth=2).fit(*make_classification(50, 3,
                                                                                               n_informative=2,
                                                                                               n_redundant=0)))
    assert native_gpu.cuda_peer(sk)[0] is None


def test_a_native_gpu_peer_is_timed_and_its_drift_measured_like_a_variant(small_xgb, monkeypatch):
    """The GPU predictor cannot run here: a CPU predictor stands in for it, to check what the report makes of it."""
    from optimizer_core import OptimizeConfig, optimize
    from optimizer_core.models import native_gpu

    model, X, y = small_xgb
    loaded = model_from_object(model)

    def fake_peer(given):
        return native_gpu.NativePeer(native_gpu.NAME, loaded.predictor, "stand-in on the CPU"), ""

    monkeypatch.setattr(native_gpu, "cuda_peer", fake_peer)
    report = optimize(model, X, OptimizeConfig(precisions=("fp32",), batch_sizes=(1, 32), budget_s=1.0), y=y)
    peer = report.variant(native_gpu.NAME)
    assert peer is not None and peer.precision == "native" and peer.provider_used == "xgboost (cuda)"
    assert [s.batch_size for s in peer.latency] == [1, 32] and peer.drift.max_abs == 0.0
    assert peer.metrics and report.native.name == "native"
    assert report.recommendation is not None
    from optimizer_core.views.html import render_html

    assert native_gpu.NAME in render_html(report)


def test_an_opset_5_tree_ensemble_is_named_as_not_rewritten():
    node = helper.make_node("TreeEnsemble", ["input"], ["scores"], domain="ai.onnx.ml")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    ok, reason = tree_tensor.applicability(model)
    assert not ok and "opset-5 TreeEnsemble" in reason
    # fp16 and int8 of such a graph say they leave the TreeEnsemble untouched, and do not promise a tree file
    # fp16 cannot build from it (regression: the int8 reason named fp16's tensor graph for any TreeEnsemble op)
    for precision in ("fp16", "int8"):
        ok, reason = applicability(precision, model, None)
        assert not ok and "TreeEnsemble (ai.onnx.ml)" in reason and "fp16 builds" not in reason
