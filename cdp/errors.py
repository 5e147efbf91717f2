"""Errors a user can cause (config, input, environment): one line that says what to do."""


class CdpError(Exception):
    """Base for user-facing errors; the CLI prints the message alone, with no traceback."""


class ConfigError(CdpError):
    """A configuration file, key or override is wrong."""


class EnvironmentProblem(CdpError):
    """The machine lacks something Spark needs (Java, a JAR, a path)."""


class SourceError(CdpError):
    """A source's landing files cannot be ingested as configured (e.g. a required column is missing)."""


class QualityGateFailed(CdpError):
    """A critical data-quality expectation failed; the run stops."""


class InsufficientData(CdpError):
    """The data cannot support what the configuration asks (too little history for the churn snapshots)."""


def first_line(exc: BaseException) -> str:
    """The first meaningful line of an exception (a JVM exception's own message for Py4J errors)."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)[:300]
