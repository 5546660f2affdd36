"""privacy.exclude globs decide which files may reach a model."""

from __future__ import annotations

import pytest

from lsp_server.config import DEFAULT_EXCLUDE
from lsp_server.privacy import allow_function


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        pytest.param("/ws/app.py", True, id="source"),
        pytest.param("/ws/.env", False, id="dotenv"),
        pytest.param("/ws/config/.env", False, id="nested-dotenv"),
        pytest.param("/ws/certs/server.pem", False, id="pem"),
        pytest.param("/ws/keys/id_rsa.pub", False, id="ssh-key"),
        pytest.param("file:///ws/.env", False, id="uri"),
        pytest.param("/elsewhere/.env", False, id="outside-root"),
    ],
)
def test_default_excludes(path: str, allowed: bool) -> None:
    assert allow_function(DEFAULT_EXCLUDE, "/ws")(path) is allowed


def test_root_relative_globs() -> None:
    allow = allow_function(["secrets/**"], "/ws")
    assert not allow("/ws/secrets/token.py")
    assert allow("/ws/src/secrets.py")
