"""The workbench's HTTP API on one real uvicorn server: versions and 409s, atomic saves, history and undo,
validation, the token, bad uploads; nothing outside data/ is touched and refused requests touch nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
import struct
import zlib
from pathlib import Path

import pytest

from bench_assets.core.web import ServerThread
from bench_assets.prompts.suites import load_suite, read_spec
from bench_assets.references.registry import load_reference_set
from bench_assets.workbench.app import build_app, open_workbench
from bench_assets.workbench.keep import STASH_FOLDER, STASH_MAX_AGE_S
from bench_assets.workbench.server import TokenRequired, listen
from bench_assets.workbench.suite_files import HISTORY, version_of
from bench_assets_tests.workbench.workbench_client import WorkbenchClient, assert_json_error, tree_hash

REPO_SUITE = Path(__file__).resolve().parents[2] / "data" / "prompts" / "default.jsonl"
TOKEN = "a long shared workbench token"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_sources):
    """One workbench with a token over a copy of the repo's default suite and the tiny scorers (the proposers
    borrow them); a sibling folder outside data/."""
    top = tmp_path_factory.mktemp("workbench_app")
    (top / "data" / "prompts").mkdir(parents=True)
    shutil.copy2(REPO_SUITE, top / "data" / "prompts" / "default.jsonl")
    metrics = json.loads((tiny_sources / "scorers.json").read_text())
    (top / "data" / "config.yaml").write_text(json.dumps({"metrics": metrics}))  # JSON is YAML
    (top / "outside").mkdir()
    (top / "outside" / "x.png").write_bytes(b"not to be touched")
    outside = tree_hash(top / "outside")
    with ServerThread(build_app(open_workbench(top / "data", TOKEN))) as url:
        yield WorkbenchClient(url, token=TOKEN), top / "data"
    assert tree_hash(top / "outside") == outside
    assert sorted(p.name for p in top.iterdir()) == ["data", "outside"]


def suite_file(data: Path) -> Path:
    return data / "prompts" / "default.jsonl"


def retitled(prompt: dict, text: str) -> dict:
    return {"op": "put", "id": prompt["id"], "prompt": {**{k: prompt[k] for k in prompt if k not in
                                                          ("source", "tags", "applies")}, "prompt": text}}


def test_a_stale_version_is_refused_and_the_newer_save_kept(server):
    client, data = server
    first = client.suite()
    assert first["version"] == version_of(suite_file(data).read_bytes())
    hum = first["prompts"][0]
    saved = client.edit(first["version"], [retitled(hum, "tab one's text")])
    assert saved.status == 200 and saved.json()["version"] == version_of(suite_file(data).read_bytes())
    after_first = suite_file(data).read_bytes()
    assert_json_error(client.edit(first["version"], [retitled(hum, "tab two's text")]), 409, "changed since")
    gone = {"op": "delete", "ids": ["no-such-prompt"]}  # stale comes first, whatever the edit
    assert_json_error(client.edit(first["version"], [gone]), 409, "changed since")
    assert suite_file(data).read_bytes() == after_first
    assert load_suite(suite_file(data)).by_id()[hum["id"]].prompt == "tab one's text"


def test_each_save_is_an_atomic_replace_with_its_previous_version_kept_and_undone(server):
    client, data = server
    before = suite_file(data).read_bytes()
    inode = suite_file(data).stat().st_ino
    view = client.suite()
    undo_before = view["undo"]
    assert client.edit(view["version"], [{"op": "delete", "ids": [view["prompts"][1]["id"]]}]).status == 200
    assert suite_file(data).stat().st_ino != inode  # os.replace of a new file, not a rewrite in place
    history = sorted((data / "prompts" / HISTORY / "default").iterdir())
    assert len(history) == undo_before + 1 and history[-1].read_bytes() == before
    assert history[-1].name.endswith(f"-{version_of(before)}.jsonl")
    assert not list((data / "prompts").glob(".*.tmp"))

    undone = client.undo(client.suite()["version"])
    assert undone.status == 200 and suite_file(data).read_bytes() == before
    assert undone.json()["undo"] == undo_before and len(list(history[-1].parent.iterdir())) == undo_before


def test_bad_edits_get_clear_errors_and_touch_nothing(server):
    client, data = server
    view = client.suite()
    v, hum = view["version"], view["prompts"][0]
    base = {k: hum[k] for k in ("id", "category", "prompt")}
    state = tree_hash(data)
    cases = [
        (client.edit(v, [{"op": "put", "id": None, "prompt": base}]), 400, "duplicate prompt id"),
        (client.edit(v, [{"op": "put", "id": hum["id"], "prompt": {**base, "category": "Bad Cat"}}]), 400, "category"),
        (client.edit(v, [{"op": "put", "id": hum["id"], "prompt": {**base, "metadata": {
            "objects": [{"name": "apple", "count": 0}]}}}]), 400, "count must be a whole number"),
        (client.edit(v, [{"op": "put", "id": hum["id"], "prompt": {**base, "metadata": {
            "questions": [{"id": 1, "question": "Is it?", "parents": [7]}]}}}]), 400, "parents"),
        (client.edit(v, [{"op": "move", "ids": ["no-such-id"], "category": "x"}]), 400, "no prompt"),
        (client.edit(v, [{"op": "rename"}]), 400, "op"),
        (client.request("POST", "/api/suites/default/edit", {"edits": []}), 400, "version"),
        (client.request("POST", "/api/suites/default/edit", raw=b"{nope",
                        headers={"Content-Type": "application/json"}), 400, "JSON"),
        (client.request("GET", "/api/suites/..%2F..%2Foutside"), 404, "not found"),
        (client.request("GET", "/api/suites/..outside"), 404, "no suite"),
        (client.undo("0" * 64), 409, "changed since"),
        (client.request("POST", "/api/specs", {"name": "../evil", "include": ["default"]}), 400, "suite name"),
        (client.request("POST", "/api/specs", {"name": "x", "include": ["/etc/passwd"]}), 404, "no suite"),
    ]
    for reply, status, words in cases:
        assert_json_error(reply, status, words)
    assert tree_hash(data) == state


def test_applies_names_what_each_metric_will_check(server):
    client, _ = server
    prompt = {"id": "x", "category": "object", "prompt": "three red apples and a sign saying OPEN",
              "metadata": {"objects": [{"name": "apple", "count": 3, "colour": "red"}], "text": "OPEN",
                           "questions": [{"id": 1, "question": "Are there apples?", "parents": []},
                                         {"id": 2, "question": "Are there three?", "parents": [1]}]}}
    reply = client.request("POST", "/api/applies", {"prompt": prompt})
    applies = {a["metric"]: a["detail"] for a in reply.json()["applies"]}
    assert applies["geneval"] == "counting task" and applies["tifa"] == "2 questions"
    assert applies["dsg"] == "2 gated questions" and applies["text_rendering"] == "target 'OPEN'"
    assert "clip_score" in applies
    plain = client.request("POST", "/api/applies", {"prompt": {**prompt, "metadata": {
        "objects": [{"name": "apple", "colour": "teal"}]}}}).json()
    assert {a["metric"]: a["detail"] for a in plain["applies"]}["geneval"] == "single_object task"
    assert "text_rendering" not in {a["metric"] for a in plain["applies"]}
    assert any("teal" in w for w in plain["warnings"])


def test_a_spec_from_a_filter_is_the_spec_the_cli_writes(server):
    client, data = server
    reply = client.request("POST", "/api/specs", {"name": "humans", "include": ["default"], "categories": ["human"]})
    assert reply.status == 200, reply.body
    spec = read_spec(data / "prompts" / "humans.suite.yaml")
    assert spec.categories == ("human",) and spec.include == (suite_file(data),)
    (data / "prompts" / "humans.suite.yaml").unlink()


def test_the_token_is_required_and_beyond_loopback_the_server_refuses_to_start_without_one(server):
    client, data = server
    state = tree_hash(data)
    for token in (None, "wrong", TOKEN[:-1]):
        assert_json_error(WorkbenchClient(client.base, token=token).request("GET", "/api/suites/default"), 401, "token")
        reply = WorkbenchClient(client.base, token=token).edit(client.suite()["version"], [{"op": "delete", "ids": ["hum-001"]}])
        assert_json_error(reply, 401, "token")
    assert WorkbenchClient(client.base).request("GET", "/").status == 200  # the page itself holds no data
    with pytest.raises(TokenRequired):
        listen(open_workbench(data), "0.0.0.0", 0)
    assert tree_hash(data) == state


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` (a decompression bomb's header) with one tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_bad_uploads_get_clear_errors_and_touch_nothing(server):
    from PIL import Image

    client, data = server
    good = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(good, format="PNG")
    state = tree_hash(data)
    assert_json_error(client.upload(b"just some text\n", "notes.png"), 400, "not an image")
    assert_json_error(client.upload(png_header(20000, 20000), "bomb.png"), 400)
    assert_json_error(client.upload(good.getvalue(), "../../x.png"), 400)
    assert_json_error(WorkbenchClient(client.base).upload(good.getvalue(), "fine.png"), 401, "token")
    assert tree_hash(data) == state


def png_with_text(colour: str, text: str) -> bytes:
    """An 8x8 PNG carrying a tEXt chunk: the stash must keep the pixels, not the chunk."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def uploaded(client: WorkbenchClient, data: bytes, name: str = "photo.png") -> str:
    reply = client.upload(data, name)
    assert reply.status == 200, reply.body
    return reply.json()["upload"]


def put_new(prompt_id: str, text: str, keep: dict | None) -> dict:
    return {"op": "put", "id": None, "prompt": {"id": prompt_id, "category": "object", "prompt": text},
            **({"keep_image": keep} if keep is not None else {})}


def test_an_upload_is_stashed_as_a_clean_png_and_kept_as_a_captioned_reference_image(server):
    from PIL import Image

    client, data = server
    sent = png_with_text("blue", "secret payload")
    upload = uploaded(client, sent)
    stashed = data / ".cache" / STASH_FOLDER / f"{upload}.png"
    assert len(upload) == 64 and hashlib.sha256(stashed.read_bytes()).hexdigest() == upload
    assert stashed.read_bytes() != sent and b"secret payload" not in stashed.read_bytes()
    with Image.open(stashed) as image:
        assert image.format == "PNG" and image.getpixel((3, 3)) == (0, 0, 255)
    references = data / "references" / "workbench"
    references.mkdir(parents=True, exist_ok=True)
    (references / "captions.jsonl").write_text('{"file": "other.png", "caption": "a line kept as it was"}\n')

    added = put_new("kept-blue", "a blue square", {"upload": upload})  # the default set: workbench
    edited = {**put_new("kept-blue", "a small blue square", {"upload": upload, "reference_set": "workbench"}),
              "id": "kept-blue"}  # the second save replaces the image and its caption line
    for edit in (added, edited):
        reply = client.edit(client.suite()["version"], [edit])
        assert reply.status == 200 and reply.json()["reference_images"] == ["workbench/kept-blue.png"], reply.body
    assert (references / "kept-blue.png").read_bytes() == stashed.read_bytes()
    lines = [json.loads(line) for line in (references / "captions.jsonl").read_text().splitlines()]
    assert lines == [{"file": "other.png", "caption": "a line kept as it was"},
                     {"file": "kept-blue.png", "caption": "a small blue square"}]
    assert not list(references.glob(".*.tmp"))
    prompt = load_suite(suite_file(data)).by_id()["kept-blue"]
    assert prompt.metadata["reference_image"] == "workbench/kept-blue.png"
    reference = load_reference_set(data / "references", "workbench")
    assert [(i.name, i.caption) for i in reference.images] == [("kept-blue.png", "a small blue square")]
    assert reference.images[0].sha256 == upload


def test_stashed_uploads_older_than_a_day_go_when_the_next_one_arrives(server):
    client, data = server
    first = uploaded(client, png_with_text("green", "x"))
    stash = data / ".cache" / STASH_FOLDER
    old, recent = stash / ("0" * 64 + ".png"), stash / ("1" * 64 + ".png")
    for path, age in ((old, STASH_MAX_AGE_S + 60), (recent, STASH_MAX_AGE_S - 60), (stash / f"{first}.png", 2 * 86400)):
        path.touch()
        os.utime(path, (time.time() - age, time.time() - age))
    assert uploaded(client, png_with_text("green", "the same pixels")) == first  # same pixels, same id
    assert not old.exists() and recent.exists()
    assert time.time() - (stash / f"{first}.png").stat().st_mtime < 60  # uploaded again: kept a day from now


def test_bad_keep_requests_get_clear_errors_and_touch_nothing(server):
    client, data = server
    upload = uploaded(client, png_with_text("yellow", "y"))
    (data / "references").mkdir(exist_ok=True)
    (data / "references" / "card.yaml").write_text("folder: /nowhere\n")
    coco = data / "references" / "coco"
    coco.mkdir(exist_ok=True)
    (coco / "captions.json").write_text('{"images": [], "annotations": []}')
    view = client.suite()
    v, hum = view["version"], view["prompts"][0]
    state = tree_hash(data)
    cases = [
        (put_new("k1", "t", {"upload": "abc"}), 400, "64 hex"),
        (put_new("k1", "t", {"upload": upload.upper()}), 400, "64 hex"),
        (put_new("k1", "t", {"upload": "f" * 64}), 404, "not in the stash"),
        (put_new("k1", "t", {"upload": upload, "reference_set": "../evil"}), 400, "reference set name"),
        (put_new("k1", "t", {"upload": upload, "reference_set": ".hidden"}), 400, "reference set name"),
        (put_new("k1", "t", {"upload": upload, "reference_set": "card"}), 400, "card"),
        (put_new("k1", "t", {"upload": upload, "reference_set": "coco"}), 400, "captions.json"),
        (put_new("k1", "t", "workbench"), 400, "keep_image"),
        (put_new(hum["id"], "t", {"upload": upload}), 400, "duplicate prompt id"),  # the save fails first
        (put_new("../k1", "t", {"upload": upload}), 400, "id"),
        ({"op": "delete", "ids": [hum["id"]], "keep_image": {"upload": upload}}, 400, "put"),
    ]
    for edit, status, words in cases:
        assert_json_error(client.edit(v, [edit]), status, words)
    assert_json_error(client.edit("0" * 64, [put_new("k1", "t", {"upload": upload})]), 409, "changed since")
    assert tree_hash(data) == state


def test_bench_demo_ends_by_saying_where_the_workbench_is(tmp_path, monkeypatch, capsys):
    """The demo's own work is replaced by no-ops: this checks the line, not the demo (test_first_hour runs it)."""
    import contextlib

    import bench_assets.cli as cli
    from bench_assets.workbench.server import DEFAULT_PORT, workbench_hint

    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BENCH_COMPUTE", "local")
    monkeypatch.setattr(cli, "prepare_demo", lambda paths, n_models: None)
    monkeypatch.setattr(cli, "cmd_run", lambda args: 0)
    monkeypatch.setattr(cli, "library_output_to", lambda path: contextlib.nullcontext())  # imports diffusers
    assert cli.main(["demo"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == workbench_hint() and f"http://127.0.0.1:{DEFAULT_PORT}/" in last and "bench prompts" in last
