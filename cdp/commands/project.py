"""`cdp setup`, `cdp generate`, `cdp check` and `cdp docs`: prepare a project (Spark's JARs, demo data), check its
configuration and write its data dictionary. Only setup starts Spark."""

from __future__ import annotations

from pathlib import Path

from cdp.commands.session import command_session
from cdp.errors import CdpError


def cmd_generate(args, settings) -> int:
    from cdp.synth import generate

    if args.out:
        landing, truth = Path(args.out) / "landing", Path(args.out) / "ground_truth"
    else:
        landing, truth = Path(settings.path(settings.paths.landing)), Path(settings.path(settings.paths.ground_truth))
    customers = args.customers or settings.synth.customers
    seed = settings.synth.seed if args.seed is None else args.seed
    if customers < 1:
        raise CdpError("--customers must be at least 1")
    print(f"generating {customers:,} customers (seed {seed}) into {landing} and {truth}", flush=True)

    def progress(done: int, total: int) -> None:
        print(f"  chunk {done}/{total}", flush=True)

    res = generate(customers, seed, landing, truth, start=settings.synth.start, end=settings.synth.end,
                   chunk_size=settings.synth.chunk_size, workers=args.workers or settings.synth.workers,
                   progress=progress, hostile_share=settings.synth.hostile_share)
    width = max(len(s) for s in res.records_by_source)
    for source, n in res.records_by_source.items():
        print(f"  {source:<{width}}  {n:>12,}")
    print(f"  {'total':<{width}}  {sum(res.records_by_source.values()):>12,}  ({res.files} files, {res.seconds:.1f}s)")
    if res.hostile_records:
        print(f"  + {res.hostile_records:,} hostile records (synth.hostile_share) for the quarantine to stop")
    return 0


def cmd_check(args, settings) -> int:
    from cdp.check import check_configuration

    for section in check_configuration(settings).sections:
        print(f"{section.name:<11} {section.status}: {section.summary}")
    return 0


def cmd_docs(args, settings) -> int:
    from cdp.check import check_configuration
    from cdp.dictionary import render_dictionary

    check_configuration(settings)
    out = Path(args.out or Path(settings.path(settings.paths.reports)) / "data-dictionary.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_dictionary(settings), encoding="utf-8")
    print(f"data dictionary written to {out}")
    return 0


def cmd_setup(args, settings) -> int:
    from cdp.spark import check_java, fetch_optional_packages, read_manifest, record_classpath

    print(f"java {check_java()} found")
    for coord, ok in fetch_optional_packages(settings).items():
        if ok:
            print(f"optional package {coord}: cached")
        else:
            print(f"optional package {coord}: not served by the configured Maven repositories; "
                  f"running without it (see docs/cluster.md, 'Optional JARs')")
    if read_manifest(settings) is None:
        print("fetching Delta's JARs into the project's Ivy cache (first run only; ~90 MB from Maven Central)", flush=True)
    spark = command_session(args, settings, "cdp-setup")
    spark.range(1).count()
    manifest = record_classpath(settings, spark)
    print(f"spark {spark.version} with Delta ready (JARs cached in {settings.ivy_path()}"
          + (f"; later starts read {manifest}, no network needed)" if manifest else ")"))
    return 0
