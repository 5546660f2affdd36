"""Secret redaction: what is found, what is left alone, placeholders and their way back."""
# ruff: noqa: E501  (tables of literal secrets read best one to a line)

from __future__ import annotations

from collections import Counter

import pytest

from lsp_server.privacy import Redactor, foreign_placeholder, restore, summary
from lsp_server.privacy.paths import allow_function, never_sent

REDACTOR = Redactor()


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        pytest.param('password = "Vq8zK3pfR2mT9wXy"', "Vq8zK3pfR2mT9wXy", id="py-password"),
        pytest.param("password: Vq8zK3pfR2mT9wXy", "Vq8zK3pfR2mT9wXy", id="yaml-password"),
        pytest.param("db.password=Uposo#SBEdRo8YN7", "Uposo#SBEdRo8YN7", id="properties-hash"),
        pytest.param('"client_secret": "x8Q2vLm9Rt4Kp7Zw1Yb5Nc3Jh6Gf0Ds"', "x8Q2vLm9Rt4Kp7Zw1Yb5Nc3Jh6Gf0Ds", id="json"),
        pytest.param('const apiSecret = "Vq8zK3pfR2mT9wXyQ8vz"', "Vq8zK3pfR2mT9wXyQ8vz", id="go-const"),
        pytest.param('apiKey := "8f3a9c2e7b1d4f6a0c5e9b3d7f1a2c4e"', "8f3a9c2e7b1d4f6a0c5e9b3d7f1a2c4e", id="go-walrus"),
        pytest.param("export GITHUB_TOKEN=ghp_Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eUiO", "ghp_Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eUiO", id="shell-gh"),
        pytest.param("ENV DB_PASSWORD=KBCyi#7K8lJFIJj6", "KBCyi#7K8lJFIJj6", id="dockerfile-env"),
        pytest.param("ENV API_TOKEN Vq8zK3pfR2mT9wXy", "Vq8zK3pfR2mT9wXy", id="dockerfile-space"),
        pytest.param("postgres://app:Vq8zK3pfR2mT9wXy@db:5432/app", "Vq8zK3pfR2mT9wXy", id="url"),
        pytest.param("https://7f98cdf15b67479458057d5745790e61@sentry.example.com/1", "7f98cdf15b67479458057d5745790e61", id="dsn"),
        pytest.param("Server=db;User Id=sa;Password=Vq8zK3pfR2mT9wXy;", "Vq8zK3pfR2mT9wXy", id="conn-string"),
        pytest.param("jdbc:mysql://db/app?user=root&password=Vq8zK3pfR2mT9wXy", "Vq8zK3pfR2mT9wXy", id="jdbc"),
        pytest.param("<password>Vq8zK3pfR2mT9wXy</password>", "Vq8zK3pfR2mT9wXy", id="xml"),
        pytest.param("curl -u admin:Vq8zK3pf-R2mT9wXy https://ci", "admin:Vq8zK3pf-R2mT9wXy", id="curl-u"),
        pytest.param('-H "Authorization: Bearer abcDEF123ghiJKL456mnoPQR789"', "abcDEF123ghiJKL456mnoPQR789", id="bearer"),
        pytest.param("machine ci.example.com login bot password Vq8zK3pfR2mT9wXy", "Vq8zK3pfR2mT9wXy", id="netrc"),
        pytest.param('aws_access_key_id = "AKIAQ3EGTX7RZ5ZKYB2M"', "AKIAQ3EGTX7RZ5ZKYB2M", id="aws-id"),
        pytest.param('aws_secret_access_key = "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"', "q8Vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eU+iO/Zt", id="aws-secret"),
        pytest.param('client = Client("sk_live_51Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eUiO")', "sk_live_51Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eUiO", id="stripe-positional"),
        pytest.param('x = "xoxb-27182818281-3141592653589-Q8vz3kPfR2mT9wXy6bN4cJ7h"', "xoxb-27182818281-3141592653589-Q8vz3kPfR2mT9wXy6bN4cJ7h", id="slack-positional"),
    ],
)  # fmt: skip
def test_secrets_are_replaced_and_the_code_keeps_its_shape(line: str, secret: str) -> None:
    out = REDACTOR.redact(line)
    assert secret not in out.text
    assert "<redacted:" in out.text
    # Only the value goes: the name, quotes and punctuation stay.
    before, _, after = line.partition(secret)
    assert out.text.startswith(before) and out.text.endswith(after), out.text


@pytest.mark.parametrize(
    "line",
    [
        'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]',
        'DB_PASSWORD = os.getenv("DB_PASSWORD", "")',
        'PASSWORD_ENV = "DB_PASSWORD"',
        'TOKEN_TYPE = "Bearer"',
        'tokenHeader: "X-Auth-Token",',
        "def check_password(password: str, stored_hash: str) -> bool:",
        "    password: Optional[str] = None",
        "    if token == expected_token:",
        '    key = f"user:{user_id}"',
        "password: ${DB_PASSWORD}",
        'token: "{{ .Values.apiToken }}"',
        "GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
        "password = var.db_password",
        'secret_key = data.vault_generic_secret.db.data["key"]',
        'TOKEN_URL = "https://auth.example.com/oauth/token"',
        'SECRET_NAME = "prod/orders/db-password"',
        'BUNDLE_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
        'REQUEST_ID = "123e4567-e89b-12d3-a456-426614174000"',
        'PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x@y"',
        "Set-Cookie: chips=ahoy",
        "postgres://app:password@localhost/app",
        "url = 'http://user@example.com/'",
    ],
)
def test_ordinary_code_is_left_alone(line: str) -> None:
    assert REDACTOR.redact(line).text == line


def test_private_key_blocks_whole_cut_and_escaped() -> None:
    body = "MIIEpAIBAAKCAQEA1Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5gA0eUiOQ8vz3kPfR2mT9w"
    whole = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n-----END RSA PRIVATE KEY-----"
    cut_end = f"x = 1\n-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n{body[:40]}"
    cut_start = f"{body}\n{body}\n-----END PRIVATE KEY-----\ny = 2"
    escaped = (
        f'"private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"'
    )
    for text in (whole, cut_end, cut_start, escaped):
        out = REDACTOR.redact(text).text
        assert body[:12] not in out, out
        assert "<redacted:" in out


def test_kubernetes_secret_data_is_redacted_whatever_the_key() -> None:
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n"
        "  admin.pass: VnE4eksza3BmUjJtVDl3WHk=\n  tls.crt: Q2VydGlmaWNhdGU=\n"
        "stringData:\n  plain: not-base64-but-secret\n"
    )
    out = REDACTOR.redact(manifest).text
    for value in ("VnE4eksza3BmUjJtVDl3WHk=", "Q2VydGlmaWNhdGU=", "not-base64-but-secret"):
        assert value not in out
    assert "name: s" in out
    config_map = manifest.replace("kind: Secret", "kind: ConfigMap")
    assert "Q2VydGlmaWNhdGU=" in REDACTOR.redact(config_map).text


def test_one_value_one_placeholder_and_the_way_back() -> None:
    key = "ghp_Z" + "q" * 5 + "Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5g"
    other = "ghp_Y" + "r" * 5 + "Q8vz3kPfR2mT9wXy6bN4cJ7hL1sD5g"
    text = f'a = "{key}"\nb = "{key}"\nc = "{other}"\n'
    out = REDACTOR.redact(text)
    first, second = out.placeholders[0], out.placeholders[2]
    assert out.placeholders[1] == first and second != first
    assert REDACTOR.redact(f'z = "{key}"').placeholders == (first,), "stable across prompts"
    assert Counter(out.kinds) == {"github-pat": 3}
    # What a model writes with placeholders gets the values back...
    assert restore(f"token = {first}", document=text) == f"token = {key}"
    # ...except placeholders the user's own text has, and unknown ones.
    assert restore(f"x = {first}", document=f"see {first}") == f"x = {first}"
    assert restore("x = <redacted:nothing-99>") == "x = <redacted:nothing-99>"
    assert foreign_placeholder("x = <redacted:nothing-99>", "doc")
    assert not foreign_placeholder("x = <redacted:nothing-99>", "<redacted:nothing-99>")


def test_redaction_is_idempotent_and_placeholders_never_collide_with_the_text() -> None:
    text = 'password = "Vq8zK3pfR2mT9wXy9"  # not "<redacted:password>"'
    once = REDACTOR.redact(text)
    assert once.placeholders and once.placeholders[0] != "<redacted:password>"
    assert REDACTOR.redact(once.text).text == once.text
    assert Redactor().redact(once.text).text == once.text, "another redactor agrees"


def test_offsets_map_through_replacements() -> None:
    text = 'key = "AKIAQ3EGTX7RZ5ZKYB2M"; x = 1'
    out = REDACTOR.redact(text)
    start = text.index("AKIA")
    assert out.covers(start + 3) and not out.covers(start)
    after = text.index("x = 1")
    assert out.text[out.offset(after) :] == "x = 1"
    assert out.offset(3) == 3


def test_settings_turn_it_off_add_patterns_and_allow_values() -> None:
    off = Redactor(enabled=False)
    assert off.redact('password = "Vq8zK3pfR2mT9wXy"').text == 'password = "Vq8zK3pfR2mT9wXy"'
    extra = Redactor(patterns={"internal-token": r"itk_[A-Za-z0-9]{12}"})
    assert "itk_" not in extra.redact("t = itk_ABCDEFabcdef12").text
    assert "<redacted:internal-token>" in extra.redact("t = itk_ABCDEFabcdef12").text
    allowing = Redactor(allow=[r"AKIA[A-Z0-9]*EXAMPLE"])
    example = 'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"'
    assert allowing.redact(example).text == example


def test_summary_counts_kinds_never_values() -> None:
    assert summary(Counter()) == "no secrets"
    assert summary(Counter({"password": 2, "github-pat": 1})) == (
        "3 secrets (github-pat, password x2)"
    )


def test_credentials_files_are_never_sent_whatever_privacy_exclude_says() -> None:
    allow = allow_function([], "/ws")  # a user who emptied privacy.exclude
    never = ["/ws/.env", "/ws/.env.production", "/ws/deploy/key.pem", "/ws/.ssh/id_ed25519"]
    never += ["/ws/.npmrc", "/ws/.aws/credentials", "/ws/certs/site.key", "/ws/x/.netrc"]
    for path in never:
        assert not allow(path), path
        assert never_sent(path), path
    assert allow("/ws/src/app.py") and allow("/ws/environment.py")
    assert not allow_function(["secrets/**"], "/ws")("/ws/secrets/a.py")
