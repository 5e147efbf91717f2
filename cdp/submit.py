"""The spark-submit command line that runs the pipeline on a cluster: standalone, YARN or Kubernetes.

Under spark-submit the JVM starts before any of our Python runs, so build_spark can no longer choose its JARs or
its driver memory: everything the JVM needs at launch goes on the command line instead. The JARs are the ones a
local run uses (`cdp.spark.jar_config`): the JARs recorded by `cdp setup` in the Ivy manifest, or, without a
current manifest, Delta's Maven coordinates resolved by spark-submit through the project's Ivy settings; plus
Splink's similarity-function JAR, which ships inside the splink wheel. spark-submit hands `--jars` to the driver
and to every executor.

The Python that runs the driver and the executors' UDFs defaults to this interpreter (sys.executable): right on
one machine and on a cluster whose nodes share this environment's path (an image or a conda env in which
`pip install cdp` ran); override spark.pyspark.python through `extra_conf` otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cdp.config import PROJECT_ROOT, Settings

JOB = PROJECT_ROOT / "jobs" / "run_pipeline.py"


def pyspark_home() -> Path:
    """SPARK_HOME of the installed pyspark (its package folder holds bin/spark-submit, bin/spark-class, jars/):
    the Spark this project is pinned to, whatever SPARK_HOME the environment names."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def submit_classpath(settings: Settings) -> tuple[list[str], list[str], dict[str, str]]:
    """(jars, packages, conf) for spark-submit's --jars, --packages and --conf: what build_spark would put in the
    session's classpath conf if it started the JVM itself.

    packages=auto: the manifest's JARs when it is current, else the Maven coordinates with the project's Ivy
    cache and settings (spark-submit resolves them: network on first use). packages=provided: the cluster (or the
    caller's own --packages) supplies Delta; only the JARs of this Python environment (Splink's) are added.
    User JARs in spark.conf's spark.jars come last either way."""
    from cdp.spark import classpath, splink_jar, write_ivy_settings

    if settings.spark.packages != "auto":
        return [splink_jar(), *(j for j in _text(settings.spark.conf.get("spark.jars", "")).split(",") if j)], [], {}
    jars, packages, conf = classpath(settings)
    if conf:
        write_ivy_settings(conf["spark.jars.ivy"])   # spark-submit resolves through them
    return jars, packages, conf


def spark_submit_command(settings: Settings, master: str, job_args: list[str], *,
                         extra_conf: dict | None = None) -> list[str]:
    """The full argv of a spark-submit that runs jobs/run_pipeline.py with `job_args` (e.g. --env cluster,
    --set key=value, --run-id ID, --steps ...) on `master` (spark://host:7077, yarn, k8s://https://host:443).

    Every key of settings.spark.conf goes on the command line as --conf, so the ones read at JVM launch
    (spark.driver.memory, spark.driver.extraJavaOptions) take effect; settings.spark.master is not used: the
    `master` given here decides (build_spark sets no master under spark-submit). The JARs come from
    submit_classpath; spark.pyspark.python and spark.pyspark.driver.python are this interpreter. `extra_conf`
    adds what the settings leave to the cluster (spark.executor.memory, spark.cores.max, spark.submit.deployMode,
    spark.kubernetes.*; it may replace spark.pyspark.python); spark.jars and spark.jars.packages (there or in the
    settings, e.g. hadoop-aws for s3a:// paths) join --jars and --packages.

    `settings` must be the settings the job itself loads from job_args: the session the job builds sets every key
    of settings.spark.conf again, over the command line's. So extra_conf cannot change such a key (ValueError):
    change it in the settings (--set spark.conf.<key>=<value>, or the env's YAML) for both."""
    conf = {k: _text(v) for k, v in settings.spark.conf.items()}
    extra = {k: _text(v) for k, v in (extra_conf or {}).items()}
    # --jars and --packages replace spark.jars and spark.jars.packages: what those name joins the lists instead
    listed = {key: [item for source in (conf, extra) for item in source.pop(key, "").split(",") if item]
              for key in ("spark.jars", "spark.jars.packages")}
    clash = sorted(k for k, v in extra.items() if k in conf and conf[k] != v)
    if clash:
        raise ValueError(f"extra_conf sets {', '.join(clash)}, which the settings' spark.conf sets otherwise (the job's "
                         "session would set it back): change it in the settings, e.g. --set spark.conf."
                         f"{clash[0]}={extra[clash[0]]}")
    conf["spark.pyspark.python"] = sys.executable
    conf["spark.pyspark.driver.python"] = sys.executable
    conf.update(extra)
    jars, packages, classpath_conf = submit_classpath(settings)
    jars = list(dict.fromkeys([*jars, *listed["spark.jars"]]))   # the settings' spark.jars are in both: once each
    packages = list(dict.fromkeys([*packages, *listed["spark.jars.packages"]]))
    conf = {**classpath_conf, **conf}

    argv = [str(pyspark_home() / "bin" / "spark-submit"), "--master", master, "--name", settings.spark.app_name]
    if jars:
        argv += ["--jars", ",".join(jars)]
    if packages:
        argv += ["--packages", ",".join(packages)]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(JOB), *job_args]
