"""Ray token authentication for clients: where the token comes from, and keeping it out of output.

Ray 2.60 with RAY_AUTH_MODE=token refuses HTTP calls (jobs, dashboard) without
`Authorization: Bearer <token>`. spotfit reads the token from the same places Ray does and sends
the header itself, so it works whatever this process's own Ray settings are. The token is never
printed, logged, put in a runtime_env, or written under runs/.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pipeline.config import ConfigError

DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")
"""Where `ray get-auth-token --generate` writes, and where cluster.yaml mounts it on every node."""


def load_token(token_file: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The token, first found of: --token-file, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token.

    None when there is none (a cluster without token auth needs none). An explicit file that
    does not exist is a user error.
    """
    if token_file:
        return _read(Path(token_file).expanduser(), "--token-file")
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return env["RAY_AUTH_TOKEN"].strip()
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return _read(Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser(), "RAY_AUTH_TOKEN_PATH")
    default = DEFAULT_TOKEN_PATH.expanduser()
    return _read(default, str(DEFAULT_TOKEN_PATH)) if default.is_file() else None


def _read(path: Path, where: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{where}: token file {path} does not exist (create one with `ray get-auth-token --generate`)")
    token = path.read_text().strip()
    if not token:
        raise ConfigError(f"{where}: token file {path} is empty")
    return token


def auth_headers(token: str | None) -> dict[str, str]:
    """HTTP headers for Ray's job server and dashboard; empty without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def redact(text: str, token: str | None) -> str:
    """`text` with every occurrence of the token replaced, for anything that gets printed."""
    return text.replace(token, "<redacted>") if token else text
