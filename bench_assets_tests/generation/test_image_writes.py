"""Images written and found through the image store: a local folder and a real S3 server alike.

No model here: pixels are random arrays, so these run in a second. The
end-to-end runs on a bucket are in ``defs/test_s3_end_to_end.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pytest

from bench_assets.prompts.prompt import Prompt
from bench_assets.core.settings import GenerationSettings
from bench_assets.storage.status import edited_prompts
from bench_assets.storage.store import open_store
from bench_assets.generation.image_set import (
    check_manifest_files, encode_png, missing_jobs, plan_images, read_png_meta, stored_rows, write_image,
)
from bench_assets_tests.s3_server import BUCKET, local_or_s3_store

PROMPTS = (Prompt("p1", "object", "a red bicycle"), Prompt("p2", "object", "a teapot"))
SETTINGS = GenerationSettings(images_per_prompt=2)


class CountingReads:
    """A real store whose whole-object reads are counted (everything else passes through)."""

    def __init__(self, store):
        self._store, self.reads = store, []

    def get_bytes(self, key):
        self.reads.append(key)
        return self._store.get_bytes(key)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.fixture(params=["local", "s3"])
def images(request, tmp_path):
    return local_or_s3_store(request, tmp_path / "images", prefix="/images")


def _pixels(seed: int, size: int = 16):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _meta(set_fp: str, job) -> dict:
    return {"set_fingerprint": set_fp, "model_fingerprint": "m" * 8, "prompt_id": job.prompt.id,
            "seed": job.seed, "settings": {"steps": 2}, "width": 16, "height": 16}


def test_rows_come_from_the_bytes_written_and_known_rows_spare_every_read(images):
    jobs = plan_images("tiny", "object", PROMPTS, SETTINGS)
    written = [write_image(images, job, _pixels(i), _meta("set-a", job)) for i, job in enumerate(jobs)]

    assert [r["path"] for r in written] == ["tiny/object/p1_i0_s0.png", "tiny/object/p1_i1_s1.png",
                                            "tiny/object/p2_i0_s0.png", "tiny/object/p2_i1_s1.png"]
    assert images.keys() == sorted(r["path"] for r in written), "one object per key, nothing else"
    for row in written:
        data = images.get_bytes(row["path"])
        info = images.info(row["path"])
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert (row["size"], row["mtime_ns"]) == (info.size, info.mtime_ns)
        assert read_png_meta(data)["set_fingerprint"] == "set-a"

    counting = CountingReads(images)
    assert missing_jobs(counting, jobs, "set-a", known=written) == []
    assert counting.reads == [], "rows the writer returned stand for unchanged objects"

    # Another set's image over p2_i0: the known row no longer matches, so that object alone is read.
    other = jobs[2]
    images.put_bytes(other.key, encode_png(_pixels(99), _meta("set-b", other)))
    counting = CountingReads(images)
    assert missing_jobs(counting, jobs, "set-a", known=written) == [other]
    assert counting.reads == [other.key]
    # Without any known row each object is read exactly once, and the rows are rebuilt from the store.
    counting = CountingReads(images)
    rebuilt = stored_rows(counting, jobs, "set-a")
    assert sorted(counting.reads) == sorted(j.key for j in jobs)
    assert {k: r["sha256"] for k, r in rebuilt.items()} == {r["path"]: r["sha256"] for r in written if r["path"] != other.key}


def test_a_cut_short_or_missing_object_is_seen_by_the_manifest_check(images):
    jobs = plan_images("tiny", "object", PROMPTS[:1], SETTINGS)
    rows = [write_image(images, job, _pixels(i, 32), _meta("set-a", job)) for i, job in enumerate(jobs)]
    whole = images.get_bytes(jobs[0].key)
    images.put_bytes(jobs[0].key, whole[:200])  # its provenance chunk is still there, its end is not
    images.delete(jobs[1].key)

    checks = check_manifest_files(rows, images)
    assert [(c.key, c.problem) for c in checks] == [(jobs[0].key, "changed"), (jobs[1].key, "missing")]
    assert checks[0].path == images.location(jobs[0].key)
    assert missing_jobs(images, jobs, "set-a", known=rows) == jobs, "a cut-short PNG is not an image of the set"


def test_an_edited_prompts_images_alone_are_drawn_again(tmp_path):
    """Images are named by prompt id and seed; the text they were drawn from is in each PNG, so editing a
    prompt (same id) makes exactly its images missing, and the status names it."""
    images = open_store(tmp_path / "images")
    jobs = plan_images("tiny", "object", PROMPTS, SETTINGS)
    rows = [write_image(images, job, _pixels(i), {**_meta("set-a", job), "prompt_hash": job.prompt.text_hash})
            for i, job in enumerate(jobs)]
    assert missing_jobs(images, jobs, "set-a", known=rows) == []

    edited = (dataclasses.replace(PROMPTS[0], prompt="a blue bicycle"), PROMPTS[1])
    again = plan_images("tiny", "object", edited, SETTINGS)
    assert [j.key for j in missing_jobs(images, again, "set-a", known=rows)] == [j.key for j in jobs[:2]]
    negative = (dataclasses.replace(PROMPTS[0], negative_prompt="blurry"), PROMPTS[1])
    assert len(missing_jobs(images, plan_images("tiny", "object", negative, SETTINGS), "set-a")) == 2
    assert edited_prompts(pl.DataFrame(rows), edited) == ["p1"]
    assert edited_prompts(pl.DataFrame(rows), PROMPTS) == []

    # An image made before prompts were hashed records none: it is taken as current, never redrawn.
    old = jobs[0]
    images.put_bytes(old.key, encode_png(_pixels(7), _meta("set-a", old)))
    assert old.key not in {j.key for j in missing_jobs(images, again, "set-a")}


# --------------------------------------------------------------------------- a writer killed mid-PUT

WRITER = """
import json, sys, threading
import numpy as np
from bench_assets.prompts.prompt import Prompt
from bench_assets.storage.store import open_store
from bench_assets.generation.image_set import ImageJob, write_image

root, keys = sys.argv[1], json.loads(sys.argv[2])
store = open_store(root)
pixels = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)  # ~800 kB of PNG
jobs = [ImageJob("tiny", "object", Prompt(p, "object", "x"), 0, 0) for p in keys]
threads = [threading.Thread(target=write_image, args=(store, job, pixels, {"set_fingerprint": "new"})) for job in jobs]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("finished", flush=True)
"""


@dataclass
class CuttingProxy:
    """A TCP proxy to the S3 server that forwards each request's headers and half its body, then
    stops forwarding and counts the connection as cut: the writer is then mid-PUT, deterministically."""

    upstream_port: int
    expected: int
    listener: socket.socket = field(default_factory=socket.socket)
    cut: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    upstreams: list = field(default_factory=list)
    closed: list = field(default_factory=list)

    def start(self) -> int:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        for _ in range(self.expected):
            threading.Thread(target=self._serve_one, daemon=True).start()
        return self.listener.getsockname()[1]

    def _serve_one(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        done = threading.Event()
        self.upstreams.append(upstream)
        self.closed.append(done)
        threading.Thread(target=self._relay_back, args=(upstream, client, done), daemon=True).start()
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(65536)
        header, body = head.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")))
        assert header.startswith(b"PUT "), header[:80]
        upstream.sendall(header + b"\r\n\r\n")
        half, sent = length // 2, 0
        while sent < half:
            chunk = body[: half - sent] if body else client.recv(min(65536, half - sent))
            body = b""
            upstream.sendall(chunk)
            sent += len(chunk)
        self.cut.release()

    @staticmethod
    def _relay_back(upstream: socket.socket, client: socket.socket, done: threading.Event) -> None:
        while data := upstream.recv(65536):
            try:
                client.sendall(data)
            except OSError:
                pass
        done.set()

    def end_requests(self) -> None:
        """Close each cut request's upstream side and wait until the server has finished with it."""
        for upstream in self.upstreams:
            upstream.shutdown(socket.SHUT_WR)
        for done in self.closed:
            assert done.wait(60), "the S3 server never closed the cut connection"


def test_a_writer_killed_mid_put_leaves_no_object_under_a_final_key(s3_env):
    root = f"s3://{BUCKET}/killed-writer/images"
    store = open_store(root)
    old = encode_png(_pixels(1), {"set_fingerprint": "old"})
    store.put_bytes("tiny/object/kept_i0_s0.png", old)

    proxy = CuttingProxy(int(s3_env.endpoint.rsplit(":", 1)[1]), expected=2)
    port = proxy.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, root, json.dumps(["kept", "fresh"])], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):  # both PUTs are half-way through their bodies
            assert proxy.cut.acquire(timeout=120), writer.stderr.read() if writer.poll() is not None else "no PUT"
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
    finally:
        writer.kill()
    proxy.end_requests()

    store.invalidate()
    assert store.keys() == ["tiny/object/kept_i0_s0.png"], "no object under the new key, no temp or partial object"
    assert store.get_bytes("tiny/object/kept_i0_s0.png") == old, "the older object is intact"
