"""The ``bench`` command: the benchmark for people who live in a terminal.

``bench leaderboard`` and ``bench status`` only read the warehouse; ``bench
run`` ticks the Dagster sensor and schedule and executes their runs (the same
job ``dagster dev`` launches); ``bench demo`` builds the tiny demo models and
does all of it.

This module parses arguments, calls one library function per command and
prints. Rules (settings precedence, which metrics with which options, which
backend, what a category or a status is, the choices each option takes) live
in ``core``, ``models``, ``prompts``, ``metrics``, ``compute`` and
``storage``, where the Dagster layer calls them too. An expected failure is a
``BenchError``: ``main`` prints it in one line and exits 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import yaml

# Everything is imported here but Dagster: the function-level imports below (``dagster``, ``definitions``,
# ``defs.headless``) keep `bench --help` and the commands that only read files from importing Dagster.
from bench_assets.arena.app import open_arena
from bench_assets.arena.server import LOOPBACK, bind, serve
from bench_assets.arena.tokens import SHARED_TOKEN_ENV, shared_token
from bench_assets.compute.backend import backend_kind, configured_compute
from bench_assets.core.config import BackendNotReady, generation_defaults, load_config
from bench_assets.core.errors import BenchError
from bench_assets.core.instance_settings import INSTANCE_KINDS, instance_kind
from bench_assets.core.library_logs import library_output_to
from bench_assets.core.paths import DataPaths
from bench_assets.core.redaction import redact_text
from bench_assets.core.tables import fit_markdown
from bench_assets.defs.instance_config import ensure_instance_config, write_instance_config
from bench_assets.demo.setup import prepare_demo
from bench_assets.doctor import ServiceUnreachable, require_instance, run_checks, unreachable_service
from bench_assets.metrics.registry import METRICS
from bench_assets.models.download import download
from bench_assets.models.registry import scan_models
from bench_assets.prompts.importers import IMPORTERS, import_prompts
from bench_assets.prompts.prompt import DIFFICULTIES
from bench_assets.prompts.suites import PROTOCOLS, load_suite, write_official_spec, write_spec
from bench_assets.references.captions import captions_suite, suite_jsonl
from bench_assets.report.build import build_data_dir_report
from bench_assets.report.server import make_server, report_url
from bench_assets.stats.paired import TEST_NAME
from bench_assets.storage import comparisons
from bench_assets.storage import distribution_board, distribution_compare
from bench_assets.storage.distribution_scoring import open_reference_sets
from bench_assets.storage.costs import generation_devices, gpu_price_per_hour, priced_at_gpu_rate
from bench_assets.storage.leaderboard import (
    H100_PRICE_DATE, NO_SCORES_YET, OVERALL, cost_per_thousand, has_scores, to_markdown,
)
from bench_assets.storage.migrate import migrate_data_dir
from bench_assets.storage.query import QueryError, open_sql, read_leaderboard, run_statements
from bench_assets.storage.results import EXPORT_WRITERS, export_results
from bench_assets.storage.health import lost_store_check, result_store_url
from bench_assets.storage.status import IMAGES_TABLE, STATUS_HEADER, StatusInputs, status_lines, suite_statuses
from bench_assets.storage.store import images_store, store_kind
from bench_assets.storage.versions import open_versions
from bench_assets.storage.warehouse import open_warehouse
from bench_assets.workbench.app import open_workbench
from bench_assets.workbench import server as workbench_server


def _instance():
    """The Dagster instance of ``DAGSTER_HOME`` (default ``data/dagster_home``), checked before it is opened."""
    import dagster as dg

    home = DataPaths.from_env().dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    ensure_instance_config(home)
    require_instance(home)
    return dg.DagsterInstance.get()


def _backend_preflight() -> int:
    """The configured backend's own check (Modal: a token), before any work or file; 3 with the fix."""
    section = configured_compute(load_config(DataPaths.from_env()))
    try:
        backend_kind(section["backend"]).preflight(section)
    except BackendNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench_assets.definitions import build_definitions
    from bench_assets.defs.headless import run_headless

    if code := _backend_preflight():
        return code
    paths = DataPaths.from_env()
    instance = _instance()
    defs = build_definitions()
    with library_output_to(paths.cache / "bench.log") as log_file:
        summary = run_headless(defs, instance, verbose=getattr(args, "traceback", False),
                               storage_problem=lost_store_check(paths))
    _print_run_summary(summary, log_file)
    if summary.storage_lost:
        return 1
    cmd_leaderboard(argparse.Namespace(category=OVERALL))
    index = paths.report / "index.html"
    if summary.report_ok:
        print(f"\nreport: {index.resolve().as_uri()}  (or serve it: bench report --serve)")
    else:
        print(f"\nreport: not rebuilt (see the refresh_report run in the Dagster UI); last one: {index}")
    return 0 if summary.leaderboard_ok and summary.report_ok and not summary.failed else 1


def _print_run_summary(summary, log_file: Path) -> None:
    print(f"\n{len(summary.succeeded)} model run(s) succeeded, {len(summary.failed)} failed"
          + (f", {len(summary.skipped)} skipped (running elsewhere)" if summary.skipped else ""))
    for key, message in summary.failed.items():
        print(f"  {key}: {message}")
    if summary.storage_lost:
        print(f"stopped: {summary.storage_lost}; the leaderboard and the report were not refreshed")
    where = "errors with their stack traces (also in the Dagster UI)," if summary.failed else ""
    print(f"{where} library warnings and progress bars: {log_file}".strip())


def cmd_leaderboard(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    try:
        con = open_sql(paths)
    except QueryError as exc:  # `bench run` prints the leaderboard even when nothing was scored yet
        print(exc, file=sys.stderr)
        return 1
    try:
        board = read_leaderboard(con, paths, args.category)
        distribution = distribution_board.board_rows(con, board.category)
    finally:
        con.close()
    if board.rows.is_empty() and not has_scores(open_warehouse(paths)):
        print(NO_SCORES_YET)
        return 0
    legend = (f"leaderboard ({board.category or 'every category'}), from {paths.duckdb}: mean [95% CI] (n) "
              "#rank interval; tier = models the paired tests cannot separate; composite = weighted z-scores "
              "(data/config.yaml leaderboard.weights). " + board.freshness.describe())
    print(textwrap.fill(legend, width=min(_terminal_width(), 120), break_on_hyphens=False))
    table = to_markdown(board.rows, board.columns, category=board.category)
    print(table if getattr(args, "wide", False) else fit_markdown(table, _terminal_width()))
    _print_distribution(distribution, board.category, getattr(args, "wide", False))
    return 0


def _print_distribution(rows, category: str | None, wide: bool) -> None:
    """The distribution metrics under the leaderboard, a table per reference set; nothing when none were scored."""
    for legend, table in distribution_board.blocks(rows, category):
        print()
        print(textwrap.fill(legend, width=min(_terminal_width(), 120), break_on_hyphens=False))
        print(table if wide else fit_markdown(table, _terminal_width()))
    for note in distribution_board.notes(rows):
        print(note)


def _terminal_width() -> int:
    """The terminal's width (``COLUMNS`` wins); 120 when the output goes to a pipe or a file."""
    return shutil.get_terminal_size((120, 24)).columns


def cmd_sql(args: argparse.Namespace) -> int:
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
    for result in run_statements(con, text):
        if result.relation is not None:
            result.relation.show(max_width=_terminal_width(), max_rows=10_000)
    return 0


def _sql_prompt(con, db_path: Path) -> int:
    """A small interactive prompt: statements end with ';', Ctrl-D or .quit leaves."""
    try:
        import readline  # noqa: F401  (line editing and history for input(): only this prompt wants it)
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


def cmd_status(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    _repair_dead_runs()
    inputs = StatusInputs.from_data_dir(paths)
    rows = [status for _entry, statuses in suite_statuses(inputs, scan_models(paths.models), verify=args.verify)
            for status in statuses]
    print(STATUS_HEADER)
    print("-" * len(STATUS_HEADER))
    for status in rows:
        print("\n".join(status_lines(status)))
    for line in inputs.warehouse.quarantined:
        print(f"warning: {line}")
    return 0


def _repair_dead_runs() -> None:
    """What `bench run` does first, for the command a user runs first: a killed `bench run`'s runs are
    marked failed and their pool slots freed. Without the instance, say so: run state is unknown."""
    from bench_assets.defs.headless import reap_dead_runs

    try:
        reap_dead_runs(_instance())
    except ServiceUnreachable as exc:
        print(f"warning: could not read run state ({exc}); queued or running runs are not shown")


def _wrote_suite(summary: str, details: list[str], use_with: str) -> int:
    """What a suite command wrote: a summary line, indented details, and how to run it."""
    print(summary)
    for line in details:
        print(f"  {line}")
    print(f"use it with: BENCH_PROMPT_SUITE={use_with}")
    return 0


def cmd_import_prompts(args: argparse.Namespace) -> int:
    target, result = import_prompts(args.format, Path(args.path), args.suite, DataPaths.from_env().prompts,
                                    text_content=args.text_content, questions=args.questions)
    suite = load_suite(target)
    return _wrote_suite(f"wrote {len(suite.prompts)} prompts in {len(suite.categories)} categories to {target}",
                        [f"note: {note}" for note in result.notes], args.suite)


def cmd_suite_official(args: argparse.Namespace) -> int:
    filters = [f"--{k.replace('_', '-')}" for k in ("category", "difficulty", "tag", "sample", "negative_prompt", "set")
               if getattr(args, k)] + (["--prefix-ids"] if args.prefix_ids else [])
    if filters:
        print(f"error: --official reproduces the published protocol; drop {' '.join(filters)}", file=sys.stderr)
        return 2
    target, protocol = write_official_spec(DataPaths.from_env().prompts, args.name, args.include)
    suite = load_suite(target)
    return _wrote_suite(f"wrote {target}: {len(suite.prompts)} prompts in {len(suite.categories)} categories, "
                        f"{dict(protocol.generation)['images_per_prompt']} images per prompt (seeds base_seed + 0..3)",
                        [f"compare: {', '.join(protocol.metrics)} with {protocol.reference}"], f"{suite.name} bench run")


def cmd_references(args: argparse.Namespace) -> int:
    """List the reference sets, or write one's captions as a prompt suite (``bench references suite NAME``)."""
    paths = DataPaths.from_env()
    found, broken = open_reference_sets(paths, load_config(paths))
    if args.action == "suite":
        if args.name not in found:
            print(broken.get(args.name, f"no reference set {args.name!r} in {paths.references}"), file=sys.stderr)
            return 1
        target = paths.prompts / f"{args.name}.jsonl"
        prompts = captions_suite(found[args.name])
        target.write_text(suite_jsonl(prompts))
        print(f"wrote {len(prompts)} prompts to {target}; use it with BENCH_PROMPT_SUITE={args.name}")
        return 0
    for name, ref in found.items():
        print(f"{name}: {len(ref.images)} images, {len(ref.captions)} captions, {len(ref.problems)} left out, "
              f"fingerprint {ref.fingerprint[:12]} ({ref.source})")
        for problem in ref.problems:
            print(f"  left out {problem}")
    for name, why in broken.items():
        print(f"{name}: not usable: {why}")
    if not found and not broken:
        print(f"no reference sets in {paths.references}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    if args.official:
        return cmd_suite_official(args)
    if not args.include:
        print("error: --include is required (or --official for a published protocol)", file=sys.stderr)
        return 2
    generation = {key: yaml.safe_load(value) for key, _, value in (s.partition("=") for s in args.set)}
    target = write_spec(DataPaths.from_env().prompts, args.name, args.include, categories=args.category,
                        difficulty=args.difficulty, tags=args.tag, sample_per_category=args.sample,
                        seed=args.seed if args.sample else None, negative_prompt=args.negative_prompt,
                        prefix_ids=args.prefix_ids or None, generation=generation)
    suite = load_suite(target)
    return _wrote_suite(f"wrote {target}: {len(suite.prompts)} prompts in {len(suite.categories)} categories",
                        [f"{category:<24} {len(suite.in_category(category)):>5}" for category in suite.categories],
                        f"{args.name} bench run")


def cmd_download(args: argparse.Namespace) -> int:
    result = download(args.url, DataPaths.from_env().models, name=args.name, sha256=args.sha256,
                      allow_pickle=args.allow_pickle)
    print(f"{result.path} is in place; the drop-folder sensor (or `bench run`) registers it")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    paths, categories = DataPaths.from_env(), [args.category] if args.category else None
    per_item, distribution_names = distribution_compare.split_names(args.metric)
    frame, _ = comparisons.compare_in_data_dir(paths, args.a, args.b, per_item, categories)
    distribution = distribution_compare.compare_in_data_dir(paths, args.a, args.b, categories, distribution_names)
    if frame.height or distribution.is_empty():
        print(f"{args.a} (A) vs {args.b} (B) on matched prompts and seeds: A − B with a paired bootstrap 95% CI; "
              f"p from a {TEST_NAME}, Holm-adjusted over the metrics")
        print(comparisons.to_markdown(frame))
    _print_distribution_diff(distribution)
    return 0 if frame.height or distribution.height else 1


def _print_distribution_diff(frame) -> None:
    if frame.height:
        print("\ndistribution metrics against the same reference set: A − B with an interval from the two "
              "bootstrap intervals (MOVER, as if independent: errs wide); only rows of equal n are comparable")
        print(distribution_compare.to_markdown(frame))


def cmd_gate(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    per_item, distribution_names = distribution_compare.split_names(args.metrics)
    frame, decision = comparisons.compare_in_data_dir(paths, args.candidate, args.baseline, per_item, [OVERALL])
    distribution = distribution_compare.compare_in_data_dir(paths, args.candidate, args.baseline, [OVERALL],
                                                            distribution_names)
    if frame.height or distribution.is_empty():
        print(comparisons.to_markdown(frame))
    _print_distribution_diff(distribution)
    if frame.is_empty() and distribution.is_empty():
        print(f"gate: nothing to compare: {args.candidate} and {args.baseline} share no scored item", file=sys.stderr)
        return 2
    worse = comparisons.regressions(frame, decision)
    for row in worse.iter_rows(named=True):
        print(f"FAIL {comparisons.describe(row)}")
    worse_distribution = distribution_compare.regressions(distribution, distribution_names or distribution_compare.GATED)
    for row in worse_distribution.iter_rows(named=True):
        print(f"FAIL {distribution_compare.describe(row)}")
    failed = worse.height + worse_distribution.height
    print(f"gate: {'FAIL' if failed else 'PASS'}: {args.candidate} is "
          f"{'significantly worse' if failed else 'not significantly worse'} than {args.baseline} (Holm-adjusted "
          f"p < {decision.alpha} and beyond the configured margin; a distribution metric: its 95% interval of the "
          f"difference on the worse side of 0)")
    return 1 if failed else 0


def cmd_prune(args: argparse.Namespace) -> int:
    pruned = open_versions(DataPaths.from_env()).prune(args.keep)
    for version in pruned:
        print(f"removed {version.label} ({version.fingerprint[:12]}): its images and rows")
    print(f"{len(pruned)} old version(s) removed; each model keeps its {args.keep} newest")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if code := _backend_preflight():
        return code
    paths = DataPaths.from_env()
    with library_output_to(paths.cache / "bench.log"):
        prepare_demo(paths, n_models=args.models)
    code = cmd_run(args)
    print(workbench_server.workbench_hint())
    return code


def cmd_cost(args: argparse.Namespace) -> int:
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
    paths = DataPaths.from_env()
    if not args.no_build:
        warehouse = open_warehouse(paths)
        if not warehouse.tables():
            print(f"{warehouse.store.url} has no results yet: run `bench run` (or `make demo`) first", file=sys.stderr)
            return 1
        per_prompt = generation_defaults(load_config(paths)).images_per_prompt  # as the report asset's
        summary = build_data_dir_report(paths, images_per_prompt=per_prompt)
        if not has_scores(warehouse):
            print(f"wrote {summary.url}: {NO_SCORES_YET}")
            return 0
        print(f"wrote {summary.index}: {summary.models} model(s), {summary.images} image(s), "
              f"{summary.thumbnails.created} new thumbnail(s), {summary.thumbnails.cached} cached, "
              f"{summary.seconds:.1f} s")
        print(f"open {summary.url}")
        if store_kind(result_store_url(paths)).remote and not args.serve:
            print("the images are in the bucket: full-size images open through `bench report --serve`")
    if not args.serve:
        return 0
    if not (paths.report / "index.html").is_file():
        print(f"{paths.report / 'index.html'} does not exist: run `bench report` first", file=sys.stderr)
        return 1
    server = make_server(paths.root, args.host, args.port, verbose=args.verbose)
    if args.host not in LOOPBACK:
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
    paths = DataPaths.from_env()
    config = load_config(paths)
    warehouse = open_warehouse(paths, config)
    written = export_results(warehouse, [m.table for m in METRICS.values()], args.format, Path(args.out),
                             images=images_store(paths, config))
    if not written:
        print(f"nothing to export: {warehouse.store.url} has no results yet (run `bench run` first)", file=sys.stderr)
        return 1
    if not has_scores(warehouse):
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}; {NO_SCORES_YET}")
        return 0
    print(f"wrote {len(written)} file(s) to {args.out}:")
    for path in written:
        print(f"  {path.name}")
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    result = migrate_data_dir(DataPaths.from_env())
    print("\n".join(result.lines()))
    return 1 if result.busy else 0


def cmd_instance_config(args: argparse.Namespace) -> int:
    kind = instance_kind(args.instance)
    paths = DataPaths.from_env()
    target, pool = write_instance_config(Path(args.template), paths.dagster_home(), load_config(paths), kind)
    database = "PostgreSQL from DAGSTER_PG_*" if kind == "postgres" else "SQLite"
    print(f"wrote {target}: {database}, gpu pool limit {pool.slots} ({pool.reason})")
    return 0


def cmd_doctor(_: argparse.Namespace) -> int:
    checks = run_checks(DataPaths.from_env())
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


def cmd_arena(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    models = [m for chunk in args.models or [] for m in chunk.split(",") if m]
    arena = open_arena(paths.root, shared_token(args.token), models, args.category, paths.default_suite())
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
    token_required = bool(arena.config.shared_token)
    print(f"arena on http://{host}:{port}/ : {len(arena.pool)} pairs of {len(arena.pool.models)} models, "
          f"votes in {arena.store.path}" + (" (token required)" if token_required else ""), flush=True)
    if args.host not in LOOPBACK and not token_required:
        print("warning: listening beyond this machine without a token: anyone who can reach it can vote "
              f"(set {SHARED_TOKEN_ENV})", file=sys.stderr, flush=True)
    serve(arena, sock)
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    bench = open_workbench(paths.root, workbench_server.shared_token(args.token), args.suite)
    try:
        sock = workbench_server.listen(bench, args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(f"prompt workbench on http://{host}:{port}/ : the suites in {paths.prompts}"
          + (" (token required)" if bench.shared_token else ""), flush=True)
    workbench_server.serve(bench, sock)
    return 0


def _user_error(exc: BaseException, known: type[BaseException]) -> BaseException | None:
    """The first ``known`` error in ``exc``'s chain (Dagster wraps a sensor's or schedule's error).

    Expected: a ``BenchError`` (its message names the file or setting), a
    service that stopped answering (``doctor.unreachable_service`` names it and
    the setting), or an ``OSError`` (a full disk, a missing folder). Anything
    else is a bug and keeps its traceback.
    """
    queue, seen = [exc], set()
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


def _arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One ``add_argument`` call of a command, as data."""
    return flags, options


@dataclass(frozen=True)
class Command:
    """One row of ``COMMANDS``: a subcommand, its one-line help, the function it runs and its arguments."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = field(default=())


# The subcommands in the order `bench --help` lists them; choices come from the library's tables.
COMMANDS = (
    Command("run", "register new models and materialize everything missing or stale", cmd_run),
    Command("leaderboard", "print the leaderboard from data/bench.duckdb", cmd_leaderboard, (
        _arg("--category", default=OVERALL, help="a category, 'all' (overall) or '*' (every row)"),
        _arg("--wide", action="store_true", help="one wide Markdown table instead of tables that fit 120 columns"),
    )),
    Command("sql", "SQL on data/bench.duckdb (read-only), with the installed duckdb: no duckdb CLI needed", cmd_sql, (
        _arg("-c", dest="command_text", metavar="QUERY", help="run QUERY (';'-separated statements) and exit; "
             "without -c: an interactive prompt"),
    )),
    Command("status", "per model × category: done, missing, partial, failed or stale", cmd_status, (
        _arg("--verify", action="store_true", help="also compare every recorded image's size and mtime with the "
             "disk (notices a file rewritten in place; the nightly schedule does this)"),
    )),
    Command("import-prompts", "convert a published prompt set into data/prompts/<suite>.jsonl", cmd_import_prompts, (
        _arg("--format", required=True, choices=list(IMPORTERS)),
        _arg("path", help="the file (or folder, for txt and a OneIG repo checkout) you downloaded"),
        _arg("--text-content", help="oneig: scripts/text/text_content[_zh].csv, the text ground truth"),
        _arg("--questions", help="oneig: scripts/alignment/Q_D/, the alignment questions and dependencies"),
        _arg("--suite", required=True, help="name of the suite to write"),
    )),
    Command("cost", "dollars per 1,000 images per model, from the GPU seconds recorded", cmd_cost, (
        _arg("--price-per-hour", type=float,
             help="dollars per GPU-hour (default: BENCH_GPU_PRICE_PER_HOUR, else Modal's H100 list price)"),
        _arg("--price-non-gpu", action="store_true",
             help="also price seconds measured on a CPU or MPS at the GPU rate (marked as such)"),
    )),
    Command("instance-config", "render dagster.yaml into $DAGSTER_HOME, gpu pool sized to the GPUs",
            cmd_instance_config, (
        _arg("--template", default="dagster.yaml"),
        _arg("--instance", choices=list(INSTANCE_KINDS),
             help="where runs, events and schedules live (default: $BENCH_INSTANCE, else sqlite)"),
    )),
    Command("doctor", "check the instance, storage, compute backend and credentials: one line each", cmd_doctor),
    Command("demo", "build tiny demo models and run the whole benchmark on them", cmd_demo, (
        _arg("--models", type=int, default=3),
    )),
    Command("suite", "combine/filter/sample prompt suites into data/prompts/<name>.suite.yaml", cmd_suite, (
        _arg("name", help="suite name; use it with BENCH_PROMPT_SUITE=<name>"),
        _arg("--include", action="append", help="a suite in data/prompts/ (repeat)"),
        _arg("--official", action="store_true",
             help=f"NAME is a published protocol ({', '.join(PROTOCOLS)}) over its imported suite"),
        _arg("--category", action="append", help="keep this category (repeat)"),
        _arg("--difficulty", action="append", choices=list(DIFFICULTIES), help="keep this difficulty"),
        _arg("--tag", action="append", help="keep prompts with this metadata tag/tags/class (repeat)"),
        _arg("--sample", type=int, help="keep N prompts per category (a quick test mode)"),
        _arg("--seed", type=int, default=0, help="seed of --sample"),
        _arg("--negative-prompt", help="negative prompt for prompts that have none"),
        _arg("--prefix-ids", action="store_true", help="prefix ids with their file's name (for clashes)"),
        _arg("--set", action="append", default=[], metavar="KEY=VALUE",
             help="a generation setting of this suite, e.g. --set steps=20 (repeat)"),
    )),
    Command("references", "list the reference sets in data/references/, or write one's captions as a prompt suite",
            cmd_references, (
        _arg("action", nargs="?", default="list", choices=["list", "suite"]),
        _arg("name", nargs="?", help="suite: the reference set whose captions become data/prompts/<name>.jsonl"),
    )),
    Command("download", "download a .safetensors model (Hugging Face, CivitAI, https) into data/models/",
            cmd_download, (
        _arg("url", help="a file link: huggingface.co .../resolve/... or .../blob/..., civitai.com, or any https URL"),
        _arg("--name", help="file name to store it under (default: the server's name)"),
        _arg("--sha256", help="expected sha256; checked before the file appears in data/models/"),
        _arg("--allow-pickle", action="store_true", help="also store .ckpt/.pt/.pth/.bin (they can run code)"),
    )),
    Command("compare", "paired comparison of two models or versions (model, model@N, model@<fp>)", cmd_compare, (
        _arg("a"),
        _arg("b"),
        _arg("--metric", action="append", help="only this metric (repeat)"),
        _arg("--category", help="only this category ('all' = overall)"),
    )),
    Command("gate", "exit 1 when the candidate is significantly worse than the baseline", cmd_gate, (
        _arg("--baseline", required=True, help="model, model@N or model@<fingerprint prefix>"),
        _arg("--candidate", required=True, help="model, model@N or model@<fingerprint prefix>"),
        _arg("--metrics", nargs="+", help="metrics to gate on (default: every metric scored, and FID)"),
    )),
    Command("prune", "delete the images and rows of all but each model's N newest versions", cmd_prune, (
        _arg("--keep", type=int, required=True),
    )),
    Command("report", "rebuild the static report in data/report/ (and serve it with --serve)", cmd_report, (
        _arg("--serve", action="store_true", help="serve it over HTTP after building"),
        _arg("--no-build", action="store_true", help="serve the report as it is, without rebuilding"),
        _arg("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)"),
        _arg("--port", type=int, default=8765, help="port to serve on (0: any free port)"),
        _arg("--verbose", action="store_true", help="log every request"),
    )),
    Command("export", "write the leaderboards and every item-level score table to a folder", cmd_export, (
        _arg("--format", required=True, choices=list(EXPORT_WRITERS)),
        _arg("--out", required=True, help="folder to write into (created if missing)"),
    )),
    Command("migrate", "rewrite absolute image paths in the warehouse's rows as image keys "
            "(rows written before the storage seam; idempotent)", cmd_migrate),
    Command("arena", "blind pairwise votes on the generated images (a web app)", cmd_arena, (
        _arg("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 to share it on a LAN)"),
        _arg("--port", type=int, default=8765, help="port (0: any free port)"),
        _arg("--token", help=f"shared token voters must enter (or env {SHARED_TOKEN_ENV}, which stays out of ps)"),
        _arg("--models", action="append", help="only these models (comma-separated, or repeat)"),
        _arg("--category", help="only this prompt category"),
    )),
    Command("prompts", "the prompt workbench: browse, edit and grow prompt suites (a web app)", cmd_prompts, (
        _arg("--suite", help="the suite to open first: a name or a .jsonl file in data/prompts/"),
        _arg("--host", default="127.0.0.1", help="address to listen on (beyond this machine: a token is required)"),
        _arg("--port", type=int, default=workbench_server.DEFAULT_PORT, help="port (0: any free port)"),
        _arg("--token", help=f"shared token (or env {workbench_server.SHARED_TOKEN_ENV}, which stays out of ps)"),
    )),
)


def build_parser() -> argparse.ArgumentParser:
    """``bench`` and one subcommand per row of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", dest="traceback", action="store_true",
                        help="on an error, print the full traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command_parser = sub.add_parser(command.name, help=command.help)
        for flags, options in command.arguments:
            command_parser.add_argument(*flags, **options)
        command_parser.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only known errors are shortened; the rest re-raise
        known = _user_error(exc, BenchError) or unreachable_service(DataPaths.from_env()) or _user_error(exc, OSError)
        if known is None or args.traceback:
            raise
        print(f"error: {redact_text(' '.join(str(known).split()))}", file=sys.stderr)  # one line; --verbose: all
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
