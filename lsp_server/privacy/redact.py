"""Secret redaction: the step every prompt passes before a model sees it.

`Redactor.redact(text)` finds secrets with the maintained catalog (`catalog.py`) and the own
rules (`rules.py`), less the user's allow-list, plus the user's extra patterns, and replaces
each value with a placeholder of its kind (`<redacted:aws-secret-access-key>`), so the code
keeps its shape and the model still completes sensible code. A value gets the same
placeholder every time in a session (prompts stay stable for prefix caching), a different
value of the same kind a numbered one. The values behind placeholders stay in this process's
memory only; `restore` puts them back into what the model wrote, so an edit never replaces a
secret in the user's code with a placeholder and a completion never shows one the document
does not have.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence

import msgspec

from lsp_server.privacy import catalog
from lsp_server.privacy.rules import (
    PLACEHOLDER,
    RULES,
    Rule,
    Span,
    Text,
    is_placeholder_value,
    is_secret_manifest,
    pattern_rule,
)

_VAULT_MAX = 20_000
_SPANS_MAX = 8192
"""Chunks whose findings are remembered (per redactor)."""
_PREPARE_MAX = 2_000_000


class _Vault:
    """Placeholders by value and values by placeholder, for the process's lifetime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._per_kind: Counter[str] = Counter()

    def placeholder(self, value: str, kind: str, avoid: str) -> str:
        with self._lock:
            known = self._by_value.get(value)
            if known is not None and known not in avoid:
                return known
            if len(self._by_value) >= _VAULT_MAX:
                self._by_value.clear()
                self._by_placeholder.clear()
            while True:
                self._per_kind[kind] += 1
                n = self._per_kind[kind]
                made = f"<redacted:{kind}>" if n == 1 else f"<redacted:{kind}-{n}>"
                if made not in avoid and made not in self._by_placeholder:
                    break
            self._by_value[value] = made
            self._by_placeholder[made] = value
            return made

    def value(self, placeholder: str) -> str | None:
        with self._lock:
            return self._by_placeholder.get(placeholder)


_VAULT = _Vault()


class Redacted(msgspec.Struct, frozen=True):
    """A text with its secrets replaced, where they were, and how many of each kind."""

    text: str
    spans: tuple[Span, ...] = ()
    """The replaced spans, in the original text's offsets."""
    placeholders: tuple[str, ...] = ()
    """The placeholder of each span, in order."""

    @property
    def kinds(self) -> Counter[str]:
        return Counter(span.kind for span in self.spans)

    def offset(self, original: int) -> int:
        """Where offset `original` of the input is in `text` (inside a span: its end)."""
        shift = 0
        for span, placeholder in zip(self.spans, self.placeholders, strict=True):
            if span.start >= original:
                break
            if span.end > original:
                return span.start + shift + len(placeholder)
            shift += len(placeholder) - (span.end - span.start)
        return original + shift

    def covers(self, original: int) -> bool:
        """Whether offset `original` of the input is strictly inside a replaced secret."""
        return any(span.start < original < span.end for span in self.spans)


_CHUNK_MAX = 8192


def chunks(text: str) -> list[tuple[int, int]]:
    """(start, end) of `text`'s chunks: runs of paragraphs cut at a blank line after a line
    whose hash picks it (one in four), or past 8 KB. The cuts depend on the lines around them,
    not on where the text starts, so the chunks of a window shifted by a keystroke are mostly
    the chunks it had before."""
    out: list[tuple[int, int]] = []
    start = pos = 0
    while True:
        cut = text.find("\n\n", pos)
        if cut < 0:
            break
        line = text[text.rfind("\n", 0, cut) + 1 : cut]
        pos = cut + 1
        if hash(line) & 3 == 0 or pos - start > _CHUNK_MAX:
            out.append((start, pos))
            start = pos
    if start < len(text):
        out.append((start, len(text)))
    return out


def summary(counts: Counter[str]) -> str:
    """`3 secrets (password x2, github-pat)`: counts and kinds, never values."""
    total = sum(counts.values())
    if not total:
        return "no secrets"
    kinds = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(counts.items()))
    return f"{total} secret{'s' if total != 1 else ''} ({kinds})"


GENERIC_KINDS = frozenset({"secret", "password"})


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping spans joined; the joined span takes the most specific kind (a
    provider's token name over the generic "secret" or "password")."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, s.kind in GENERIC_KINDS)):
        if span.end <= span.start:
            continue
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            kind = span.kind if last.kind in GENERIC_KINDS else last.kind
            merged[-1] = Span(last.start, max(last.end, span.end), kind)
            continue
        merged.append(span)
    return merged


class Redactor:
    """Finds and replaces secrets; one per settings, all sharing the session's placeholders."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        patterns: dict[str, str] | None = None,
        allow: Sequence[str] = (),
        use_catalog: bool = True,
    ) -> None:
        self.enabled = enabled
        self._rules: list[Rule] = list(RULES.values())
        for name, source in (patterns or {}).items():
            self._rules.append(pattern_rule(name, re.compile(source)))
        self._allow = [re.compile(source) for source in allow]
        self._catalog = use_catalog
        self._recent: dict[int, str] = {}
        self._spans: OrderedDict[tuple[str, bool], tuple[Span, ...]] = OrderedDict()
        self._lock = threading.Lock()
        if enabled and use_catalog:
            catalog.preload()

    def spans(self, text: str) -> list[Span]:
        """The secrets in `text`, sorted and merged.

        The text is scanned a chunk (paragraphs up to a blank line, see `chunks`) at a time,
        and what was found in each is remembered: a keystroke changes one chunk of a prompt's
        window, and context snippets repeat from one keystroke to the next.
        """
        if not self.enabled or not text:
            return []
        manifest = is_secret_manifest(text)
        found: list[Span] = []
        for start, end in chunks(text):
            for span in self._paragraph(text[start:end], manifest):
                found.append(Span(span.start + start, span.end + start, span.kind))
        merged = _merge(found)
        if self._allow:
            merged = [
                s
                for s in merged
                if not any(a.fullmatch(text[s.start : s.end]) for a in self._allow)
            ]
        return [s for s in merged if not is_placeholder_value(text[s.start : s.end])]

    def prepare(self, text: str) -> None:
        """Scan `text` ahead of need (a document just opened, from a worker thread), so the
        first completion in it finds its chunks known."""
        if self.enabled and len(text) <= _PREPARE_MAX:
            self.spans(text)

    def _paragraph(self, text: str, manifest: bool) -> tuple[Span, ...]:
        key = (text, manifest)
        with self._lock:
            known = self._spans.get(key)
            if known is not None:
                self._spans.move_to_end(key)
                return known
        found: list[Span] = []
        if self._catalog:
            found.extend(catalog.scan(text))
        scanned = Text(text, secret_manifest=manifest)
        for rule in self._rules:
            found.extend(rule(scanned))
        spans = tuple(found)
        with self._lock:
            self._spans[key] = spans
            if len(self._spans) > _SPANS_MAX:
                self._spans.popitem(last=False)
        return spans

    def vouch(self, text: str) -> None:
        """Mark `text` as built from redacted parts only (the engine boundary then passes it
        without scanning it again)."""
        if self.enabled and text:
            self._remember(text)

    def _remember(self, text: str) -> None:
        if len(self._recent) > 256:
            self._recent.clear()
        self._recent[hash(text)] = text

    def redact(self, text: str) -> Redacted:
        """`text` with every secret replaced by its placeholder."""
        if not self.enabled or not text:
            return Redacted(text)
        if self._recent.get(hash(text)) == text:
            return Redacted(text)  # this text came out of `redact`: nothing is left in it
        spans = self.spans(text)
        if not spans:
            return Redacted(text)
        parts: list[str] = []
        placeholders: list[str] = []
        last = 0
        for span in spans:
            placeholder = _VAULT.placeholder(text[span.start : span.end], span.kind, text)
            parts += [text[last : span.start], placeholder]
            placeholders.append(placeholder)
            last = span.end
        parts.append(text[last:])
        out = "".join(parts)
        self._remember(out)
        return Redacted(out, tuple(spans), tuple(placeholders))


def restore(text: str, document: str = "") -> str:
    """`text` (what a model wrote) with the session's placeholders turned back into their
    values, except those `document` itself contains (the user's own literal text)."""
    if "<redacted:" not in text:
        return text

    def back(m: re.Match[str]) -> str:
        placeholder = m.group(0)
        if placeholder in document:
            return placeholder
        value = _VAULT.value(placeholder)
        return placeholder if value is None else value

    return PLACEHOLDER.sub(back, text)


def foreign_placeholder(text: str, document: str) -> bool:
    """Whether `text` has a placeholder the document does not (one that could not be
    restored, or that the model made up): such a suggestion is not shown."""
    return any(m.group(0) not in document for m in PLACEHOLDER.finditer(text))


_cached: dict[tuple[bool, tuple[tuple[str, str], ...], tuple[str, ...]], Redactor] = {}


def redactor_for(enabled: bool, patterns: dict[str, str], allow: Sequence[str]) -> Redactor:
    """The redactor for these privacy settings (built once per distinct settings)."""
    key = (enabled, tuple(sorted(patterns.items())), tuple(allow))
    found = _cached.get(key)
    if found is None:
        found = _cached[key] = Redactor(enabled=enabled, patterns=patterns, allow=allow)
    return found
