"""The landing files that still hold the person, and (`cdp forget --landing`) their rewrite without the person's rows.

Landing files are the source systems' exports: erasing a person there is the source's job (its own GDPR process),
and a file re-exported later brings the person back. The lakehouse only knows which files its bronze and quarantine
rows came from; `--landing` rewrites those, in the same format, keeping every other row as it was (CSV and JSON
lines byte for byte), a line (or a Parquet row group) at a time: a CRM export of any size never sits in memory whole.
The ingest log keys files by path, so a rewritten file is not landed again."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cdp.config.sources import SourceSpec
from cdp.errors import CdpError
from cdp.storage import is_local, local_path


@dataclass(frozen=True)
class LandingRewrite:
    files: int
    rows_removed: int


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


def kept_lines(lines: Iterable[str], spec: SourceSpec, keys: set[str], needles: tuple[str, ...], write) -> int:
    """Pass CSV (header kept) or JSON lines to `write`, one at a time, without the person's lines; returns the lines
    removed. Line ends are kept as they were (iterate a file opened with newline="")."""
    lines = iter(lines)
    if spec.format == "csv":
        head = next(lines, "")
        write(head)
        header = next(csv.reader([head]), []) if head else []
        at = header.index(spec.record_key) if spec.record_key in header else -1

        def key_of(line: str):
            return next(csv.reader([line]))[at] if at >= 0 else None
    else:
        def key_of(line: str):
            return json.loads(line).get(spec.record_key) if line.strip() else None
    removed = 0
    for line in lines:
        if line_is_persons(line, key_of, keys, needles):
            removed += 1
        else:
            write(line)
    return removed


def filter_lines(text: str, spec: SourceSpec, keys: set[str], needles: tuple[str, ...]) -> tuple[str, int]:
    """CSV (header kept) or JSON lines text without the person's lines; returns the text and the lines removed."""
    out = io.StringIO()
    removed = kept_lines(io.StringIO(text, newline=""), spec, keys, needles, out.write)
    return out.getvalue(), removed


def _replaced(path: Path, rewrite) -> int:
    """Run rewrite(tmp) -> rows removed into a file beside `path`; it replaces `path` only when rows went."""
    tmp = path.with_name(f".{path.name}.forget-tmp")
    try:
        removed = rewrite(tmp)
        if removed:
            os.replace(tmp, path)
        return removed
    finally:
        tmp.unlink(missing_ok=True)


def _rewrite_lines(path: Path, spec: SourceSpec, keys: set[str], needles: tuple[str, ...]) -> int:
    def rewrite(tmp: Path) -> int:
        with open(path, encoding="utf-8", newline="") as src, open(tmp, "w", encoding="utf-8", newline="") as dst:
            return kept_lines(src, spec, keys, needles, dst.write)
    return _replaced(path, rewrite)


def _rewrite_parquet(path: Path, spec: SourceSpec, keys: set[str], needles: tuple[str, ...]) -> int:
    """One row group in memory at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def theirs(table):
        hit = pc.is_in(pc.cast(table[spec.record_key], pa.string()), value_set=pa.array(sorted(keys), pa.string())) \
            if spec.record_key in table.column_names else pa.array([False] * table.num_rows)
        for name in table.column_names:
            if pa.types.is_string(table[name].type) or pa.types.is_large_string(table[name].type):
                lowered = pc.utf8_lower(table[name])
                for n in needles:
                    hit = pc.or_(hit, pc.fill_null(pc.match_substring(lowered, n), False))
        return pc.fill_null(hit, False)

    def rewrite(tmp: Path) -> int:
        source = pq.ParquetFile(path)
        removed = 0
        with pq.ParquetWriter(tmp, source.schema_arrow) as out:
            for i in range(source.num_row_groups):
                group = source.read_row_group(i)
                mask = theirs(group)
                removed += pc.sum(pc.cast(mask, pa.int64())).as_py() or 0
                out.write_table(group.filter(pc.invert(mask)))
        return removed
    return _replaced(path, rewrite)


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
            n = (_rewrite_parquet if spec.format == "parquet" else _rewrite_lines)(path, spec, mine, needles)
            if n:
                rewritten += 1
                removed += n
    return LandingRewrite(rewritten, removed)
