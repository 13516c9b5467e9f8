"""The workbench in Chromium over a data directory with a real benchmark run (the arena's small run).

Filter, edit a prompt's text and objects, save: the file changes, ``bench status`` (the library call) reports
that category's partitions stale and the page says so; undo restores the file; a second tab's stale save is
refused and the tab reloads; an uploaded PNG becomes a proposed prompt that saves and that GenEval and TIFA score,
its image kept as a reference image.
"""

from __future__ import annotations

import io
import shutil

import pytest

from bench_assets.core.paths import DataPaths
from bench_assets.core.web import ServerThread
from bench_assets.defs.assets import prompts_frame
from bench_assets.models.registry import scan_models
from bench_assets.prompts.suites import load_suite
from bench_assets.storage.status import StatusInputs, suite_statuses
from bench_assets.storage.warehouse import Warehouse
from bench_assets.workbench.app import build_app, open_workbench
from bench_assets.workbench.applies import applying_metrics
from bench_assets_tests.arena.small_run import CATEGORIES, MODELS

# Shares the session's `arena_run` (built once per xdist worker of this group).
pytestmark = pytest.mark.xdist_group("arena_run")
EDITED = "obj-2"


@pytest.fixture(scope="module")
def served(arena_run, tmp_path_factory):
    """A copy of the run with its models, and the suite recorded as the run's leaderboard refresh records it."""
    root = arena_run.fresh_root(tmp_path_factory.mktemp("workbench_browser"))
    shutil.rmtree(root / "models")
    shutil.copytree(arena_run.data / "models", root / "models")
    Warehouse(root / "warehouse").write_table("prompts", prompts_frame(load_suite(root / "prompts" / "default.jsonl")))
    with pytest.MonkeyPatch.context() as env:
        for name in ("BENCH_PROMPT_SUITE", "BENCH_CONFIG"):
            env.delenv(name, raising=False)
        with ServerThread(build_app(open_workbench(root))) as url:
            yield url, DataPaths(root)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # the browser fixture skips where it is missing

    return playwright_expect(locator)


def states(paths: DataPaths) -> dict[tuple[str, str], str]:
    """What ``bench status`` reports, partition by partition."""
    inputs = StatusInputs.from_data_dir(paths)
    return {(s.model, s.category): s.state for _e, rows in suite_statuses(inputs, scan_models(paths.models)) for s in rows}


def open_page(browser, url: str):
    page = browser.new_context().new_page()
    page.goto(url)
    page.wait_for_selector("#prompts tbody tr")
    return page


def test_edit_save_status_undo_and_a_stale_second_tab(browser, served):
    url, paths = served
    suite_file = paths.prompts / "default.jsonl"
    original, before = suite_file.read_bytes(), states(paths)
    assert all(before[(m, c)] != "stale" for m in MODELS for c in CATEGORIES)
    page, second = open_page(browser, url), open_page(browser, url)

    page.select_option("#f-category", "object")
    assert page.locator("#prompts tbody tr").count() == 2 and "2 of 4" in page.inner_text("#shown")
    page.click(f"#prompts tbody tr[data-id='{EDITED}']")
    page.fill("#e-prompt", "three green apples on a glass table")
    page.click("#add-object")
    page.fill("#e-objects .row:last-child input.name", "apple")
    page.fill("#e-objects .row:last-child input.count", "3")
    page.fill("#e-objects .row:last-child input.colour", "green")
    expect(page.locator("#applies")).to_contain_text("geneval: counting task")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("saved")
    saved = load_suite(suite_file).by_id()[EDITED]
    assert saved.prompt == "three green apples on a glass table"
    assert saved.metadata["objects"] == [{"name": "apple", "count": 3, "colour": "green"}]
    after = states(paths)
    assert {k for k, s in after.items() if s == "stale"} == {(m, "object") for m in MODELS}
    assert all(after[k] == before[k] for k in after if k[1] != "object")
    assert f"{len(MODELS)} partition(s) to re-run ({len(MODELS)} stale)" in page.inner_text("#message")
    assert EDITED in page.inner_text("#since")

    second.click(f"#prompts tbody tr[data-id='{EDITED}']")  # read before the save above: a stale version
    second.fill("#e-prompt", "a teapot from the second tab")
    second.click("#save")
    expect(second.locator("#error")).to_contain_text("changed since")
    assert load_suite(suite_file).by_id()[EDITED].prompt == "three green apples on a glass table"
    expect(second.locator(f"tr[data-id='{EDITED}']")).to_contain_text("apples")  # the tab reloaded the suite

    page.click("#undo")
    expect(page.locator("#message")).to_contain_text("undone")
    assert suite_file.read_bytes() == original
    assert states(paths) == before


def test_an_uploaded_png_becomes_a_prompt_that_geneval_and_tifa_score(browser, served):
    from PIL import Image

    url, paths = served
    image = Image.new("RGB", (64, 64), "white")
    image.paste((200, 30, 30), (8, 8, 40, 40))
    png = io.BytesIO()
    image.save(png, format="PNG")
    page = open_page(browser, url)
    page.set_input_files("#file", files=[{"name": "red square.png", "mimeType": "image/png", "buffer": png.getvalue()}])
    expect(page.locator("#editor")).to_be_visible(timeout=120_000)
    assert page.inner_text("#proposal").startswith("proposed:")
    assert page.input_value("#e-id") == "upload-red-square"
    page.fill("#e-category", "object")
    page.check("#keep-image")  # keep it as a reference image, in the default set
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("saved upload-red-square")
    prompt = load_suite(paths.prompts / "default.jsonl").by_id()["upload-red-square"]
    assert prompt.metadata.get("objects"), prompt.metadata
    assert {"geneval", "tifa"} <= {a["metric"] for a in applying_metrics(prompt)}
    assert prompt.metadata["reference_image"] == "workbench/upload-red-square.png"
    with Image.open(paths.references / "workbench" / "upload-red-square.png") as kept:
        assert kept.size == (64, 64) and kept.convert("RGB").getpixel((20, 20)) == (200, 30, 30)
    page.click("#prompts tbody tr[data-id='upload-red-square']")
    expect(page.locator("#e-reference")).to_have_text("reference image: data/references/workbench/upload-red-square.png")
    assert page.locator("#keep").is_hidden()  # a prompt opened from the table has no upload to keep
