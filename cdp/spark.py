"""SparkSession factory: Delta (and GraphFrames when available), checkpoint dir and conf from Settings.

Quiet by default: the Delta classpath is resolved once (`cdp setup`) and recorded in a manifest in the Ivy
dir, so later sessions start from plain JAR paths with no Ivy run; the JVM's console output can go to a log
file; stop_spark removes the session's checkpoint folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.sax.saxutils import escape

from cdp.config import Settings
from cdp.errors import EnvironmentProblem
from cdp.jvm_log import jvm_output_to, start_failure_cause

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


# --- classpath: resolve once with Ivy, then start from the recorded JAR list with no resolution at all ---

MANIFEST = "cdp-classpath.json"
IVY_SETTINGS = "cdp-ivysettings.xml"
CENTRAL = "https://repo1.maven.org/maven2/"


class SparkStartFailed(EnvironmentProblem):
    """The JVM did not start; its own output is in `log_path`."""

    def __init__(self, message: str, log_path: str | None = None):
        super().__init__(message)
        self.log_path = log_path


def wanted_packages(settings: Settings) -> list[str]:
    """Maven coordinates a packages=auto session needs: Delta (exactly as configure_spark_with_delta_pip
    computes it from the installed delta-spark and pyspark) plus the optional packages already in the cache."""
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    ivy_dir = settings.ivy_path()
    extra = [c for c in settings.spark.optional_packages if ivy_cached(ivy_dir, c)]
    # A throwaway builder (its options are per instance): the function's own result, not a copy of its rules.
    probe = configure_spark_with_delta_pip(SparkSession.Builder(), extra_packages=extra)
    return [c for c in probe._options["spark.jars.packages"].split(",") if c]


def manifest_path(settings: Settings) -> Path:
    return Path(settings.ivy_path()) / MANIFEST


def read_manifest(settings: Settings, packages: list[str] | None = None) -> list[str] | None:
    """The recorded JARs when the manifest was written for exactly `packages` (default: wanted_packages) and
    every JAR it lists is still there; None when it is missing, unreadable or stale."""
    packages = wanted_packages(settings) if packages is None else packages
    try:
        data = json.loads(manifest_path(settings).read_text(encoding="utf-8"))
        recorded, jars = data["packages"], data["jars"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(jars, list) or not jars or sorted(recorded) != sorted(packages):
        return None
    return jars if all(isinstance(j, str) and Path(j).is_file() for j in jars) else None


def ivy_settings_xml(ivy_dir: str) -> str:
    """Spark's default resolver chain (local m2, local Ivy repository, Maven Central) without
    repos.spark-packages.org, under the same resolver names so the existing cache entries stay valid.
    DEFAULT_ARTIFACT_REPOSITORY replaces Maven Central, as it does for Spark's own chain."""
    m2 = (Path.home() / ".m2" / "repository").as_uri() + "/"
    local = str(Path(ivy_dir) / "local")
    central = os.environ.get("DEFAULT_ARTIFACT_REPOSITORY") or CENTRAL
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by cdp.spark for spark.jars.ivySettings: Spark's default chain minus its third-party package host. -->
<ivysettings>
  <settings defaultResolver="spark-list"/>
  <property name="ivy.maven.lookup.sources" value="false"/>
  <property name="ivy.maven.lookup.javadoc" value="false"/>
  <resolvers>
    <chain name="spark-list">
      <ibiblio name="local-m2-cache" m2compatible="true" usepoms="true" root="{escape(m2)}"/>
      <filesystem name="local-ivy-cache" local="true">
        <ivy pattern="{escape(local)}/[organisation]/[module]/[revision]/ivys/ivy.xml"/>
        <artifact pattern="{escape(local)}/[organisation]/[module]/[revision]/[type]s/[artifact](-[classifier]).[ext]"/>
      </filesystem>
      <ibiblio name="central" m2compatible="true" usepoms="true" root="{escape(central)}"/>
    </chain>
  </resolvers>
</ivysettings>
"""


def write_ivy_settings(ivy_dir: str) -> str:
    path = Path(ivy_dir) / IVY_SETTINGS
    _write_atomically(path, ivy_settings_xml(ivy_dir))
    return str(path)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _user_jars(settings: Settings) -> list[str]:
    return [j for j in str(settings.spark.conf.get("spark.jars", "")).split(",") if j]


def classpath(settings: Settings) -> tuple[list[str], list[str], dict[str, str]]:
    """(JARs, Maven packages, Ivy conf) of packages=auto: with a current manifest, the recorded JARs (no Ivy run, no
    network); without one, the packages to resolve into the project Ivy cache through our Ivy settings (no
    spark-packages resolver). Splink's similarity functions (Jaro-Winkler ...) ship as a JAR inside its wheel: added
    either way, then the user's spark.jars."""
    packages = wanted_packages(settings)
    recorded = read_manifest(settings, packages)
    own = [splink_jar(), *_user_jars(settings)]
    if recorded is not None:
        return [*recorded, *own], [], {}
    ivy_dir = settings.ivy_path()
    return own, packages, {"spark.jars.ivy": ivy_dir, "spark.jars.ivySettings": str(Path(ivy_dir) / IVY_SETTINGS)}


def jar_config(settings: Settings) -> dict[str, str]:
    """The classpath part of the session's conf (`classpath`), the decision build_spark makes, with no side effects.
    packages=provided, or under spark-submit: nothing (the JVM's classpath is someone else's)."""
    if settings.spark.packages != "auto" or _launched_by_spark_submit():
        return {}
    jars, packages, conf = classpath(settings)
    return {**conf, **({"spark.jars.packages": ",".join(packages)} if packages else {}), "spark.jars": ",".join(jars)}


def _local_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path) if parsed.scheme else uri
    return None


def record_classpath(settings: Settings, spark) -> Path | None:
    """Write the manifest (coordinates + absolute JAR paths) for a session whose JVM resolved
    spark.jars.packages, so the next start needs no resolution. Returns the manifest's path (written now, or
    already current when this JVM started from it), or None when there is nothing to record
    (packages=provided, spark-submit, a JVM started for other settings).

    SparkSubmit puts the resolved JARs (copied into <ivy_dir>/jars) in the JVM's spark.jars system
    property; the session's conf does not show them (pyspark's own spark.jars option overrides it).
    """
    jvm = spark.sparkContext._jvm
    packages = jvm.java.lang.System.getProperty("spark.jars.packages")
    jars_prop = jvm.java.lang.System.getProperty("spark.jars")
    if not packages or not jars_prop:
        current = settings.spark.packages == "auto" and read_manifest(settings) is not None
        return manifest_path(settings) if current else None
    jars_dir = Path(settings.ivy_path()) / "jars"
    if not jars_dir.is_dir():
        return None
    jars = []
    for entry in jars_prop.split(","):
        path = _local_path(entry.strip())
        if path and Path(path).is_file() and Path(path).parent.samefile(jars_dir):
            jars.append(path)
    if not jars:
        return None
    coordinates = [c.strip() for c in packages.split(",") if c.strip()]
    target = manifest_path(settings)
    body = {"packages": coordinates, "jars": jars, "spark": spark.version}
    _write_atomically(target, json.dumps(body, indent=2) + "\n")
    return target


# --- the session ---


def build_spark(settings: Settings, app_name: str | None = None, *, jvm_log: str | None = None,
                verbose: bool = False):
    """Create (or reuse) the SparkSession the whole pipeline shares.

    jvm_log: when given (and not verbose), the JVM's own stdout/stderr (Ivy report, log4j console output)
    go to this file instead of the terminal, for the JVM's whole life; a failed start raises SparkStartFailed
    naming the file. verbose: nothing is redirected and Spark logs at settings.spark.log_level; otherwise
    Spark logs at ERROR. Under spark-submit the JVM already exists: no redirection, the configured level.
    """
    from pyspark import SparkContext
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
    if settings.spark.master.startswith("local") and not submitted and "spark.sql.warehouse.dir" not in settings.spark.conf:
        # the embedded default keeps its metastore folders (catalog.database) inside the lakehouse, not in the cwd
        builder = builder.config("spark.sql.warehouse.dir", settings.path(settings.paths.lakehouse) + "/_warehouse")
    for key, value in settings.spark.conf.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    jars = jar_config(settings)
    if "spark.jars.ivySettings" in jars:
        write_ivy_settings(jars["spark.jars.ivy"])
    for key, value in jars.items():
        builder = builder.config(key, value)
    # Only the first session of a process starts a JVM; later ones reuse it (and its file descriptors).
    redirect = jvm_log is not None and not verbose and not submitted and SparkContext._gateway is None
    redirect = redirect and _writable(jvm_log)  # an unwritable log path costs quiet, not the run
    if redirect:
        try:
            with jvm_output_to(jvm_log):
                spark = builder.getOrCreate()
        except Exception as exc:
            cause = start_failure_cause(jvm_log) or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            hint = ("; run `make setup` with access to Maven Central, or set spark.packages=provided on a cluster"
                    if "spark.jars.packages" in jars else "")
            raise SparkStartFailed(f"Spark could not start ({cause}){hint}; JVM output in {jvm_log}", jvm_log) from exc
    else:
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level if verbose or submitted else "ERROR")
    spark.sparkContext.setCheckpointDir(settings.path(settings.paths.checkpoints))
    if "spark.jars.packages" in jars:
        with contextlib.suppress(OSError):  # a read-only Ivy dir: the next start resolves again, as before
            record_classpath(settings, spark)  # the next start is offline
    return spark


def _writable(path: str) -> bool:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            return True
    except OSError:
        return False


_SESSION_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def stop_spark(spark) -> str | None:
    """Stop the session and remove the checkpoint sub-folder it created (setCheckpointDir makes a random
    <checkpoints>/<uuid> per session). Local folders are removed after the stop; other file systems
    (s3a://, abfss://, hdfs://) through Hadoop's FileSystem just before it. Never raises for the cleanup;
    returns the folder removed, or None."""
    sc = spark.sparkContext
    try:
        checkpoint_dir = sc.getCheckpointDir()
    except Exception:
        checkpoint_dir = None
    if not checkpoint_dir or not _SESSION_DIR.match(checkpoint_dir.rstrip("/").rsplit("/", 1)[-1]):
        spark.stop()
        return None
    local = _local_path(checkpoint_dir)
    removed = None
    if local is None:
        try:
            jpath = sc._jvm.org.apache.hadoop.fs.Path(checkpoint_dir)
            if jpath.getFileSystem(sc._jsc.hadoopConfiguration()).delete(jpath, True):
                removed = checkpoint_dir
        except Exception:
            pass
    spark.stop()
    if local is not None and Path(local).is_dir():
        shutil.rmtree(local, ignore_errors=True)
        removed = None if Path(local).exists() else local
    return removed


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
    ivy_dir = settings.ivy_path()
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
