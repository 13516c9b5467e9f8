"""The ``bench`` command: the benchmark for people who live in a terminal.

``bench leaderboard`` and ``bench status`` only read the warehouse; ``bench
run`` ticks the Dagster sensor and schedule and executes their runs (the same
job ``dagster dev`` launches); ``bench demo`` builds the tiny demo models and
does all of it.

This module parses arguments, calls and prints. Rules (settings precedence,
which metrics with which options, which backend, the gpu pool's size) live in
``core``, ``metrics``, ``compute`` and ``storage``, where the Dagster layer
calls them too.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from bench_assets.core.errors import BenchError
from bench_assets.core.library_logs import library_output_to
from bench_assets.core.paths import DataPaths


def _defs_and_instance():
    import dagster as dg

    from bench_assets.definitions import build_definitions

    home = DataPaths.from_env().dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return build_definitions(), dg.DagsterInstance.get()


def _backend_preflight() -> int:
    """The configured backend's own check (Modal: a token), before any work or file; 3 with the fix."""
    from bench_assets.compute.backend import backend_kind, configured_compute
    from bench_assets.core.config import BackendNotReady, load_config

    section = configured_compute(load_config(DataPaths.from_env()))
    try:
        backend_kind(section["backend"]).preflight(section)
    except BackendNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


def cmd_run(_: argparse.Namespace) -> int:
    from bench_assets.defs.headless import run_headless

    if code := _backend_preflight():
        return code
    defs, instance = _defs_and_instance()
    with library_output_to(DataPaths.from_env().cache / "bench.log") as log_file:
        summary = run_headless(defs, instance)
    print(f"\n{len(summary.succeeded)} model run(s) succeeded, {len(summary.failed)} failed"
          + (f", {len(summary.skipped)} skipped (running elsewhere)" if summary.skipped else ""))
    for key, message in summary.failed.items():
        print(f"  {key}: {message}")
    cmd_leaderboard(argparse.Namespace(category="all"))
    print(f"\nlibrary warnings and progress bars went to {log_file}")
    index = DataPaths.from_env().report / "index.html"
    if summary.report_ok:
        print(f"\nreport: {index.resolve().as_uri()}  (or serve it: bench report --serve)")
    else:
        print(f"\nreport: not rebuilt (see the refresh_report run in the Dagster UI); last one: {index}")
    return 0 if summary.leaderboard_ok and summary.report_ok else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    import polars as pl

    from bench_assets.core.tables import fit_markdown
    from bench_assets.storage.query import QueryError, column_values, open_sql

    paths = DataPaths.from_env()
    try:
        con = open_sql(paths)
    except QueryError as exc:  # `bench run` prints the leaderboard even when nothing was scored yet
        print(exc, file=sys.stderr)
        return 1
    try:
        known = column_values(con, "leaderboard", "category")
        if args.category != "*" and args.category not in known and (known or args.category != "all"):
            print(f"error: no category {args.category!r} in the leaderboard; known: "
                  f"{', '.join(known) or 'none yet (run `bench run`)'}, or '*' for every row", file=sys.stderr)
            return 2
        if args.category == "*":
            relation = con.sql("SELECT * FROM leaderboard ORDER BY category, rank, model")
        else:
            query = "SELECT * FROM leaderboard WHERE category = ? ORDER BY rank, model"
            relation = con.sql(query, params=[args.category])
        frame = pl.from_arrow(relation.to_arrow_table())
    finally:
        con.close()
    from bench_assets.storage.freshness import leaderboard_freshness
    from bench_assets.storage.leaderboard import to_markdown
    from bench_assets.storage.metric_columns import metric_columns
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets.storage.warehouse import open_warehouse

    columns = metric_columns()
    freshness = leaderboard_freshness(open_warehouse(paths), [IMAGES_TABLE, *(c.table for c in columns)])
    print(f"leaderboard ({'every category' if args.category == '*' else args.category}), "
          f"from {paths.duckdb}: mean [95% CI] (n)")
    legend = ("#rank interval; tier = models the paired tests cannot separate; composite = weighted z-scores "
              "(data/config.yaml leaderboard.weights). " + freshness.describe())
    print(textwrap.fill(legend, width=min(_terminal_width(), 120)))
    table = to_markdown(frame, columns, category=None if args.category == "*" else args.category)
    print(table if getattr(args, "wide", False) else fit_markdown(table, _terminal_width()))
    return 0


def _terminal_width() -> int:
    """The terminal's width (``COLUMNS`` wins); 120 when the output goes to a pipe or a file."""
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


def cmd_sql(args: argparse.Namespace) -> int:
    from bench_assets.storage.query import open_sql

    paths = DataPaths.from_env()
    con = open_sql(paths)
    try:
        if args.command_text is not None:
            return _run_sql(con, args.command_text)
        return _sql_prompt(con, paths.duckdb)
    finally:
        con.close()


def _run_sql(con, text: str) -> int:
    """Run each statement and print its rows as a table that fits the terminal."""
    from bench_assets.storage.query import run_statements

    for result in run_statements(con, text):
        if result.relation is not None:
            result.relation.show(max_width=_terminal_width(), max_rows=10_000)
    return 0


def _sql_prompt(con, db_path: Path) -> int:
    """A small interactive prompt: statements end with ';', Ctrl-D or .quit leaves."""
    import duckdb

    from bench_assets.storage.query import QueryError

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    print(f"{db_path}\nread-only, duckdb {duckdb.__version__}; end statements with ';', .quit or Ctrl-D to leave")
    buffer: list[str] = []
    while True:
        try:
            line = input("bench> " if not buffer else "   ...> ")
        except EOFError:
            print()
            return 0
        if not buffer and line.strip() in (".quit", ".exit", "\\q"):
            return 0
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        text, buffer = "\n".join(buffer), []
        try:
            _run_sql(con, text)
        except QueryError as exc:
            print(f"error: {exc}", file=sys.stderr)


def cmd_status(_: argparse.Namespace) -> int:
    from bench_assets.core.config import generation_defaults, load_config
    from bench_assets.models.registry import fingerprint, scan_models
    from bench_assets.prompts.suites import load_suite
    from bench_assets.models.registry import model_settings
    from bench_assets.storage.store import images_store
    from bench_assets.metrics.registry import configured_metrics, metric_options
    from bench_assets.storage.status import STATUS_HEADER, partition_status, status_lines
    from bench_assets.storage.warehouse import open_warehouse

    paths = DataPaths.from_env()
    config = load_config(paths)
    suite = load_suite(paths.default_suite())
    metrics = configured_metrics(metric_options(config))
    defaults = generation_defaults(config)
    warehouse = open_warehouse(paths, config)
    images = images_store(paths, config)
    print(STATUS_HEADER)
    print("-" * len(STATUS_HEADER))
    for entry in scan_models(paths.models):
        settings = model_settings(defaults, suite.generation, entry)
        model_fp = None if entry.error else fingerprint(entry, paths.cache)
        for category in suite.categories:
            st = partition_status(warehouse, entry.key, category, suite.in_category(category), settings, metrics,
                                  model_fp, images=images)
            print("\n".join(status_lines(st)))
    for line in warehouse.quarantined:
        print(f"warning: {line}")
    return 0


def cmd_import_prompts(args: argparse.Namespace) -> int:
    from bench_assets.prompts.importers import import_prompts
    from bench_assets.prompts.prompt import PromptSuiteError
    from bench_assets.prompts.suites import load_suite

    paths = DataPaths.from_env()
    try:
        target, result = import_prompts(args.format, Path(args.path), args.suite, paths.prompts,
                                        text_content=args.text_content, questions=args.questions)
    except PromptSuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    suite = load_suite(target)
    print(f"wrote {len(suite.prompts)} prompts in {len(suite.categories)} categories to {target}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"use it with: BENCH_PROMPT_SUITE={args.suite}")
    return 0


def cmd_suite_official(args: argparse.Namespace) -> int:
    from bench_assets.prompts.prompt import PromptSuiteError
    from bench_assets.prompts.suites import load_suite
    from bench_assets.prompts.suites import write_official_spec

    filters = [f"--{k.replace('_', '-')}" for k in ("category", "difficulty", "tag", "sample", "negative_prompt", "set")
               if getattr(args, k)] + (["--prefix-ids"] if args.prefix_ids else [])
    if filters:
        print(f"error: --official reproduces the published protocol; drop {' '.join(filters)}", file=sys.stderr)
        return 2
    try:
        target, protocol = write_official_spec(DataPaths.from_env().prompts, args.name, args.include)
        suite = load_suite(target)
    except PromptSuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}: {len(suite.prompts)} prompts in {len(suite.categories)} categories, "
          f"{dict(protocol.generation)['images_per_prompt']} images per prompt (seeds base_seed + 0..3)")
    print(f"  compare: {', '.join(protocol.metrics)} with {protocol.reference}")
    print(f"use it with: BENCH_PROMPT_SUITE={suite.name} bench run")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    import yaml

    from bench_assets.prompts.prompt import PromptSuiteError

    from bench_assets.prompts.suites import load_suite
    from bench_assets.prompts.suites import write_spec

    if args.official:
        return cmd_suite_official(args)
    if not args.include:
        print("error: --include is required (or --official for a published protocol)", file=sys.stderr)
        return 2
    paths = DataPaths.from_env()
    try:
        generation = {key: yaml.safe_load(value) for key, _, value in (s.partition("=") for s in args.set)}
        target = write_spec(paths.prompts, args.name, args.include, categories=args.category,
                            difficulty=args.difficulty, tags=args.tag, sample_per_category=args.sample,
                            seed=args.seed if args.sample else None, negative_prompt=args.negative_prompt,
                            prefix_ids=args.prefix_ids or None, generation=generation)
        suite = load_suite(target)
    except PromptSuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}: {len(suite.prompts)} prompts in {len(suite.categories)} categories")
    for category in suite.categories:
        print(f"  {category:<24} {len(suite.in_category(category)):>5}")
    print(f"use it with: BENCH_PROMPT_SUITE={args.name} bench run")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from bench_assets.models.download import DownloadError, download

    try:
        result = download(args.url, DataPaths.from_env().models, name=args.name, sha256=args.sha256,
                          allow_pickle=args.allow_pickle)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.path} is in place; the drop-folder sensor (or `bench run`) registers it")
    return 0


def _decision_inputs(metric_names: list[str] | None):
    """The version store, the chosen metrics' leaderboard columns and the decision config."""
    from bench_assets.core.config import load_config
    from bench_assets.core.decision import decision_config
    from bench_assets.metrics.registry import METRICS, metrics_named
    from bench_assets.storage.metric_columns import metric_columns
    from bench_assets.storage.versions import open_versions

    paths = DataPaths.from_env()
    columns = metric_columns(metrics_named(metric_names))
    return open_versions(paths), columns, decision_config(load_config(paths), METRICS)


def _paired_table(a: str, b: str, metric_names: list[str] | None, categories: list[str] | None):
    from bench_assets.storage.comparisons import compare_references

    store, columns, decision = _decision_inputs(metric_names)
    return compare_references(store, a, b, columns, decision, categories), decision


def cmd_compare(args: argparse.Namespace) -> int:
    from bench_assets.core.config import ConfigError
    from bench_assets.stats.paired import TEST_NAME
    from bench_assets.storage.comparisons import to_markdown
    from bench_assets.storage.versions import VersionError

    try:
        frame, _ = _paired_table(args.a, args.b, args.metric, [args.category] if args.category else None)
    except (VersionError, ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.a} (A) vs {args.b} (B) on matched prompts and seeds: A − B with a paired bootstrap 95% CI; "
          f"p from a {TEST_NAME}, Holm-adjusted over the metrics")
    print(to_markdown(frame))
    return 0 if frame.height else 1


def cmd_gate(args: argparse.Namespace) -> int:
    from bench_assets.core.config import ConfigError
    from bench_assets.storage.comparisons import describe, regressions, to_markdown
    from bench_assets.storage.leaderboard import OVERALL
    from bench_assets.storage.versions import VersionError

    try:
        frame, decision = _paired_table(args.candidate, args.baseline, args.metrics, [OVERALL])
    except (VersionError, ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_markdown(frame))
    if frame.is_empty():
        print(f"gate: nothing to compare: {args.candidate} and {args.baseline} share no scored item", file=sys.stderr)
        return 2
    worse = regressions(frame, decision)
    for row in worse.iter_rows(named=True):
        print(f"FAIL {describe(row)}")
    verdict = "FAIL" if worse.height else "PASS"
    print(f"gate: {verdict}: {args.candidate} is {'significantly worse' if worse.height else 'not significantly worse'} "
          f"than {args.baseline} (Holm-adjusted p < {decision.alpha} and beyond the configured margin)")
    return 1 if worse.height else 0


def cmd_prune(args: argparse.Namespace) -> int:
    from bench_assets.storage.versions import open_versions

    try:
        pruned = open_versions(DataPaths.from_env()).prune(args.keep)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for version in pruned:
        print(f"removed {version.label} ({version.fingerprint[:12]}): its images and rows")
    print(f"{len(pruned)} old version(s) removed; each model keeps its {args.keep} newest")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bench_assets.demo.setup import prepare_demo

    if code := _backend_preflight():
        return code
    paths = DataPaths.from_env()
    with library_output_to(paths.cache / "bench.log"):
        prepare_demo(paths, n_models=args.models)
    return cmd_run(args)


def cmd_cost(args: argparse.Namespace) -> int:
    from bench_assets.metrics.registry import METRICS
    from bench_assets.storage.costs import generation_devices, gpu_price_per_hour, priced_at_gpu_rate
    from bench_assets.storage.leaderboard import H100_PRICE_DATE, cost_per_thousand
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets.storage.warehouse import open_warehouse

    warehouse = open_warehouse(DataPaths.from_env())
    price = gpu_price_per_hour(args.price_per_hour)
    table = cost_per_thousand(warehouse, IMAGES_TABLE, [m.table for m in METRICS.values()], price)
    if table.is_empty():
        print("no images with recorded GPU seconds yet: run the benchmark first")
        return 1
    devices = generation_devices(warehouse, IMAGES_TABLE)
    print(f"at ${price:.4f} per GPU-hour (Modal H100 list price as of {H100_PRICE_DATE} "
          "unless overridden);\nmeasured seconds per image, generation + every metric:")
    unpriced = []
    for row in table.iter_rows(named=True):
        measured_on = devices.get(row["model"], [])
        on_gpu = priced_at_gpu_rate(measured_on)
        line = (f"  {row['model']}: {row['images']} images on {', '.join(measured_on) or 'an unrecorded device'}, "
                f"{row['generation_s_per_image']:.3f} s generating, {row['gpu_s_per_image']:.3f} s in all")
        if on_gpu or args.price_non_gpu:
            line += f" -> ${row['usd_per_1000_images']:.2f} per 1,000 images" + ("" if on_gpu else " (NOT a GPU)")
        else:
            unpriced.append(row["model"])
        print(line)
    if unpriced:
        print(textwrap.fill(
            f"note: not priced: {', '.join(unpriced)}: their seconds were measured on a CPU or MPS (or an unrecorded) "
            "device, and a GPU's hourly rate says nothing about them; run on a GPU for a real figure, or pass "
            "--price-non-gpu to price them anyway", width=min(_terminal_width(), 120)))
    elif args.price_non_gpu and not all(priced_at_gpu_rate(d) for d in devices.values()):
        print("note: --price-non-gpu: CPU/MPS seconds priced at a GPU rate; these dollars are not what a GPU costs")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench_assets.core.config import generation_defaults, load_config
    from bench_assets.report.build import build_data_dir_report
    from bench_assets.report.server import make_server, report_url
    from bench_assets.storage.warehouse import open_warehouse

    paths = DataPaths.from_env()
    if not args.no_build:
        warehouse = open_warehouse(paths)
        if not warehouse.tables():
            print(f"{warehouse.store.url} has no results yet: run `bench run` (or `make demo`) first", file=sys.stderr)
            return 1
        per_prompt = generation_defaults(load_config(paths)).images_per_prompt  # as the report asset's
        summary = build_data_dir_report(paths, images_per_prompt=per_prompt)
        print(f"wrote {summary.index}: {summary.models} model(s), {summary.images} image(s), "
              f"{summary.thumbnails.created} new thumbnail(s), {summary.thumbnails.cached} cached, "
              f"{summary.seconds:.1f} s")
        print(f"open {summary.url}")
    if not args.serve:
        return 0
    if not (paths.report / "index.html").is_file():
        print(f"{paths.report / 'index.html'} does not exist: run `bench report` first", file=sys.stderr)
        return 1
    server = make_server(paths.root, args.host, args.port, verbose=args.verbose)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach it sees the report and the images")
    print(f"serving {report_url(server)} (the report and the images only); Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bench_assets.core.config import load_config
    from bench_assets.storage.store import images_store
    from bench_assets.metrics.registry import METRICS
    from bench_assets.storage.results import export_results
    from bench_assets.storage.warehouse import open_warehouse

    paths = DataPaths.from_env()
    config = load_config(paths)
    warehouse = open_warehouse(paths, config)
    written = export_results(warehouse, [m.table for m in METRICS.values()], args.format, Path(args.out),
                             images=images_store(paths, config))
    if not written:
        print(f"nothing to export: {warehouse.store.url} has no results yet (run `bench run` first)", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} file(s) to {args.out}:")
    for path in written:
        print(f"  {path.name}")
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from bench_assets.storage.migrate import migrate_data_dir

    result = migrate_data_dir(DataPaths.from_env())
    print("\n".join(result.lines()))
    return 1 if result.busy else 0


def cmd_instance_config(args: argparse.Namespace) -> int:
    from bench_assets.core.config import load_config
    from bench_assets.core.instance_settings import instance_kind
    from bench_assets.defs.instance_config import write_instance_config

    kind = instance_kind(args.instance)
    paths = DataPaths.from_env()
    target, pool = write_instance_config(Path(args.template), paths.dagster_home(), load_config(paths), kind)
    database = "PostgreSQL from DAGSTER_PG_*" if kind == "postgres" else "SQLite"
    print(f"wrote {target}: {database}, gpu pool limit {pool.slots} ({pool.reason})")
    return 0


def cmd_doctor(_: argparse.Namespace) -> int:
    from bench_assets.doctor import run_checks

    checks = run_checks(DataPaths.from_env())
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


def _user_error(exc: BaseException) -> BaseException | None:
    """The first expected error in ``exc``'s chain (Dagster wraps a sensor's or schedule's error).

    Expected: a ``BenchError`` (its message names the file or setting) or an ``OSError``
    (a full disk, a missing folder). Anything else is a bug and keeps its traceback.
    """
    known, queue, seen = (BenchError, OSError), [exc], set()
    while queue:
        current = queue.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, known):
            return current
        queue += [current.__cause__, current.__context__, getattr(current, "user_exception", None)]
    return None


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``bench status --verbose`` works like ``bench --verbose status``, unless the command has its own
    ``--verbose`` (``bench report --verbose`` logs requests): then only the form before it means tracebacks."""
    args, extra = parser.parse_known_args(argv)
    if extra and set(extra) == {"--verbose"}:
        args.traceback = True
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def cmd_arena(args: argparse.Namespace) -> int:
    from bench_assets.arena.app import open_arena
    from bench_assets.arena.server import LOOPBACK, bind, serve

    paths = DataPaths.from_env()
    token = args.token or os.environ.get("BENCH_ARENA_TOKEN") or None
    models = [m for chunk in args.models or [] for m in chunk.split(",") if m]
    arena = open_arena(paths.root, token, models, args.category, paths.default_suite())
    if not len(arena.pool):
        print("no pairs to vote on: the arena needs two models with images of the same prompt and seed "
              "(run `bench run` first, or widen --models/--category)", file=sys.stderr)
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(f"arena on http://{host}:{port}/ : {len(arena.pool)} pairs of {len(arena.pool.models)} models, "
          f"votes in {arena.store.path}" + (" (token required)" if token else ""), flush=True)
    if args.host not in LOOPBACK and not token:
        print("warning: listening beyond this machine without a token: anyone who can reach it can vote "
              "(set BENCH_ARENA_TOKEN)", file=sys.stderr, flush=True)
    serve(arena, sock)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", dest="traceback", action="store_true",
                        help="on an error, print the full traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="register new models and materialize everything missing or stale").set_defaults(func=cmd_run)
    lb = sub.add_parser("leaderboard", help="print the leaderboard from data/bench.duckdb")
    lb.add_argument("--category", default="all", help="a category, 'all' (overall) or '*' (every row)")
    lb.add_argument("--wide", action="store_true", help="one wide Markdown table instead of tables that fit 120 columns")
    lb.set_defaults(func=cmd_leaderboard)
    sql = sub.add_parser("sql", help="SQL on data/bench.duckdb (read-only), with the installed duckdb: no duckdb CLI needed")
    sql.add_argument("-c", dest="command_text", metavar="QUERY", help="run QUERY (';'-separated statements) and exit; "
                     "without -c: an interactive prompt")
    sql.set_defaults(func=cmd_sql)
    sub.add_parser("status", help="per model × category: done, missing, partial, failed or stale").set_defaults(func=cmd_status)
    imp = sub.add_parser("import-prompts", help="convert a published prompt set into data/prompts/<suite>.jsonl")
    imp.add_argument("--format", required=True, choices=["geneval", "oneig", "dsg", "drawbench", "parti", "txt"])
    imp.add_argument("path", help="the file (or folder, for txt and a OneIG repo checkout) you downloaded")
    imp.add_argument("--text-content", help="oneig: scripts/text/text_content[_zh].csv, the text ground truth")
    imp.add_argument("--questions", help="oneig: scripts/alignment/Q_D/, the alignment questions and dependencies")
    imp.add_argument("--suite", required=True, help="name of the suite to write")
    imp.set_defaults(func=cmd_import_prompts)
    cost = sub.add_parser("cost", help="dollars per 1,000 images per model, from the GPU seconds recorded")
    cost.add_argument("--price-per-hour", type=float,
                      help="dollars per GPU-hour (default: BENCH_GPU_PRICE_PER_HOUR, else Modal's H100 list price)")
    cost.add_argument("--price-non-gpu", action="store_true",
                      help="also price seconds measured on a CPU or MPS at the GPU rate (marked as such)")
    cost.set_defaults(func=cmd_cost)
    ic = sub.add_parser("instance-config", help="render dagster.yaml into $DAGSTER_HOME, gpu pool sized to the GPUs")
    ic.add_argument("--template", default="dagster.yaml")
    ic.add_argument("--instance", choices=["sqlite", "postgres"],
                    help="where runs, events and schedules live (default: $BENCH_INSTANCE, else sqlite)")
    ic.set_defaults(func=cmd_instance_config)
    sub.add_parser("doctor", help="check the instance, storage, compute backend and credentials: one line each"
                   ).set_defaults(func=cmd_doctor)
    demo = sub.add_parser("demo", help="build tiny demo models and run the whole benchmark on them")
    demo.add_argument("--models", type=int, default=3)
    demo.set_defaults(func=cmd_demo)
    st = sub.add_parser("suite", help="combine/filter/sample prompt suites into data/prompts/<name>.suite.yaml")
    st.add_argument("name", help="suite name; use it with BENCH_PROMPT_SUITE=<name>")
    st.add_argument("--include", action="append", help="a suite in data/prompts/ (repeat)")
    st.add_argument("--official", action="store_true",
                    help="NAME is a published protocol (geneval, oneig, oneig-zh, drawbench, parti) over its imported suite")
    st.add_argument("--category", action="append", help="keep this category (repeat)")
    st.add_argument("--difficulty", action="append", choices=["easy", "medium", "hard"], help="keep this difficulty")
    st.add_argument("--tag", action="append", help="keep prompts with this metadata tag/tags/class (repeat)")
    st.add_argument("--sample", type=int, help="keep N prompts per category (a quick test mode)")
    st.add_argument("--seed", type=int, default=0, help="seed of --sample")
    st.add_argument("--negative-prompt", help="negative prompt for prompts that have none")
    st.add_argument("--prefix-ids", action="store_true", help="prefix ids with their file's name (for clashes)")
    st.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a generation setting of this suite, e.g. --set steps=20 (repeat)")
    st.set_defaults(func=cmd_suite)
    dl = sub.add_parser("download", help="download a .safetensors model (Hugging Face, CivitAI, https) into data/models/")
    dl.add_argument("url", help="a file link: huggingface.co .../resolve/... or .../blob/..., civitai.com, or any https URL")
    dl.add_argument("--name", help="file name to store it under (default: the server's name)")
    dl.add_argument("--sha256", help="expected sha256; checked before the file appears in data/models/")
    dl.add_argument("--allow-pickle", action="store_true", help="also store .ckpt/.pt/.pth/.bin (they can run code)")
    dl.set_defaults(func=cmd_download)
    cmp_ = sub.add_parser("compare", help="paired comparison of two models or versions (model, model@N, model@<fp>)")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    cmp_.add_argument("--metric", action="append", help="only this metric (repeat)")
    cmp_.add_argument("--category", help="only this category ('all' = overall)")
    cmp_.set_defaults(func=cmd_compare)
    gate = sub.add_parser("gate", help="exit 1 when the candidate is significantly worse than the baseline")
    gate.add_argument("--baseline", required=True, help="model, model@N or model@<fingerprint prefix>")
    gate.add_argument("--candidate", required=True, help="model, model@N or model@<fingerprint prefix>")
    gate.add_argument("--metrics", nargs="+", help="metrics to gate on (default: every metric scored)")
    gate.set_defaults(func=cmd_gate)
    prune = sub.add_parser("prune", help="delete the images and rows of all but each model's N newest versions")
    prune.add_argument("--keep", type=int, required=True)
    prune.set_defaults(func=cmd_prune)
    rp = sub.add_parser("report", help="rebuild the static report in data/report/ (and serve it with --serve)")
    rp.add_argument("--serve", action="store_true", help="serve it over HTTP after building")
    rp.add_argument("--no-build", action="store_true", help="serve the report as it is, without rebuilding")
    rp.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    rp.add_argument("--port", type=int, default=8765, help="port to serve on (0: any free port)")
    rp.add_argument("--verbose", action="store_true", help="log every request")
    rp.set_defaults(func=cmd_report)
    ex = sub.add_parser("export", help="write the leaderboards and every item-level score table to a folder")
    ex.add_argument("--format", required=True, choices=["csv", "json", "parquet"])
    ex.add_argument("--out", required=True, help="folder to write into (created if missing)")
    ex.set_defaults(func=cmd_export)
    sub.add_parser("migrate", help="rewrite absolute image paths in the warehouse's rows as image keys "
                   "(rows written before the storage seam; idempotent)").set_defaults(func=cmd_migrate)
    ar = sub.add_parser("arena", help="blind pairwise votes on the generated images (a web app)")
    ar.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 to share it on a LAN)")
    ar.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    ar.add_argument("--token", help="shared token voters must enter (or env BENCH_ARENA_TOKEN, which stays out of ps)")
    ar.add_argument("--models", action="append", help="only these models (comma-separated, or repeat)")
    ar.add_argument("--category", help="only this prompt category")
    ar.set_defaults(func=cmd_arena)
    args = _parse(parser, argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only known errors are shortened; the rest re-raise
        known = _user_error(exc)
        if known is None or args.traceback:
            raise
        from bench_assets.core.redaction import redact_text

        print(f"error: {redact_text(' '.join(str(known).split()))}", file=sys.stderr)  # one line; --verbose: all
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
