"""What an edit means for the benchmark: what changed since the last run, which partitions must re-run.

Both answers come from storage's status code, the code behind ``bench
status`` and the nightly schedule: the last run's prompts are the
warehouse's ``prompts`` table (:func:`~bench_assets.storage.status.recorded_prompts`),
and after a save the partitions to re-run are those ``bench status`` now
reports as not done in the categories the save touched, so the page and the
terminal never disagree.
"""

from __future__ import annotations

from typing import Any, Iterable

from bench_assets.core.paths import DataPaths
from bench_assets.models.registry import scan_models
from bench_assets.prompts.prompt import PromptSuite, PromptSuiteError
from bench_assets.prompts.suites import SPEC_SUFFIX, read_spec
from bench_assets.storage.status import StatusInputs, changed_prompt_ids, recorded_prompts, suite_statuses
from bench_assets.storage.warehouse import open_warehouse

# Where a published suite's importer leaves its mark on a prompt (prompts/importers.py): one row per suite.
PUBLISHED_SOURCES: tuple[tuple[str, Any], ...] = (
    ("GenEval", lambda p: "geneval" in p.metadata),
    ("OneIG-Bench", lambda p: "oneig" in p.metadata),
    ("DSG-1k", lambda p: "dsg" in p.metadata),
    ("DrawBench", lambda p: p.metadata.get("source") == "drawbench"),
    ("PartiPrompts", lambda p: p.id.startswith("parti-")),
)


def published_source(prompt) -> str:
    """The published suite a prompt was imported from, or "" for the team's own prompts."""
    return next((name for name, came_from in PUBLISHED_SOURCES if came_from(prompt)), "")


def since_last_run(paths: DataPaths, suite: PromptSuite) -> dict[str, Any]:
    """Prompts added, removed or edited (text, negative prompt) since the last run recorded the suite."""
    recorded = recorded_prompts(open_warehouse(paths))
    if not recorded:
        return {"recorded": False, "added": [], "removed": [], "edited": []}
    ids = {p.id for p in suite.prompts}
    return {"recorded": True,
            "added": [p.id for p in suite.prompts if p.id not in recorded],
            "removed": sorted(set(recorded) - ids),
            "edited": changed_prompt_ids(recorded, suite.prompts)}


def is_active(paths: DataPaths, suite_name: str) -> bool:
    """Whether the benchmark runs this JSONL suite: it is the active suite or the active spec includes it."""
    active, target = paths.default_suite(), (paths.prompts / f"{suite_name}.jsonl").resolve()
    if active.name.endswith(SPEC_SUFFIX):
        try:
            return target in {p.resolve() for p in read_spec(active).include}
        except PromptSuiteError:
            return False
    return active.resolve() == target


def partitions_to_rerun(paths: DataPaths, categories: Iterable[str]) -> list[dict[str, Any]]:
    """``bench status``'s rows that are not done, in ``categories``: what the sensor and schedule re-run."""
    wanted = set(categories)
    inputs = StatusInputs.from_data_dir(paths)
    entries = scan_models(paths.models)
    others = {(entry.key, c) for entry in entries for c in inputs.suite.categories if c not in wanted}  # not judged
    return [{"model": s.model, "category": s.category, "state": s.state, "why": s.error or ""}
            for _entry, statuses in suite_statuses(inputs, entries, skip=others)
            for s in statuses if s.state != "done"]
