"""The data dictionary (docs/data-dictionary.md): every table's description, key, columns and expectations,
rendered from the contracts (conf/tables/) and the source definitions (conf/sources/, for bronze)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdp.config import Settings
from cdp.tables import LAYERS, LINEAGE, bronze, table
from cdp.templating import render

LINEAGE_DESCRIPTIONS = {
    "_source_file": "Landing file the row was read from",
    "_ingested_at": "When the row was landed in bronze, UTC",
    "_run_id": "Pipeline run that landed the row",
    "_record_hash": "SHA-256 of the row's values (change detection)",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    pii: str = ""   # the PII category, and how a protected copy replaced it ("email, hashed")


@dataclass(frozen=True)
class TableDoc:
    name: str
    description: str
    key: tuple[str, ...]
    columns: list[Column]
    expectations: list[str] = field(default_factory=list)
    record_key: str = ""


def _pii(column) -> str:
    """'email', or 'email, hashed' / 'name, masked' in a protected copy; '' when the column holds no PII."""
    if not column.pii:
        return ""
    return column.pii + {"hash": ", hashed", "mask": ", masked"}.get(getattr(column, "protected", None) or "", "")


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def table_docs(settings: Settings) -> dict[str, list[TableDoc]]:
    """layer -> its tables' documentation, bronze from the sources, the others from their contracts."""
    from cdp.config.contracts import load_contracts
    from cdp.config.sources import load_sources

    docs: dict[str, list[TableDoc]] = {layer: [] for layer in LAYERS}
    for spec in load_sources(settings):
        columns = [Column(c.name, c.type, _cell(c.description), _pii(c)) for c in spec.columns]
        columns.append(Column("_rescued_data", "string", "Columns the export carried that the source does not declare, as JSON"))
        columns += [Column(c, "timestamp" if c == "_ingested_at" else "string", LINEAGE_DESCRIPTIONS[c]) for c in LINEAGE]
        table_ = bronze(spec.name)
        docs["bronze"].append(TableDoc(table_.qualified, _cell(spec.description or f"Source {spec.name}"),
                                       table_.key, columns, record_key=spec.record_key))
    for contract in load_contracts(settings):
        layer = contract.table.partition(".")[0]
        docs[layer].append(TableDoc(
            contract.table, _cell(contract.description), table(contract.table).key,
            [Column(c.name, c.type, _cell(c.description), _pii(c)) for c in contract.columns],
            [f"{e.name} ({e.level})" for e in contract.expectations]))
    return {layer: tables for layer, tables in docs.items() if tables}


def render_dictionary(settings: Settings) -> str:
    docs = table_docs(settings)
    return render("data_dictionary.md.j2", layers=[{"name": layer, "tables": tables} for layer, tables in docs.items()])
