"""Silver: typed, standardized, deduplicated canonical tables built from bronze."""
