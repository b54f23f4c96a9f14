"""Feature names as a training library rewrote them, to match a CSV that keeps the original column names.

LightGBM replaces every space in a feature name with ``_`` when it builds its training Dataset (C++
``Dataset::set_feature_names``: "Found whitespace in feature_names, replace with underlines"): a frame's
``mean radius`` is ``mean_radius`` in the model file. It refuses names holding the JSON characters
``" , : [ ] { }`` at training and keeps every other character (tabs, dots, non-ASCII...), so that one
replacement is its whole rule; it is applied here exactly, for LightGBM models only, and nothing fuzzier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optimizer_core.errors import InputError

RENAMED_MAPPING = "by-name-as-renamed-in-training"  # Dataset.column_mapping when this rule matched the columns
# ... when only the rename followed by the case-insensitive match (``match_renamed_ignoring_case``) did
RENAMED_IGNORING_CASE_MAPPING = "by-name-as-renamed-in-training-ignoring-case"

_RULES: dict[str, tuple[Callable[[str], str], str, str]] = {
    # family: (the rename, the library's name, the rule in words)
    "lightgbm": (lambda name: name.replace(" ", "_"), "LightGBM", "spaces become '_'"),
}


def training_names(columns: Sequence[str], family: str | None) -> set[str]:
    """The names ``columns`` would have in a model the family trained on them (none without a rule)."""
    return {_RULES[family][0](c) for c in columns} if family in _RULES else set()


def match_renamed(columns: Sequence[str], names: Sequence[str], family: str | None,
                  display: str) -> list[str] | None:
    """The CSV columns for the model's feature names once the family's training rename is applied to the
    columns, in the model's order; None when that does not give every name exactly one column.

    Raises ``InputError`` when two columns become the same model feature name: which one the model was
    trained on is then unknown.
    """
    if family not in _RULES:
        return None
    rename, library, rule = _RULES[family]
    wanted = set(names)
    by_name: dict[str, list[str]] = {}
    for column in columns:
        renamed = rename(column)
        if renamed in wanted:
            by_name.setdefault(renamed, []).append(column)
    clash = next((n for n in names if len(by_name.get(n, ())) > 1), None)
    if clash is not None:
        both = " and ".join(repr(c) for c in by_name[clash][:2])
        raise InputError(f"{display}: columns {both} both match the model's feature {clash!r} ({library} renames "
                         f"feature names in training: {rule}), so which one it was trained on is unknown: keep one")
    if all(n in by_name for n in names):
        return [by_name[n][0] for n in names]
    return None


def match_renamed_ignoring_case(columns: Sequence[str], names: Sequence[str], family: str | None,
                                display: str) -> list[str] | None:
    """The two rules one after the other: the family's training rename applied to each column, then the match
    that ignores case and surrounding spaces (``data.column_key``), when that gives every model name exactly one
    column; None otherwise (or when two of the model's names differ only in case).

    Raises ``InputError`` when two columns become the same model feature name this way.
    """
    if family not in _RULES:
        return None
    rename, library, rule = _RULES[family]
    keys = [_folded(n) for n in names]
    if len(set(keys)) != len(keys):
        return None
    wanted = set(keys)
    by_key: dict[str, list[str]] = {}
    for column in columns:
        key = _folded(rename(column))
        if key in wanted:
            by_key.setdefault(key, []).append(column)
    clash = next((i for i, k in enumerate(keys) if len(by_key.get(k, ())) > 1), None)
    if clash is not None:
        both = " and ".join(repr(c) for c in by_key[keys[clash]][:2])
        raise InputError(f"{display}: columns {both} both match the model's feature {names[clash]!r} ({library} "
                         f"renames feature names in training: {rule}; then matched ignoring case), so which one it "
                         "was trained on is unknown: keep one")
    if all(k in by_key for k in keys):
        return [by_key[k][0] for k in keys]
    return None


def _folded(name: str) -> str:
    """``data.column_key``'s rule (ignoring case and surrounding spaces); data imports this module."""
    return name.strip().casefold()


def renamed_note(selected: Sequence[str], names: Sequence[str], family: str, *, ignoring_case: bool = False) -> str:
    """The note saying which columns matched only under the training library's rename (and, with
    ``ignoring_case``, the case-insensitive match after it)."""
    _, library, rule = _RULES[family]
    pairs = [(c, n) for c, n in zip(selected, names, strict=True) if c != n]
    shown = ", ".join(f"{c!r} as {n!r}" for c, n in pairs[:3]) + (f" and {len(pairs) - 3} more" if len(pairs) > 3 else "")
    also = ", then ignoring case and surrounding spaces" if ignoring_case else ""
    return (f"columns matched to the model's feature names as {library} renamed them in training ({rule}){also}: "
            f"{shown}")


def missing_listing(missing: Sequence[str], columns: Sequence[str], family: str | None) -> list[str] | None:
    """The missing feature names as the CSV would spell them, when the family renamed names in training and the
    CSV keeps the original spelling for other columns ("'mean radius' (the model's 'mean_radius')"); None when
    the model's names are the ones to add (no rule, or the CSV does not use the original spelling)."""
    if family != "lightgbm":  # the only rule: spaces became '_'; its inverse is a spelling, not a certainty
        return None
    rename = _RULES[family][0]
    if not any(rename(c) != c for c in columns):
        return None
    return [f"{n.replace('_', ' ')!r} (the model's {n!r})" if "_" in n else repr(n) for n in missing]
