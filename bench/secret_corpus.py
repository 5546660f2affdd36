"""Seeded corpora for secret redaction: files with planted fake secrets, and clean files.

`planted_corpus(seed)` writes the kinds of files secrets live in (Python and JS/TS modules,
Java properties and classes, Go, YAML app config, Kubernetes Secrets, GitHub Actions and
GitLab CI files, JSON service-account keys and app settings, TOML, INI, shell scripts,
Terraform, Dockerfiles, docker-compose files, Maven XML, `.env`) with fake secrets of 35
kinds in the shapes real ones have, each file knowing the values planted in it.
`clean_corpus(seed)` writes files of the same shapes without a secret: hashes, UUIDs, base64
test data, environment and template references, public keys, type annotations; and
`ordinary_code()` adds modules of the running interpreter's standard library (real code that
talks about passwords and tokens: `netrc`, `smtplib`, `secrets`, ...).

Used by the redaction tests (`tests/unit/test_redaction_corpus.py`) and the benchmark
(`bench/redaction.py`). Every value is random: none is a real credential.
"""

from __future__ import annotations

import base64
import random
import string
import sysconfig
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

UP, LOW, DIG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LOW + DIG
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
B32 = UP + "234567"


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64(rng: random.Random, n_bytes: int) -> str:
    return base64.b64encode(rng.randbytes(n_bytes)).decode()


def _jwt(rng: random.Random) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = part(b'{"alg":"HS256","typ":"JWT"}')
    body = part(f'{{"sub":"{rng.randrange(10**9)}","name":"{_s(rng, LOW, 8)}"}}'.encode())
    return f"{header}.{body}.{_s(rng, B64URL, 43)}"


def _pem_body(rng: random.Random, lines: int = 8) -> list[str]:
    raw = _b64(rng, 48 * lines)
    return [raw[i : i + 64] for i in range(0, len(raw), 64)]


def _password(rng: random.Random) -> str:
    core = _s(rng, ALNUM, 14)
    return core[:5] + rng.choice("!#%*+-") + core[5:] + rng.choice(DIG)


KINDS: dict[str, Callable[[random.Random], str]] = {
    "aws-access-key-id": lambda r: "AKIA" + _s(r, B32, 16),
    "aws-secret-access-key": lambda r: _s(r, B64, 40),
    "github-pat": lambda r: "ghp_" + _s(r, ALNUM, 36),
    "github-oauth": lambda r: "gho_" + _s(r, ALNUM, 36),
    "gitlab-pat": lambda r: "glpat-" + _s(r, ALNUM, 20),
    "slack-bot-token": lambda r: f"xoxb-{_s(r, DIG, 11)}-{_s(r, DIG, 13)}-{_s(r, ALNUM, 24)}",
    "slack-webhook": lambda r: f"T{_s(r, UP + DIG, 8)}/B{_s(r, UP + DIG, 8)}/{_s(r, ALNUM, 24)}",
    "stripe-secret-key": lambda r: "sk_live_" + _s(r, ALNUM, 32),
    "stripe-restricted-key": lambda r: "rk_live_" + _s(r, ALNUM, 32),
    "google-api-key": lambda r: "AIza" + _s(r, ALNUM + "-_", 35),
    "sendgrid-key": lambda r: f"SG.{_s(r, B64URL, 22)}.{_s(r, B64URL, 43)}",
    "twilio-key": lambda r: "SK" + _s(r, HEX, 32),
    "npm-token": lambda r: "npm_" + _s(r, ALNUM, 36),
    "pypi-token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _s(r, B64URL, 64),
    "shopify-token": lambda r: "shpat_" + _s(r, HEX, 32),
    "digitalocean-token": lambda r: "dop_v1_" + _s(r, HEX, 64),
    "square-token": lambda r: "sq0atp-" + _s(r, B64URL, 22),
    "openai-key": lambda r: f"sk-{_s(r, ALNUM, 20)}T3BlbkFJ{_s(r, ALNUM, 20)}",
    "huggingface-token": lambda r: "hf_" + _s(r, UP + LOW, 34),
    "anthropic-key": lambda r: "sk-ant-api03-" + _s(r, B64URL, 93) + "AA",
    "vault-token": lambda r: "hvs." + _s(r, ALNUM, 24),
    "mailgun-key": lambda r: "key-" + _s(r, HEX, 32),
    "datadog-key": lambda r: _s(r, HEX, 32),
    "jwt": _jwt,
    "password": _password,
    "db-url-password": lambda r: _s(r, ALNUM, 18),
    "api-key-hex": lambda r: _s(r, HEX, 32),
    "client-secret": lambda r: _s(r, B64URL, 40),
    "django-secret-key": lambda r: _s(r, LOW + DIG + "!@#$%^&*(-_=+)", 50),
    "azure-storage-key": lambda r: _b64(r, 64),
    "bearer-token": lambda r: _s(r, B64URL, 40),
    "basic-auth": lambda r: base64.b64encode(f"deploy:{_password(r)}".encode()).decode(),
    "kubernetes-secret": lambda r: base64.b64encode(_password(r).encode()).decode(),
    "private-key": lambda r: "\n".join(_pem_body(r)),
    "openssh-key": lambda r: "\n".join(_pem_body(r, 6)),
}


@dataclass
class CorpusFile:
    """One file of a corpus: its path in the workspace, text, language and planted values."""

    path: str
    text: str
    language_id: str
    planted: list[tuple[str, str]] = field(default_factory=list)
    """(kind, value) of every fake secret in the file."""


class _Planter:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.planted: list[tuple[str, str]] = []

    def __call__(self, kind: str) -> str:
        value = KINDS[kind](self.rng)
        self.planted.append((kind, value))
        return value


def _py_settings(p: _Planter) -> str:
    return f'''"""Settings for the {p.rng.choice(["orders", "billing", "catalog"])} service."""
import os

DEBUG = False
SECRET_KEY = "{p("django-secret-key")}"
ALLOWED_HOSTS = ["api.example.com"]
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "app",
        "USER": "app",
        "PASSWORD": "{p("password")}",
        "HOST": "db.internal",
    }}
}}
DATABASE_URL = "postgres://app:{p("db-url-password")}@db.internal:5432/app"
AWS_ACCESS_KEY_ID = "{p("aws-access-key-id")}"
AWS_SECRET_ACCESS_KEY = "{p("aws-secret-access-key")}"
STRIPE_API_KEY = "{p("stripe-secret-key")}"
SENDGRID_API_KEY = "{p("sendgrid-key")}"
SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/{p("slack-webhook")}"
CACHE_TTL = 300
'''


def _py_service(p: _Planter) -> str:
    return f'''"""Payments and notifications."""
import stripe
from twilio.rest import Client

from config.settings import STRIPE_API_KEY, SENDGRID_API_KEY


def charge(amount_cents: int, customer: str) -> str:
    stripe.api_key = STRIPE_API_KEY
    intent = stripe.PaymentIntent.create(amount=amount_cents, customer=customer)
    return intent.id


def refund(payment: str) -> None:
    restricted = "{p("stripe-restricted-key")}"
    stripe.Refund.create(payment_intent=payment, api_key=restricted)


def notify(phone: str, text: str) -> None:
    client = Client("{p("twilio-key")}", account_sid="AC0001")
    client.messages.create(to=phone, body=text)


def connect_db():
    password = "{p("password")}"
    return psycopg2.connect(host="db.internal", user="app", password=password)


def github():
    token = "{p("github-pat")}"
    return Github(token)


def send_mail(to: str) -> None:
    headers = {{"Authorization": "Bearer {p("bearer-token")}"}}
    requests.post("https://api.example.com/mail", headers=headers, json={{"to": to}})


def openai_client():
    return OpenAI(api_key="{p("openai-key")}")
'''


def _py_fixture(p: _Planter) -> str:
    body = p("private-key")
    return f'''"""Keys for the signing tests."""

SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----
{body}
-----END RSA PRIVATE KEY-----"""
HF_TOKEN = "{p("huggingface-token")}"
ANTHROPIC_API_KEY = "{p("anthropic-key")}"


def session_token():
    return "{p("jwt")}"
'''


def _js_config(p: _Planter) -> str:
    return f"""// Runtime configuration.
module.exports = {{
  port: 8080,
  apiKey: "{p("api-key-hex")}",
  github: {{ token: "{p("github-oauth")}" }},
  googleMapsKey: "{p("google-api-key")}",
  mailgun: {{ apiKey: "{p("mailgun-key")}", domain: "mg.example.com" }},
  session: {{ secret: "{p("client-secret")}" }},
}};
"""


def _ts_client(p: _Planter) -> str:
    return f"""import {{ Octokit }} from "@octokit/rest";

const GITLAB_TOKEN = "{p("gitlab-pat")}";
const SLACK_BOT_TOKEN = "{p("slack-bot-token")}";

export async function fetchIssues(repo: string): Promise<unknown[]> {{
  const response = await fetch(`https://gitlab.example.com/api/v4/projects/${{repo}}/issues`, {{
    headers: {{ "PRIVATE-TOKEN": GITLAB_TOKEN, Authorization: "Bearer {p("bearer-token")}" }},
  }});
  return response.json();
}}

export function slack(): string {{
  return SLACK_BOT_TOKEN;
}}

export const datadog = {{ apiKey: "{p("datadog-key")}", site: "example.com" }};
"""


def _java_properties(p: _Planter) -> str:
    return f"""spring.application.name=orders
spring.datasource.url=jdbc:postgresql://db.internal:5432/orders
spring.datasource.username=orders
spring.datasource.password={p("password")}
spring.mail.password={p("password")}
app.jwt.secret={p("client-secret")}
app.shopify.access-token={p("shopify-token")}
server.port=8080
"""


def _java_class(p: _Planter) -> str:
    return f"""package com.example.orders;

public final class Credentials {{
    private static final String DB_PASSWORD = "{p("password")}";
    private static final String API_TOKEN = "{p("digitalocean-token")}";

    public static String dbPassword() {{
        return DB_PASSWORD;
    }}

    public static String vault() {{
        String vaultToken = "{p("vault-token")}";
        return vaultToken;
    }}
}}
"""


def _go(p: _Planter) -> str:
    return f"""package config

const apiSecret = "{p("client-secret")}"

var dsn = "postgres://svc:{p("db-url-password")}@db.internal:5432/svc?sslmode=disable"

type Config struct {{
	Token    string
	Password string
}}

func Load() Config {{
	return Config{{
		Token:    "{p("github-pat")}",
		Password: "{p("password")}",
	}}
}}

func Square() string {{
	squareToken := "{p("square-token")}"
	return squareToken
}}
"""


def _yaml_app(p: _Planter) -> str:
    return f"""server:
  port: 8080
spring:
  datasource:
    url: jdbc:mysql://db.internal:3306/app?user=app&password={p("db-url-password")}
    password: {p("password")}
redis:
  url: redis://:{p("db-url-password")}@cache.internal:6379/0
api:
  key: {p("api-key-hex")}
  client_secret: "{p("client-secret")}"
deploy:
  ssh_key: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    {p("openssh-key").replace(chr(10), chr(10) + "    ")}
    -----END OPENSSH PRIVATE KEY-----
"""


def _k8s_secret(p: _Planter) -> str:
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: app-secrets
  namespace: prod
type: Opaque
data:
  db-password: {p("kubernetes-secret")}
  admin.pass: {p("kubernetes-secret")}
stringData:
  STRIPE_KEY: {p("stripe-secret-key")}
  connection: "Server=sql.internal;Database=app;User Id=sa;Password={p("password")};"
"""


def _github_workflow(p: _Planter) -> str:
    return f"""name: release
on:
  push:
    tags: ["v*"]
jobs:
  publish:
    runs-on: ubuntu-latest
    env:
      NPM_TOKEN: {p("npm-token")}
      GH_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
    steps:
      - uses: actions/checkout@v4
      - run: curl -H "Authorization: Bearer {p("bearer-token")}" https://api.example.com/release
      - run: twine upload dist/* -u __token__ -p {p("pypi-token")}
"""


def _gitlab_ci(p: _Planter) -> str:
    return f"""variables:
  DOCKER_PASSWORD: "{p("password")}"
  SENTRY_AUTH_TOKEN: "{p("api-key-hex")}"
deploy:
  stage: deploy
  script:
    - curl -u deploy:{p("password")} https://artifacts.example.com/upload
    - curl -H "Authorization: Basic {p("basic-auth")}" https://hooks.example.com/deploy
"""


def _service_account(p: _Planter) -> str:
    body = "\\n".join(_pem_body(p.rng))
    p.planted.append(("private-key", body.replace("\\n", "\n")))
    return f"""{{
  "type": "service_account",
  "project_id": "orders-prod",
  "private_key_id": "{_s(p.rng, HEX, 40)}",
  "private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n",
  "client_email": "deployer@orders-prod.iam.example.com",
  "client_id": "{p.rng.randrange(10**20, 10**21)}"
}}
"""


def _appsettings(p: _Planter) -> str:
    storage = (
        "DefaultEndpointsProtocol=https;AccountName=ordersprod;"
        f"AccountKey={p('azure-storage-key')};EndpointSuffix=core.windows.net"
    )
    return f"""{{
  "ConnectionStrings": {{
    "Default": "Server=sql.internal;Database=app;User Id=sa;Password={p("password")};",
    "Storage": "{storage}"
  }},
  "Auth": {{ "ClientSecret": "{p("client-secret")}", "Audience": "orders" }},
  "Logging": {{ "LogLevel": {{ "Default": "Information" }} }}
}}
"""


def _toml(p: _Planter) -> str:
    return f"""[database]
host = "db.internal"
password = "{p("password")}"

[api]
token = "{p("huggingface-token")}"
timeout = 30
"""


def _ini(p: _Planter) -> str:
    return f"""[db]
host = db.internal
user = app
password = {p("password")}

[smtp]
smtp_password = {p("password")}
api_token = {p("api-key-hex")}
"""


def _shell(p: _Planter) -> str:
    return f"""#!/bin/sh
set -eu
export GITHUB_TOKEN={p("github-pat")}
export AWS_SECRET_ACCESS_KEY={p("aws-secret-access-key")}
curl -u admin:{p("password")} https://jenkins.example.com/job/build
curl -H "Authorization: token {p("github-oauth")}" https://api.example.com/user
"""


def _terraform(p: _Planter) -> str:
    return f"""provider "aws" {{
  region     = "eu-west-1"
  access_key = "{p("aws-access-key-id")}"
  secret_key = "{p("aws-secret-access-key")}"
}}

resource "aws_db_instance" "main" {{
  engine   = "postgres"
  username = "app"
  password = "{p("password")}"
}}
"""


def _dockerfile(p: _Planter) -> str:
    return f"""FROM python:3.11-slim
ENV DB_PASSWORD={p("password")}
ARG NPM_TOKEN={p("npm-token")}
ENV SENTRY_DSN https://{p("api-key-hex")}@sentry.example.com/12
RUN pip install -r requirements.txt
"""


def _compose(p: _Planter) -> str:
    return f"""services:
  db:
    image: postgres:16
    environment:
      - POSTGRES_PASSWORD={p("password")}
  app:
    build: .
    environment:
      MAILGUN_API_KEY: {p("mailgun-key")}
      DATABASE_URL: postgres://app:{p("db-url-password")}@db:5432/app
"""


def _maven(p: _Planter) -> str:
    return f"""<settings>
  <servers>
    <server>
      <id>releases</id>
      <username>deployer</username>
      <password>{p("password")}</password>
    </server>
  </servers>
  <properties>
    <sonar.token>{p("api-key-hex")}</sonar.token>
  </properties>
</settings>
"""


def _dotenv(p: _Planter) -> str:
    return f"""DATABASE_URL=postgres://app:{p("db-url-password")}@localhost:5432/app
STRIPE_SECRET_KEY={p("stripe-secret-key")}
OPENAI_API_KEY={p("openai-key")}
GITHUB_TOKEN={p("github-pat")}
"""


PLANTED_FILES: list[tuple[str, str, Callable[[_Planter], str]]] = [
    ("config/settings.py", "python", _py_settings),
    ("services/payments.py", "python", _py_service),
    ("tests/fixtures/keys.py", "python", _py_fixture),
    ("web/config.js", "javascript", _js_config),
    ("web/client.ts", "typescript", _ts_client),
    ("src/main/resources/application.properties", "properties", _java_properties),
    ("src/main/java/com/example/orders/Credentials.java", "java", _java_class),
    ("internal/config/config.go", "go", _go),
    ("config/application.yml", "yaml", _yaml_app),
    ("deploy/k8s/secret.yaml", "yaml", _k8s_secret),
    (".github/workflows/release.yml", "yaml", _github_workflow),
    (".gitlab-ci.yml", "yaml", _gitlab_ci),
    ("deploy/service-account.json", "json", _service_account),
    ("src/Orders/appsettings.json", "json", _appsettings),
    ("config/app.toml", "toml", _toml),
    ("config/app.ini", "ini", _ini),
    ("scripts/release.sh", "shellscript", _shell),
    ("infra/main.tf", "terraform", _terraform),
    ("Dockerfile", "dockerfile", _dockerfile),
    ("docker-compose.yml", "yaml", _compose),
    ("ci/settings.xml", "xml", _maven),
    (".env", "dotenv", _dotenv),
]


def planted_corpus(seed: int = 0, copies: int = 3) -> list[CorpusFile]:
    """Every planted file type, `copies` times (`<dir>/copy<n>/...` beyond the first), each
    with its own random secrets."""
    rng = random.Random(seed)
    files = []
    for n in range(copies):
        for path, language, make in PLANTED_FILES:
            planter = _Planter(rng)
            text = make(planter)
            where = path if n == 0 else f"copy{n}/{path}"
            files.append(CorpusFile(where, text, language, planter.planted))
    return files


# --- clean files ---------------------------------------------------------------------------


def _sha256(rng: random.Random) -> str:
    return _s(rng, HEX, 64)


def _clean_py(rng: random.Random) -> str:
    return f'''"""Settings read from the environment; nothing secret is in this file."""
import hashlib
import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DB_PASSWORD = os.getenv("DB_PASSWORD", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://localhost/app")
PASSWORD_ENV = "DB_PASSWORD"
TOKEN_TYPE = "Bearer"
AUTH_HEADER = "Authorization"
PASSWORD_MIN_LENGTH = 12
TOKEN_EXPIRY_SECONDS = 3600
SIGNING_ALGORITHM = "RS256"
CACHE_KEY_PREFIX = "orders"
COOKIE_NAME = "sessionid"
TOKEN_URL = "https://auth.example.com/oauth/token"
SECRET_NAME = "prod/orders/db-password"
BUNDLE_SHA256 = "{_sha256(rng)}"
REQUEST_ID = "{uuid.UUID(int=rng.getrandbits(128))}"
TEST_PAYLOAD = "{_b64(rng, 45)}"
PUBLIC_KEY = "ssh-ed25519 {_b64(rng, 51)} deploy@example.com"


def check_password(password: str, stored_hash: str) -> bool:
    digest = hashlib.sha256(password.encode()).hexdigest()
    return digest == stored_hash


def cache_key(user_id: int) -> str:
    key = f"user:{{user_id}}"
    return key


def login(username: str, password: str = "", token: str | None = None) -> dict[str, str]:
    if token == "":
        raise ValueError("token must not be empty")
    api_key = os.environ["API_KEY"]
    headers = {{"Authorization": f"Bearer {{token}}", "X-Api-Key": api_key}}
    return headers
'''


def _clean_js(rng: random.Random) -> str:
    return f"""// Configuration from the environment.
module.exports = {{
  apiKey: process.env.API_KEY,
  token: getToken(),
  password: process.env.DB_PASSWORD || "",
  integrity: "sha384-{_b64(rng, 48)}",
  requestId: "{uuid.UUID(int=rng.getrandbits(128))}",
  passwordField: "password",
  tokenHeader: "X-Auth-Token",
}};

function authHeaders(token) {{
  return {{ Authorization: `Bearer ${{token}}` }};
}}
"""


def _clean_yaml(rng: random.Random) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  checksum: {_sha256(rng)}
  password_env: DB_PASSWORD
spring:
  datasource:
    password: ${{DB_PASSWORD}}
    url: jdbc:postgresql://db.internal:5432/app
api:
  token: "{{{{ .Values.apiToken }}}}"
  key_id: {uuid.UUID(int=rng.getrandbits(128))}
jobs:
  build:
    env:
      GH_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
    steps:
      - run: docker login -u ci -p $REGISTRY_PASSWORD
"""


def _clean_properties(rng: random.Random) -> str:
    return f"""spring.datasource.password=${{DB_PASSWORD}}
app.jwt.secret=${{JWT_SECRET}}
app.build.sha={_s(rng, HEX, 40)}
app.token.ttl=3600
server.port=8080
"""


def _clean_tf(rng: random.Random) -> str:
    return f"""resource "aws_db_instance" "main" {{
  engine     = "postgres"
  password   = var.db_password
  secret_key = data.vault_generic_secret.db.data["key"]
  tags       = {{ build = "{_s(rng, HEX, 12)}" }}
}}
"""


def _clean_go(rng: random.Random) -> str:
    return f"""package auth

import "os"

const tokenHeader = "Authorization"
const buildID = "{uuid.UUID(int=rng.getrandbits(128))}"

func Password() string {{
	password := os.Getenv("DB_PASSWORD")
	return password
}}
"""


CLEAN_FILES: list[tuple[str, str, Callable[[random.Random], str]]] = [
    ("clean/settings.py", "python", _clean_py),
    ("clean/config.js", "javascript", _clean_js),
    ("clean/config.yaml", "yaml", _clean_yaml),
    ("clean/application.properties", "properties", _clean_properties),
    ("clean/main.tf", "terraform", _clean_tf),
    ("clean/auth.go", "go", _clean_go),
]

ORDINARY_MODULES = (
    "netrc.py",
    "smtplib.py",
    "secrets.py",
    "getpass.py",
    "hmac.py",
    "base64.py",
    "textwrap.py",
    "shlex.py",
    "json/encoder.py",
    "json/decoder.py",
    "http/cookies.py",
    "configparser.py",
    "urllib/parse.py",
    "ftplib.py",
    "imaplib.py",
    "poplib.py",
    "http/client.py",
    "logging/handlers.py",
    "xmlrpc/client.py",
)


def clean_corpus(seed: int = 0, copies: int = 8) -> list[CorpusFile]:
    """Files of the planted corpus's shapes with no secret in them."""
    rng = random.Random(seed + 1)
    return [
        CorpusFile(path if n == 0 else f"copy{n}/{path}", make(rng), language)
        for n in range(copies)
        for path, language, make in CLEAN_FILES
    ]


def ordinary_code() -> list[CorpusFile]:
    """Modules of the running interpreter's standard library (real code, no secrets)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [
        CorpusFile(f"stdlib/{name}", (stdlib / name).read_text(encoding="utf-8"), "python")
        for name in ORDINARY_MODULES
        if (stdlib / name).is_file()
    ]


def write(files: list[CorpusFile], root: Path) -> None:
    """Write `files` under `root`."""
    for f in files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text, encoding="utf-8")


def pieces(value: str, size: int = 8) -> set[str]:
    """Every `size`-character piece of `value` (the value itself when shorter)."""
    if len(value) <= size:
        return {value}
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def leaks(text: str, planted: list[tuple[str, str]], size: int = 8) -> list[tuple[str, str]]:
    """The (kind, piece) of planted values that `text` still shows (any `size`-piece)."""
    found = []
    for kind, value in planted:
        for line in value.split("\n"):  # a PEM body is checked line by line
            for piece in pieces(line.strip(), size):
                if piece and piece in text:
                    found.append((kind, piece))
                    break
    return found
