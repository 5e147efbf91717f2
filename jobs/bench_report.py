"""docs/benchmarks.md holds one section per benchmark between markers, so each `make bench` part rewrites its own
section and leaves the others (and the hand-written notes) as they are."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, name: str, text: str) -> str:
    """Put `text` between <!-- bench:name --> markers in the file (appended when the section is new)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")
    return new
