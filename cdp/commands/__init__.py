"""The `cdp` commands, one module per family (cdp/cli.py is the parser and calls them):

    runs        cdp run, cdp status, cdp report
    project     cdp setup, cdp generate, cdp check, cdp docs
    lakehouse   cdp quarantine, cdp sql, cdp profile, cdp explain, cdp eval
    forget      cdp forget (GDPR erasure)
    workflows   cdp workflows export (Databricks workflows from the pipeline's DAG)
    session     the Spark session a command starts (command_session)

Each handler is `cmd_<name>(args, settings) -> exit code`, a short function over library calls that imports its
heavy modules inside, so `cdp --help` and `cdp check` start no JVM and load no Spark module.
"""
