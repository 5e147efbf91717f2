"""Reading landing files into one raw frame per source: every declared column as a string, plus
`_rescued_data` (columns the YAML does not declare), `_raw` (the original text where there is one)
and `_source_file`. Works on any Hadoop file system (local, s3a, abfss)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructField, StructType

from cdp.frames import union_all
from cdp.ingest.sources import SourceSpec

CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    modified_ms: int


def list_landing_files(spark: SparkSession, pattern: str) -> list[LandingFile]:
    """Files matching a glob, sorted by path. The list grows with files, not rows, so it lives on the driver."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(hpath) or []
    files = [
        LandingFile(s.getPath().toString(), s.getLen(), s.getModificationTime())
        for s in statuses
        if s.isFile() and not s.getPath().getName().startswith((".", "_"))
    ]
    return sorted(files, key=lambda f: f.path)


def _first_line(spark: SparkSession, path: str) -> str:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    stream = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(hpath)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return reader.readLine() or ""
    finally:
        stream.close()


def _project(df: DataFrame, spec: SourceSpec, present: list[str]) -> DataFrame:
    """Declared columns (null when absent), extra ones packed into _rescued_data as JSON."""
    declared = spec.column_names
    extras = [c for c in present if c not in declared and not c.startswith("_")]
    if extras:
        pairs = F.create_map(*[x for c in extras for x in (F.lit(c), F.col(f"`{c}`").cast("string"))])
        kept = F.map_filter(pairs, lambda k, v: v.isNotNull())
        rescued = F.when(F.size(kept) > 0, F.to_json(kept))
    else:
        rescued = F.lit(None).cast("string")
    cols = [
        (F.col(f"`{c}`").cast("string") if c in present else F.lit(None).cast("string")).alias(c) for c in declared
    ]
    return df.select(*cols, rescued.alias("_rescued_data"), "_raw", "_source_file")


def missing_required(spec: SourceSpec, present: list[str]) -> str | None:
    """The rejection reason of a file whose columns lack a required one, or None."""
    missing = [c for c in spec.required_columns if c not in present]
    if not missing:
        return None
    return (f"lacks required column(s) {', '.join(missing)}; fix the export or the columns in "
            f"conf/sources/{spec.name}.yaml")


@dataclass(frozen=True)
class Inspection:
    """What a look at each new file's header or footer says, before any row is read."""

    readable: list[LandingFile]                   # files to read
    empty: list[LandingFile]                      # no rows at all (0 bytes, or a blank first line): land as 0 rows
    rejected: list[tuple[LandingFile, str]]       # files that cannot land as the source is declared, and why


def _csv_header(spark: SparkSession, spec: SourceSpec, path: str) -> list[str]:
    line = _first_line(spark, path).lstrip("\ufeff")
    sep = spec.options.get("sep", spec.options.get("delimiter", ","))
    return [h.strip() for h in next(csv.reader(io.StringIO(line), delimiter=sep), [])]


def _parquet_columns(spark: SparkSession, path: str) -> list[str] | None:
    """The file's column names from its footer, or None when it is not a readable Parquet file."""
    try:
        return spark.read.parquet(path).columns
    except Exception:  # noqa: BLE001 - a truncated or foreign file: rejected with a reason, never a crash
        return None


def inspect_files(spark: SparkSession, spec: SourceSpec, files: list[LandingFile]) -> Inspection:
    """Sort new files into readable, empty and rejected ones (one small read per file: it grows with files).

    JSON lines have no header: a line missing a required field is quarantined by itself at landing."""
    readable, empty, rejected = [], [], []
    for f in files:
        if f.size == 0:
            empty.append(f)
            continue
        if spec.format == "csv":
            header = _csv_header(spark, spec, f.path)
            if not any(header):
                empty.append(f)
                continue
            reason = missing_required(spec, header)
        elif spec.format == "parquet":
            columns = _parquet_columns(spark, f.path)
            reason = ("is not a readable Parquet file (truncated or another format); replace it"
                      if columns is None else missing_required(spec, columns))
        else:
            reason = None
        if reason:
            rejected.append((f, reason))
        else:
            readable.append(f)
    return Inspection(readable, empty, rejected)


def read_json_lines(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    text = spark.read.text(files).select("value", F.col("_metadata.file_path").alias("_source_file"))
    text = text.where(F.trim("value") != "")
    parsed = text.select(
        F.from_json("value", MapType(StringType(), StringType())).alias("m"), F.col("value").alias("_raw"), "_source_file"
    )
    declared = spec.column_names
    extras = F.map_filter("m", lambda k, v: ~k.isin(declared) & v.isNotNull())
    return parsed.select(
        *[F.col("m").getItem(c).alias(c) for c in declared],
        F.when(F.size(extras) > 0, F.to_json(extras)).alias("_rescued_data"),
        F.when(F.col("m").isNull(), F.col("_raw")).alias(CORRUPT),
        "_raw",
        "_source_file",
    )


def read_csv(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """CSV files grouped by header, so a file with an extra or missing column is read by its own header."""
    options = {"header": "true", **spec.options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in files:
        groups.setdefault(tuple(_csv_header(spark, spec, path)), []).append(path)
    frames = []
    for header, paths in groups.items():
        schema = StructType([StructField(h, StringType()) for h in header] + [StructField(CORRUPT, StringType())])
        df = (
            spark.read.options(**options).schema(schema).csv(paths)
            .withColumn("_source_file", F.col("_metadata.file_path"))
            .withColumn("_raw", F.col(CORRUPT))
        )
        frames.append(_project(df, spec, list(header)).withColumn(CORRUPT, F.col("_raw")))
    return union_all(frames)


def read_parquet(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    df = spark.read.option("mergeSchema", "true").parquet(*files)
    present = df.columns
    to_text = [
        (F.to_json(F.col(f"`{f.name}`")) if f.dataType.typeName() in ("struct", "array", "map") else F.col(f"`{f.name}`").cast("string")).alias(f.name)
        for f in df.schema.fields
    ]
    df = df.select(*to_text, F.col("_metadata.file_path").alias("_source_file"), F.lit(None).cast("string").alias("_raw"))
    return _project(df, spec, present).withColumn(CORRUPT, F.lit(None).cast("string"))


READERS = {"json": read_json_lines, "csv": read_csv, "parquet": read_parquet}


def read_landing(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """Raw frame for these files of one source, checked by `inspect_files` first
    (columns: declared..., _rescued_data, _corrupt_record, _raw, _source_file)."""
    return READERS[spec.format](spark, spec, files)
