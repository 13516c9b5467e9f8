"""``make bench`` (report part): how fast the report builds and opens for a big warehouse.

Writes a synthetic warehouse (default 10 models × 1,000 prompts × 4 images,
every registered metric) with the storage functions, then measures:

- the first build (every thumbnail made) and a rebuild with the thumbnails
  cached, which is what re-materializing ``report`` costs after new scores;
- thumbnail cost per image for 512² and 1024² PNGs (generated images' sizes);
- the report's size on disk, per folder;
- time until Overview and Compare are interactive in headless Chromium
  (navigation start to the page's ``data-ready`` mark), median of 3.

``--screenshot DATA_DIR`` instead saves a PNG of the Compare view of an
existing data dir's report (the README's picture).

Run from a checkout: the browser is found the way the tests find it
(``bench_assets.benchmarks.browser``: Debian's chromium, or ``BENCH_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

CATEGORIES = ("object", "colour", "counting", "position", "text", "human", "anime", "scene")


def thumbnail_cost(folder: Path, size: int, count: int = 20) -> tuple[float, float]:
    """(seconds, bytes) per thumbnail of a ``size``² PNG with real-image-like detail."""
    import numpy as np
    from PIL import Image

    from bench_assets.report.thumbnails import make_thumbnail

    rng = np.random.default_rng(size)
    sources = []
    for i in range(count):
        low = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
        path = folder / f"src-{size}-{i}.png"
        Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC).save(path)
        sources.append(path)
    started = time.perf_counter()
    targets = [folder / "thumbs" / f"{size}-{i}.webp" for i in range(count)]
    for path, target in zip(sources, targets):
        make_thumbnail(path, target)
    seconds = (time.perf_counter() - started) / count
    return seconds, sum(t.stat().st_size for t in targets) / count


def folder_sizes(report: Path) -> dict[str, int]:
    from bench_assets.report.site import folder_size

    sizes = {name: folder_size(report / name) for name in ("thumbs", "data", "plots", "export")}
    sizes["total"] = folder_size(report)
    return sizes


def time_to_interactive(url: str, ready: str, runs: int = 3) -> float:
    """Median ms from navigation start until the page marks itself ready, each in a fresh tab."""
    from playwright.sync_api import sync_playwright

    from bench_assets.benchmarks.browser import chromium_path

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.wait_for_selector(f"#app[data-ready={ready}]", timeout=60_000)
                times.append(page.evaluate("performance.now()"))
                context.close()
        finally:
            browser.close()
    return statistics.median(times)


def screenshot_compare(data: Path, out: Path, models: int = 3) -> Path:
    """The Compare view of ``data``'s report, first rows, as a small PNG."""
    from playwright.sync_api import sync_playwright

    from bench_assets.benchmarks.browser import chromium_path

    overview = (data / "report" / "data" / "overview.js").read_text()
    payload = json.loads(overview.split('["overview"]=', 1)[1].rstrip().rstrip(";"))
    names = ",".join(payload["models"][:models])
    url = (data / "report" / "index.html").resolve().as_uri() + f"#/compare?category={payload['categories'][0]}&models={names}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 900, "height": 760})
        page.goto(url)
        page.wait_for_selector("#app[data-ready=compare]")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.screenshot(path=str(out))
        browser.close()
    _shrink_png(out)
    return out


def _shrink_png(path: Path, colours: int = 96) -> None:
    """An adaptive palette keeps the README's picture small (noise images compress badly)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def run(models: int, prompts: int, images: int, workdir: Path) -> dict:
    from bench_assets.demo.synthetic_results import SyntheticSpec, write_synthetic_warehouse
    from bench_assets.metrics.registry import METRICS
    from bench_assets.report.data import MetricInfo
    from bench_assets.report.site import build_report

    data = workdir / "data"
    spec = SyntheticSpec(models=models, prompts=prompts, images_per_prompt=images, categories=CATEGORIES)
    started = time.perf_counter()
    wh = write_synthetic_warehouse(data, spec)
    written = time.perf_counter() - started
    metrics = [MetricInfo.of(m) for m in METRICS.values()]
    first = build_report(wh, data / "report", data / "images", metrics)
    shutil.rmtree(data / "report" / "plots")  # as after new scores: every plot redrawn, thumbnails kept
    cached = build_report(wh, data / "report", data / "images", metrics)
    unchanged = build_report(wh, data / "report", data / "images", metrics)
    index = (data / "report" / "index.html").resolve().as_uri()
    six = ",".join(spec.model_names[:6])
    return {
        "warehouse": f"{models} models × {prompts} prompts × {images} images = {models * prompts * images} images",
        "warehouse_write_s": round(written, 1),
        "first_build_s": round(first.seconds, 1),
        "thumbnails_made_first": first.thumbnails.created,
        "cached_build_s": round(cached.seconds, 1),
        "thumbnails_made_cached": cached.thumbnails.created,
        "unchanged_build_s": round(unchanged.seconds, 1),
        **_thumbnail_figures(workdir),
        "size_bytes": folder_sizes(data / "report"),
        "files": cached.files,
        "overview_interactive_ms": round(time_to_interactive(index + "#/overview", "overview")),
        "compare_interactive_ms": round(time_to_interactive(
            index + f"#/compare?category={CATEGORIES[0]}&models={six}", "compare")),
    }


def _thumbnail_figures(workdir: Path) -> dict:
    figures = {}
    for size in (512, 1024):
        seconds, size_bytes = thumbnail_cost(workdir, size)
        figures[f"thumbnail_ms_{size}"] = round(1000 * seconds, 1)
        figures[f"thumbnail_kb_{size}"] = round(size_bytes / 1024, 1)
    return figures


def _markdown(result: dict) -> str:
    mib = {k: f"{v / 2**20:.1f} MiB" for k, v in result["size_bytes"].items()}
    rows = [
        ("warehouse", result["warehouse"]),
        ("first build (all thumbnails made)", f"{result['first_build_s']} s ({result['thumbnails_made_first']} thumbnails)"),
        ("rebuild, thumbnails cached, plots redrawn", f"{result['cached_build_s']} s ({result['thumbnails_made_cached']} made)"),
        ("rebuild, nothing changed (plots cached too)", f"{result['unchanged_build_s']} s"),
        ("thumbnail per image, 512² / 1024² PNG", f"{result['thumbnail_ms_512']} / {result['thumbnail_ms_1024']} ms, "
                                                  f"{result['thumbnail_kb_512']} / {result['thumbnail_kb_1024']} KiB"),
        ("size on disk", f"{mib['total']} (thumbs {mib['thumbs']}, data {mib['data']}, export {mib['export']}, "
                         f"plots {mib['plots']}; {result['files']} files besides thumbnails)"),
        ("Overview interactive (headless Chromium)", f"{result['overview_interactive_ms']} ms"),
        ("Compare interactive, 6 models", f"{result['compare_interactive_ms']} ms"),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--screenshot", metavar="DATA_DIR", help="save the Compare view of DATA_DIR's report instead")
    parser.add_argument("--screenshot-out", default="docs/report-compare.png")
    args = parser.parse_args(argv)
    if args.screenshot:
        print(screenshot_compare(Path(args.screenshot), Path(args.screenshot_out)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        result = run(args.models, args.prompts, args.images, Path(tmp))
    print(_markdown(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
