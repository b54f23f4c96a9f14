"""The bundled demo: a small model and CSV built deterministically on first use.

Built from a dataset that ships with scikit-learn (nothing downloaded, no binaries committed) and
cached per user, so `inference-optimizer run --demo` and the dashboard's demo button work offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from optimizer_core.out_dir import write_atomically

DEMOS = ("xgboost", "mlp")
_VERSION = "2"


@dataclass(frozen=True)
class DemoFiles:
    kind: str
    model_path: Path
    csv_path: Path
    target: str
    description: str


def cache_dir() -> Path:
    base = os.environ.get("INFERENCE_OPTIMIZER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inference-optimizer"
    )
    return Path(base)


def demo_files(kind: str = "xgboost") -> DemoFiles:
    """Paths of the demo model and CSV, building them on first use."""
    if kind not in DEMOS:
        raise ValueError(f"unknown demo {kind!r}: choose from {', '.join(DEMOS)}")
    folder = cache_dir() / f"demo-v{_VERSION}"
    suffix = ".json" if kind == "xgboost" else ".skops"
    model_path = folder / f"{kind}-breast-cancer{suffix}"
    csv_path = folder / "breast-cancer-test.csv"
    description = {
        "xgboost": "XGBoost classifier, 200 trees of depth 4, on scikit-learn's breast cancer data (30 features)",
        "mlp": "scikit-learn MLP (SimpleImputer > StandardScaler > 128x128 MLPClassifier) on the breast cancer data",
    }[kind]
    if not model_path.exists() or not csv_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _build(kind, model_path, csv_path)
    return DemoFiles(kind, model_path, csv_path, "target", description)


def _build(kind: str, model_path: Path, csv_path: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    X = frame.drop(columns="target")
    y = frame["target"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    # A few missing cells, so the demo shows that missing values are handled like the native model does.
    X_test = X_test.copy()
    rng = np.random.default_rng(0)
    X_test = X_test.mask(rng.random(X_test.shape) < 0.01)
    if kind == "xgboost":
        import xgboost as xgb

        model = xgb.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=1, random_state=0)
        model.fit(X_train, y_train)
        write_atomically(model_path, model.save_model)
    else:
        import skops.io as sio
        from sklearn.impute import SimpleImputer
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # The imputer lets the network take the demo CSV's missing cells, as a real pipeline would.
        model = make_pipeline(SimpleImputer(), StandardScaler(),
                              MLPClassifier((128, 128), max_iter=300, random_state=0))
        model.fit(X_train, y_train)
        write_atomically(model_path, lambda p: sio.dump(model, p))
    test = X_test.assign(target=y_test.to_numpy())
    if not csv_path.exists():
        write_atomically(csv_path, lambda p: test.to_csv(p, index=False))


