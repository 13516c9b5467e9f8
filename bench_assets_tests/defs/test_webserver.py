"""`dagster-webserver` started the way `make dev` starts it, queried over GraphQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        sensors { name sensorState { status } }
        schedules { name cronSchedule }
        jobs { name }
        assetNodes {
          assetKey { path }
          partitionDefinition { dimensionTypes { name } }
        }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, query: str) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"webserver exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("webserver did not start in time")


def test_ui_serves_assets_sensor_and_schedule(data_dir, tmp_path):
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCH_DATA_DIR": str(data_dir)}
    webserver = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        deadline = time.time() + 180
        while True:  # the code location loads in its own process after start-up
            data = _post(f"{base}/graphql", QUERY)
            nodes = (data.get("data") or {}).get("repositoriesOrError", {}).get("nodes") or []
            if nodes or time.time() > deadline:
                break
            time.sleep(2)
        assert nodes, data
        repo = nodes[0]
        assets = {"/".join(a["assetKey"]["path"]): a for a in repo["assetNodes"]}
        assert {"images", "clip_score", "lpips_diversity", "leaderboard"} <= set(assets)
        dims = sorted(d["name"] for d in assets["images"]["partitionDefinition"]["dimensionTypes"])
        assert dims == ["category", "model"]
        assert assets["leaderboard"]["partitionDefinition"] is None
        sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        assert "model_drop_sensor" in sensors
        assert {s["name"]: s["cronSchedule"] for s in repo["schedules"]} == {"nightly_refresh": "0 2 * * *"}
        assert {"benchmark", "refresh_leaderboard"} <= {j["name"] for j in repo["jobs"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
