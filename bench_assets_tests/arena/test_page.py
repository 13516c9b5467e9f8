"""The arena page in a real headless Chromium: 30 votes by clicks and keys against a real small run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from bench_assets.arena.app import open_arena
from bench_assets.arena.png import pixels_only
from bench_assets.arena.server import ServerThread
from bench_assets.arena.store import arena_db_path, read_votes
from bench_assets.core.naming import recorded_image_key
from bench_assets.storage.store import open_store
from bench_assets.storage.warehouse import Warehouse
from bench_assets_tests.arena.small_run import MODELS
from bench_assets_tests.browser import PageWatch

# Tests sharing the session's `arena_run` fixture run on one xdist worker, so it is built once.
pytestmark = pytest.mark.xdist_group("arena_run")

TOKEN = "lan-party"
KEYS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4"}
CHOICES = ("left", "right", "tie", "both_bad")


def served_images(root: Path) -> dict[str, tuple[str, str]]:
    """sha256 of the bytes the arena serves for each image → (model, sha256 of the file on disk)."""
    manifest, images = Warehouse(root / "warehouse").read_table("images"), open_store(root / "images")
    return {hashlib.sha256(pixels_only(images.get_bytes(recorded_image_key(path)))).hexdigest(): (model, sha)
            for model, path, sha in manifest.select("model", "path", "sha256").iter_rows()}


def names_a_model(response) -> bool:
    text = response.url.encode() + str(response.headers).encode() + response.body()
    return any(model.encode() in text for model in MODELS)


def test_thirty_votes_by_clicks_and_keys(arena_run, browser, tmp_path):
    root = arena_run.fresh_root(tmp_path)
    shown = served_images(root)
    arena = open_arena(root, shared_token=TOKEN)
    with ServerThread(arena) as url:
        page = browser.new_context().new_page()
        watch = PageWatch(page)
        responses = []
        page.on("response", lambda response: responses.append(response))
        page.goto(f"{url}/?advance=manual")
        page.fill("#name", "tester")
        page.fill("#token", TOKEN)
        assert page.is_visible("#join")
        page.click("#join-button")
        page.wait_for_selector("#arena", state="visible")
        # Joined: the name/token form is gone from the screen (its box has no size), the voter is named.
        assert not page.is_visible("#join") and page.locator("#join").bounding_box() is None
        assert page.inner_text("#whoami") == "voting as tester"

        expected, checked = [], 0
        for i in range(30):
            page.wait_for_selector("#pair[data-state=ready]")
            # nothing the page has received since the last reveal names a model, nor does the pair on screen
            before_vote = [r for r in responses[checked:] if not r.url.endswith("/api/vote")]
            assert before_vote and not [r.url for r in before_vote if names_a_model(r)]
            assert not any(m in page.inner_text("#arena") for m in MODELS)
            pair = [r for r in responses if r.url.endswith("/api/pair")][-1].json()
            sides = {}
            for side in ("left", "right"):
                image = [r for r in responses if r.url == url + pair[side]][-1]
                sides[side] = shown[hashlib.sha256(image.body()).hexdigest()]
            assert sides["left"][0] != sides["right"][0], "two different models"

            choice = CHOICES[i % 4]
            with page.expect_response(lambda r: r.url.endswith("/api/vote")) as vote:
                if i % 2:
                    page.keyboard.press(KEYS[choice])
                else:
                    page.click(f"button[data-choice={choice}]")
            reveal = vote.value.json()
            assert (reveal["left"]["model"], reveal["right"]["model"]) == (sides["left"][0], sides["right"][0])
            page.wait_for_selector("#pair[data-state=reveal]")
            assert page.inner_text("#left .reveal") == sides["left"][0]
            assert page.inner_text("#right .reveal") == sides["right"][0]
            expected.append((i + 1, *sides["left"], *sides["right"], choice))
            checked = len(responses)
            page.click("#next") if i % 3 == 0 else page.keyboard.press("Enter")

        assert not watch.offsite_requests((url,)), "every asset is local"
        assert not watch.console_errors and not watch.page_errors
    arena.store.close()

    votes = read_votes(arena_db_path(root))
    assert votes.height == 30 and set(votes["voter"]) == {"tester"}
    stored = votes.select("vote_id", "model_left", "sha256_left", "model_right", "sha256_right", "choice").rows()
    assert stored == expected
    assert votes.filter(pl.col("prompt_id").is_null() | pl.col("voted_at").is_null()).is_empty()
