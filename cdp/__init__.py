"""cdp: an open, lakehouse-native Customer Data Platform on Spark, Delta Lake and GraphFrames.

The public surface is small: load settings, build a session, run the pipeline.
"""

from cdp.config import Settings, load_settings

__all__ = ["Settings", "load_settings", "build_spark", "run_pipeline"]
__version__ = "0.1.0"


def build_spark(settings: Settings, app_name: str | None = None, **options):
    """The SparkSession the pipeline shares (options: jvm_log=<file>, verbose=True; see cdp.spark.build_spark)."""
    from cdp.spark import build_spark as _build

    return _build(settings, app_name, **options)


def run_pipeline(settings: Settings, spark, steps: list[str] | None = None):
    from cdp.pipeline import run_pipeline as _run

    return _run(settings, spark, steps)
