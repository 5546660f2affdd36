"""coder-lsp's own secret rules: what a provider-token catalog misses.

The bundled catalog (`kingfisher-secret-scanner`, see `scanner.py`) knows the exact shape of
hundreds of providers' tokens. These rules find what has no fixed shape: values assigned to
secret-like names (`password = "…"`, `API_KEY=…`, `"client_secret": "…"`), credentials in URLs
and connection strings, private-key blocks (whole or cut by a window), authorization headers,
Kubernetes Secret data, and AWS key ids on their own. Each yields the span of the secret value
only, so a replacement keeps the code around it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

import msgspec


class Span(msgspec.Struct, frozen=True, order=True):
    """Where a secret value is in a text, and what kind it is."""

    start: int
    end: int
    kind: str


class Text:
    """A text to scan, with its lowercase copy and the lines holding given words (found with
    `str.find`, which is many times faster than a case-insensitive regex over the whole text;
    the rules' regexes then run on those lines only)."""

    def __init__(self, text: str, *, secret_manifest: bool | None = None) -> None:
        self.text = text
        self.low = text.lower()
        self.secret_manifest = (
            is_secret_manifest(text) if secret_manifest is None else secret_manifest
        )
        """Part of a Kubernetes Secret manifest (decided on the whole text)."""
        self._lines: dict[tuple[str, ...], list[tuple[int, str]]] = {}

    def lines_with(self, words: tuple[str, ...]) -> list[tuple[int, str]]:
        """(start offset, line) of each line holding one of `words` (lowercase), in order."""
        found = self._lines.get(words)
        if found is not None:
            return found
        low, starts = self.low, set()
        for word in words:
            at = low.find(word)
            while at >= 0:
                starts.add(low.rfind("\n", 0, at) + 1)
                end = low.find("\n", at)
                if end < 0:
                    break
                at = low.find(word, end)
        found = []
        for start in sorted(starts):
            end = self.text.find("\n", start)
            found.append((start, self.text[start : len(self.text) if end < 0 else end]))
        self._lines[words] = found
        return found


Rule = Callable[[Text], Iterator[Span]]

PLACEHOLDER = re.compile(r"<redacted:[a-z0-9-]+>")

# --- what a secret value looks like ---------------------------------------------------------

_REFERENCE = re.compile(
    r"""^(?:
        \$\{[^}]*\}.*           # ${VAR}, ${var:-default}
      | \$[A-Za-z_]\w*          # $VAR
      | \{\{.*\}\}              # {{ template }}
      | %\(?\w*\)?s             # %s, %(name)s
      | <[^>]*>                 # <password>, <redacted:...>
      | \*+ | x{3,} | X{3,} | \.{3,} | -+
    )$""",
    re.VERBOSE,
)
_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme", "change_me", "changeit", "password", "passwd", "secret", "token", "none",
        "null", "nil", "true", "false", "undefined", "example", "dummy", "test", "testing",
        "todo", "fixme", "redacted", "hidden", "empty", "default", "required", "optional",
        "string", "str", "bytes",
    }
)  # fmt: skip
_NAME_LIKE = re.compile(
    r"^(?:[a-z][a-z]*(?:[_.\-][a-z]+)*"  # lowercase words: field names, "bearer"
    r"|[A-Z][a-z]+(?:[A-Z][a-z]+)*"  # Capitalised words: "Authorization", "BearerToken"
    r"|[A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)+"  # header names: "X-Auth-Token"
    r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"  # ENV_VAR_NAMES
    r"|[A-Z]{1,12})$"
)
_PATH_OR_URL = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://[^@]*|~?\.{0,2}/\S*|\S+\.(?:pem|key|crt|json|txt|ya?ml|toml|env))$"
)
_LOWER_PATH = re.compile(r"^[a-z0-9_.\-]+(?:/[a-z0-9_.\-]+)+/?$")
_DOTTED_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_EXPRESSION = re.compile(
    r"[()\[\]{}]|^(?:os\.|process\.env|env\.|config\.|settings\.|self\.|this\.)"
)


def is_placeholder_value(value: str) -> bool:
    """A stand-in rather than a secret: a placeholder, a reference, "password", "changeme"."""
    return bool(
        PLACEHOLDER.fullmatch(value)
        or _REFERENCE.match(value)
        or value.lower() in _PLACEHOLDER_WORDS
    )


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def looks_secret(value: str, *, strong_name: bool, quoted: bool) -> bool:
    """Whether `value`, assigned to a secret-like name, is a secret literal rather than a
    reference, a placeholder, a name, a path or an expression."""
    if len(value) < 4 or PLACEHOLDER.search(value) or _REFERENCE.match(value):
        return False
    if value.lower() in _PLACEHOLDER_WORDS or any(c.isspace() for c in value):
        return False
    if _NAME_LIKE.match(value) or _PATH_OR_URL.match(value) or _LOWER_PATH.match(value):
        return False
    if "{" in value and "}" in value:
        return False  # a template: f"…{x}…", `${x}`, "{0}"
    if not quoted:
        # Unquoted: code means an expression, config files a literal; only what is clearly
        # random counts: no call or index, not a (dotted) name, a digit or symbol in it.
        if _EXPRESSION.search(value) or (
            _DOTTED_NAME.fullmatch(value) and ("." in value or not any(c.isdigit() for c in value))
        ):
            return False
        if not any(c.isdigit() or c in "+/=!@#%^&*~?" for c in value):
            return False
        if "=" in value.rstrip("="):
            return False  # key=value pairs (cookies, query strings), not a token
        return len(value) >= 8 and _classes(value) >= 2 and entropy(value) >= 3.0
    if strong_name:
        return len(value) >= 6 or _classes(value) >= 3
    return len(value) >= 16 and entropy(value) >= 3.3


# --- secret-like names ----------------------------------------------------------------------

_STRONG = re.compile(
    r"(?i)pass(?:w(?:or)?d|phrase)|pwd|secret|token|api[_\-.]?key|access[_\-.]?key|"
    r"private[_\-.]?key|credential|auth[_\-.]?key|signing[_\-.]?key|encryption[_\-.]?key|"
    r"master[_\-.]?key|session[_\-.]?key|client[_\-.]?key|app[_\-.]?key|license[_\-.]?key|"
    r"sas[_\-.]?key|account[_\-.]?key|bearer|webhook[_\-.]?url|dsn"
)
_WEAK = re.compile(r"(?i)(?:^|[_\-.])key$|(?:^|[_\-.])key[_\-.]|^key|auth|salt|sig(?:nature)?$")
_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:_|^)(?:env|var|name|names|field|header|param|prefix|suffix|path|file|url|uri|"
    r"length|len|size|type|types|id|ids|count|min|max|policy|regex|pattern|hint|label|"
    r"placeholder|format|expir\w*|ttl|timeout|lifetime|age|hash|hashed|algorithm|alg|"
    r"required|enabled|valid\w*|error|message|msg|prompt|input|column|schema|class|"
    r"provider|service|manager|store|url|endpoint|mode|scope|scopes|kind|index|reset|"
    r"changed|change|confirm\w*|strength|display|show|hidden)$"
)
SECRET_WORDS = (
    "passw", "passphrase", "pwd", "secret", "token", "key", "credential", "auth", "bearer",
    "salt", "dsn", "webhook",
)  # fmt: skip
"""Lowercase words a line must hold for the name-based rules to look at it."""

_ASSIGNMENT = re.compile(
    r"""
    (?P<name>[A-Za-z_@$][\w.\-]*)           # the name (dotted or dashed in config files)
    ["'\]]?\s*
    (?P<sep>:=|=>|\?\?=|\|\|=|=(?!=)|:(?!:))  # =, :, :=, =>  (not == or ::)
    [ \t]*
    (?:
        [rbuf]{0,2}(?P<q>["'`])(?P<qv>[^"'`\n\\]*(?:\\.[^"'`\n\\]*)*)(?P=q)
      | (?P<uv>[^\s"'`,;)}\]>]+)
    )
    """,
    re.VERBOSE,
)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _name_strength(name: str) -> bool | None:
    """True for a strong secret name, False for a weak one, None when not secret-like."""
    last = re.split(r"[.\-]", name.strip("@$"))[-1] or name
    if _NOT_SECRET_NAME.search(_CAMEL.sub("_", last)):
        return None
    if _STRONG.search(last):
        return True
    if _WEAK.search(last):
        return False
    return None


def assignments(text: Text) -> Iterator[Span]:
    """Values assigned to secret-like names: `password = "…"`, `API_KEY=…`,
    `"client_secret": "…"`, `db.password: …`, `apiKey := "…"`, `ENV DB_PASSWORD=…`."""
    for line_start, line in text.lines_with(SECRET_WORDS):
        for m in _ASSIGNMENT.finditer(line):
            strength = _name_strength(m.group("name"))
            if strength is None:
                continue
            quoted = m.group("q") is not None
            group = "qv" if quoted else "uv"
            value = m.group(group)
            if (
                m.group("sep") == ":"
                and not quoted
                and line[m.end(group) :].strip()[:1]
                in (
                    "=",
                    ",",
                    ")",
                )
            ):
                continue  # a type annotation or a keyword argument's type: `password: str = …`
            if looks_secret(value, strong_name=strength, quoted=quoted):
                yield Span(line_start + m.start(group), line_start + m.end(group), "secret")


_URL_CREDENTIALS = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,30}://(?P<user>[^\s:/?#@'\"<>]*):(?P<pw>[^\s@/'\"<>]+)@"
)
_URL_TOKEN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,30}://(?P<token>[A-Za-z0-9_\-]{16,})@")


def url_credentials(text: Text) -> Iterator[Span]:
    """The password of `scheme://user:password@host` (connection strings, clone URLs), and a
    token standing as the user (`https://<key>@host`, Sentry DSNs)."""
    for line_start, line in text.lines_with(("://",)):
        if "@" not in line:
            continue
        for m in _URL_CREDENTIALS.finditer(line):
            value = m.group("pw")
            if PLACEHOLDER.search(value) or _REFERENCE.match(value) or len(value) < 3:
                continue
            if value.lower() in _PLACEHOLDER_WORDS:
                continue
            yield Span(line_start + m.start("pw"), line_start + m.end("pw"), "password")
        for m in _URL_TOKEN.finditer(line):  # https://<key>@sentry.example.com/1
            if entropy(m.group("token")) >= 3.0:
                yield Span(line_start + m.start("token"), line_start + m.end("token"), "secret")


_CONNECTION_FIELD = re.compile(
    r"(?i)(?:^|[;?&\s\"'])(?:password|pwd|passwd|accountkey|sharedaccesskey|sharedsecret|"
    r"secret|token|apikey|api_key|access_token|auth_token|client_secret|sig)="
    r"(?P<v>[^;&\s'\"<>]+)"
)


def connection_fields(text: Text) -> Iterator[Span]:
    """`Password=…;` and `?password=…&` fields of connection strings and query strings."""
    for line_start, line in text.lines_with(SECRET_WORDS):
        if "=" not in line:
            continue
        for m in _CONNECTION_FIELD.finditer(line):
            value = m.group("v")
            if looks_secret(value, strong_name=True, quoted=True) and not _EXPRESSION.search(value):
                yield Span(line_start + m.start("v"), line_start + m.end("v"), "password")


_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_SEP = re.compile(r"(?:\\n|\r?\n)[ \t]*")  # a newline, or `\n` escaped in a string
_PEM_LINE = re.compile(
    r"[A-Za-z0-9+/=]+(?=\\n|\r?\n|-----END|[\"'`\s]|$)|[A-Za-z][\w-]*: [^\r\n\\]*"
)
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_TAIL = re.compile(
    r"(?P<body>(?:[ \t]*[A-Za-z0-9+/=]{16,}(?:\\n|\r?\n))+"
    r"[ \t]*[A-Za-z0-9+/=]*(?:\\n|\r?\n)?[ \t]*)"
    r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
)
_PUTTY = re.compile(r"(?m)^Private-Lines: \d+\r?\n(?P<body>(?:[A-Za-z0-9+/=]+\r?\n?)+)")


_KEY_LINE = re.compile(r"(?m)^[ \t]*[\"']?(?P<v>[A-Za-z0-9+/]{40,}={0,2})[\"']?[ \t]*$")


def private_keys(text: Text) -> Iterator[Span]:
    """Private-key blocks (PEM, OpenSSH, PGP, PuTTY), also with `\\n` escapes inside JSON,
    and blocks a window cut: a BEGIN with no END, or body lines before an END; and a line
    that is nothing but a long base64 run (key material whose block was cut off both ends)."""
    if "private key" in text.low:
        yield from _pem(text.text)
    for m in _KEY_LINE.finditer(text.text):
        value = m.group("v")
        if _classes(value) >= 3 and entropy(value) >= 4.0:
            yield Span(m.start("v"), m.end("v"), "private-key")
    if "Private-Lines:" in text.text:
        for m in _PUTTY.finditer(text.text):
            yield Span(m.start("body"), m.end("body"), "private-key")


def _pem(text: str) -> Iterator[Span]:
    """Body lines after each BEGIN (base64 and `Proc-Type:`-style headers, blank lines
    between), up to the END or the first line that is neither; and the base64 lines before
    each END (a block whose BEGIN a window or a region cut off)."""
    for begin in _PEM_BEGIN.finditer(text):
        pos, start, end = begin.end(), -1, -1
        while (sep := _PEM_SEP.match(text, pos)) is not None:
            line = _PEM_LINE.match(text, sep.end())
            if line is None or line.end() == line.start():
                if _PEM_SEP.match(text, sep.end()) and not _PEM_END.match(text, sep.end()):
                    pos = sep.end()  # a blank line inside the block
                    continue
                break
            start = sep.end() if start < 0 else start
            pos = end = line.end()
        if start >= 0 and end > start:
            yield Span(start, end, "private-key")
    for m in _PEM_TAIL.finditer(text):
        yield Span(m.start("body"), m.end("body"), "private-key")


_AUTH_HEADER = re.compile(
    r"(?i)\b(?:bearer|token)\s+(?P<v>[A-Za-z0-9\-._~+/]{16,}=*)|"
    r"(?i:authorization)[\"']?\s*[:=]\s*[\"']?basic\s+(?P<b>[A-Za-z0-9+/]{8,}={0,2})"
)


def auth_headers(text: Text) -> Iterator[Span]:
    """`Authorization: Bearer …` / `Basic …` credentials in headers, curl lines and code."""
    for line_start, line in text.lines_with(("bearer", "basic", "token ")):
        for m in _AUTH_HEADER.finditer(line):
            group = "v" if m.group("v") else "b"
            value = m.group(group)
            if entropy(value) >= 3.0 and not _NAME_LIKE.match(value):
                yield Span(line_start + m.start(group), line_start + m.end(group), "bearer-token")


_AWS_KEY_ID = re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b")


def aws_key_ids(text: Text) -> Iterator[Span]:
    """AWS access key ids, also without their secret key nearby."""
    for line_start, line in text.lines_with(("akia", "asia", "abia", "acca", "a3t")):
        for m in _AWS_KEY_ID.finditer(line):
            yield Span(line_start + m.start(), line_start + m.end(), "aws-access-key-id")


_CLI_USER = re.compile(
    r"(?:(?<=\s)-u|--user|--password)[ =][\"']?(?:[^:\s'\"]+:)?(?P<v>[^\s'\"]{6,})"
)
_NETRC = re.compile(r"(?i)\bmachine\s+\S+\s+(?:login\s+\S+\s+)?password\s+(?P<v>\S+)")
_XML = re.compile(
    r"(?i)<(?P<tag>[\w.:-]*(?:password|secret|token|apikey|api_key|accesskey|privatekey)[\w.:-]*)>"
    r"(?P<v>[^<\s]{4,})</(?P=tag)>"
)
_DOCKER_ENV = re.compile(
    r"(?im)^\s*(?:ENV|ARG)\s+(?P<name>\w*(?:PASSWORD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY)\w*)"
    r"\s+(?P<v>[^\s=]\S*)\s*$"
)


_COMMAND_GUARDS: tuple[tuple[re.Pattern[str], Callable[[str], bool], bool], ...] = (
    (_CLI_USER, lambda line: "-u" in line or "--user" in line or "--password" in line, True),
    (_NETRC, lambda line: "machine" in line, False),
    (_XML, lambda line: "<" in line, False),
    (_DOCKER_ENV, lambda line: line.lstrip()[:4].upper() in ("ENV ", "ARG "), False),
)


def command_lines(text: Text) -> Iterator[Span]:
    """`curl -u user:pass`, `--password X`, `.netrc` lines, XML elements and Dockerfile
    `ENV NAME value` lines."""
    lines = text.lines_with(SECRET_WORDS) + text.lines_with((" -u ", "--user"))
    for line_start, line in lines:
        for pattern, guard, needs_check in _COMMAND_GUARDS:
            if not guard(line):
                continue
            for m in pattern.finditer(line):
                value = m.group("v")
                if PLACEHOLDER.search(value) or _REFERENCE.match(value):
                    continue
                if needs_check and not looks_secret(value, strong_name=False, quoted=False):
                    continue
                yield Span(line_start + m.start("v"), line_start + m.end("v"), "password")


_K8S_SECRET = re.compile(r"(?m)^\s*kind:\s*[\"']?Secret[\"']?\s*$")
_K8S_DATA = re.compile(r"(?m)^(?P<indent>[ \t]*)(?:data|stringData):[ \t]*\r?\n")
_K8S_ITEM = re.compile(r"(?m)^(?P<indent>[ \t]+)[\w.\-]+:[ \t]*(?P<v>[^\s#][^\n#]*?)[ \t]*$")


def is_secret_manifest(text: str) -> bool:
    """Whether `text` has a Kubernetes Secret manifest (`kind: Secret`)."""
    return "Secret" in text and _K8S_SECRET.search(text) is not None


def kubernetes_secrets(source: Text) -> Iterator[Span]:
    """Every value under `data:` / `stringData:` of a Kubernetes Secret manifest."""
    text = source.text
    if not source.secret_manifest:
        return
    for block in _K8S_DATA.finditer(text):
        parent = len(block.group("indent"))
        pos = block.end()
        while pos < len(text):
            m = _K8S_ITEM.match(text, pos)
            if m is None or len(m.group("indent")) <= parent:
                break
            value = m.group("v").strip("\"'")
            if value and not PLACEHOLDER.search(value) and not _REFERENCE.match(value):
                start = m.start("v") + m.group("v").find(value)
                yield Span(start, start + len(value), "kubernetes-secret")
            pos = m.end() + 1


RULES: dict[str, Rule] = {
    "assignments": assignments,
    "url-credentials": url_credentials,
    "connection-fields": connection_fields,
    "private-keys": private_keys,
    "auth-headers": auth_headers,
    "aws-key-ids": aws_key_ids,
    "command-lines": command_lines,
    "kubernetes-secrets": kubernetes_secrets,
}
"""The own rules by name (reported by `doctor`)."""


def pattern_rule(name: str, pattern: re.Pattern[str]) -> Rule:
    """A user's extra pattern (`privacy.patterns`): its first group is the secret, else the
    whole match."""

    def rule(text: Text) -> Iterator[Span]:
        for m in pattern.finditer(text.text):
            group = 1 if pattern.groups else 0
            if m.start(group) < m.end(group):
                yield Span(m.start(group), m.end(group), name)

    return rule
