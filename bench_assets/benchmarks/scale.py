"""``make bench-scale``: what each step costs at a real team's size (issue 21).

For each size (``--sizes 10x1000,30x1000``: models × prompts), a synthetic data
directory is written by the project's own storage code
(:mod:`bench_assets.benchmarks.scale_data`), then every step below runs in a
fresh subprocess of its own against it (``BENCH_DATA_DIR`` = that directory,
``DAGSTER_HOME`` a fresh folder beside it), in this order:

- ``sensor tick``: ``model_drop_sensor`` evaluated as ``bench run`` does
  (``defs.headless.tick_model_sensor``) on a real ``DagsterInstance``, after a
  first tick (a setup row) registered every model: the tick the daemon pays
  every 20 s when nothing changed;
- ``bench status``: the command run as a program in the step's process (``runpy``), output captured,
  after a setup row has judged every partition and kept its verdict as each partition's last metric step
  does after scoring it (``storage/status_cache.py``): what a user pays after a run; then again with no
  verdict kept (a data directory written by an older version, or its cache deleted): every partition
  judged from its files;
- ``comparisons, full build``: ``storage.comparisons.refresh_in_data_dir`` (what the asset runs, with no
  previous table) and its write;
- ``leaderboard refresh``: ``storage.ranking.leaderboard_in_data_dir``, the tables'
  writes and ``refresh_views``, as the ``leaderboard`` asset does;
- ``report, full build``: ``report.build.build_data_dir_report`` (every thumbnail made);
- ``sql: <page> #<n>``: each query of the ```sql blocks in README.md and
  docs/sql.md, through ``storage.query.open_sql`` / ``run_statements``, rows fetched;
- ``arena pair sampling``: ``arena.app.open_arena`` (the manifest read and
  indexed by prompt × seed × model; no pair is built until drawn) and 100 draws;
- then one model is added (a setup row: its checkpoint, version, own images,
  every table's partitions and its images' report thumbnails, which the
  ``images`` step makes as it writes them), and ``comparisons`` (only rows whose sides
  changed, the rest carried over by content digest), ``leaderboard`` (only
  the new model resampled, the others' figures read back from the data
  directory's cache) and ``report`` (only the new model's files written, by
  the report's manifest) are refreshed as the assets do after a new model.

Seconds are the step's own work, timed inside its process after its imports
and inputs are ready (building the Dagster definitions, opening the instance).
Peak MiB is the peak resident memory of the step's process, imports included:
the kernel's ``VmHWM`` read from ``/proc/self/status`` when the step ends
(``getrusage``'s ``ru_maxrss`` is not used: on ``exec`` Linux folds the parent's
high-water mark into it), or, for a step stopped early, the largest RSS the
parent sampled every 0.1 s. A step running past ``--step-timeout`` seconds or
above ``--step-memory`` MiB is killed and reported as ``> N s`` / ``> N MiB``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from bench_assets.benchmarks.scale_data import (
    ScaleData, ScaleSpec, add_model, build_data_dir, model_name, open_scale_data,
)
from bench_assets.core.paths import DataPaths

REPO = Path(__file__).resolve().parents[2]
SQL_PAGES = ("README.md", "docs/sql.md")
SPEC_FILE = "scale_spec.json"
ARENA_DRAWS = 100
SAMPLE_SECONDS = 0.1
CLEARED_ENV = ("BENCH_STORAGE_ROOT", "BENCH_CONFIG", "BENCH_PROMPT_SUITE", "BENCH_COMPUTE", "BENCH_GPU_PRICE_PER_HOUR")

Work = Callable[[], dict]


# -- the steps: each prepares its inputs (untimed) and returns the work to time ----------------------
# Each step imports what it uses inside its function: it runs alone in its own process, and its peak
# memory must be its own (``bench status`` does not carry Dagster's).


def _definitions_and_instance():
    import dagster as dg  # only the sensor steps need Dagster

    from bench_assets.definitions import build_definitions

    return build_definitions(), dg.DagsterInstance.get()


def sensor_tick(paths: DataPaths, _: str) -> Work:
    from bench_assets.defs.headless import tick_model_sensor

    defs, instance = _definitions_and_instance()

    def work() -> dict:
        requests, settling = tick_model_sensor(defs, instance)
        return {"run_requests": len(requests), "settling": settling}

    return work


def bench_status(paths: DataPaths, _: str) -> Work:
    """The ``bench status`` command run as a program in this process (``runpy``), output captured.

    Run, not imported: the layer contract keeps ``benchmarks`` and ``cli`` apart. The modules
    the command reads with are imported first, so the time is the command's work.
    """
    import contextlib
    import io
    import runpy

    import bench_assets.metrics.registry  # noqa: F401 - imported here so the timed run does not import it
    import bench_assets.storage.status  # noqa: F401

    def work() -> dict:
        out, argv, code = io.StringIO(), sys.argv, None
        sys.argv = ["bench", "status"]
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_module("bench_assets.cli", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code
        finally:
            sys.argv = argv
        rows = [line.split() for line in out.getvalue().splitlines()[2:] if line[:1].strip()]
        states: dict[str, int] = {}
        for row in rows:
            states[row[2]] = states.get(row[2], 0) + 1
        return {"exit_code": code, "partitions": len(rows), "states": states}

    return work


def keep_verdicts(paths: DataPaths, _: str) -> Work:
    """Every partition judged and its verdict kept, as each partition's last metric step does right after
    writing its scores (``defs.assets._keep_verdict``): the writers' share of ``bench status``'s work.

    Run over the whole directory once it is written, as a run's metric steps run once its images are made:
    by then the image folders have settled (a folder changed within ``status_cache.RACY_NS`` of the look is
    not kept, and scoring takes longer than that)."""
    from bench_assets.models.registry import scan_models
    from bench_assets.storage.status import StatusInputs, keep_partition_verdicts

    inputs = StatusInputs.from_data_dir(paths)

    def work() -> dict:
        states: dict[str, int] = {}
        for entry in scan_models(paths.models):
            for status in keep_partition_verdicts(inputs, entry, inputs.suite.categories):
                states[status.state] = states.get(status.state, 0) + 1
        return {"partitions": sum(states.values()), "states": states}

    return work


def bench_status_nothing_kept(paths: DataPaths, arg: str) -> Work:
    """``bench status`` on a data directory with no verdict kept (written by an older version, or its cache
    deleted): every partition judged from its files. The verdicts are deleted first, untimed."""
    from bench_assets.storage.status_cache import VERDICTS_FOLDER

    shutil.rmtree(paths.cache / VERDICTS_FOLDER, ignore_errors=True)
    return bench_status(paths, arg)


@dataclass
class _Results:
    """What the leaderboard, comparisons and report steps open, as the assets open it."""

    paths: DataPaths

    def __post_init__(self) -> None:
        from bench_assets.core.config import load_config
        from bench_assets.core.decision import decision_config
        from bench_assets.metrics.registry import METRICS
        from bench_assets.storage.metric_columns import metric_columns
        from bench_assets.storage.versions import open_versions

        config = load_config(self.paths)
        self.store = open_versions(self.paths, config)
        self.columns = metric_columns()
        self.decision = decision_config(config, METRICS)


def comparisons(paths: DataPaths, mode: str) -> Work:
    """``mode`` "full": every row computed; "refresh": the table already written is the previous one, so
    only rows whose sides' content changed are recomputed (what the asset does)."""
    from bench_assets.storage.comparisons import COMPARISONS_TABLE, refresh_in_data_dir

    results = _Results(paths)
    previous = results.store.warehouse.read_table(COMPARISONS_TABLE) if mode == "refresh" else None

    def work() -> dict:
        refreshed, figures = refresh_in_data_dir(paths, results.store, results.columns, results.decision, previous)
        results.store.warehouse.write_table(COMPARISONS_TABLE, refreshed.table)
        return {"rows": refreshed.table.height, "recomputed": refreshed.tally.recomputed, **figures}

    return work


def leaderboard(paths: DataPaths, _: str) -> Work:
    from bench_assets.storage.catalog import refresh_views
    from bench_assets.storage.comparisons import COMPARISONS_TABLE
    from bench_assets.storage.ranking import leaderboard_in_data_dir
    from bench_assets.storage.status import IMAGES_TABLE

    results = _Results(paths)
    wh = results.store.warehouse

    def work() -> dict:
        wide, long, figures = leaderboard_in_data_dir(paths, results.store, results.columns, results.decision,
                                                      wh.read_table(COMPARISONS_TABLE), IMAGES_TABLE)
        wh.write_table("leaderboard", wide)
        wh.write_table("leaderboard_long", long)
        catalog = refresh_views(paths.duckdb, wh)
        return {"rows": wide.height, "views": len(catalog.views), **figures}

    return work


def report(paths: DataPaths, _: str) -> Work:
    from bench_assets.report.build import build_data_dir_report

    spec = read_spec(paths)

    def work() -> dict:
        summary = build_data_dir_report(paths, spec.images_per_prompt)
        return {"thumbnails_made": summary.thumbnails.created, "files": summary.files,
                "models_written": summary.pages_written, "models_carried_over": summary.carried_over}

    return work


def sql_query(paths: DataPaths, which: str) -> Work:
    from bench_assets.storage.query import open_sql, run_statements

    page, number = which.rsplit("#", 1)
    query = readme_queries(REPO / page)[int(number) - 1]
    if not paths.duckdb.is_file():  # the leaderboard step did not get as far as the views: make them (untimed)
        from bench_assets.storage.catalog import refresh_views
        from bench_assets.storage.warehouse import open_warehouse

        refresh_views(paths.duckdb, open_warehouse(paths))
    con = open_sql(paths)

    def work() -> dict:
        rows = 0
        for result in run_statements(con, query):
            rows += len(result.relation.fetchall()) if result.relation is not None else 0
        return {"rows": rows, "query": query}

    return work


def arena_pairs(paths: DataPaths, _: str) -> Work:
    from bench_assets.arena.app import open_arena

    def work() -> dict:
        started = time.perf_counter()
        arena = open_arena(paths.root, suite_path=paths.default_suite())
        opened = time.perf_counter() - started
        drawn = sum(arena.pool.draw(f"voter-{i % 5}") is not None for i in range(ARENA_DRAWS))
        arena.store.close()
        return {"pairs": len(arena.pool), "open_seconds": round(opened, 3), "draws": drawn}

    return work


def add_one_model(paths: DataPaths, _: str) -> Work:
    spec = read_spec(paths)
    data = open_scale_data(paths, spec)

    def work() -> dict:
        rows = add_model(data, spec.models, own_images=True)
        started = time.perf_counter()
        made = new_model_thumbnails(paths, data, model_name(spec.models))
        return {"rows": rows, "models": spec.models + 1, "thumbnails_made": made,
                "thumbnail_seconds": round(time.perf_counter() - started, 2)}

    return work


def new_model_thumbnails(paths: DataPaths, data: ScaleData, model: str) -> int:
    """The report's thumbnails of the added model's images, as the ``images`` step makes them when it writes
    them (``report.thumbnails.thumbnails_of``), so the report rebuild after it finds them made."""
    from bench_assets.core.config import load_config
    from bench_assets.report.thumbnails import THUMBS_FOLDER, thumbnails_of
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets.storage.store import images_store

    warehouse, images = data.store.warehouse, images_store(paths, load_config(paths))
    made = 0
    for category in warehouse.categories(IMAGES_TABLE, model):
        rows = warehouse.read_partition(IMAGES_TABLE, model, category)
        made += thumbnails_of(images, rows.iter_rows(named=True), paths.report / THUMBS_FOLDER).created
    return made


@dataclass(frozen=True)
class Step:
    name: str
    prepare: Callable[[DataPaths, str], Work]
    setup: bool = False  # a row that prepares the next steps; shown, not a figure of the targets
    arg: str = ""


def steps() -> list[Step]:
    """Every step, in the order they run (the SQL queries are read from the pages now)."""
    queries = [Step(f"sql: {page} #{i}", sql_query, arg=f"{page}#{i}")
               for page in SQL_PAGES for i in range(1, len(readme_queries(REPO / page)) + 1)]
    return [
        Step("register every model (first sensor tick)", sensor_tick, setup=True),
        Step("sensor tick", sensor_tick),
        Step("keep every partition's status verdict (the metric steps' share)", keep_verdicts, setup=True),
        Step("bench status", bench_status),
        Step("bench status, no verdict kept (cache deleted)", bench_status_nothing_kept),
        Step("comparisons, full build", comparisons, arg="full"),
        Step("leaderboard refresh", leaderboard),
        Step("report, full build", report),
        *queries,
        Step("arena pair sampling", arena_pairs),
        Step("add one model's partitions", add_one_model, setup=True),
        Step("comparisons refresh after adding one model", comparisons, arg="refresh"),
        Step("leaderboard refresh after adding one model", leaderboard),
        Step("report rebuild after adding one model", report),
    ]


def readme_queries(page: Path) -> list[str]:
    """The page's SQL queries, split as ``bench_assets_tests/test_readme.py`` splits them."""
    blocks = re.findall(r"^```sql\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    return [query for block in blocks for query in block.split(";\n") if query.strip()]


# -- one step in its own process ---------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: its own image, not the parent's before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_step_here(name: str, arg: str, result_file: Path) -> int:
    """The child's side: prepare, time the work, write seconds, peak memory and the step's figures."""
    step = next(s for s in steps() if s.name == name)
    work = step.prepare(DataPaths.from_env(), arg)
    started = time.perf_counter()
    figures = work()
    seconds = time.perf_counter() - started
    result_file.write_text(json.dumps({"seconds": seconds, "peak_mib": peak_rss_mib(), **figures}, default=str))
    return 0


@dataclass
class StepResult:
    name: str
    setup: bool
    seconds: float | None = None
    peak_mib: float | None = None
    stopped: str = ""  # "", "timeout", "memory" or "error"
    figures: dict = field(default_factory=dict)
    process_seconds: float = 0.0  # the subprocess's whole life: start-up, imports, inputs, work

    def cells(self, timeout: float, memory: float) -> tuple[str, str]:
        if self.stopped == "timeout":
            return f"> {timeout:.0f} s", f"{self.peak_mib:.0f}" if self.peak_mib else "–"
        if self.stopped == "memory":
            return "stopped", f"> {memory:.0f}"
        if self.stopped == "error":
            return "error: " + str(self.figures.get("error", ""))[:80], "–"
        return f"{self.seconds:.2f}", f"{self.peak_mib:.0f}"


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory_mib: float


def step_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(BENCH_DATA_DIR=str(data), DAGSTER_HOME=str(data.parent / f"{data.name}-dagster_home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def _watch(process: subprocess.Popen, limits: Limits) -> tuple[str, float]:
    """Wait for the step; kill its process group past the limits. (why stopped, largest RSS sampled in MiB)."""
    import psutil

    deadline, largest = time.monotonic() + limits.timeout, 0.0
    while process.poll() is None:
        try:
            largest = max(largest, psutil.Process(process.pid).memory_info().rss / 2**20)
        except psutil.Error:
            pass
        over = "timeout" if time.monotonic() > deadline else "memory" if largest > limits.memory_mib else ""
        if over:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return over, largest
        time.sleep(SAMPLE_SECONDS)
    return "", largest


def run_step(step: Step, data: Path, limits: Limits) -> StepResult:
    """``step`` in a fresh subprocess against ``data``; its figures, or why it was stopped."""
    result_file = data.parent / f"{data.name}-step.json"
    result_file.unlink(missing_ok=True)
    log_file = data.parent / f"{data.name}-step.log"
    started = time.monotonic()
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench_assets.benchmarks.scale", "--run-step", step.name, "--arg", step.arg,
             "--result", str(result_file)],
            env=step_env(data), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        stopped, largest = _watch(process, limits)
    result = StepResult(step.name, step.setup, process_seconds=time.monotonic() - started)
    if stopped:
        result.stopped, result.peak_mib = stopped, largest
    elif process.returncode or not result_file.is_file():
        tail = log_file.read_text().strip().splitlines()[-1:] or [f"exit code {process.returncode}"]
        result.stopped, result.figures = "error", {"error": tail[0]}
    else:
        figures = json.loads(result_file.read_text())
        result.seconds, result.peak_mib, result.figures = figures.pop("seconds"), figures.pop("peak_mib"), figures
    return result


# -- one size, several sizes ---------------------------------------------------------------------------


def read_spec(paths: DataPaths) -> ScaleSpec:
    return ScaleSpec(**json.loads((paths.root / SPEC_FILE).read_text()))


def size_folder(workdir: Path, spec: ScaleSpec) -> Path:
    """Where a size's data directory (and its Dagster home) is built."""
    return workdir / f"{spec.models}x{spec.prompts}"


def measure_size(spec: ScaleSpec, workdir: Path, limits: Limits, log: Callable[[str], None] = print) -> dict:
    """Build the data directory for ``spec``, then run every step against it."""
    data = size_folder(workdir, spec) / "data"
    shutil.rmtree(data.parent, ignore_errors=True)
    data.mkdir(parents=True)
    log(f"building {spec.models} models × {spec.prompts} prompts × {spec.images_per_prompt} images in {data}")
    started = time.perf_counter()
    rows = build_data_dir(DataPaths(data), spec, log=log if spec.models >= 10 else lambda line: None)
    (data / SPEC_FILE).write_text(json.dumps(asdict(spec)))
    built = StepResult("write the synthetic data directory", True, time.perf_counter() - started,
                       figures={"rows": rows})
    results = [built]
    for step in steps():
        results.append(run_step(step, data, limits))
        seconds, mib = results[-1].cells(limits.timeout, limits.memory_mib)
        log(f"  {step.name}: {seconds} s, {mib} MiB")
    return {**asdict(spec), "steps": [asdict(r) for r in results]}


def markdown_table(size: dict, limits: Limits) -> str:
    lines = [f"{size['models']} models × {size['prompts']:,} prompts × {size['images_per_prompt']} images, "
             f"{size['categories']} categories, {size['metrics']} score tables"
             + ("" if size["images"] else " (no image tree)"), "",
             "| step | seconds | peak MiB |", "|---|---|---|"]
    for row in size["steps"]:
        result = StepResult(**row)
        if result.name.startswith("write the"):
            seconds, mib = f"{result.seconds:.1f}", "–"
        else:
            seconds, mib = result.cells(limits.timeout, limits.memory_mib)
        lines.append(f"| {result.name}{' (setup)' if result.setup else ''} | {seconds} | {mib} |")
    return "\n".join(lines)


def growth(sizes: list[dict]) -> list[dict]:
    """Per step, log(t2/t1)/log(n2/n1) between consecutive sizes: n is models, prompts, or both (their product)."""
    rows = []
    for small, big in zip(sizes, sizes[1:]):
        m, p = big["models"] / small["models"], big["prompts"] / small["prompts"]
        axis = "models" if p == 1 else "prompts" if m == 1 else "models×prompts"
        ratio = m if p == 1 else p if m == 1 else m * p
        if ratio == 1:
            continue
        before = {s["name"]: s["seconds"] for s in small["steps"]}
        for step in big["steps"]:
            t1, t2 = before.get(step["name"]), step["seconds"]
            exponent = math.log(t2 / t1) / math.log(ratio) if t1 and t2 and t1 > 0 and t2 > 0 else None
            rows.append({"step": step["name"], "from": f"{small['models']}x{small['prompts']}",
                         "to": f"{big['models']}x{big['prompts']}", "in": axis, "exponent": exponent})
    return rows


def growth_table(rows: list[dict]) -> str:
    lines = ["| step | from → to | in | exponent |", "|---|---|---|---|"]
    for row in rows:
        value = "–" if row["exponent"] is None else f"{row['exponent']:.2f}"
        lines.append(f"| {row['step']} | {row['from']} → {row['to']} | {row['in']} | {value} |")
    return "\n".join(lines)


def machine() -> dict:
    import platform

    import psutil

    return {"nproc": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], "platform": platform.platform(),
            "python": platform.python_version()}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        models, _, prompts = part.strip().lower().partition("x")
        sizes.append((int(models), int(prompts)))
    return sizes


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """Every size of ``args``, measured in ``args.workdir`` (a temporary folder unless given)."""
    import psutil

    memory = args.step_memory or psutil.virtual_memory().total / 2**20 / 2
    limits = Limits(args.step_timeout, memory)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    specs = [ScaleSpec(models, prompts, args.images_per_prompt, args.categories, args.metrics, not args.no_images)
             for models, prompts in parse_sizes(args.sizes)]
    try:
        sizes = [measure_size(spec, workdir, limits, log) for spec in specs]
    finally:
        if not args.keep:  # what this run made, never the rest of a --workdir (a log, the --out file)
            for spec in specs:
                shutil.rmtree(size_folder(workdir, spec), ignore_errors=True)
            if not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
    return {"machine": machine(), "limits": asdict(limits), "sizes": sizes, "growth": growth(sizes)}


def report_text(result: dict) -> str:
    limits = Limits(**result["limits"])
    parts = [markdown_table(size, limits) for size in result["sizes"]]
    if result["growth"]:
        parts.append("Growth exponents between consecutive sizes (1 = linear):\n\n" + growth_table(result["growth"]))
    m = result["machine"]
    parts.append(f"Machine: {m['nproc']} CPUs, {m['memory_gib']} GiB, load average {m['load_average']}, "
                 f"{m['platform']}, Python {m['python']}.")
    return "\n\n".join(parts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10x1000", help="MODELSxPROMPTS[,MODELSxPROMPTS...] (default 10x1000)")
    p.add_argument("--models", type=int, help="one size: this many models (with --prompts)")
    p.add_argument("--prompts", type=int, help="one size: this many prompts (with --models)")
    p.add_argument("--images-per-prompt", type=int, default=4)
    p.add_argument("--categories", type=int, default=13, help="1-13 (default 13)")
    p.add_argument("--metrics", type=int, default=11, help="how many score tables, in the registry's order (1-11)")
    p.add_argument("--no-images", action="store_true", help="no image tree (every image then reads as missing)")
    p.add_argument("--step-timeout", type=float, default=600.0, help="seconds before a step is stopped")
    p.add_argument("--step-memory", type=float, default=0.0, help="MiB of RSS before a step is stopped "
                   "(default: half the machine's memory)")
    p.add_argument("--workdir", help="build the data directories here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--out", help="also write everything as JSON here")
    p.add_argument("--run-step", help=argparse.SUPPRESS)
    p.add_argument("--arg", default="", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.run_step:
        return run_step_here(args.run_step, args.arg, Path(args.result))
    if args.models or args.prompts:
        args.sizes = f"{args.models or 10}x{args.prompts or 1000}"
    result = run(args)
    print(report_text(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
