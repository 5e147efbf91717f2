"""Landing files -> bronze Delta tables: incremental, exactly-once, with lineage and a quarantine."""
