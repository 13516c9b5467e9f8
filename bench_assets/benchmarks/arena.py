"""How fast the arena takes votes, and how long the ratings take to fit.

``python -m bench_assets.benchmarks.arena`` (also run by ``make bench``):

- votes per second through the real server (uvicorn, SQLite with an fsync
  per vote), with N concurrent voters each fetching a pair then voting, and
  the vote's latency (median, 95th percentile);
- the ``arena_ratings`` fit (Bradley–Terry MLE + 1000 bootstrap resamples)
  for many votes and models.

Synthetic data in a temporary folder: tiny PNGs and a two-table warehouse.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl


def synthetic_warehouse(root: Path, models: int, prompts: int) -> None:
    import hashlib
    import io

    from PIL import Image

    from bench_assets.storage.store import open_store
    from bench_assets.storage.status import IMAGES_TABLE
    from bench_assets.storage.warehouse import Warehouse

    warehouse, images = Warehouse(root / "warehouse"), open_store(root / "images")
    for m in range(models):
        rows = []
        for p in range(prompts):
            key, png = f"model-{m}/bench/p{p}_i0_s0.png", io.BytesIO()
            Image.fromarray(np.full((64, 64, 3), (m * 37 + p) % 256, dtype=np.uint8)).save(png, format="PNG")
            images.put_bytes(key, png.getvalue())
            rows.append({"model": f"model-{m}", "category": "bench", "prompt_id": f"p{p}", "image_index": 0,
                         "seed": 0, "path": key, "sha256": hashlib.sha256(png.getvalue()).hexdigest()})
        warehouse.write_partition(IMAGES_TABLE, f"model-{m}", "bench", rows)


def _post(host: str, port: int, path: str, body: dict, cookie: str | None) -> tuple[int, dict, str | None]:
    con = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {})}
    con.request("POST", path, body=json.dumps(body), headers=headers)
    response = con.getresponse()
    data, set_cookie = json.loads(response.read()), response.getheader("set-cookie")
    con.close()
    return response.status, data, set_cookie.split(";")[0] if set_cookie else cookie


def measure_votes(root: Path, voters: int, votes_each: int) -> tuple[float, float, float]:
    from bench_assets.arena.app import open_arena
    from bench_assets.arena.server import ServerThread

    arena = open_arena(root, vote_burst=10**6, pair_burst=10**6)
    latencies: list[float] = []

    def voter(i: int, host: str, port: int) -> None:
        _, _, cookie = _post(host, port, "/api/join", {"name": f"bench-{i}"}, None)
        for _ in range(votes_each):
            _, pair, _ = _post(host, port, "/api/pair", {}, cookie)
            start = time.perf_counter()
            status, _, _ = _post(host, port, "/api/vote", {"token": pair["token"], "choice": "left"}, cookie)
            latencies.append(time.perf_counter() - start)
            assert status == 200

    with ServerThread(arena) as url:
        host, port = url.removeprefix("http://").split(":")
        threads = [threading.Thread(target=voter, args=(i, host, int(port))) for i in range(voters)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    arena.store.close()
    return voters * votes_each / elapsed, float(np.median(latencies)), float(np.quantile(latencies, 0.95))


def measure_fit(models: int, votes: int) -> float:
    from bench_assets.arena.ratings import ratings_table

    rng = np.random.default_rng(0)
    left = rng.integers(0, models, votes)
    right = (left + rng.integers(1, models, votes)) % models
    frame = pl.DataFrame({"model_left": [f"m{i}" for i in left], "model_right": [f"m{i}" for i in right],
                          "choice": rng.choice(["left", "right", "tie", "both_bad"], votes).tolist(),
                          "category": rng.choice(["a", "b", "c"], votes).tolist()})
    start = time.perf_counter()
    ratings_table(frame)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=20)
    parser.add_argument("--votes-each", type=int, default=25)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_warehouse(Path(tmp), models=4, prompts=50)
        rate, median, p95 = measure_votes(Path(tmp), args.voters, args.votes_each)
    print(f"arena: {args.voters} voters × {args.votes_each} votes over HTTP: {rate:.0f} votes/s "
          f"(each also fetched a pair); vote latency median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
    for models, votes in ((5, 2_000), (20, 100_000)):
        print(f"arena_ratings fit: {models} models, {votes:,} votes, 3 categories + overall, "
              f"1000 bootstrap resamples each: {measure_fit(models, votes):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
