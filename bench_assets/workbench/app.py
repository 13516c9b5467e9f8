"""The prompt workbench as an ASGI app (Starlette): a static page and a small JSON API over ``data/prompts/``.

    GET  /                          the page (no data in it)
    GET  /api/session               suites, the active one, whether a token is required
    GET  /api/suites/<suite>        every prompt (with its published source and the metrics that apply),
                                    counts per category, the file's version, what changed since the last run
    POST /api/applies               {prompt} -> which metrics apply (and what they check), warnings; or 400
    POST /api/suites/<suite>/edit   {version, edits: [{op: put|delete|move, ...}]} -> saved; 409 when stale;
                                    a put may carry keep_image: {upload, reference_set?} (workbench/keep.py)
    POST /api/suites/<suite>/undo   {version} -> the content before the newest save; 409 when stale
    POST /api/specs                 {name, include, categories?, difficulty?, tags?, sample_per_category?, seed?}
    POST /api/propose               an image as the raw body, its name in X-Filename -> a proposed prompt
                                    and its ``upload`` id (the image is stashed, to be kept as a reference)

When a shared token is set (required beyond 127.0.0.1), every ``/api/``
request carries it in the ``X-Bench-Token`` header; it is compared in
constant time and never logged. Errors are JSON ``{"error": ...}``; a
refused request writes nothing. Only ``data/`` is read or written: suites
by name (never by path), specs through ``prompts/suites.py``'s ``write_spec``,
uploads in ``.cache/workbench-uploads/`` and kept ones in ``references/<set>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bench_assets.core.errors import BenchError
from bench_assets.core.paths import DataPaths
from bench_assets.core.web import SecurityHeaders, json_body, json_error_handlers, json_response, same_token
from bench_assets.prompts.prompt import DIFFICULTIES, PromptSuiteError
from bench_assets.prompts.suites import prompt_tags, write_spec
from bench_assets.workbench.applies import applying_metrics
from bench_assets.workbench.changes import is_active, partitions_to_rerun, published_source, since_last_run
from bench_assets.workbench.edits import EditError, apply_edits, checked_prompt
from bench_assets.workbench.keep import KeepError, ReferenceImages
from bench_assets.workbench.proposals import Proposals
from bench_assets.workbench.suite_files import NotFound, Snapshot, SuiteFiles, VersionConflict, prompt_record
from bench_assets.workbench.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "x-bench-token"
MAX_BODY = 4 * 1024 * 1024  # a whole suite's edits fit; an image goes to /api/propose
SPEC_KEYS = ("categories", "difficulty", "tags", "sample_per_category", "seed")
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (  # the first match wins
    (VersionConflict, 409), (NotFound, 404), (UploadError, 400), (EditError, 400), (KeepError, 400), (PromptSuiteError, 400),
)


@dataclass
class Workbench:
    """The server's state: the data directory, its suites, the proposers (loaded on the first upload)."""

    paths: DataPaths
    shared_token: str | None = None
    first_suite: str | None = None  # the suite the page opens (``bench prompts --suite``); else the active one
    files: SuiteFiles = field(init=False)
    proposals: Proposals = field(init=False)
    references: ReferenceImages = field(init=False)

    def __post_init__(self) -> None:
        self.files = SuiteFiles(self.paths.prompts)
        self.proposals = Proposals(self.paths)
        self.references = ReferenceImages(self.paths.cache, self.paths.references)

    def propose(self, image) -> dict[str, Any]:
        """The proposal for a validated upload, and the id of the stashed image (to keep it on save)."""
        proposal = self.proposals.propose(image)
        return {**proposal, "upload": self.references.stash(image)}

    def suite_view(self, name: str) -> dict[str, Any]:
        snapshot = self.files.read(name)
        return {**self._version(name, snapshot),
                "prompts": [self._row(p) for p in snapshot.suite.prompts],
                "categories": {c: len(snapshot.suite.in_category(c)) for c in snapshot.suite.categories},
                "difficulties": list(DIFFICULTIES),
                "since_last_run": since_last_run(self.paths, snapshot.suite) if is_active(self.paths, name) else None}

    def edit(self, name: str, version: str, edits: Any) -> dict[str, Any]:
        before = self.files.read_at(name, version)  # a stale tab gets its 409 before its edits are looked at
        edits, keeps = self.references.with_keeps(edits)  # every keep_image checked before anything is written
        records = apply_edits([prompt_record(p) for p in before.suite.prompts], edits)
        after = self.files.save(name, records, version)
        saved = self._saved(name, before, after)
        prompts = after.suite.by_id()
        kept = [self.references.keep(request, pid, prompts[pid].prompt) for request, pid in keeps if pid in prompts]
        return {**saved, "reference_images": kept}

    def undo(self, name: str, version: str) -> dict[str, Any]:
        before = self.files.read(name)
        return self._saved(name, before, self.files.undo(name, version))

    def _saved(self, name: str, before: Snapshot, after: Snapshot) -> dict[str, Any]:
        """The new version and the partitions ``bench status`` now says must re-run, in the touched categories."""
        old, new = before.suite.by_id(), after.suite.by_id()
        touched = {p.category for i, p in old.items() if i not in new or prompt_record(p) != prompt_record(new[i])}
        touched |= {p.category for i, p in new.items() if i not in old or prompt_record(p) != prompt_record(old[i])}
        rerun = partitions_to_rerun(self.paths, touched) if is_active(self.paths, name) else []
        return {**self._version(name, after), "touched_categories": sorted(touched), "rerun": rerun}

    def _version(self, name: str, snapshot: Snapshot) -> dict[str, Any]:
        return {"suite": name, "version": snapshot.version, "undo": len(self.files.history(name))}

    @staticmethod
    def _row(prompt) -> dict[str, Any]:
        return {**prompt_record(prompt), "source": published_source(prompt), "tags": sorted(prompt_tags(prompt)),
                "applies": applying_metrics(prompt)}

    def write_spec(self, data: dict[str, Any]) -> dict[str, Any]:
        include = data.get("include")
        if not isinstance(include, list) or not include or not all(isinstance(s, str) for s in include):
            raise EditError("'include' must list the suites the spec combines")
        for suite in include:
            self.files.path(suite)  # suites by name: never a path outside prompts/
        options = {key: data.get(key) for key in SPEC_KEYS}
        target = write_spec(self.paths.prompts, str(data.get("name") or ""), [f"{s}.jsonl" for s in include],
                            **options)
        return {"spec": f"prompts/{target.name}", "name": target.name.removesuffix(".suite.yaml")}


def _status(exc: Exception) -> int | None:
    return next((status for kind, status in ERROR_STATUS if isinstance(exc, kind)), None)


async def _call(function: Callable[..., dict[str, Any]], *args: Any) -> Response:
    """Run ``function`` off the event loop (files, warehouse); a known error becomes its JSON status."""
    try:
        return json_response(await run_in_threadpool(function, *args))
    except BenchError as exc:
        status = _status(exc)
        if status is None:
            raise
        raise HTTPException(status, str(exc)) from None


def _version(data: dict[str, Any]) -> str:
    if not isinstance(data.get("version"), str):
        raise HTTPException(400, "missing 'version': the version the suite was read at (GET /api/suites/<suite>)")
    return data["version"]


def _routes(bench: Workbench) -> list:
    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def session(_: Request) -> Response:
        first = bench.first_suite or bench.paths.default_suite().name.split(".")[0]
        return json_response({"suites": bench.files.names(), "first": first,
                              "token_required": bool(bench.shared_token)})

    async def suite(request: Request) -> Response:
        return await _call(bench.suite_view, request.path_params["suite"])

    async def applies(request: Request) -> Response:
        prompt, warnings = await _call_checked(checked_prompt, (await json_body(request, MAX_BODY)).get("prompt"))
        return json_response({"applies": applying_metrics(prompt), "warnings": warnings})

    async def edit(request: Request) -> Response:
        data = await json_body(request, MAX_BODY)
        return await _call(bench.edit, request.path_params["suite"], _version(data), data.get("edits"))

    async def undo(request: Request) -> Response:
        data = await json_body(request, MAX_BODY)
        return await _call(bench.undo, request.path_params["suite"], _version(data))

    async def spec(request: Request) -> Response:
        return await _call(bench.write_spec, await json_body(request, MAX_BODY))

    async def propose(request: Request) -> Response:
        filename = unquote(request.headers.get("x-filename", ""))
        image = await _call_checked(read_upload, await _limited_body(request), filename)
        return await _call(bench.propose, image)

    return [
        Route("/", index),
        Route("/api/session", session),
        Route("/api/suites/{suite}", suite),
        Route("/api/applies", applies, methods=["POST"]),
        Route("/api/suites/{suite}/edit", edit, methods=["POST"]),
        Route("/api/suites/{suite}/undo", undo, methods=["POST"]),
        Route("/api/specs", spec, methods=["POST"]),
        Route("/api/propose", propose, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _call_checked(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` with a known error as its JSON status (quick checks, run on the loop)."""
    try:
        return function(*args)
    except BenchError as exc:
        if (status := _status(exc)) is None:
            raise
        raise HTTPException(status, str(exc)) from None


async def _limited_body(request: Request) -> bytes:
    """The raw body, read no further than the upload limit (every other check is ``read_upload``'s)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"upload over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"upload over {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


class _TokenGuard:
    """ASGI middleware: every ``/api/`` request must carry the shared token (when one is set)."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send) -> None:
        if self.token and scope["type"] == "http" and scope["path"].startswith("/api/"):
            given = dict(scope.get("headers") or []).get(TOKEN_HEADER.encode(), b"").decode("latin-1")
            if not same_token(given, self.token):
                response = json_response({"error": "wrong or missing workbench token (header X-Bench-Token)"}, 401)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def build_app(bench: Workbench) -> Starlette:
    app = Starlette(routes=_routes(bench), exception_handlers=json_error_handlers("workbench"))
    app.add_middleware(_TokenGuard, token=bench.shared_token)
    app.add_middleware(SecurityHeaders, img_src="'self' blob:")
    return app


def open_workbench(data_root: Path, shared_token: str | None = None, suite: str | Path | None = None) -> Workbench:
    """The workbench over ``data_root``; ``suite``: a suite name or a .jsonl file in its ``prompts/``."""
    bench = Workbench(DataPaths(Path(data_root)), shared_token or None)
    if suite is not None:
        path = Path(suite)
        name = path.stem if path.suffix == ".jsonl" else str(suite)
        if path.suffix == ".jsonl" and path.parent != Path() and path.resolve().parent != bench.paths.prompts.resolve():
            raise NotFound(f"{suite}: the workbench edits the suites in {bench.paths.prompts} only")
        bench.files.path(name)  # exists, by name
        bench.first_suite = name
    return bench
