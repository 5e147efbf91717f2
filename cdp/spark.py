"""SparkSession factory: Delta (and GraphFrames when available), checkpoint dir and conf from Settings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cdp.config import Settings
from cdp.errors import EnvironmentProblem

MIN_JAVA = 17
JAVA_HINT = "install Java 17 (Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless) or point JAVA_HOME at one"


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands Python its gateway port; the JVM's JARs are fixed by then.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def java_binary(env: dict[str, str] | None = None) -> str | None:
    """The java Spark will launch: JAVA_HOME first, then PATH."""
    env = os.environ if env is None else env
    home = env.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else shutil.which("java", path=env.get("PATH", ""))


def java_version(env: dict[str, str] | None = None) -> int:
    """Major version of the java Spark will launch; EnvironmentProblem if none."""
    env = dict(os.environ if env is None else env)
    home = env.get("JAVA_HOME")
    java = java_binary(env)
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={home} has no bin/java" if home else "no 'java' on PATH and JAVA_HOME is not set"
        raise EnvironmentProblem(f"Java {MIN_JAVA}+ is required to run Spark, but {where}: {JAVA_HINT}.")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"Could not run '{java} -version' ({exc}): {JAVA_HINT}.") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise EnvironmentProblem(f"Could not read the Java version from '{java} -version': {JAVA_HINT}.")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major  # "1.8.0" is Java 8


def check_java(env: dict[str, str] | None = None) -> int:
    major = java_version(env)
    if major < MIN_JAVA:
        raise EnvironmentProblem(f"Java {major} found, but Spark 4 needs Java {MIN_JAVA} or newer: {JAVA_HINT}.")
    return major


def splink_jar() -> str:
    """Path of the Spark UDF JAR bundled in the splink wheel (spark-submit: pass it with --jars)."""
    from splink.backends.spark import similarity_jar_location

    return similarity_jar_location()


def ivy_cached(ivy_dir: str, coordinate: str) -> bool:
    """True when a Maven coordinate group:artifact:version is already in the project's Ivy cache."""
    group, artifact, version = coordinate.split(":")
    return (Path(ivy_dir) / "cache" / group / artifact / "jars" / f"{artifact}-{version}.jar").is_file()


def build_spark(settings: Settings, app_name: str | None = None):
    """Create (or reuse) the SparkSession the whole pipeline shares."""
    from pyspark.sql import SparkSession

    submitted = _launched_by_spark_submit()
    if not submitted:
        check_java()
    builder = SparkSession.builder.appName(app_name or settings.spark.app_name)
    if not submitted:
        builder = builder.master(settings.spark.master)
    builder = (
        builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    )
    if settings.spark.master.startswith("local") and not submitted:
        # Python workers must be this interpreter (the venv), not whatever `python3` is first on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in settings.spark.conf.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    if settings.spark.packages == "auto" and not submitted:
        from delta import configure_spark_with_delta_pip

        ivy_dir = settings.path(settings.spark.ivy_dir)
        builder = builder.config("spark.jars.ivy", ivy_dir)
        extra = [c for c in settings.spark.optional_packages if ivy_cached(ivy_dir, c)]
        # configure_spark_with_delta_pip overwrites spark.jars.packages, so extras go through it.
        builder = configure_spark_with_delta_pip(builder, extra_packages=extra)
        # Splink's similarity functions (Jaro-Winkler ...) ship as a JAR inside its wheel
        builder = builder.config("spark.jars", splink_jar())
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    spark.sparkContext.setCheckpointDir(settings.path(settings.paths.checkpoints))
    return spark


def jvm_has_class(spark, class_name: str) -> bool:
    """Whether a JVM class (e.g. org.graphframes.GraphFrame) is on the driver's classpath."""
    try:
        spark.sparkContext._jvm.java.lang.Class.forName(
            class_name, False, spark.sparkContext._jvm.java.lang.Thread.currentThread().getContextClassLoader()
        )
        return True
    except Exception:
        return False


def fetch_optional_packages(settings: Settings) -> dict[str, bool]:
    """Try to resolve each optional Maven package into the Ivy cache, one at a time, with Spark's own Ivy.

    A package the configured repositories do not serve is reported, not fatal: the session then runs
    without it (GraphFrames falls back to the built-in connected-components algorithm).
    """
    import pyspark

    ivy_jar = next((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"), None)
    ivy_dir = settings.path(settings.spark.ivy_dir)
    java = java_binary() or "java"
    result = {}
    for coord in settings.spark.optional_packages:
        if ivy_cached(ivy_dir, coord):
            result[coord] = True
            continue
        group, artifact, version = coord.split(":")
        cmd = [java, "-jar", str(ivy_jar), "-cache", str(Path(ivy_dir) / "cache"), "-dependency", group, artifact, version]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        result[coord] = proc.returncode == 0 and ivy_cached(ivy_dir, coord)
    return result


def cut_lineage(df, reliable: bool = False):
    """Materialise `df` (local checkpoint, or a reliable one in the checkpoint directory) and return a frame
    reading it with neither its lineage nor its size estimate.

    A checkpointed frame keeps its plan's size estimate, and an inner join estimates the product of its inputs'
    sizes: through rounds of checkpointed joins (connected components, the identity guards) the estimate's
    digits double every round, and at a million records the planner spent most of the identity step
    multiplying integers of millions of digits. A frame over the checkpointed rows has the default estimate
    instead; adaptive query execution sizes the joins from the real shuffle statistics.
    """
    from pyspark.sql import DataFrame

    done = df.checkpoint() if reliable else df.localCheckpoint()
    jdf = done._jdf
    fresh = df.sparkSession._jsparkSession.internalCreateDataFrame(jdf.queryExecution().toRdd(), jdf.schema(), False)
    return DataFrame(fresh, df.sparkSession)

