"""Where a command's chatter goes: one log file per command under <lakehouse>/_logs (Python logging, warnings,
Spark's JVM output and any traceback), so the terminal shows only what the user needs; --verbose shows it all.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path

from cdp.config import Settings

KEEP = 30                       # log files kept; older ones are removed when a command starts
CHATTY = ("py4j", "splink", "mlflow", "alembic", "great_expectations", "urllib3", "matplotlib")


def log_folder(settings: Settings) -> Path:
    """<lakehouse>/_logs on a local lakehouse; the temp folder when the lakehouse is object storage."""
    lake = settings.path(settings.paths.lakehouse)
    if "://" in lake or lake.startswith("dbfs:"):
        return Path(tempfile.gettempdir()) / "cdp-logs"
    return Path(lake) / "_logs"


def start_log(settings: Settings, command: str, verbose: bool = False) -> Path:
    """Open this command's log file and route Python logging and warnings to it (and to the terminal when
    verbose). Returns the path, which the JVM's output is also sent to."""
    folder = log_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("*.log"))[:-KEEP]:
        old.unlink(missing_ok=True)
    path = folder / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{command}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if verbose:
        root.addHandler(logging.StreamHandler())
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    # py4j leaves its pooled gateway sockets to the garbage collector: a 10k-customer run logged 433 such warnings
    # (two lines each), drowning the warnings that matter
    warnings.filterwarnings("ignore", message=r"unclosed <socket\.socket", category=ResourceWarning)
    _quiet_query_context_loggers(handler, verbose)
    return path


# PySpark logs a failing DataFrame's query context as a JSON record on stderr, from loggers that print on their own
# (a StreamHandler of their own, propagation switched off at every call): the record goes to the log file instead,
# so the terminal keeps the one `error:` line
QUERY_CONTEXT_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def _quiet_query_context_loggers(handler: logging.Handler, verbose: bool) -> None:
    from pyspark.logger import PySparkLogger

    for name in QUERY_CONTEXT_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        for h in list(logger.handlers):
            logger.removeHandler(h)
        logging.Logger.addHandler(logger, handler)   # the file's plain format, not PySparkLogger's JSON one
        if verbose:
            logging.Logger.addHandler(logger, logging.StreamHandler())


def quiet_libraries(verbose: bool = False) -> None:
    """Keep libraries that print on their own (MLflow configures its loggers when imported, GX progress bars)
    off the terminal; set before they are imported."""
    import os

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not verbose:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
