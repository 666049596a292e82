"""Token lookup order and redaction, without Ray."""
from __future__ import annotations

import pytest

from orchestrator import ray_auth
from pipeline.config import ConfigError


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.ray/auth_token under tmp_path
    assert ray_auth.load_token(env={}) is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-default\n")
    assert ray_auth.load_token(env={}) == "from-default"
    path_file = tmp_path / "tok"
    path_file.write_text("from-path")
    env = {"RAY_AUTH_TOKEN_PATH": str(path_file)}
    assert ray_auth.load_token(env=env) == "from-path"
    env["RAY_AUTH_TOKEN"] = " from-env "
    assert ray_auth.load_token(env=env) == "from-env"
    explicit = tmp_path / "explicit"
    explicit.write_text("from-flag")
    assert ray_auth.load_token(str(explicit), env=env) == "from-flag"


def test_missing_or_empty_token_file_is_a_user_error(tmp_path):
    with pytest.raises(ConfigError, match="--token-file.*does not exist"):
        ray_auth.load_token(str(tmp_path / "nope"), env={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="RAY_AUTH_TOKEN_PATH.*is empty"):
        ray_auth.load_token(env={"RAY_AUTH_TOKEN_PATH": str(tmp_path / "empty")})


def test_headers_and_redaction():
    assert ray_auth.auth_headers(None) == {}
    assert ray_auth.auth_headers("abc") == {"Authorization": "Bearer abc"}
    assert ray_auth.redact("x abc y abc", "abc") == "x <redacted> y <redacted>"
    assert ray_auth.redact("x abc", None) == "x abc"
