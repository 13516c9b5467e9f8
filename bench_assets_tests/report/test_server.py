"""The report's HTTP server: the report and the images, nothing else of the data directory."""

from __future__ import annotations

import hashlib
import http.client

import pytest

from bench_assets.report.server import make_server, report_url, serve_in_thread


@pytest.fixture(scope="module")
def served(built_report):
    data = built_report.data
    (data / "models").mkdir(exist_ok=True)
    (data / "models" / "secret.yaml").write_text("repo: org/private\n")
    server = make_server(data, "127.0.0.1", 0)
    serve_in_thread(server)
    yield data, server
    server.shutdown()
    server.server_close()


def _get(server, path):
    host, port = server.server_address[:2]
    con = http.client.HTTPConnection(host, port, timeout=10)
    con.request("GET", path)
    response = con.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_it_binds_loopback_and_serves_the_report_and_full_images(served):
    data, server = served
    assert server.server_address[0] == "127.0.0.1"
    assert report_url(server).startswith("http://127.0.0.1:")
    status, headers, _ = _get(server, "/")
    assert status == 302 and headers["Location"] == "/report/index.html"
    status, _, body = _get(server, "/report/index.html")
    assert status == 200 and b"report.js" in body
    image = next((data / "images").rglob("*.png"))
    status, _, body = _get(server, "/" + image.relative_to(data).as_posix())
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(image.read_bytes()).digest()


@pytest.mark.parametrize("path", [
    "/warehouse/leaderboard/leaderboard.parquet", "/models/secret.yaml", "/report/../models/secret.yaml",
    "/report/%2e%2e/models/secret.yaml", "/images/../warehouse/prompts/prompts.parquet", "/config.yaml",
])
def test_nothing_outside_report_and_images_is_served(served, path):
    _, server = served
    status, _, body = _get(server, path)
    assert status == 404 and b"org/private" not in body


def test_images_in_a_bucket_are_streamed_from_the_store(built_report, s3_env):
    """With object storage the pages link ../images/<key>; the server answers it from the bucket."""
    from bench_assets.storage.store import open_store
    from bench_assets.report.data import full_image_prefix
    from bench_assets_tests.s3_server import BUCKET

    bucket = open_store(f"s3://{BUCKET}/served/images")
    png = next((built_report.data / "images").rglob("*.png"))
    key = png.relative_to(built_report.data / "images").as_posix()
    bucket.put_bytes(key, png.read_bytes())
    assert full_image_prefix(built_report.data / "report", bucket) == "../images/"
    server = make_server(built_report.data, "127.0.0.1", 0, images=bucket)
    serve_in_thread(server)
    try:
        status, headers, body = _get(server, f"/images/{key}")
        assert status == 200 and headers["Content-Type"] == "image/png" and body == png.read_bytes()
        assert _get(server, "/images/no/such/image.png")[0] == 404
        assert _get(server, "/images/%2e%2e/served/images/" + key)[0] == 404
    finally:
        server.shutdown()
        server.server_close()
