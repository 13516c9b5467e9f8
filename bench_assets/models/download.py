"""``bench download``: fetch one model file into ``data/models/``, safely.

Why this exists instead of ``curl``: a drop-folder sensor watches
``data/models/``, so a half-written or unverified file there would be
registered and run. Here the bytes go to a hidden partial file
(``data/models/.downloads/``, which the registry scan ignores), are resumed
with an HTTP ``Range`` request after a dropped connection, are checked
against a sha256 (``--sha256`` or the one Hugging Face sends for LFS files)
and a safetensors header, and only then are moved into place with
``os.replace`` (atomic on one filesystem).

Tokens (``HF_TOKEN``/``HUGGING_FACE_HUB_TOKEN`` for huggingface.co,
``CIVITAI_TOKEN``/``CIVITAI_API_TOKEN`` for civitai.com) are sent only to
the host they belong to: a redirect to a CDN carries no token. Neither they
nor a link's own credentials (``?token=``, ``api_key=``, signed-URL
parameters: see :mod:`bench_assets.core.redaction`) appear in progress
lines, retry lines or errors, even when a server echoes them back.

Standard library only (urllib): no new dependency for one HTTP GET.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import Callable, Mapping

from bench_assets.core.errors import BenchError
from bench_assets.models.cards import PICKLE_SUFFIXES
from bench_assets.models.detect import safetensors_problem
from bench_assets.models.files import sha256_file
from bench_assets.core.redaction import redact_text, redact_url, secret_values

PARTIAL_DIR = ".downloads"
SAFE_SUFFIX = ".safetensors"
TOKEN_ENV: dict[str, tuple[str, ...]] = {
    "huggingface.co": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    "hf.co": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    "civitai.com": ("CIVITAI_TOKEN", "CIVITAI_API_TOKEN"),
}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_HF_PATH = re.compile(r"^/([^/]+/[^/]+)/(resolve|blob)/([^/]+)/(.+)$")
_CIVITAI_MODEL_PATH = re.compile(r"^/models/(\d+)(?:/[^/]*)?/?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024

Log = Callable[[str], None]


class DownloadError(BenchError, RuntimeError):
    """A download failed or was refused; the message says why and never holds a token."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size: int
    resumed: bool


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- URLs, names and tokens -------------------------------------------------------------


def redact(url: str) -> str:
    """The URL with its credentials replaced (CivitAI accepts ``?token=``); see core/redaction.py."""
    return redact_url(url)


def origin(url: str) -> str:
    """``host[:port]``, lower-case, without credentials: what a token is bound to."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def normalise_url(url: str) -> str:
    """Rewrite page links to direct file links.

    Hugging Face ``/blob/`` pages become ``/resolve/`` (the file itself);
    CivitAI ``/models/<id>?modelVersionId=<v>`` becomes the download API
    ``/api/download/models/<v>``. Anything else is used as given.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise DownloadError(f"{redact(url)}: not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise DownloadError(f"{redact(url)}: refusing plain http (tokens and bytes in the clear); use https")
    host = parts.hostname.lower()
    if host in {"huggingface.co", "hf.co"}:
        match = _HF_PATH.match(parts.path)
        if match and match.group(2) == "blob":
            repo, _, revision, path = match.groups()
            return urllib.parse.urlunsplit(parts._replace(path=f"/{repo}/resolve/{revision}/{path}"))
    if host in {"civitai.com", "www.civitai.com"}:
        match = _CIVITAI_MODEL_PATH.match(parts.path)
        if match:
            version = urllib.parse.parse_qs(parts.query).get("modelVersionId", [None])[0]
            if not version or not version.isdigit():
                raise DownloadError(
                    f"{redact(url)}: a CivitAI model page has several versions; copy the link of one "
                    "(it has ?modelVersionId=<number>) or the version's download link"
                )
            return f"https://civitai.com/api/download/models/{version}"
    return url.strip()


def token_for(url: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(origin, token) for the URL's own host from the environment, or None.

    Exact host match only: ``cdn-lfs.huggingface.co`` gets nothing.
    """
    env = os.environ if env is None else env
    host = origin(url)
    for name in TOKEN_ENV.get(host, ()):
        if env.get(name):
            return host, env[name]
    return None


def sanitise_name(raw: str) -> str:
    """A bare file name safe in ``data/models/``: no folders, no leading dots, no odd characters."""
    base = re.split(r"[\\/]", raw.strip())[-1]
    base = re.sub(r"[^A-Za-z0-9._ +-]+", "_", base).strip(" .")
    base = re.sub(r"\.{2,}", ".", base)
    if not base or base in {".", ".."}:
        return ""
    stem, dot, suffix = base.rpartition(".")
    if dot and len(base) > 200:
        base = f"{stem[: 199 - len(suffix)]}.{suffix}"
    return base[:200]


def _disposition_name(header: str | None) -> str | None:
    """The file name in a Content-Disposition header (``filename*=`` RFC 2231 included)."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    return message.get_filename()


def _url_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def _server_name(urls: tuple[str, ...], disposition: str | None) -> str:
    """Content-Disposition's name, else the first URL whose last segment has a suffix.

    The original URL comes first: after a redirect, a CDN path is often a hash.
    """
    if named := sanitise_name(_disposition_name(disposition) or ""):
        return named
    names = [sanitise_name(_url_name(u)) for u in urls]
    return next((n for n in names if Path(n).suffix), next((n for n in names if n), ""))


def choose_name(url: str, disposition: str | None, requested: str | None, final_url: str | None = None) -> str:
    """The stored name: ``--name`` (its suffix completed from the server's name), else the server's.

    ``--name x`` becomes ``x.ckpt`` when the server names a ``.ckpt`` (so the
    pickle check still sees it), and ``x.safetensors`` when the server gives no suffix.
    """
    server = _server_name((url, final_url or url), disposition)
    if requested is None:
        name = server
    else:
        name = sanitise_name(requested)
        server_suffix = Path(server).suffix.lower()
        if name and Path(name).suffix.lower() not in (SAFE_SUFFIX, *PICKLE_SUFFIXES):
            name += server_suffix or SAFE_SUFFIX  # the header check still verifies the content
    if not name:
        raise DownloadError(f"{redact(url)}: cannot tell a file name from the URL; pass --name NAME.safetensors")
    return name


def check_suffix(name: str, allow_pickle: bool, url: str) -> None:
    """Refuse anything but .safetensors (pickle only with ``allow_pickle``) before a byte is stored."""
    suffix = Path(name).suffix.lower()
    if suffix == SAFE_SUFFIX or (allow_pickle and suffix in PICKLE_SUFFIXES):
        return
    if suffix in PICKLE_SUFFIXES:
        raise DownloadError(
            f"{redact(url)}: {name} is a pickle checkpoint ({suffix}), which can run code when loaded; "
            "nothing was stored. Prefer a .safetensors version, or pass --allow-pickle if you trust the source"
        )
    raise DownloadError(
        f"{redact(url)}: {name} is not a .safetensors file; only .safetensors are stored "
        "(pass --name NAME.safetensors if the server names it oddly)"
    )


def target_path(models_dir: Path, name: str) -> Path:
    """``models_dir/name``, checked to be directly inside ``models_dir`` (never elsewhere)."""
    root = models_dir.resolve()
    target = (root / name).resolve()
    if target.parent != root or name.startswith("."):
        raise DownloadError(f"{name!r}: not a plain file name inside {models_dir}")
    return target


# --- HTTP ---------------------------------------------------------------------------------


def _server_sha256(headers: Message, url: str) -> str | None:
    """The LFS sha256 Hugging Face sends (``X-Linked-ETag``, or ``ETag`` from its own host).

    Only a 64-hex value counts: a git blob id (40 hex) or a CDN's MD5 ETag is not a sha256.
    """
    candidates = [headers.get("X-Linked-ETag")]
    if origin(url) in {"huggingface.co", "hf.co"}:
        candidates.append(headers.get("ETag"))
    for value in candidates:
        cleaned = (value or "").strip().removeprefix("W/").strip('"').lower()
        if _SHA256.match(cleaned):
            return cleaned
    return None


class _TokenRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, re-adding the token only when the new URL is on the token's own host.

    The token is an *unredirected* header, so urllib never copies it; this
    handler puts it back for same-host redirects (a renamed HF repo) and
    records headers seen on the way (HF puts the sha256 on the 302, not on
    the CDN's response).
    """

    def __init__(self, token: tuple[str, str] | None) -> None:
        super().__init__()
        self.token = token
        self.sha256: str | None = None

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        self.sha256 = self.sha256 or _server_sha256(headers, req.full_url)
        new_parts = urllib.parse.urlsplit(newurl)
        if new_parts.scheme == "http" and new_parts.hostname not in _LOOPBACK:
            raise DownloadError(f"{redact(req.full_url)}: redirected to plain http; refusing")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
            if self.token and origin(newurl) == self.token[0]:
                new.add_unredirected_header("Authorization", f"Bearer {self.token[1]}")
        return new


class _RangeRefused(ConnectionError):
    """HTTP 416 on a resume: the partial file is unusable; start again from byte 0."""


def _open(url: str, token: tuple[str, str] | None, offset: int, timeout: float) -> tuple[HTTPResponse, str | None]:
    """GET ``url`` (from byte ``offset``); returns the response and any sha256 seen on redirects."""
    request = urllib.request.Request(url, headers={"User-Agent": "bench-assets-download/1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    if token and origin(url) == token[0]:
        request.add_unredirected_header("Authorization", f"Bearer {token[1]}")
    redirects = _TokenRedirects(token)
    opener = urllib.request.build_opener(redirects)
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            raise _RangeRefused(f"{redact(url)}: the server refused to resume from byte {offset}") from None
        if exc.code >= 500 or exc.code == 429:
            raise ConnectionError(_http_error(url, exc.code, exc.reason, token)) from None
        raise DownloadError(_http_error(url, exc.code, exc.reason, token)) from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise ConnectionError(f"{redact(url)}: {getattr(exc, 'reason', exc)}") from None
    return response, redirects.sha256


def _http_error(url: str, code: int, reason: str, token: tuple[str, str] | None) -> str:
    message = f"{redact(url)}: HTTP {code} {reason}"
    if code in (401, 403):
        names = " or ".join(TOKEN_ENV.get(origin(url), ()))
        if names and not token:
            message += f"; this file may need a token: set {names}"
        elif names:
            message += "; the token was refused (check it has access to this file)"
    return message


# --- progress -----------------------------------------------------------------------------


class _Progress:
    """Bytes, percentage and MB/s, printed at most once per ``interval`` seconds (and at the end)."""

    def __init__(self, name: str, log: Log, interval: float = 1.0) -> None:
        self.name, self.log, self.interval = name, log, interval
        self.started = self.last = time.monotonic()
        self.received = 0

    def update(self, done: int, total: int | None, added: int, final: bool = False) -> None:
        self.received += added
        now = time.monotonic()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        rate = self.received / max(now - self.started, 1e-6) / 1e6
        share = f" ({100 * done / total:.0f}%)" if total else ""
        size = f"{done / 1e6:.1f} MB" + (f" / {total / 1e6:.1f} MB" if total else "")
        self.log(f"{self.name}: {size}{share} {rate:.1f} MB/s")


# --- the download -------------------------------------------------------------------------


def _partial_path(models_dir: Path, url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:24]
    return models_dir / PARTIAL_DIR / f"{digest}.part"


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """(start, total) from ``Content-Range: bytes start-end/total``."""
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    if not match:
        return None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    try:
        partial.parent.rmdir()  # only when empty: other downloads may be in progress
    except OSError:
        pass


@dataclass
class _Attempt:
    """What one GET learnt: the stored name, expected sha256 and whether it resumed."""

    name: str
    sha256: str | None
    resumed: bool


def _fetch_once(url: str, models_dir: Path, name: str | None, allow_pickle: bool,
                token: tuple[str, str] | None, log: Log, timeout: float) -> _Attempt:
    """One GET into the partial file, continuing it with ``Range`` when it exists.

    Raises ConnectionError when the connection drops (the partial is kept for
    the next attempt) and DownloadError for everything that retrying won't fix.
    """
    partial = _partial_path(models_dir, url)
    offset = partial.stat().st_size if partial.is_file() else 0
    try:
        response, redirect_sha = _open(url, token, offset, timeout)
    except _RangeRefused:
        partial.unlink(missing_ok=True)
        raise
    with response:
        final_name = choose_name(url, response.headers.get("Content-Disposition"), name, response.geturl())
        check_suffix(final_name, allow_pickle, url)
        target = target_path(models_dir, final_name)
        if target.exists():
            raise DownloadError(f"{target} already exists; remove it or pass --name another.safetensors")
        resumed, mode = _resume_mode(response, offset, partial)
        if not resumed and offset:
            log(f"{final_name}: the server ignored the Range request; starting again from byte 0")
            offset = 0
        _write_body(response, partial, mode, offset, _Progress(final_name, log), url)
        sha = redirect_sha or _server_sha256(response.headers, response.geturl() or url)
    return _Attempt(final_name, sha, resumed)


def _write_body(response: HTTPResponse, partial: Path, mode: str, offset: int, progress: _Progress,
                url: str) -> None:
    """Stream the body into the partial file; a short body (dropped connection) is a ConnectionError.

    urllib returns b"" at a premature EOF instead of raising, so the byte
    count is checked against Content-Length here.
    """
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length and length.isdigit() else None
    partial.parent.mkdir(parents=True, exist_ok=True)
    done = offset
    with partial.open(mode) as handle:
        try:
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                done += len(chunk)
                progress.update(done, total, len(chunk))
        except (OSError, HTTPException) as exc:
            raise ConnectionError(f"{redact(url)}: connection lost at byte {done} ({exc})") from None
    progress.update(done, total, 0, final=True)
    if total is not None and done < total:
        raise ConnectionError(f"{redact(url)}: connection closed at byte {done} of {total}")


def _resume_mode(response: HTTPResponse, offset: int, partial: Path) -> tuple[bool, str]:
    """(resumed, file mode): append on a matching 206, start over on a 200."""
    if offset and response.status == 206:
        span = _content_range(response.headers.get("Content-Range"))
        if span is None or span[0] != offset:
            partial.unlink(missing_ok=True)  # the next attempt starts from byte 0
            raise ConnectionError("the server answered the Range request with another range; starting over")
        return True, "ab"
    return False, "wb"


def download(url: str, models_dir: Path, *, name: str | None = None, sha256: str | None = None,
             allow_pickle: bool = False, env: Mapping[str, str] | None = None,
             retries: int = 3, log: Log = _stderr, timeout: float = 60.0) -> DownloadResult:
    """Download ``url`` into ``models_dir``, verified, atomically; see the module docstring.

    A dropped connection is retried ``retries`` times, each time continuing
    the partial file with a Range request; a failed run keeps the partial so
    that running the same command again resumes it.
    """
    expected = sha256.strip().lower() if sha256 else None
    if expected is not None and not _SHA256.match(expected):
        raise DownloadError(f"--sha256 {sha256!r}: expected 64 hexadecimal characters")
    secrets = secret_values(url)  # the link's own credentials, to scrub wherever a server echoes them
    try:
        url = normalise_url(url)
    except DownloadError as exc:
        raise DownloadError(redact_text(str(exc), secrets)) from None
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    if name is not None and Path(sanitise_name(name)).suffix.lower() in PICKLE_SUFFIXES:
        check_suffix(sanitise_name(name), allow_pickle, url)  # refused before any request
    token = token_for(url, env)
    secrets += [token[1]] if token else []
    log = _scrubbed(log, secrets)
    try:
        return _download(url, models_dir, name, expected, allow_pickle, token, retries, log, timeout)
    except (DownloadError, OSError, ValueError, HTTPException) as exc:
        # Defence in depth: a server can echo a token or a signed URL back in an error reason.
        raise DownloadError(redact_text(str(exc), secrets)) from None


def _scrubbed(log: Log, secrets: list[str]) -> Log:
    """Every progress and retry line passes through the redaction, whatever it quotes."""
    return lambda message: log(redact_text(message, secrets))


def _download(url: str, models_dir: Path, name: str | None, expected: str | None, allow_pickle: bool,
              token: tuple[str, str] | None, retries: int, log: Log, timeout: float) -> DownloadResult:
    """The retry loop around :func:`_fetch_once`, then :func:`_finish`."""
    partial = _partial_path(models_dir, url)
    for attempt in range(retries + 1):
        try:
            result = _fetch_once(url, models_dir, name, allow_pickle, token, log, timeout)
            break
        except ConnectionError as exc:
            if attempt == retries:
                raise DownloadError(f"{exc}; run the same command again to resume") from None
            log(f"{exc}; resuming ({attempt + 1}/{retries})")
            time.sleep(min(2 ** attempt, 10) * 0.1)
        except DownloadError:
            if not partial.is_file() or partial.stat().st_size == 0:
                _discard(partial)
            raise
    return _finish(partial, models_dir, result.name, expected or result.sha256, url, result.resumed, log)


def _finish(partial: Path, models_dir: Path, name: str, expected: str | None,
            url: str, resumed: bool, log: Log) -> DownloadResult:
    """Verify checksum and header, then move the partial into place (or delete it and raise)."""
    got = sha256_file(partial)
    if expected and got != expected:
        _discard(partial)
        raise DownloadError(
            f"{redact(url)}: sha256 mismatch for {name}: expected {expected}, got {got}; "
            "the download was deleted"
        )
    if Path(name).suffix.lower() == SAFE_SUFFIX and (problem := safetensors_problem(partial)):
        _discard(partial)
        raise DownloadError(f"{redact(url)}: {name}: {problem} (an error page or a login page?); deleted")
    target = target_path(models_dir, name)
    if target.exists():
        _discard(partial)
        raise DownloadError(f"{target} appeared during the download; kept it and deleted the new copy")
    size = partial.stat().st_size
    os.replace(partial, target)
    _discard(partial)
    check = "verified" if expected else "not verified: no checksum given or sent"
    log(f"saved {target} ({size / 1e6:.1f} MB, sha256 {got}, {check})")
    return DownloadResult(target, got, size, resumed)
