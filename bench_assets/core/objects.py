"""The store interface: what every layer may ask of the place images and tables live.

Generation writes images, metrics read them, the warehouse writes Parquet,
the report and the arena read both, all by *key* through this protocol. The
implementations (a local folder, an object-store bucket) and the choice
between them live in :mod:`bench_assets.storage.store`; the layers below
storage see only this interface, so none of them knows which one it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bench_assets.core.errors import BenchError


class StoreError(BenchError, ValueError):
    """A store root or key that cannot be used; the message names it (never a credential)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a cheap metadata call tells about a stored object (no bytes read).

    ``mtime_ns`` is the file's modification time locally and the object's
    Last-Modified on an object store (second precision there): with ``size``
    it is how a state check notices a changed file without hashing it.
    ``etag`` is the object store's entity tag (derived from the content, so an
    object rewritten with the same size within the same second still shows);
    "" for a local file, whose nanosecond mtime is enough.
    """

    size: int
    mtime_ns: int
    etag: str = ""


@runtime_checkable
class Store(Protocol):
    """The calls the warehouse, the image writer and the readers need from a root."""

    url: str

    def location(self, key: str) -> str: ...
    def local_path(self, key: str) -> Path | None: ...
    # The fsspec filesystem a reader that only sees locations (DuckDB) must register; None for plain paths.
    def fsspec_filesystem(self) -> Any | None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def info(self, key: str) -> ObjectInfo | None: ...
    def keys(self, prefix: str = "") -> list[str]: ...
    def infos(self, prefix: str = "") -> dict[str, ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def move(self, key: str, new_key: str) -> None: ...
    def child(self, prefix: str) -> "Store": ...
    def check(self) -> str | None: ...


def clean_key(key: str) -> str:
    """A key as stored: ``/``-separated, relative, no ``..`` (a key can never leave its root)."""
    text = str(key).replace("\\", "/").strip("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise StoreError(f"key {key!r} leaves the store root ('..')")
    return "/".join(parts)
