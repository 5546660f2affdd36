"""The maintained rule catalog: `kingfisher-secret-scanner` (hundreds of provider token shapes,
matched by Vectorscan in Rust, about 0.15 ms for a prompt's 6 KB).

Its rules are compiled once per process in a background thread (cached on disk under the model
cache, so later starts take a fraction of a second); a scan waits for them rather than let a
prompt through unscanned.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from engine.profiles import cache_root
from lsp_server.privacy.rules import Span

log = logging.getLogger(__name__)

_lock = threading.Lock()
_ready = threading.Event()
_scanner: Any = None
_error: str | None = None
_version: str | None = None
_rule_count = 0


def _load() -> None:
    global _scanner, _error, _version, _rule_count
    try:
        import kingfisher_sdk

        directory = cache_root() / "kingfisher"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            rules = kingfisher_sdk.Rules(confidence="low", cache_dir=str(directory))
        except OSError as exc:  # read-only or full: compile every start instead
            log.warning("secret catalog cache off: %s", exc)
            rules = kingfisher_sdk.Rules(confidence="low", cache=False)
        _scanner = kingfisher_sdk.Scanner(rules, base64=False, dedup=False, redact=False)
        _version = kingfisher_sdk.__version__
        _rule_count = len(rules)
        for sample in _warm_up_samples():
            _scanner.scan(sample.encode())
    except Exception as exc:  # not installed for this platform, or the cache is unusable
        _error = f"{type(exc).__name__}: {exc}"
        log.warning("secret catalog unavailable, using coder-lsp's own rules only: %s", _error)
    finally:
        _ready.set()


_SHAPES = (
    'aws_access_key_id = "AKIA{B32:16}"\naws_secret_access_key = "{B64:40}"',
    "app.jwt.secret={AN:40}",
    'token = "ghp_{AN:36}" oauth = "gho_{AN:36}" gitlab = "glpat-{AN:20}"',
    'slack = "xoxb-{D:11}-{D:13}-{AN:24}" hook = "https://hooks.slack.com/services/T{AN:8}/B{AN:8}/{AN:24}"',
    'stripe = "sk_live_{AN:32}" restricted = "rk_live_{AN:32}" google = "AIza{AN:35}"',
    'sendgrid = "SG.{AN:22}.{AN:43}" twilio = "SK{H:32}" npm = "npm_{AN:36}"',
    'shopify = "shpat_{H:32}" do = "dop_v1_{H:64}" square = "sq0atp-{AN:22}" vault = "hvs.{AN:24}"',
    'openai = "sk-{AN:20}T3BlbkFJ{AN:20}" hf = "hf_{AN:34}" mailgun = "key-{H:32}"',
    'anthropic = "sk-ant-api03-{AN:93}AA" pypi = "pypi-AgEIcHlwaS5vcmc{AN:64}"',
    'jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{AN:20}.{AN:43}"',
    'DATABASE_URL = "postgres://app:{AN:18}@db:5432/app" mongo = "mongodb+srv://u:{AN:12}@c.example.net/x"',
    'storage = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={B64:86}==;"',
    "-----BEGIN RSA PRIVATE KEY-----\n{B64:64}\n{B64:64}\n-----END RSA PRIVATE KEY-----",
)
_ALPHABETS = {
    "B32": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "B64": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "AN": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "D": "0123456789",
    "H": "0123456789abcdef",
}


def _warm_up_samples(rounds: int = 3) -> list[str]:
    """Random strings in the shapes the catalog's rules confirm: scanning them once at load
    builds the regex engine's lazy state (the first scan of an unseen shape can otherwise
    take tens of milliseconds, on a user's keystroke)."""
    rng = random.Random(0)

    def fill(m: re.Match[str]) -> str:
        alphabet, n = _ALPHABETS[m.group(1)], int(m.group(2))
        return "".join(rng.choice(alphabet) for _ in range(n))

    return [re.sub(r"\{(\w+):(\d+)\}", fill, shape) for _ in range(rounds) for shape in _SHAPES]


def preload() -> None:
    """Start compiling the catalog in the background (idempotent)."""
    with _lock:
        if getattr(preload, "started", False):
            return
        preload.started = True  # type: ignore[attr-defined]
    threading.Thread(target=_load, name="secret-catalog", daemon=True).start()


def describe() -> str:
    """One line for `doctor`: which catalog, how many rules, or why none."""
    preload()
    _ready.wait()
    if _scanner is None:
        return f"own rules only (kingfisher-secret-scanner unavailable: {_error})"
    return f"kingfisher-secret-scanner {_version} ({_rule_count} rules)"


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_SECRET_CHARS = _TOKEN_CHARS | {"="}  # padding ends a token; it never starts one


_MAX_MULTILINE = 200

_KIND_NAMES = {
    "generic-credential-uri": "password",
    "aws-access-token": "aws-access-key-id",
    "npmjsaccesstoken": "npm-token",
    "digitaloceanapikey": "digitalocean-token",
}


def _kind(rule_id: str) -> str:
    name = rule_id.rsplit(".", 1)[-1].rsplit("/", 1)[-1].lower()
    name = "".join(c if c.isalnum() else "-" for c in name).strip("-") or "secret"
    return _KIND_NAMES.get(name, name)


_CACHE_MAX = 4096
_cache: OrderedDict[str, tuple[Span, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def scan(text: str) -> tuple[Span, ...]:
    """The catalog's findings in `text`, as character spans widened to the whole token (a
    rule that matches a token's first 40 characters must not leave the rest behind);
    remembered per text (the redactor hands over a prompt a chunk at a time)."""
    preload()
    _ready.wait()
    if _scanner is None or not text:
        return ()
    return _paragraph(text)


def _paragraph(text: str) -> tuple[Span, ...]:
    with _cache_lock:
        found = _cache.get(text)
        if found is not None:
            _cache.move_to_end(text)
            return found
    found = tuple(_scan(text))
    with _cache_lock:
        _cache[text] = found
        if len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return found


_SECRET_KIND = re.compile(r"kind:(\s*)Secret")


def _scan(text: str) -> Iterator[Span]:
    # The catalog's Kubernetes Secret rule decodes and checks every `data:` value, about
    # 0.4 ms each; the own rule (`rules.kubernetes_secrets`) redacts those values already,
    # so the manifest's kind is hidden from the catalog (same length: offsets hold).
    if "Secret" in text:
        text = _SECRET_KIND.sub(lambda m: "kind:" + m.group(1) + "------", text)
    data = text.encode("utf-8")
    ascii_only = len(data) == len(text)
    for finding in _scanner.scan(data):
        secret = finding.secret
        if not secret or len(secret) < 4:
            continue
        if "\n" in secret and len(secret) > _MAX_MULTILINE:
            # A BEGIN in one snippet and an END in another can make one finding of a whole
            # prompt; key blocks are the own rules' (`rules.private_keys`), line by line.
            continue
        location = finding.location
        start, end = location["start_offset"], location["end_offset"]
        if not ascii_only:
            start = len(data[:start].decode("utf-8", "replace"))
            end = len(data[:end].decode("utf-8", "replace"))
        # The finding's location may cover context around the secret: narrow it to the secret.
        at = text.find(secret, start, max(end, start + len(secret)))
        if at >= 0:
            start, end = at, at + len(secret)
        while start > 0 and text[start - 1] in _TOKEN_CHARS and text[start] in _TOKEN_CHARS:
            start -= 1
        while end < len(text) and text[end] in _SECRET_CHARS and text[end - 1] in _SECRET_CHARS:
            end += 1
        yield Span(start, end, _kind(finding.rule_id))
