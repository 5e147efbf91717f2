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

from cdp.errors import SourceError
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


def _missing_required(spec: SourceSpec, present: list[str], path: str) -> None:
    missing = [c for c in spec.required_columns if c not in present]
    if missing:
        raise SourceError(
            f"source '{spec.name}': file {path} lacks required column(s) {', '.join(missing)}; "
            f"fix the export or the columns in conf/sources/{spec.name}.yaml"
        )


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
        line = _first_line(spark, path).lstrip("\ufeff")
        header = tuple(h.strip() for h in next(csv.reader(io.StringIO(line), delimiter=options.get("sep", ",")), []))
        _missing_required(spec, list(header), path)
        groups.setdefault(header, []).append(path)
    frames = []
    for header, paths in groups.items():
        schema = StructType([StructField(h, StringType()) for h in header] + [StructField(CORRUPT, StringType())])
        df = (
            spark.read.options(**options).schema(schema).csv(paths)
            .withColumn("_source_file", F.col("_metadata.file_path"))
            .withColumn("_raw", F.col(CORRUPT))
        )
        frames.append(_project(df, spec, list(header)).withColumn(CORRUPT, F.col("_raw")))
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out


def read_parquet(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    df = spark.read.option("mergeSchema", "true").parquet(*files)
    present = df.columns
    _missing_required(spec, present, files[0])
    to_text = [
        (F.to_json(F.col(f"`{f.name}`")) if f.dataType.typeName() in ("struct", "array", "map") else F.col(f"`{f.name}`").cast("string")).alias(f.name)
        for f in df.schema.fields
    ]
    df = df.select(*to_text, F.col("_metadata.file_path").alias("_source_file"), F.lit(None).cast("string").alias("_raw"))
    return _project(df, spec, present).withColumn(CORRUPT, F.lit(None).cast("string"))


READERS = {"json": read_json_lines, "csv": read_csv, "parquet": read_parquet}


def read_landing(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """Raw frame for these files of one source (columns: declared..., _rescued_data, _corrupt_record, _raw, _source_file)."""
    return READERS[spec.format](spark, spec, files)
