"""Redact credentials from URLs and messages: the one place that decides what a secret looks like.

A URL someone pastes (a CivitAI link with ``?token=``, an S3 presigned URL
with ``X-Amz-Signature``, an Azure SAS with ``sig=``) carries its credentials
in the query string. Anything that prints, logs or stores a URL or a message
that may contain one passes it through :func:`redact_url` or
:func:`redact_text` first.

A query parameter is a credential when its name contains one of
:data:`SECRET_NAME_PARTS` (``api_key``, ``hf_token``, ``X-Amz-Security-Token``,
``X-Goog-Credential``, ``client_secret``, ``auth`` ...) or is one of
:data:`SECRET_NAMES` (Azure SAS's short names, ``sig`` among them). Its value
becomes ``***``; so does the ``user:password@`` part of a URL. Redacting a
parameter that was not secret costs a little readability; missing one leaks a
credential into a log, so the rule errs on the side of redacting.

Plain Python, standard library only.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Iterable

MASK = "***"
SECRET_NAME_PARTS = (
    "token", "key", "secret", "auth", "signature", "password", "passwd", "pwd", "credential", "session",
)
# Azure SAS (sig = the signature; se/st expiry and start, sv version, sp permissions, sr resource,
# spr protocol, sk* the user-delegation key) and other short signature names.
SECRET_NAMES = frozenset({"sig", "se", "st", "sv", "sp", "sr", "spr", "skoid", "sktid", "skt", "ske", "sks", "skv"})

_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")
# name=value pairs outside URLs too (a server reason that echoes "api_key=..."), and "Bearer <token>".
_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]]+)=(?P<value>[^&\s'\"<>`;,]+)")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{6,}")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter named ``name`` should never be shown."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(part in lowered for part in SECRET_NAME_PARTS)


def _redact_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    masked = [(k, MASK if is_secret_name(k) and v else v) for k, v in pairs]
    return urllib.parse.urlencode(masked, safe="*/:")


def redact_url(url: str) -> str:
    """``url`` without its credentials: secret query (and fragment) parameters and ``user:password@``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 netloc: fall back to the text rule
        return _redact_pairs(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    fragment = _redact_query(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=_redact_query(parts.query), fragment=fragment))


def _redact_pairs(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        name = match.group("name")
        return f"{name}={MASK}" if is_secret_name(name) else match.group(0)

    return _PAIR.sub(mask, text)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL redacted, every ``secret_name=value`` masked and each of ``secrets`` removed.

    ``secrets`` are known credential values (a token from the environment,
    the values of a URL's secret parameters) that a server might echo back
    without their name, e.g. in an HTTP reason phrase.
    """
    text = _URL.sub(lambda m: redact_url(m.group(0)), str(text))
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", _redact_pairs(text))
    for value in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def secret_values(url: str) -> list[str]:
    """The values of ``url``'s credentials, to scrub from text that may echo them without their name."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    pairs += urllib.parse.parse_qsl(parts.fragment, keep_blank_values=True) if "=" in parts.fragment else []
    values = [v for k, v in pairs if is_secret_name(k) and v]
    if parts.password:
        values.append(parts.password)
    return values
