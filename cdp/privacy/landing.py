"""The landing files that still hold the person, and (`cdp forget --landing`) their rewrite without the person's rows.

Landing files are the source systems' exports: erasing a person there is the source's job (its own GDPR process),
and a file re-exported later brings the person back. The lakehouse only knows which files its bronze and quarantine
rows came from; `--landing` rewrites those, in the same format, keeping every other row as it was (CSV and JSON
lines byte for byte). The ingest log keys files by path, so a rewritten file is not landed again."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from cdp.config.sources import SourceSpec
from cdp.errors import CdpError
from cdp.storage import is_local, local_path


@dataclass(frozen=True)
class LandingRewrite:
    files: int
    rows_removed: int


def _csv_header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text.splitlines()[0] if text else "")), [])


def line_is_persons(line: str, key_of_line, keys: set[str], needles: tuple[str, ...]) -> bool:
    """A physical line is the person's when its record key is one of theirs or it contains one of their values."""
    try:
        key = key_of_line(line)
    except (ValueError, IndexError, TypeError, AttributeError):   # a line that does not parse alone
        key = None
    if key is not None and str(key) in keys:
        return True
    lowered = line.lower()
    return any(n in lowered for n in needles)


def filter_lines(text: str, spec: SourceSpec, keys: set[str], needles: tuple[str, ...]) -> tuple[str, int]:
    """CSV (header kept) or JSON lines without the person's lines; returns the text and the lines removed."""
    lines = text.splitlines(keepends=True)
    if spec.format == "csv":
        header = _csv_header(text)
        at = header.index(spec.record_key) if spec.record_key in header else -1

        def key_of(line: str):
            return next(csv.reader([line]))[at] if at >= 0 else None
        head, body = lines[:1], lines[1:]
    else:
        def key_of(line: str):
            return json.loads(line).get(spec.record_key) if line.strip() else None
        head, body = [], lines
    kept = [ln for ln in body if not line_is_persons(ln, key_of, keys, needles)]
    return "".join(head + kept), len(body) - len(kept)


def _rewrite_parquet(path, spec: SourceSpec, keys: set[str], needles: tuple[str, ...]) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    theirs = pc.is_in(pc.cast(table[spec.record_key], pa.string()), value_set=pa.array(sorted(keys), pa.string())) \
        if spec.record_key in table.column_names else pa.array([False] * table.num_rows)
    for name in table.column_names:
        if pa.types.is_string(table[name].type) or pa.types.is_large_string(table[name].type):
            lowered = pc.utf8_lower(table[name])
            for n in needles:
                theirs = pc.or_(theirs, pc.fill_null(pc.match_substring(lowered, n), False))
    theirs = pc.fill_null(theirs, False)
    removed = pc.sum(pc.cast(theirs, pa.int64())).as_py() or 0
    if removed:
        pq.write_table(table.filter(pc.invert(theirs)), path)
    return removed


def rewrite_landing(landing_root: str, files: dict[str, set[str]], specs: list[SourceSpec],
                    keys: dict[str, tuple[str, ...]], needles: tuple[str, ...]) -> LandingRewrite:
    """Rewrite each source's files (source -> file URIs) without the person's rows (keys: source -> record keys).
    Only files under the configured landing folder are touched (a lakehouse copied elsewhere still names the
    original files: those are someone else's)."""
    if not is_local(landing_root):
        raise CdpError(f"--landing rewrites local landing files only; {landing_root} is on object storage: erase the "
                       "person there through the source system")
    root = Path(local_path(landing_root)).resolve()
    by_name = {s.name: s for s in specs}
    rewritten = removed = 0
    for source, uris in sorted(files.items()):
        spec = by_name.get(source)
        for uri in sorted(uris):
            path = Path(local_path(uri)).resolve() if is_local(uri) else None
            if spec is None or path is None or root not in path.parents or not path.is_file():
                continue
            mine = set(keys.get(source, ()))
            if spec.format == "parquet":
                n = _rewrite_parquet(path, spec, mine, needles)
            else:
                text, n = filter_lines(path.read_bytes().decode("utf-8"), spec, mine, needles)  # line ends kept
                if n:
                    path.write_bytes(text.encode("utf-8"))
            if n:
                rewritten += 1
                removed += n
    return LandingRewrite(rewritten, removed)
