"""Fail fast when Modal is selected but this machine has no Modal token.

Standard library only, so the Makefile can run it (``python3 -m
bench_assets.compute.modal_auth``) before installing anything: a user who
set ``BENCH_COMPUTE=modal`` without ``modal setup`` learns it in a second,
not after building models and starting runs.

Modal reads its token from ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` or from
the active profile of ``~/.modal.toml`` (``MODAL_CONFIG_PATH`` moves it,
``MODAL_PROFILE`` picks a profile). This checks the same places; whether the
token is still valid is Modal's to say on the first call.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from bench_assets.core.config import BackendNotReady, backend_from_env

SETUP_HINT = (
    "run `modal setup` (or `modal token new`) once on this machine, or set MODAL_TOKEN_ID and "
    "MODAL_TOKEN_SECRET; to run on this machine's own GPU or CPU instead, set BENCH_COMPUTE=local"
)


class ModalAuthError(BackendNotReady):
    """No Modal token: the message says what to run."""


def _config_path() -> Path:
    return Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")


def _profile(config: dict) -> dict:
    wanted = os.environ.get("MODAL_PROFILE")
    if wanted:
        return config.get(wanted, {})
    active = [values for values in config.values() if isinstance(values, dict) and values.get("active")]
    return active[0] if active else config.get("default", {})


def modal_token_source() -> str | None:
    """Where a Modal token was found ("environment" or the config file), or None."""
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return "environment"
    path = _config_path()
    if not path.is_file():
        return None
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    profile = _profile(config)
    if profile.get("token_id") and profile.get("token_secret"):
        return str(path)
    return None


def require_modal_token() -> str:
    """The token's source; raise ``ModalAuthError`` with the fix if there is none."""
    source = modal_token_source()
    if source is None:
        raise ModalAuthError(f"BENCH_COMPUTE=modal but no Modal token was found: {SETUP_HINT}")
    return source


def main() -> int:
    """Exit 0 unless ``BENCH_COMPUTE=modal`` and no token (then exit 3 with the fix).

    The Makefile's check, before anything is installed, so it reads only the
    environment (``data/config.yaml`` needs PyYAML); ``bench run`` and ``bench
    demo`` check again with the whole precedence (``compute.backend.configured_compute``).
    """
    if backend_from_env() != "modal":
        return 0
    try:
        require_modal_token()
    except ModalAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
