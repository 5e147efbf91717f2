"""Customer journeys: every touchpoint of a customer in order, sessions, stages, purchases that did not
complete, funnels, paths and attribution (gold tables built from silver.interactions and gold.identity_map)."""
