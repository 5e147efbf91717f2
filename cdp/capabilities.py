"""What a company's data can give, read from its configuration alone (no Spark): whether any source feeds identity
resolution, produces interactions, purchases, or the activity churn is defined by. A step that needs what the data
cannot give does not apply (a person register has no purchases to value): the run records it as not applicable,
with the reason, instead of failing on an empty table, and `cdp check` says so for its configuration section.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTITY, INTERACTIONS, PURCHASES, ACTIVITY = "identity", "interactions", "purchases", "activity"


@dataclass(frozen=True)
class Capabilities:
    """why_not: capability -> why the data cannot give it (absent: it can)."""

    why_not: dict[str, str]

    def missing(self, needs: tuple[str, ...]) -> str | None:
        """Why a step needing `needs` does not apply (the first missing capability), or None."""
        return next((self.why_not[n] for n in needs if n in self.why_not), None)


def capabilities(sources, known: set[str] | None, purchase_types: list[str],
                 activity_types: list[str] | None) -> Capabilities:
    """What `sources` (SourceSpec) can give; known: the event types they produce (cdp.config.sources
    .known_event_types; None: a source passes its event types through, any may come); purchase_types: the
    journeys' purchase event types (completed by the sources); activity_types: churn.yaml's activity event types
    (None: no churn configuration)."""
    why: dict[str, str] = {}
    if not any(s.silver.identity for s in sources):
        why[IDENTITY] = "no source maps identity fields (silver.identity in conf/sources/)"
    if not any(s.silver.interaction for s in sources):
        why[INTERACTIONS] = "no source produces interactions (silver.interaction in conf/sources/)"
        why[PURCHASES] = why[ACTIVITY] = why[INTERACTIONS]
        return Capabilities(why)

    def produced(types: list[str]) -> bool:
        return bool(types) and (known is None or bool(set(types) & known))

    if not produced(purchase_types):
        why[PURCHASES] = ("no source produces purchases (declare them with silver.interaction.purchases in "
                          "conf/sources/<source>.yaml)")
    if activity_types is None:
        why[ACTIVITY] = "churn.yaml is absent (it defines the activity churn is measured by)"
    elif not produced([*activity_types, *purchase_types]):
        why[ACTIVITY] = ("no source produces a purchase or an event type of churn.yaml's "
                         "definition.activity_event_types")
    return Capabilities(why)
