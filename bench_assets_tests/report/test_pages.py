"""The report's pages in a real headless Chromium, against the report of a real small run.

Every test runs twice: from ``file://`` and from the report server on
127.0.0.1. Each checks what the page shows against the warehouse as DuckDB
reads it, and that the page made no request to anywhere else and logged no
error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest

from bench_assets.metrics.registry import METRICS
from bench_assets.report.server import make_server, serve_in_thread
from bench_assets_tests.browser import PageWatch

# Tests sharing the session's `report_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("report_run")

MODELS = ["tiny-a", "tiny-b"]


@pytest.fixture(scope="module")
def server(report_run):
    srv = make_server(report_run.data, "127.0.0.1", 0)
    serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(params=["file", "http"])
def site(request, report_run, server):
    """(index URL, prefixes the page may request, how to map a URL back to a file)."""
    if request.param == "file":
        index = (report_run.data / "report" / "index.html").resolve().as_uri()
        return index, ("file://",), lambda url: Path(unquote(urlsplit(url).path))
    host, port = server.server_address[:2]
    base = f"http://{host}:{port}"
    return f"{base}/report/index.html", (f"{base}/",), lambda url: report_run.data / unquote(urlsplit(url).path).lstrip("/")


@contextmanager
def watched_page(browser, allowed: tuple[str, ...]):
    """A fresh tab; on leaving, no request outside ``allowed`` and no console or page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    watch = PageWatch(tab)
    try:
        yield tab
        assert watch.offsite_requests(allowed) == [], "requests outside the report's origin"
        assert watch.console_errors == [] and watch.page_errors == []
    finally:
        context.close()


@pytest.fixture
def page(browser, site):
    with watched_page(browser, site[1]) as tab:
        yield tab


def _sql(report_run, sql: str, params=()) -> list[dict]:
    con = duckdb.connect(str(report_run.data / "bench.duckdb"), read_only=True)
    try:
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def _views(report_run) -> set[str]:
    return {r["view_name"] for r in _sql(report_run, "select view_name from duckdb_views() where not internal")}


def _open(page, url: str, ready: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"#app[data-ready={ready}]")


def _image_widths(page, selector: str) -> list[int]:
    """The natural widths of the images ``selector`` matches, once every one has finished loading or failed
    (0 for a broken image): read before that, a slow load would look like a broken one."""
    page.wait_for_function("s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector)
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


def _same(shown: str, value) -> bool:
    if value is None:
        return shown == ""
    if isinstance(value, str):  # e.g. computed_at
        return shown == value
    return float(shown) == float(value)


def test_overview_numbers_equal_the_duckdb_leaderboard(page, site, report_run):
    _open(page, site[0] + "#/overview", "overview")
    for category in ["all", "object", "colour"]:
        page.select_option("#category", category)
        page.wait_for_selector(f"#leaderboard tbody tr[data-category={category}]")
        shown = page.evaluate("""() => [...document.querySelectorAll('#leaderboard tbody tr')].map(tr => ({
            model: tr.dataset.model, category: tr.dataset.category, rank: tr.querySelector('td.rank').innerText,
            clip: tr.querySelector('td[data-metric=clip_score]').innerText,
            cells: Object.fromEntries([...tr.querySelectorAll('[data-column]')].map(
                s => [s.dataset.column, [s.dataset.value, s.textContent]]))}))""")
        truth = _sql(report_run, "select * from leaderboard where category = ? order by model", [category])
        assert sorted(r["model"] for r in shown) == [r["model"] for r in truth] == MODELS
        for row in truth:
            cells = next(r["cells"] for r in shown if r["model"] == row["model"])
            # computed_at: in the CSV export, not on the page; a metric's own tier: its cell's tooltip.
            hidden = {"model", "category", "computed_at", *(c for c in row if c.endswith("_tier"))}
            assert set(cells) == set(row) - hidden, "every other leaderboard column is shown"
            for column, value in row.items():
                if column in hidden:
                    continue
                exact, text = cells[column]
                assert _same(exact, value), (category, row["model"], column)
                if isinstance(value, str):
                    assert text == value, (column, text)
                elif value is not None:
                    tolerance = 0.005 if column.startswith("composite") else 0.05 if abs(value) >= 1000 else 0.0005
                    assert abs(float(text) - value) <= tolerance, (column, text)
            # The cells read as `bench leaderboard` prints them: rank (interval), mean [low, high].
            shown_row = next(r for r in shown if r["model"] == row["model"])
            assert shown_row["rank"] == (f"{row['rank']}" if row["rank_low"] == row["rank_high"] == row["rank"]
                                         else f"{row['rank']} ({row['rank_low']}–{row['rank_high']})")
            mean = row["clip_score_mean"]
            assert shown_row["clip"].startswith(f"{mean:.3f} [{row['clip_score_ci_low']:.3f}, "
                                                f"{row['clip_score_ci_high']:.3f}]")
    # sortable: clicking a metric's header orders the rows by its mean, again reverses them
    page.select_option("#category", "all")
    page.click("th[data-sort=clip_score_mean]")
    ascending = page.eval_on_selector_all("#leaderboard tbody tr [data-column=clip_score_mean]",
                                          "spans => spans.map(s => Number(s.dataset.value))")
    assert ascending == sorted(ascending)
    page.click("th[data-sort=clip_score_mean]")
    assert page.eval_on_selector_all("#leaderboard tbody tr [data-column=clip_score_mean]",
                                     "spans => spans.map(s => Number(s.dataset.value))") == sorted(ascending, reverse=True)
    # every plot is a real picture that loaded
    widths = _image_widths(page, "#mean-plots img, #cost-plot")
    overall = _sql(report_run, "select * from leaderboard where category = 'all'")
    scored = [m for m in METRICS if any(r.get(f"{m}_mean") is not None for r in overall)]  # dsg: no questions here
    assert len(widths) == len(scored) + 1 and all(w > 0 for w in widths), "a means plot per scored metric + cost"


def test_compare_shows_each_models_own_file_for_the_prompt_and_seed(page, site, report_run):
    url_to_file = site[2]
    _open(page, site[0] + "#/compare?category=object&models=tiny-a,tiny-b&seed=1", "compare")
    page.wait_for_selector("tr[data-prompt=obj-1] td.cell img")
    _image_widths(page, "tr[data-prompt=obj-1] td.cell img")  # each one loaded or failed: no race with loading
    cells = page.evaluate("""() => [...document.querySelectorAll('tr[data-prompt="obj-1"] td.cell')].map(td => {
        const img = td.querySelector('img');
        return {model: td.dataset.model, index: td.dataset.index, src: img.src, loaded: img.complete && img.naturalWidth,
                full: new URL(img.dataset.full, location.href).href,
                clip: td.querySelector('[data-metric=clip_score]').dataset.value};
    })""")
    assert [c["model"] for c in cells] == MODELS, "one image per model"
    for cell in cells:
        truth = _sql(report_run, "select i.path, i.sha256, s.value as clip from images i join scores_clip s "
                                 "on s.image_path = i.path where i.model = ? and i.prompt_id = 'obj-1' "
                                 "and i.image_index = 1", [cell["model"]])[0]
        sha = truth["sha256"]
        assert cell["src"].endswith(f"/report/thumbs/{sha[:2]}/{sha}.webp"), "the thumbnail of this very image"
        full = url_to_file(cell["full"])
        assert full.resolve() == (report_run.data / "images" / truth["path"]).resolve(), "rows hold image keys"
        assert hashlib.sha256(full.read_bytes()).hexdigest() == sha
        assert cell["loaded"], "the thumbnail loaded"
        assert float(cell["clip"]) == truth["clip"]
    # the link to the full image works where the page is (file or server)
    if cells and site[2](cells[0]["full"]).is_file() and site[0].startswith("http"):
        response = page.request.get(cells[0]["full"])
        assert response.ok and hashlib.sha256(response.body()).hexdigest() == _sql(
            report_run, "select sha256 from images where model='tiny-a' and prompt_id='obj-1' and image_index=1")[0]["sha256"]

    # keyboard: ← goes to seed index 0 in every cell; the filter keeps matching prompts only
    page.locator("body").press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#seed').value === '0'")
    seeds = page.eval_on_selector_all("tr[data-prompt=obj-1] td.cell", "tds => tds.map(td => td.dataset.seed)")
    assert seeds == ["0", "0"]
    page.fill("#filter", "teapot")
    page.wait_for_function("() => document.querySelectorAll('table.compare tbody tr').length === 1")
    assert page.get_attribute("table.compare tbody tr", "data-prompt") == "obj-2"


def _card_values(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        '.image-card.selected span.value[data-metric]')].map(s => [s.dataset.metric, s.dataset.value]))""")


def test_clicking_an_image_opens_its_drill_down_with_the_score_tables_values(page, site, report_run):
    _open(page, site[0] + "#/compare?category=colour&models=tiny-a,tiny-b&seed=1", "compare")
    page.click("tr[data-prompt=col-1] td.cell[data-model=tiny-b] img")
    page.wait_for_selector("#app[data-ready=prompt]")
    card = page.locator(".image-card.selected")
    assert (card.get_attribute("data-model"), card.get_attribute("data-index")) == ("tiny-b", "1")
    assert page.locator(".image-card").count() == 2 * 2, "every model × seed"
    shown = _card_values(page)
    views = _views(report_run)
    expected = {}
    for name, cls in METRICS.items():
        if cls.unit != "image" or cls.table not in views:
            continue
        rows = _sql(report_run, f'select * from "{cls.table}" where model = ? and prompt_id = ? and image_index = ?',
                    ["tiny-b", "col-1", 1])
        if rows:
            expected[name] = rows[0]
    assert set(shown) == set(expected), "every metric with a row for this image, no other"
    for name, row in expected.items():
        assert _same(shown[name], row["value"]), name
    # the reasons behind the numbers
    geneval = expected["geneval"]
    reason = card.locator("tr[data-metric=geneval] [data-detail=reason]").inner_text()
    assert reason == (geneval["reason"] or "all requirements met")
    answers = json.loads(expected["tifa"]["answers"])
    assert card.locator("tr[data-metric=tifa] table.answers tr").count() == 1 + len(answers)
    assert "P(yes) = " in card.locator("tr[data-metric=vqascore]").inner_text()
    # set metrics (diversity) for the prompt, per model
    section = page.locator("section[data-model=tiny-b] .set-scores")
    shown_sets = section.evaluate("""t => Object.fromEntries([...t.querySelectorAll('span.value')].map(
        s => [s.dataset.setMetric, s.dataset.value]))""")
    for name, cls in METRICS.items():
        if cls.unit == "prompt" and cls.table in views:
            truth = _sql(report_run, f'select value from "{cls.table}" where model = ? and prompt_id = ?',
                         ["tiny-b", "col-1"])
            assert _same(shown_sets[name], truth[0]["value"]), name


def test_model_page_shows_source_fingerprint_and_worst_prompts(browser, report_run):
    index = (report_run.data / "report" / "index.html").resolve().as_uri()
    with watched_page(browser, ("file://",)) as page:
        _model_page_checks(page, index, report_run)


def _model_page_checks(page, index: str, report_run) -> None:
    _open(page, index + "#/model/tiny-b", "model")
    info = dict(page.eval_on_selector_all("#model-info tr", "trs => trs.map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"))
    manifest = _sql(report_run, "select distinct model_fingerprint from images where model = 'tiny-b'")
    assert info["kind"] == "single_file" and info["source"] == "tiny-b.safetensors"
    assert info["fingerprint"] == manifest[0]["model_fingerprint"]
    settings = dict(page.eval_on_selector_all("#settings tr", "trs => trs.map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"))
    assert settings["steps"] == "2" and settings["images_per_prompt"] == "2"
    means = _sql(report_run, "select p.prompt, avg(s.value) v from scores_clip s join prompts p using (prompt_id) "
                             "where s.model = 'tiny-b' group by p.prompt")
    lowest = min(m["v"] for m in means)
    first = page.locator("section.worst[data-metric=clip_score] .image-card").first
    assert first.locator("div").first.inner_text() in {m["prompt"] for m in means if m["v"] <= lowest + 1e-9}
    assert abs(float(first.locator("div.num").inner_text().split()[-1]) - lowest) <= 0.0005
    first.locator("a").click()
    page.wait_for_selector("#app[data-ready=prompt]")
    assert page.locator(".image-card.selected").get_attribute("data-model") == "tiny-b"


def test_columns_the_leaderboard_gains_later_are_shown_as_they_are(browser, built_report, tmp_path):
    """Other features add leaderboard columns (rank intervals, a human rating): no page change needed."""
    import polars as pl

    from bench_assets.report.site import build_report
    from bench_assets.storage.warehouse import Warehouse
    from bench_assets_tests.report.report_fixtures import METRIC_INFO

    data = tmp_path / "data"
    shutil.copytree(built_report.data, data)  # with its plots: unchanged figures are not redrawn
    wh = Warehouse(data / "warehouse")
    board = wh.read_table("leaderboard").with_columns(
        (pl.col("clip_score_rank") - 1).alias("clip_score_rank_low"),
        pl.lit(1234.5).alias("human_rating_mean"),
        pl.lit("beta").alias("release"),
    )
    wh.write_table("leaderboard", board)
    build_report(wh, data / "report", data / "images", METRIC_INFO)
    index = (data / "report" / "index.html").resolve().as_uri()
    with watched_page(browser, ("file://",)) as page:
        _open(page, index + "#/overview", "overview")
        row = page.locator("#leaderboard tbody tr[data-model=model-01]")
        assert row.locator("[data-column=release]").inner_text() == "beta"
        assert row.locator("[data-column=human_rating_mean]").inner_text() == "1234.5"
        low = board.filter((pl.col("model") == "model-01") & (pl.col("category") == "all"))["clip_score_rank_low"][0]
        cell = row.locator("td[data-metric=clip_score] [data-column=clip_score_rank_low]")
        assert cell.get_attribute("data-value") == str(low)
        assert page.locator("th[data-sort=human_rating_mean]").count() == 1


def test_a_report_of_an_empty_warehouse_opens_without_errors(browser, tmp_path):
    from bench_assets.report.site import build_report
    from bench_assets.storage.warehouse import Warehouse
    from bench_assets_tests.report.report_fixtures import METRIC_INFO

    summary = build_report(Warehouse(tmp_path / "warehouse"), tmp_path / "report", tmp_path / "images", METRIC_INFO)
    assert (summary.models, summary.images) == (0, 0)
    with watched_page(browser, ("file://",)) as page:
        _open(page, summary.url + "#/overview", "overview")
        assert page.locator("#leaderboard tbody tr").count() == 0
        _open(page, summary.url + "#/compare", "compare")
        assert "No categories yet" in page.inner_text("#app")


def test_reference_set_page_shows_its_images_and_each_models_metrics_with_n(browser, tmp_path):
    """The distribution metrics: the reference set's page (from the Overview's link) in this module's browser."""
    from bench_assets_tests.report.report_fixtures import REFERENCE_IMAGES, build_reference_report

    built = build_reference_report(tmp_path)
    with watched_page(browser, ("file://",)) as page:
        _open(page, built.summary.url + "#/overview", "overview")
        fid = page.locator("#distribution [data-reference=ref] tr[data-model=tiny-a] td[data-metric=fid]")
        assert fid.inner_text() == "30 [28, 32] #1/1†", "as `bench leaderboard` prints it"
        page.click("#distribution a[href='#/reference/ref']")
        page.wait_for_selector("#app[data-ready=reference]")
        assert page.inner_text("#reference-info [data-field=images]") == str(REFERENCE_IMAGES)
        assert page.inner_text("#reference-info [data-field=fingerprint]") == built.reference.fingerprint
        row = page.locator("#reference-scores tr[data-model=tiny-a]")
        cells = row.evaluate("""tr => Object.fromEntries([...tr.querySelectorAll('td[data-metric]')].map(td => [
            td.dataset.metric, [td.querySelector('[data-column=value]').dataset.value, td.title,
                                td.querySelector('.marker') !== null]]))""")
        assert cells["fid"] == ["30", "† n=5 < 10,000: FID below 10k images is biased upward; compare only at equal n",
                                True]
        assert cells["kid"][2] is True and cells["precision"][0] == "0.5"
        assert row.locator("td.n").inner_text() == f"8/{REFERENCE_IMAGES}"
        assert page.locator("#reference-scores tr[data-model=tiny-b] .stale").count() == 1, "older set: marked"
        widths = _image_widths(page, "#reference-images img")
        assert len(widths) == REFERENCE_IMAGES and all(widths), "every thumbnail loaded"
        page.select_option("#category", "object")
        page.wait_for_function("() => location.hash.endsWith('category=object')")
        assert page.locator("#reference-scores tbody tr").count() == 2
