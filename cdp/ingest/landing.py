"""Reading landing files into one raw frame per source: every declared column as a string, plus
`_rescued_data` (columns the YAML does not declare), `_raw` (the original text where there is one),
`_landing_defect` (a shape the reader saw but a string cannot show: a nested value where the source declares a
scalar, a JSON field given twice) and `_source_file`. Works on any Hadoop file system (local, s3a, abfss)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructField, StructType

from cdp.config.sources import SourceSpec
from cdp.frames import first_failing, union_all
from cdp.storage import hadoop_path

CORRUPT = "_corrupt_record"
LANDING_DEFECT = "_landing_defect"


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    modified_ms: int


def list_landing_files(spark: SparkSession, pattern: str) -> list[LandingFile]:
    """Files matching a glob, sorted by path. The list grows with files, not rows, so it lives on the driver."""
    fs, hpath = hadoop_path(spark, pattern)
    statuses = fs.globStatus(hpath) or []
    files = [
        LandingFile(s.getPath().toString(), s.getLen(), s.getModificationTime())
        for s in statuses
        if s.isFile() and not s.getPath().getName().startswith((".", "_"))
    ]
    return sorted(files, key=lambda f: f.path)


def _first_line(spark: SparkSession, path: str) -> str:
    jvm = spark.sparkContext._jvm
    fs, hpath = hadoop_path(spark, path)
    stream = fs.open(hpath)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return reader.readLine() or ""
    finally:
        stream.close()


def nested_value(spec: SourceSpec, nested: list[str]) -> Column:
    """`nested_value:<col>` for the first declared column (of `nested`, those that hold a structure) with a value."""
    return first_failing([(F.col(f"`{c}`").isNotNull(), f"nested_value:{c}") for c in spec.column_names if c in nested])


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
    return df.select(*cols, rescued.alias("_rescued_data"), "_raw", LANDING_DEFECT, "_source_file")


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


def repeated_columns(spec: SourceSpec, header: list[str]) -> str | None:
    """The rejection reason of a file whose header names a column twice (Spark matches names case-blind), or None."""
    lowered = [h.lower() for h in header if h]
    repeated = sorted({h for h in header if h and lowered.count(h.lower()) > 1})
    if not repeated:
        return None
    return (f"repeats column(s) {', '.join(repeated)} in its header, so their values cannot be told apart; fix the "
            f"export (conf/sources/{spec.name}.yaml declares each column once)")


def _has_parquet_magic(spark: SparkSession, path: str, size: int) -> bool:
    """The file starts and ends with PAR1 (a cut-off file has no footer): checked first, so Spark is not asked
    to read a footer that is not there (a failed job that logs a stack trace)."""
    if size < 12:
        return False
    fs, hpath = hadoop_path(spark, path)
    stream = fs.open(hpath)
    try:
        head = bytes(stream.read() for _ in range(4))
        stream.seek(size - 4)
        tail = bytes(stream.read() for _ in range(4))
    finally:
        stream.close()
    return head == tail == b"PAR1"


def _parquet_columns(spark: SparkSession, path: str, size: int) -> list[str] | None:
    """The file's column names from its footer, or None when it is not a readable Parquet file."""
    if not _has_parquet_magic(spark, path, size):
        return None
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
            reason = repeated_columns(spec, header) or missing_required(spec, header)
        elif spec.format == "parquet":
            columns = _parquet_columns(spark, f.path, f.size)
            reason = ("is not a readable Parquet file (truncated or another format); replace it"
                      if columns is None else missing_required(spec, columns))
        else:
            reason = None
        if reason:
            rejected.append((f, reason))
        else:
            readable.append(f)
    return Inspection(readable, empty, rejected)


def _json_shape_defect(spec: SourceSpec) -> Column:
    """A JSON line that names a field twice, or holds an object or array where the source declares a scalar.

    The map reader turns a nested value into its JSON text; only values that start like one are looked at again
    (parsed as a variant), so a plain string that happens to start with '{' is not mistaken for a structure."""
    twice = F.size(F.array_distinct(F.map_keys("m"))) < F.size("m")
    parsed = F.try_parse_json("value")
    checks: list[tuple[Column, str]] = [(twice, "duplicate_field")]
    for c in spec.column_names:
        looks = F.substring(F.ltrim(F.col("m").getItem(c)), 1, 1).isin("{", "[")
        shape = F.schema_of_variant(F.try_variant_get(parsed, f"$['{c}']", "variant"))
        checks.append((looks & shape.rlike("^(OBJECT|ARRAY)"), f"nested_value:{c}"))
    return first_failing(checks)


def read_json_lines(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    text = spark.read.text(files).select("value", F.col("_metadata.file_path").alias("_source_file"))
    # a byte-order mark (Windows tools write one) is not part of the first record
    text = text.select(F.regexp_replace("value", "^\ufeff", "").alias("value"), "_source_file")
    text = text.where(F.trim("value") != "")
    parsed = text.select(
        F.from_json("value", MapType(StringType(), StringType())).alias("m"), "value", "_source_file"
    )
    declared = spec.column_names
    extras = F.map_filter("m", lambda k, v: ~k.isin(declared) & v.isNotNull())
    return parsed.select(
        *[F.col("m").getItem(c).alias(c) for c in declared],
        F.when(F.size(extras) > 0, F.to_json(extras)).alias("_rescued_data"),
        F.when(F.col("m").isNull(), F.col("value")).alias(CORRUPT),
        F.col("value").alias("_raw"),
        F.when(F.col("m").isNotNull(), _json_shape_defect(spec)).alias(LANDING_DEFECT),
        "_source_file",
    )


def read_csv(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """CSV files grouped by header, so a file with an extra or missing column is read by its own header.

    A quote inside a quoted value is doubled (RFC 4180, what Python, Excel and most exports write) unless the
    source's options say otherwise; Spark's own default (a backslash) would keep both quotes of `""` in the value."""
    options = {"header": "true", "escape": '"', **spec.options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
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
            .withColumn(LANDING_DEFECT, F.lit(None).cast("string"))
        )
        frames.append(_project(df, spec, list(header)).withColumn(CORRUPT, F.col("_raw")))
    return union_all(frames)


def read_parquet(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """Parquet files grouped by schema (one export may write a column as int, the next as string, which one
    merged read cannot hold), each group's values as strings; a nested column where the source declares a
    scalar is kept as JSON text and its rows flagged."""
    groups: dict[str, list[str]] = {}
    schemas = {}
    for path in files:
        schema = spark.read.parquet(path).schema
        groups.setdefault(schema.json(), []).append(path)
        schemas[schema.json()] = schema
    frames = []
    for key, paths in groups.items():
        df = spark.read.schema(schemas[key]).parquet(*paths)
        nested = [f.name for f in df.schema.fields if f.dataType.typeName() in ("struct", "array", "map")]
        to_text = [(F.to_json(F.col(f"`{f.name}`")) if f.name in nested else F.col(f"`{f.name}`").cast("string"))
                   .alias(f.name) for f in df.schema.fields]
        df = df.select(*to_text, F.col("_metadata.file_path").alias("_source_file"),
                       F.lit(None).cast("string").alias("_raw"))
        df = df.withColumn(LANDING_DEFECT, nested_value(spec, nested))
        present = [f.name for f in schemas[key].fields]
        frames.append(_project(df, spec, present).withColumn(CORRUPT, F.lit(None).cast("string")))
    return union_all(frames)


READERS = {"json": read_json_lines, "csv": read_csv, "parquet": read_parquet}


def read_landing(spark: SparkSession, spec: SourceSpec, files: list[str]) -> DataFrame:
    """Raw frame for these files of one source, checked by `inspect_files` first
    (columns: declared..., _rescued_data, _raw, _landing_defect, _source_file, _corrupt_record)."""
    return READERS[spec.format](spark, spec, files)
