"""The MLflow artifacts that hold customer rows, and their rewrite without the person's.

What the pipeline logs (cdp.ml.registry, cdp.tracking, cdp.identity.report): plots, figures and model parameters
(no row of anyone), and the churn model's input example: `input_example.json` and `serving_input_example.json`
beside the model, five held-out rows of gold.churn_features' feature columns (no customer id). A row of those is
the person's when it equals one of their churn_features rows; it is removed from both files (the model loads and
scores without an example; MLflow only shows it). tests/test_erasure.py scans every artifact file for the person's
identifiers to prove nothing else holds them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from cdp.config import Settings
from cdp.storage import is_local, local_path

EXAMPLES = ("input_example.json", "serving_input_example.json")
_DIGITS = 9   # a JSON round trip of a double keeps it to well within this


@dataclass(frozen=True)
class ArtifactRewrite:
    files_scanned: int
    files_rewritten: int
    rows_removed: int


def _same(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, _DIGITS)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), _DIGITS)
    return value


def row_key(columns: list[str], values: list[object], wanted: list[str]) -> tuple | None:
    """The row's values on the `wanted` columns, comparable across JSON and Spark (NaN = null, ints = floats)."""
    index = {c: i for i, c in enumerate(columns)}
    if not set(wanted) <= set(index):
        return None
    return tuple(_same(values[index[c]]) for c in wanted)


def person_rows(rows: list[dict]) -> tuple[list[str], set[tuple]]:
    """The person's churn_features rows (dicts) as comparable keys over their columns."""
    if not rows:
        return [], set()
    columns = sorted(k for k in rows[0] if k not in ("customer_id", "snapshot_date", "churned"))
    return columns, {tuple(_same(r[c]) for c in columns) for r in rows}


def without_rows(document: dict, columns: list[str], keys: set[tuple]) -> tuple[dict, int]:
    """An input example (pandas 'split' orient, optionally under 'dataframe_split') without the person's rows."""
    inner = document.get("dataframe_split", document)
    if not isinstance(inner, dict) or "columns" not in inner or "data" not in inner:
        return document, 0
    wanted = [c for c in columns if c in inner["columns"]]
    theirs = {tuple(k[columns.index(c)] for c in wanted) for k in keys}
    kept = [row for row in inner["data"] if row_key(inner["columns"], row, wanted) not in theirs]
    removed = len(inner["data"]) - len(kept)
    if removed:
        inner = {**inner, "data": kept}
        document = {**document, "dataframe_split": inner} if "dataframe_split" in document else inner
    return document, removed


def rewrite_examples(settings: Settings, feature_rows: list[dict], dry_run: bool = False) -> ArtifactRewrite:
    """Remove the person's rows from every model input example under the artifact store (a local folder)."""
    root = settings.path(settings.mlflow.artifact_root)
    columns, keys = person_rows(feature_rows)
    if not is_local(root) or not keys:
        return ArtifactRewrite(0, 0, 0)
    scanned = rewritten = removed = 0
    for path in sorted(p for name in EXAMPLES for p in Path(local_path(root)).rglob(name)):
        scanned += 1
        document = json.loads(path.read_text(encoding="utf-8"))
        new, n = without_rows(document, columns, keys)
        if n:
            removed += n
            rewritten += 1
            if not dry_run:
                path.write_text(json.dumps(new, indent=2 if path.name.startswith("serving") else None),
                                encoding="utf-8")
    return ArtifactRewrite(scanned, rewritten, removed)
