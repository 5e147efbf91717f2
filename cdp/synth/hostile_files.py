"""Writing hostile records (cdp.synth.hostile) as landing files in each source's format, with their manifest.

Bytes are written exactly: invalid UTF-8 goes through the CSV and JSON writers as surrogate escapes and comes
out as the original bytes; Parquet keeps values of the declared type natively (NaN, 1e30, year 1 and 9999
timestamps) and writes the rest in a second file whose columns are strings (binary for invalid UTF-8).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config.sources import SourceSpec
from cdp.synth.hostile import (
    DEMO_KINDS,
    KINDS,
    MANIFEST,
    Case,
    Kind,
    applies,
    base_row,
    expected,
    spoil,
    stops_row,
    text_column,
)

ARROW = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
         "timestamp": pa.timestamp("us", tz="UTC")}
FILE_ROWS = 3          # records in each file of a whole-file kind


def file_name(spec: SourceSpec, tag: str) -> str | None:
    """The source's landing glob with its '*' filled in, or None for a glob this cannot fill."""
    if spec.path.count("*") != 1 or any(ch in spec.path for ch in "?[{"):
        return None
    return spec.path.replace("*", f"hostile_{tag}")


def _text(v: object) -> str:
    """A value as the text an export would carry (bytes as surrogate escapes, so they are written back exactly)."""
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, datetime):
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"
    if isinstance(v, float):
        return repr(v) if v == v else "NaN"
    return v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict) else str(v)


def _csv_lines(columns: list[str], rows: list[list[str]], newline: str = "\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows([columns, *rows])
    return buf.getvalue()


def _json_line(row: dict) -> str:
    clean = {k: (_text(v) if isinstance(v, bytes | datetime) else v) for k, v in row.items() if v is not None}
    return json.dumps(clean, ensure_ascii=False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


def _native(spec: SourceSpec, row: dict) -> bool:
    def fits(t: str, v: object) -> bool:
        return (v is None or (t == "timestamp" and isinstance(v, datetime))
                or (t in ("int", "long") and isinstance(v, int)) or (t == "double" and isinstance(v, float | int))
                or (t not in ("int", "long", "double", "timestamp") and isinstance(v, str)))
    return all(fits(c.type, row[c.name]) for c in spec.columns)


def _parquet(path: Path, spec: SourceSpec, rows: list[dict], native: bool, drop: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, fields = [], []
    for c in spec.columns:
        if c.name == drop:
            continue
        values = [r[c.name] for r in rows]
        if native:
            typ = ARROW.get(c.type, pa.string())
            if typ == pa.float64():
                values = [None if v is None else float(v) for v in values]
            arr = pa.array(values, type=typ)
        elif any(isinstance(v, dict) for v in values):
            arr = pa.array(values)
        elif any(isinstance(v, bytes) for v in values):
            arr = pa.array([None if v is None else v if isinstance(v, bytes) else _text(v).encode() for v in values],
                           type=pa.binary())
        else:
            arr = pa.array([None if v is None else _text(v) for v in values], type=pa.string())
        arrays.append(arr)
        fields.append(pa.field(c.name, arr.type))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), path)


class _SourceWriter:
    """The hostile files of one source and their manifest lines."""

    def __init__(self, spec: SourceSpec, landing: Path, rng: random.Random, index: int):
        self.spec, self.landing, self.rng, self.index = spec, landing, rng, index
        self.cases: list[Case] = []
        self.counter = 0

    def key(self) -> str:
        self.counter += 1
        return f"HX{self.index:02d}{self.counter:07d}"

    def case(self, kind: Kind, file: str, key: str | None, outcome=None) -> None:
        out, stage, reason = outcome or expected(kind, self.spec)
        self.cases.append(Case(kind.name, self.spec.name, file, key, out, stage, reason))

    def row_kinds(self, kinds: list[Kind], per_kind: int) -> None:
        spec, cols = self.spec, self.spec.column_names
        name = file_name(spec, "rows")
        lines, parquet = [], {"rows": [], "text": [], "nested": []}
        for kind in kinds:
            count = 1 if kind.name == "huge_string_1mb" else per_kind * kind.weight
            for _ in range(count):
                row = spoil(kind, spec, base_row(spec, self.key(), self.rng), self.rng)
                key = row[spec.record_key]
                if spec.format == "parquet":
                    part = "nested" if kind.name == "nested_json" else "rows" if _native(spec, row) else "text"
                    parquet[part] += [row, row] if kind.name == "duplicate_record" else [row]
                    self.case(kind, file_name(spec, part), key)
                    continue
                if spec.format == "csv":
                    cells = [_text(row[c]) for c in cols]
                    lines += [cells, cells] if kind.name == "duplicate_record" else [
                        [*cells, "extra"] if kind.name == "malformed_row" else cells]
                else:
                    line = _json_line(row)
                    if kind.name == "malformed_row":
                        line, key = line[: len(line) // 2], None
                    elif kind.name == "json_not_object":
                        line, key = json.dumps([key, "not", "an", "object"]), None
                    elif kind.name == "duplicate_field":
                        line = line[:-1] + f', "{text_column(spec)}": "second value"}}'
                    lines += [line, line] if kind.name == "duplicate_record" else [line]
                self.case(kind, name, None if kind.name == "missing_key" else key)
        if spec.format == "csv":
            _write(self.landing / name, _csv_lines(cols, lines))
        elif spec.format == "json":
            _write(self.landing / name, "\n".join(lines) + "\n")
        else:
            for part, rows in parquet.items():
                if rows:
                    _parquet(self.landing / file_name(spec, part), spec, rows, native=part == "rows")

    def file_kind(self, kind: Kind) -> None:
        spec, cols, fmt = self.spec, self.spec.column_names, self.spec.format
        name = file_name(spec, kind.name)
        path = self.landing / name
        rows = [base_row(spec, self.key(), self.rng) for _ in range(FILE_ROWS)]
        keys = [r[spec.record_key] for r in rows]
        if kind.name == "empty_file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            return self.case(kind, name, None)
        if kind.name == "header_only":
            _write(path, _csv_lines(cols, []))
            return self.case(kind, name, None)
        if kind.name == "missing_header":
            if fmt == "csv":
                kept = [c for c in cols if c != spec.record_key]
                _write(path, _csv_lines(kept, [[_text(r[c]) for c in kept] for r in rows]))
            else:
                _parquet(path, spec, rows, native=True, drop=spec.record_key)
        elif kind.name == "duplicated_header":
            other = next(c for c in cols if c not in (spec.record_key, text_column(spec)))
            header = [text_column(spec) if c == other else c for c in cols]
            _write(path, _csv_lines(header, [[_text(r[c]) for c in cols] for r in rows]))
        elif kind.name == "bom_crlf":
            body = (_csv_lines(cols, [[_text(r[c]) for c in cols] for r in rows], "\r\n") if fmt == "csv"
                    else "".join(_json_line(r) + "\r\n" for r in rows))
            _write(path, "\ufeff" + body)
        elif kind.name == "truncated_file":
            return self._truncated(kind, name, rows, keys)
        for key in keys:
            self.case(kind, name, key)

    def _truncated(self, kind: Kind, name: str, rows: list[dict], keys: list[str]) -> None:
        spec, cols, path = self.spec, self.spec.column_names, self.landing / name
        flows = ("flows", None, None)
        if spec.format == "parquet":
            _parquet(path, spec, rows, native=True)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            for key in keys:
                self.case(kind, name, key, ("rejected", None, "is not a readable Parquet file"))
            return
        if spec.format == "csv":
            text = _csv_lines(cols, [[_text(r[c]) for c in cols] for r in rows])
            cut = ",".join(text.rstrip("\n").split("\n")[-1].split(",")[:2])   # the last row, cut after 2 fields
            text = text[: text.rstrip("\n").rfind("\n") + 1] + cut
            last_key = keys[-1]
        else:
            lines = [_json_line(r) for r in rows]
            text, last_key = "\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2], None
        _write(path, text)
        for key in keys[:-1]:
            self.case(kind, name, key, flows)
        self.case(kind, name, last_key)


def write_demo_share(landing: Path, truth: Path, records: int, seed: int,
                     specs: list[SourceSpec] | None = None) -> list[Case]:
    """About `records` hostile records of DEMO_KINDS over the demo's sources (at least one of each kind each
    source allows), manifest in truth/hostile_manifest.jsonl."""
    if specs is None:
        from cdp.config import DEFAULT_CONF_DIR
        from cdp.config.sources import load_source
        from cdp.synth.writers import SOURCES

        specs = [load_source(DEFAULT_CONF_DIR / "sources" / f"{name}.yaml") for name in sorted(SOURCES)]
    if records < 1 or not specs:
        return []
    units = sum(max(KINDS[k].weight, 1) for s in specs for k in DEMO_KINDS
                if applies(KINDS[k], s) and stops_row(KINDS[k], s))
    return write_hostile(specs, landing, per_kind=max(1, round(records / max(units, 1))), seed=seed,
                         kinds=list(DEMO_KINDS), manifest=Path(truth) / "hostile_manifest.jsonl", only_stopped=True)


def write_hostile(specs: list[SourceSpec], landing: Path, per_kind: int = 40, seed: int = 7,
                  kinds: list[str] | None = None, manifest: Path | None = None, only_stopped: bool = False,
                  ) -> list[Case]:
    """Hostile files for every source (every kind its format allows) under landing, and their manifest
    (default landing/_manifest.jsonl, a name the landing readers skip)."""
    landing = Path(landing)
    chosen = [KINDS[k] for k in (kinds or KINDS)]
    cases: list[Case] = []
    for index, spec in enumerate(sorted(specs, key=lambda s: s.name)):
        if file_name(spec, "rows") is None:
            continue
        w = _SourceWriter(spec, landing, random.Random(f"{seed}:hostile:{spec.name}"), index)
        fitting = [k for k in chosen if applies(k, spec) and (not only_stopped or stops_row(k, spec))]
        row_kinds = [k for k in fitting if k.target != "file"]
        if row_kinds:
            w.row_kinds(row_kinds, per_kind)
        for kind in fitting:
            if kind.target == "file":
                w.file_kind(kind)
        cases += w.cases
    manifest = Path(manifest or landing / MANIFEST)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in cases)
    return cases


def read_manifest(landing: Path) -> list[Case]:
    with open(Path(landing) / MANIFEST, encoding="utf-8") as f:
        return [Case(**json.loads(line)) for line in f]
