"""docs/data-dictionary.md is generated from the contracts and the source definitions, and kept current."""

from cdp.config import PROJECT_ROOT
from cdp.dictionary import render_dictionary
from cdp.tables import REGISTERED


def test_the_data_dictionary_is_current(settings):
    committed = (PROJECT_ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == render_dictionary(settings), "docs/data-dictionary.md is stale: run `make docs`"


def test_the_data_dictionary_lists_every_registered_table(settings):
    text = render_dictionary(settings)
    assert [t.qualified for t in REGISTERED if f"### {t.qualified}\n" not in text] == []
