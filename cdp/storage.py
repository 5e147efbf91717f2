"""Files on local disk or object storage: reports, data docs, the run book's Delta logs, the lock, landing files.

`hadoop_path` is the one opener of a Hadoop FileSystem (what s3a://, abfss://, hdfs:// and dbfs:/ need). Plain paths and file: URIs go through pathlib; every other scheme (s3a://, abfss://, hdfs://, dbfs:/) goes
through the Hadoop FileSystem of a SparkSession's JVM, so the cluster's credentials and connectors apply.
`via_hadoop=True` sends a local URI through Hadoop too (tests use it with file:///...).
When spark is None and Hadoop is needed, the active SparkSession is used.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pyspark.sql import SparkSession

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a Windows drive


def scheme(uri: str) -> str | None:
    """'s3a' for s3a://b/k, 'dbfs' for dbfs:/x, 'file' for file:///x, None for a plain path."""
    m = _SCHEME.match(uri)
    return m.group(1).lower() if m else None


def is_local(uri: str) -> bool:
    """True for plain paths and file: URIs."""
    return scheme(uri) in (None, "file")


def local_path(uri: str) -> Path:
    """file:///tmp/x, file:/tmp/x and /tmp/x -> Path('/tmp/x')."""
    return Path(unquote(urlsplit(uri).path)) if scheme(uri) == "file" else Path(uri)


def join(uri: str, *parts: str) -> str:
    """Child of a folder: a plain path joined with pathlib, a URI with '/' (s3a://b/r + x -> s3a://b/r/x)."""
    if scheme(uri) is None:
        return str(Path(uri, *parts))
    return "/".join([uri.rstrip("/"), *parts])


def write_text(spark: SparkSession | None, uri: str, text: str, *, via_hadoop: bool = False) -> None:
    """Create or overwrite uri with text as UTF-8 (parent folders are created)."""
    data = text.encode("utf-8")
    if is_local(uri) and not via_hadoop:
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    fs, path = hadoop_path(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def read_text(spark: SparkSession | None, uri: str, *, via_hadoop: bool = False) -> str:
    """The whole file as UTF-8 text."""
    if is_local(uri) and not via_hadoop:
        return local_path(uri).read_text(encoding="utf-8")
    fs, path = hadoop_path(spark, uri)
    jvm = _session(spark, uri).sparkContext._jvm
    buffer = jvm.java.io.ByteArrayOutputStream()
    jvm.org.apache.hadoop.io.IOUtils.copyBytes(fs.open(path), buffer, 65536, True)  # closes both streams
    return bytes(buffer.toByteArray()).decode("utf-8")


def list_files(
    spark: SparkSession | None, folder_uri: str, suffix: str = "", *, via_hadoop: bool = False
) -> list[tuple[str, int]]:
    """(name, modified epoch ms) of the files directly in folder_uri whose name ends with suffix, by name.

    Hidden and bookkeeping files (names starting with '.' or '_', e.g. Hadoop's .crc) are skipped;
    a missing folder is empty.
    """
    if is_local(folder_uri) and not via_hadoop:
        folder = local_path(folder_uri)
        found = [
            (p.name, p.stat().st_mtime_ns // 1_000_000)
            for p in (folder.iterdir() if folder.is_dir() else [])
            if p.is_file()
        ]
    else:
        fs, path = hadoop_path(spark, folder_uri)
        statuses = fs.listStatus(path) if fs.exists(path) else []
        found = [(s.getPath().getName(), int(s.getModificationTime())) for s in statuses if s.isFile()]
    return sorted((name, ms) for name, ms in found if name.endswith(suffix) and not name.startswith((".", "_")))


def _session(spark: SparkSession | None, uri: str) -> SparkSession:
    session = spark or SparkSession.getActiveSession()
    if session is None:
        raise ValueError(f"{uri}: writing or listing a {scheme(uri)}: location needs a SparkSession (pass spark=)")
    return session


def hadoop_path(spark: SparkSession | None, uri: str):
    """(FileSystem, Path) of uri in the session's JVM."""
    sc = _session(spark, uri).sparkContext
    path = sc._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(sc._jsc.hadoopConfiguration()), path
