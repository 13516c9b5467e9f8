"""The one redaction rule: every credential-looking query parameter, userinfo and echoed value goes."""

from __future__ import annotations

import pytest

from bench_assets.core.redaction import MASK, is_secret_name, redact_text, redact_url, secret_values

SECRET_PARAMS = [
    "token", "hf_token", "access_token", "api_key", "apikey", "key", "auth", "authorization", "secret",
    "client_secret", "signature", "password", "sig", "credential", "X-Amz-Signature", "X-Amz-Credential",
    "X-Amz-Security-Token", "X-Goog-Signature", "X-Goog-Credential", "AWSAccessKeyId", "Signature",
    "se", "sv", "sp", "st", "sr", "session_id",
]
PLAIN_PARAMS = ["modelVersionId", "download", "type", "format", "X-Amz-Date", "X-Amz-Expires", "page"]


@pytest.mark.parametrize("name", SECRET_PARAMS)
def test_every_credential_name_is_masked(name):
    value = f"v4lue-of-{name.lower()}-123"
    url = f"https://host.example/path/m.safetensors?modelVersionId=7&{name}={value}"
    assert is_secret_name(name)
    shown = redact_url(url)
    assert value not in shown and f"{name}={MASK}" in shown and "modelVersionId=7" in shown
    assert value not in redact_text(f"GET {url} failed")
    assert value not in redact_text(f"server said: bad {name}={value}; retry")  # outside any URL


@pytest.mark.parametrize("name", PLAIN_PARAMS)
def test_plain_parameters_stay_readable(name):
    assert not is_secret_name(name)
    assert f"{name}=42" in redact_url(f"https://host.example/x?{name}=42")


def test_userinfo_fragment_bearer_and_echoed_values():
    url = "https://alice:pa55word@host.example/m?X-Amz-Signature=abcdef0123#access_token=fr4gment"
    shown = redact_url(url)
    assert "alice" not in shown and "pa55word" not in shown and "abcdef0123" not in shown
    assert "fr4gment" not in shown
    assert sorted(secret_values(url)) == ["abcdef0123", "fr4gment", "pa55word"]
    echoed = redact_text("HTTP 403 signature abcdef0123 expired", secret_values(url))
    assert echoed == f"HTTP 403 signature {MASK} expired"
    assert "hf_abcdefgh" not in redact_text("Authorization: Bearer hf_abcdefgh")
