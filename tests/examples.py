"""Examples the documentation shows, read from the documentation itself so the tests keep it true."""

from __future__ import annotations

import re
import textwrap

from cdp.config import PROJECT_ROOT


def readme_pos_source() -> str:
    """The point-of-sale source of README.md, section 'Sources: bring your own', exactly as documented."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Sources: bring your own", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "README.md lost its POS source example"
    return textwrap.dedent(block.group(1))


def readme_python_blocks(section: str) -> list[str]:
    """The ```python blocks of README.md's `section` (a '### ' heading), exactly as documented."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    body = readme.split(f"### {section}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", body, re.S)]
