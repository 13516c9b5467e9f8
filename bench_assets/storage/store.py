"""Where images and warehouse files live: a local folder or an object store, behind one small class.

The benchmark's results (PNGs under ``images/``, Parquet under ``warehouse/``)
sit under one *store root*: by default the data directory itself, or an
object-store URL such as ``s3://bucket/prefix`` chosen in ``data/config.yaml``
(``storage: {root: ...}``) or ``BENCH_STORAGE_ROOT`` (which wins). Everything
that reads or writes those files addresses them by *key*, a ``/``-separated
path relative to a store (``flux-dev/human/p001_i0_s0.png``), so a data
directory or a bucket can move and every row that records a key still
resolves.

Two implementations, one per kind of root (one table, :data:`STORE_KINDS`: a
row per kind says which roots it serves, how it opens, and what the rest of
the code asks about it, so a new backend is one class and one row):

- :class:`LocalStore`: a folder; writes go to a temp file in the same folder
  and are renamed over the key, so a reader sees the old file or the new one.
- :class:`FsspecStore`: anything fsspec understands (``s3://`` through s3fs,
  ``gs://``, ``memory://`` ...). A write is one PUT of the finished bytes
  (s3fs turns a large one into a multipart upload, which S3 also publishes
  only when it completes), so an object under a final key is never half
  written.

Credentials never live in the root URL or in config files: s3fs reads
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or an instance role), and
``AWS_ENDPOINT_URL`` points it at an S3-compatible server (MinIO, moto, R2).
Only non-secret options (``endpoint_url``, ``region``) are accepted in the
config file.

Plain Python plus fsspec; no Dagster, no torch.
"""

from __future__ import annotations

import os
import uuid
from stat import S_ISREG
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from bench_assets.core.config import BenchConfig
from bench_assets.core.paths import DataPaths
from bench_assets.core.objects import ObjectInfo, Store, StoreError, clean_key
from bench_assets.core.redaction import redact_text, redact_url

STORAGE_ROOT_ENV = "BENCH_STORAGE_ROOT"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
# Options a config file may set for an object store; anything else (keys, secrets) comes from the environment.
ALLOWED_OPTIONS = frozenset({"endpoint_url", "region", "anon"})


@dataclass
class LocalStore:
    """A folder on this machine's disk."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().absolute()

    @property
    def url(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        key = clean_key(key)
        return self.root / key if key else self.root

    def location(self, key: str) -> str:
        key = clean_key(key)  # the same string as str(self.path(key)), without building a Path (status asks per image)
        return os.path.join(str(self.root), key) if key else str(self.root)

    def local_path(self, key: str) -> Path | None:
        return self.path(key)

    def fsspec_filesystem(self) -> None:
        """None: DuckDB reads a folder's locations (plain paths) by itself."""
        return None

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def info(self, key: str) -> ObjectInfo | None:
        try:
            stat = self.path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectInfo(stat.st_size, stat.st_mtime_ns)

    def keys(self, prefix: str = "") -> list[str]:
        """Every file under ``prefix`` (recursive), as keys; temp files of unfinished writes left out."""
        return list(self.infos(prefix))

    def infos(self, prefix: str = "") -> dict[str, ObjectInfo]:
        """:meth:`keys` with each file's size and mtime: one ``stat`` per file, sorted by key."""
        return {key: ObjectInfo(size, mtime) for key, size, mtime in sorted(self.walk(prefix))}

    def walk(self, prefix: str = "") -> Iterator[tuple[str, int, int]]:
        """(key, size, mtime_ns) of every file under ``prefix``, in no order; temp files left out.

        ``os.scandir`` (the entry's type comes with the listing; keys are built as strings), not
        ``Path.rglob``: ``bench status`` lists the folder of every recorded image.
        """
        base = self.path(prefix)
        if base.is_file():
            stat = base.stat()
            yield clean_key(prefix), stat.st_size, stat.st_mtime_ns
            return
        pending = [(str(base), clean_key(prefix))]
        while pending:
            folder, key = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                child = f"{key}/{entry.name}" if key else entry.name
                try:
                    if entry.is_dir() and not entry.is_symlink():  # as rglob: a linked folder is not walked
                        pending.append((entry.path, child))
                    elif not entry.name.endswith(".tmp"):
                        stat = entry.stat()
                        if S_ISREG(stat.st_mode):
                            yield child, stat.st_size, stat.st_mtime_ns
                except FileNotFoundError:  # deleted since the listing
                    continue

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def move(self, key: str, new_key: str) -> None:
        """Rename; raises FileNotFoundError when ``key`` is gone (another reader moved it first)."""
        target = self.path(new_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), target)

    def child(self, prefix: str) -> "LocalStore":
        return type(self)(self.path(prefix))

    def check(self) -> str | None:
        """None when the folder can be created and written; else one line saying why not."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = f".bench-check-{uuid.uuid4().hex[:8]}"
            self.put_bytes(probe, b"ok")
            self.delete(probe)
        except OSError as exc:
            return f"{self.root}: not writable ({exc.strerror or exc})"
        return None


@dataclass
class FsspecStore:
    """An object store (or any fsspec filesystem) under ``url`` = ``protocol://bucket/prefix``."""

    url: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import fsspec

        self.url = self.url.rstrip("/")
        options = dict(self.options)
        endpoint = options.pop("endpoint_url", None) or os.environ.get(ENDPOINT_ENV)
        if self.protocol == "s3":
            client = dict(options.pop("client_kwargs", {}))
            if endpoint:
                client["endpoint_url"] = endpoint
            if "region" in options:
                client["region_name"] = options.pop("region")
            if client:
                options["client_kwargs"] = client
            # Other processes (runs, Modal containers) write here too: s3fs's listing cache would
            # answer info/exists from a stale listing, so every call asks the server.
            options.setdefault("use_listings_cache", False)
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"storage root {redact_url(self.url)}: {redact_text(str(exc))}") from None
        self.base = self.base.rstrip("/")

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def _path(self, key: str) -> str:
        key = clean_key(key)
        return f"{self.base}/{key}" if key else self.base

    def location(self, key: str) -> str:
        key = clean_key(key)
        return f"{self.url}/{key}" if key else self.url

    def local_path(self, key: str) -> Path | None:
        return None

    def fsspec_filesystem(self) -> Any:
        """The filesystem a DuckDB connection registers to read this store's URLs."""
        return self.fs

    def put_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def get_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self._path(key))

    def info(self, key: str) -> ObjectInfo | None:
        try:
            meta = self.fs.info(self._path(key))
        except FileNotFoundError:
            return None
        if meta.get("type") == "directory":
            return None
        return _object_info(meta)

    def keys(self, prefix: str = "") -> list[str]:
        return list(self.infos(prefix))

    def infos(self, prefix: str = "") -> dict[str, ObjectInfo]:
        """:meth:`keys` with sizes and Last-Modified, from the same listing (no request per object)."""
        try:
            found = self.fs.find(self._path(prefix), detail=True)
        except FileNotFoundError:
            return {}
        start = len(self.base) + 1 if self.base else 0
        return {p[start:]: _object_info(meta)
                for p, meta in sorted(found.items()) if not p.endswith(".tmp") and meta.get("type") != "directory"}

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def move(self, key: str, new_key: str) -> None:
        """Copy then delete (object stores have no rename); FileNotFoundError when ``key`` is gone."""
        source = self._path(key)
        if not self.fs.exists(source):
            raise FileNotFoundError(self.location(key))
        self.fs.copy(source, self._path(new_key))
        self.fs.rm_file(source)

    def child(self, prefix: str) -> "FsspecStore":
        store = type(self).__new__(type(self))  # a subclass's child is of that subclass (its own row)
        store.url, store.options, store.fs = self.location(prefix), self.options, self.fs
        store.base = self._path(prefix)
        return store

    def invalidate(self) -> None:
        """Forget cached listings (s3fs caches ``ls``); needed when another process wrote."""
        self.fs.invalidate_cache()

    def check(self) -> str | None:
        """None when a probe object can be written, read and deleted; else one line saying why not."""
        probe = f".bench-check-{uuid.uuid4().hex[:8]}"
        try:
            self.put_bytes(probe, b"ok")
            ok = self.get_bytes(probe) == b"ok"
            self.delete(probe)
        except Exception as exc:  # botocore/aiohttp raise many kinds; the reason is what matters
            reason = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return f"{redact_url(self.url)}: not writable ({reason[:200]})"
        return None if ok else f"{redact_url(self.url)}: a written probe read back different bytes"


def _object_info(meta: Mapping[str, Any]) -> ObjectInfo:
    """An fsspec listing or ``info`` entry as ObjectInfo (s3fs quotes the ETag; the quotes are not part of it)."""
    etag = str(meta.get("ETag") or meta.get("etag") or "").strip('"')
    return ObjectInfo(int(meta.get("size") or 0), _mtime_ns(meta), etag)


def _mtime_ns(meta: Mapping[str, Any]) -> int:
    stamp = meta.get("LastModified") or meta.get("mtime") or meta.get("created")
    if stamp is None:
        return 0
    if hasattr(stamp, "timestamp"):
        return int(stamp.timestamp() * 1_000_000_000)
    return int(float(stamp) * 1_000_000_000)


@dataclass(frozen=True)
class StoreKind:
    """One row of :data:`STORE_KINDS`: the roots one store class serves, and what others ask of it.

    A root goes to the row that lists its URL scheme in ``schemes``; a root
    no row lists goes to the first row whose ``serves`` says yes (a folder
    path, or any other URL fsspec may know).
    """

    open: Callable[[str, Mapping[str, Any]], Store]  # (root, the config file's options) -> the store
    schemes: frozenset[str] = frozenset()  # URL schemes it serves ("s3", "gs", ...)
    serves: Callable[[str], bool] | None = None  # or: does it serve this root (asked after every scheme)
    # Not on this machine's disk: a Modal container opens it itself from ``store_spec`` (credentials
    # from a Modal Secret), where a local store's image bytes travel in the call instead.
    remote: bool = False
    check_hint: str = ""  # appended to a failed ``check()``: what to look at (``bench doctor``)


def _open_local(root: str, _options: Mapping[str, Any]) -> Store:
    return LocalStore(Path(root.split("://", 1)[1] if "://" in root else root))


def _open_fsspec(root: str, options: Mapping[str, Any]) -> Store:
    unknown = set(options) - ALLOWED_OPTIONS
    if unknown:
        raise StoreError(f"storage options {sorted(unknown)} are not allowed in a config file "
                         f"(allowed: {sorted(ALLOWED_OPTIONS)}; credentials come from the environment)")
    return FsspecStore(root, dict(options))


# One table per decision: which kind of root gets which store, and what the rest of the code asks
# about it (the catalog: Store.fsspec_filesystem(); Modal: remote; bench doctor: check() + check_hint).
STORE_KINDS: dict[str, StoreKind] = {
    "local": StoreKind(_open_local, schemes=frozenset({"file"}), serves=lambda root: "://" not in root),
    "fsspec": StoreKind(  # s3://, gs://, memory://: any URL no other row claims
        _open_fsspec, serves=lambda root: "://" in root, remote=True,
        check_hint=f"check {STORAGE_ROOT_ENV} / storage: root, AWS_* credentials and AWS_ENDPOINT_URL",
    ),
}


def store_kind(root: str | Path) -> StoreKind:
    """The row of :data:`STORE_KINDS` that serves ``root``; a store's ``url`` finds its own row."""
    text = str(root)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    rows = list(STORE_KINDS.values())
    found = next((k for k in rows if scheme in k.schemes), None) or next(
        (k for k in rows if k.serves is not None and k.serves(text)), None)
    if found is None:
        raise StoreError(f"storage root {redact_url(text)}: no store kind serves it (known: {sorted(STORE_KINDS)})")
    return found


def open_store(root: str | Path, options: Mapping[str, Any] | None = None) -> Store:
    """The store for ``root``: a folder (a path or ``file://``) or an fsspec URL (see :data:`STORE_KINDS`)."""
    text = str(root)
    if not text:
        raise StoreError("storage root is empty")
    return store_kind(text).open(text, dict(options or {}))


def store_spec(store: Store) -> dict[str, Any]:
    """What another process needs to open the same store: ``open_store(**store_spec(s))``.

    Only the root and the config file's non-secret options: a Modal
    container brings its own credentials (a Modal Secret), never these.
    """
    return {"root": store.url, "options": dict(getattr(store, "options", {}) or {})}


def configured_root(paths: DataPaths, config: BenchConfig) -> tuple[str, dict[str, Any]]:
    """(root, options) of the store: ``BENCH_STORAGE_ROOT`` > ``storage: {root:}`` > the data directory.

    A URL that carries credentials (``s3://KEY:SECRET@bucket``, an endpoint
    with ``user:password@``) is refused, naming the setting and never echoing
    it: credentials come from the environment (``AWS_*``), where no log,
    error or stored row picks them up.
    """
    section = dict(config.storage)
    from_env = os.environ.get(STORAGE_ROOT_ENV, "").strip()
    root = from_env or str(section.pop("root", "") or "") or str(paths.root)
    section.pop("root", None)
    _refuse_credentials(root, STORAGE_ROOT_ENV if from_env else f"{config.source}: storage: root")
    if isinstance(section.get("endpoint_url"), str):
        _refuse_credentials(section["endpoint_url"], f"{config.source}: storage: endpoint_url")
    _refuse_credentials(os.environ.get(ENDPOINT_ENV, ""), ENDPOINT_ENV)
    return root, section


def _refuse_credentials(url: str, setting: str) -> None:
    """A ``user[:password]@`` part in a URL is refused; the message names the setting, not the value."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        raise StoreError(f"{setting} holds credentials (user:secret@ in the URL): remove them and set "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment instead")


def configured_store(paths: DataPaths, config: BenchConfig) -> Store:
    """The store this installation writes images and Parquet to (see the module docstring)."""
    root, options = configured_root(paths, config)
    return open_store(root, options)


# The two sub-roots every installation has, as keys under the configured store.
IMAGES_PREFIX = "images"
WAREHOUSE_PREFIX = "warehouse"


def images_store(paths: DataPaths, config: BenchConfig) -> Store:
    """Where PNGs live; rows record each image as a key of this store (``<model>/<category>/<file>.png``)."""
    return configured_store(paths, config).child(IMAGES_PREFIX)


def warehouse_store(paths: DataPaths, config: BenchConfig) -> Store:
    """Where the Parquet tables live (``<table>/<model>/<category>.parquet``)."""
    return configured_store(paths, config).child(WAREHOUSE_PREFIX)

