"""The Spark session a `cdp` command starts: its JVM output goes to the command's log file (args.log)
unless --verbose."""

from __future__ import annotations


def command_session(args, settings, app: str):
    """A SparkSession for the command `app` (cdp.spark.build_spark), logging where the command logs."""
    from cdp.spark import build_spark

    return build_spark(settings, app_name=app, jvm_log=str(args.log), verbose=args.verbose)
