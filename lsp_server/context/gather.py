"""Repository context for one completion: definitions of what the code around the cursor uses,
similar code from recent documents, and the file path, within a token and a time budget.

Sources, in order of priority, while the budget lasts:

1. signatures and docstrings of the definitions of identifiers used near the cursor and of
   imported names, resolved through the workspace index (nearest use first);
2. the windows of recently opened or edited documents most similar to the code before the
   cursor;
3. the bodies of the chosen definitions, in place of their signatures, when they fit.

The result is ordered for vLLM's prefix cache, not by relevance: definitions by path and line,
then similar windows by path and line, so consecutive keystrokes give the same text.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import textwrap
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, runtime_checkable

import msgspec
from lsprotocol.types import SymbolKind

from engine.prompt import BuiltPrompt, ContextFile, build_prompt
from engine.templates import FimTemplate
from engine.tokenizer import PromptTokenizer
from lsp_server.completion.stages import Stages
from lsp_server.context.identifiers import imports, language_group, references
from lsp_server.context.memo import WordMemo
from lsp_server.context.similar import RecentDocuments
from lsp_server.privacy.redact import Redactor
from lsp_server.workspace.symbols import Symbol

log = logging.getLogger(__name__)

NEAR_LINES = 30
"""Identifiers used within this many lines of the cursor are looked up."""
SCAN_LINES = 120
"""Imported names are ordered by their nearest use within this many lines; calls through
``self`` or a module this far away are looked up too."""
MAX_CANDIDATES = 3
"""At most this many definitions of one name are shown when its import narrows them down."""
MAX_AMBIGUOUS = 5
"""A name with more definitions than this that nothing narrows down is skipped; with fewer,
the one nearest the current file is shown."""
MAX_BODY_LINES = 80
"""Longer bodies are never included; their signature stands for them."""
MAX_TYPE_BODY_LINES = 30
"""The same for classes, structs and interfaces (small ones: records, enums, field lists)."""
DOC_LINES = 5
"""Docstrings are cut to their first paragraph and at most this many lines."""
MIN_LOOKUPS = 8
"""Names looked up even when the time budget is spent (a slow moment must not leave the
prompt with no definitions at all)."""
SIMILAR_LINES = 20
"""The query for similar windows: this many lines up to the cursor."""


class DefinitionLookup(Protocol):
    """What context retrieval needs from the workspace index."""

    def definitions(self, name: str) -> list[Symbol]:
        """Every indexed definition called `name`."""
        ...


@runtime_checkable
class FileSymbols(Protocol):
    """Optional: an index that also lists one file's definitions (for class constructors)."""

    def symbols_in(self, path: str) -> list[Symbol]:
        """The definitions of one file, in file order."""
        ...


class Snippet(msgspec.Struct, frozen=True):
    """One piece of context."""

    path: str
    """Path shown to the model (relative to the workspace root when under it)."""
    text: str
    kind: str
    """"definition" or "similar"."""
    score: float
    """Definitions: 1 / (1 + lines from the cursor to the nearest use); similar: Jaccard."""
    source: str = ""
    """Absolute path (definitions, file windows) or URI of the document it came from."""
    name: str = ""
    """The defined name (definitions)."""
    line: int = 0
    """0-based first line in the source."""
    body: bool = False
    """A definition's whole body (else its signature and docstring)."""
    wrapper: str = ""
    """The class line a method's text starts with ("" when none)."""
    opens: str = ""
    """For a class: the class line its methods' texts start with."""


class RepoContext(msgspec.Struct, frozen=True):
    """The context for one completion, in prompt order."""

    snippets: list[Snippet]
    file_path: str
    """The current file's path as shown to the model."""
    tokens: int = 0
    """Estimated tokens of the snippets (each counted alone, with a path line)."""
    elapsed_ms: float = 0.0
    timed_out: bool = False
    """A source was cut short by the time budget."""
    redacted: dict[str, int] = {}
    """Secrets replaced in the prompt, by kind (`prompt_with_context` with a redactor)."""

    def files(self) -> list[ContextFile]:
        """The snippets as the prompt builder takes them: consecutive definitions from one
        file merged into one (see `merge_definitions`), similar windows one each."""
        out: list[ContextFile] = []
        group: list[Snippet] = []
        for s in [*self.snippets, None]:
            if group and (s is None or s.kind != "definition" or s.path != group[0].path):
                out.append(ContextFile(group[0].path, merge_definitions(group)))
                group = []
            if s is None:
                break
            if s.kind == "definition":
                group.append(s)
            else:
                out.append(ContextFile(s.path, s.text))
        return out


def visible_chars(
    code_tokens: int, prefix_share: float = 0.75, chars_per_token: float = 3.5
) -> tuple[int, int]:
    """An estimate of how many characters before and after the cursor a prompt with
    `code_tokens` for prefix and suffix shows (`gather_context`'s `visible`)."""
    return (
        int(code_tokens * prefix_share * chars_per_token),
        int(code_tokens * (1 - prefix_share) * chars_per_token),
    )


@functools.lru_cache(maxsize=4096)
def display_path(path: str, root: str | None) -> str:
    """`path` relative to `root` with forward slashes (or as it is when outside `root`)."""
    base = root if root is not None else os.path.dirname(path)
    try:
        rel = os.path.relpath(path, base) if base else path
    except ValueError:  # another drive (Windows)
        rel = path
    if root is not None and rel.startswith(".."):
        rel = path
    return rel.replace(os.sep, "/")


_INDEX_FILES = frozenset(
    {"__init__.py", "__init__.pyi", "index.js", "index.jsx", "index.mjs", "index.ts"}
    | {"index.tsx", "mod.rs"}
)
"""Files that stand for their directory as a module."""


def module_score(symbol_path: str, module: str) -> int:
    """How many trailing components of `module` the file's path ends with, counting the file
    itself (``pkg.mod`` -> ``pkg/mod.py``, ``pkg/mod/__init__.py``; ``./util/strings`` ->
    ``util/strings.ts``; ``crate::a::b`` -> ``a/b.rs``) or only its directory (Java's package
    ``a.b`` -> ``a/b/C.java``; Go's ``example.com/x/y`` -> ``x/y/*.go``)."""
    parts = [p for p in module.replace("::", "/").replace(".", "/").split("/") if p]
    parts = [p.lstrip("@") for p in parts if p not in ("crate", "self", "super")]
    norm = symbol_path.replace("\\", "/").split("/")
    directory = [p for p in norm[:-1] if p]
    stem = norm[-1].split(".", 1)[0]
    with_file = directory if norm[-1] in _INDEX_FILES else [*directory, stem]

    def tail(components: list[str]) -> int:
        n = 0
        while n < min(len(parts), len(components)) and parts[-1 - n] == components[-1 - n]:
            n += 1
        return n

    return max(tail(with_file), tail(directory))


def module_matches(symbol_path: str, module: str) -> bool:
    """Whether a file could be what an import of `module` refers to (see `module_score`);
    any file when the module has no name of its own (``from . import x``)."""
    bare = module.replace("::", "/").replace(".", "/").strip("/")
    if not bare or bare in ("crate", "self", "super"):
        return True
    return module_score(symbol_path, module) > 0


_count_caches: weakref.WeakKeyDictionary[object, dict[str, int]] = weakref.WeakKeyDictionary()


def _counter(tokenizer: PromptTokenizer) -> dict[str, int]:
    try:
        cache = _count_caches.get(tokenizer)
        if cache is None:
            cache = _count_caches[tokenizer] = {}
    except TypeError:
        return {}
    if len(cache) > 20_000:
        cache.clear()
    return cache


class FileCache:
    """File bytes by path, reused while size and mtime are unchanged (bounded, thread-safe)."""

    def __init__(self, max_files: int = 128, max_bytes: int = 2_000_000) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[int, int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when it is missing, unreadable or over `max_bytes`."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if st.st_size > self.max_bytes:
            return None
        with self._lock:
            hit = self._data.get(path)
            if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                self._data.move_to_end(path)
                return hit[2]
        try:
            with open(path, "rb") as f:
                data = f.read(self.max_bytes + 1)
        except OSError:
            return None
        with self._lock:
            self._data[path] = (st.st_size, st.st_mtime_ns, data)
            while len(self._data) > self.max_files:
                self._data.popitem(last=False)
        return data


FILES = FileCache()
"""Shared by all requests: definitions' files are read once per version."""


def _short_doc(doc: str) -> str:
    """The first paragraph of a docstring, at most `DOC_LINES` lines."""
    lines = textwrap.dedent(doc.strip("\n")).strip().split("\n")
    out: list[str] = []
    for line in lines:
        if not line.strip() and out:
            break
        out.append(line.rstrip())
        if len(out) >= DOC_LINES:
            break
    return "\n".join(out)


_CALLABLE = frozenset({SymbolKind.Function, SymbolKind.Method, SymbolKind.Constructor})
_MEMBERS = frozenset({SymbolKind.Method, SymbolKind.Constructor})
_TYPES = frozenset({SymbolKind.Class, SymbolKind.Struct, SymbolKind.Interface, SymbolKind.Enum})
# Languages whose method signatures do not name their class: shown inside a class line.
_WRAPPERS = {"python": "class", "js": "class", "java": "class", "c": "class", "rust": "impl"}


def _wrapper(symbol: Symbol) -> str:
    """The line opening the container a method is shown in ("" when none is needed)."""
    if not symbol.container or symbol.kind not in _MEMBERS:
        return ""
    group = language_group(symbol.language)
    keyword = _WRAPPERS.get(group)
    if keyword is None or (group == "c" and "::" in symbol.signature):
        return ""
    name = symbol.container.rsplit(".", 1)[-1]
    return f"{keyword} {name}:" if group == "python" else f"{keyword} {name} {{"


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line if line.strip() else "" for line in text.split("\n")]


def render_signature(symbol: Symbol, members: Sequence[Symbol] = ()) -> str:
    """A definition as its (shortened) docstring and signature, in the symbol's language,
    with ``...`` for the body; methods inside a line naming their class where the language's
    signatures do not. A class shows the signatures of `members` (its constructors) inside."""
    signature = symbol.signature.strip() or symbol.name
    doc = _short_doc(symbol.doc) if symbol.doc.strip() else ""
    wrapper = _wrapper(symbol)
    indent = "    " if wrapper else ""
    out = [wrapper] if wrapper else []
    inner = indent + "    "
    member_lines = [m.signature.strip() for m in members if m.signature.strip()]
    if language_group(symbol.language) == "python":
        if symbol.kind in _CALLABLE or symbol.kind in _TYPES:
            out += _indent(signature, indent)
            if doc:
                quoted = '"""' + doc.replace('"""', '\\"""') + '"""'
                out += _indent(quoted, inner)
            out += [f"{inner}{line} ..." for line in member_lines] or [inner + "..."]
        else:
            out += (
                _indent("\n".join("# " + line for line in doc.split("\n")), indent) if doc else []
            )
            out += _indent(signature, indent)
        return "\n".join(out)
    marker = "///" if language_group(symbol.language) == "rust" else "//"
    if doc:
        out += _indent("\n".join(f"{marker} {line}".rstrip() for line in doc.split("\n")), indent)
    if symbol.kind in _TYPES and member_lines:
        out += _indent(signature + " {", indent)
        out += [f"{inner}{line} {{ ... }}" for line in member_lines]
        out.append(indent + "}")
    else:
        if symbol.kind in _CALLABLE or (symbol.kind in _TYPES and "=" not in signature):
            signature += " { ... }"
        out += _indent(signature, indent)
    if wrapper:
        out.append("}")
    return "\n".join(out)


def _constructors(index: DefinitionLookup, symbol: Symbol) -> list[Symbol]:
    """The constructors (Python ``__init__``) of a class, when the index can list them."""
    if symbol.kind not in _TYPES or not isinstance(index, FileSymbols):
        return []
    try:
        members = index.symbols_in(symbol.path)
    except Exception:
        log.debug("symbols_in failed for %s", symbol.path, exc_info=True)
        return []
    inner = f"{symbol.container}.{symbol.name}" if symbol.container else symbol.name
    return [
        m
        for m in members
        if m.container == inner
        and (m.kind == SymbolKind.Constructor or (m.name == "__init__" and m.kind in _CALLABLE))
    ][:2]


def class_opener(symbol: Symbol) -> str:
    """For a class, the line its methods' snippets open with (see `_wrapper`), else ""."""
    if symbol.kind not in _TYPES:
        return ""
    member = msgspec.structs.replace(
        symbol, kind=int(SymbolKind.Method), container=symbol.name, signature=""
    )
    return _wrapper(member)


def merge_definitions(snippets: Sequence[Snippet]) -> str:
    """Definitions of one file as one text, in order: a class's methods that follow it (or
    follow each other) share one class line instead of repeating it."""
    lines: list[str] = []
    current = ""  # the class line open at the end of `lines`
    opens = ""  # the class line the previous snippet (a class) would open for its methods
    for s in snippets:
        body = s.text.split("\n")
        if s.wrapper and s.wrapper == current:
            if current.endswith("{") and lines and lines[-1] == "}":
                lines.pop()
            lines += ["", *body[1:]]
        elif s.wrapper and s.wrapper == opens and lines:
            last = lines[-1]
            if last.strip() == "...":
                lines.pop()
            elif last.endswith(" { ... }"):
                lines[-1] = last.removesuffix(" { ... }") + " {"
            elif last == "}" and s.wrapper.endswith("{"):
                lines.pop()
            lines += ["", *body[1:]]
            current = s.wrapper
        else:
            if lines:
                lines.append("")
            lines += body
            current = s.wrapper
        opens = s.opens
    return "\n".join(lines)


def render_body(symbol: Symbol, max_lines: int = MAX_BODY_LINES) -> str | None:
    """The definition's source from its file (with its doc comment when the language puts it
    above), methods inside their class line as in `render_signature`; None when unreadable,
    changed since indexing, or longer than `max_lines`."""
    data = FILES.read(symbol.path)
    if data is None or symbol.end_byte > len(data) or symbol.start_byte >= symbol.end_byte:
        return None
    line_start = data.rfind(b"\n", 0, symbol.start_byte) + 1
    chunk = data[line_start : symbol.end_byte]
    if chunk.count(b"\n") >= max_lines:
        return None
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if symbol.name not in text[:1000]:
        return None  # the file changed since it was indexed
    text = textwrap.dedent(text.replace("\r\n", "\n")).rstrip()
    group = language_group(symbol.language)
    doc = _short_doc(symbol.doc) if symbol.doc.strip() and group != "python" else ""
    marker = "///" if group == "rust" else "//"
    lines = [f"{marker} {line}".rstrip() for line in doc.split("\n")] if doc else []
    lines += text.split("\n")
    wrapper = _wrapper(symbol)
    if not wrapper:
        return "\n".join(lines)
    out = [wrapper, *_indent("\n".join(lines), "    ")]
    if group != "python":
        out.append("}")
    return "\n".join(out)


class _Budget:
    """Tokens left, counted per snippet with its path line (counts cached per tokenizer)."""

    def __init__(self, tokenizer: PromptTokenizer, total: int) -> None:
        self._tokenizer = tokenizer
        self._cache = _counter(tokenizer)
        self.left = total

    def count(self, path: str, text: str) -> int:
        key = f"// path: {path}\n{text}\n\n"
        n = self._cache.get(key)
        if n is None:
            n = self._cache[key] = len(self._tokenizer.encode(key))
        return n


class _Chosen:
    __slots__ = ("body", "display", "n", "order", "score", "symbol", "text")

    def __init__(
        self, symbol: Symbol, display: str, text: str, n: int, score: float, order: int
    ) -> None:
        self.symbol = symbol
        self.display = display
        self.text = text
        self.n = n
        self.score = score
        self.order = order
        self.body = False


class Candidate(msgspec.Struct, frozen=True):
    """A name to look up, and what narrows down which definition it means."""

    name: str
    """The name as defined (an import's original name, not its alias)."""
    score: float
    module: str = ""
    """The module it is imported from, or the module its receiver is (``mod.name``)."""
    imported: bool = False
    bases: tuple[str, ...] = ()
    """Base classes of the enclosing class, when it is used as ``self.name``."""
    types: tuple[str, ...] = ()
    """Capitalized receivers it is used through (``Stack::new``, ``Config.load``)."""


_PY_CLASS = re.compile(r"^([ \t]*)class[ \t]+(\w+)[ \t]*(?:\(([^)]*)\))?[ \t]*:", re.MULTILINE)


def enclosing_bases(text: str, offset: int) -> tuple[str, ...]:
    """Python: the bare base class names of the class the cursor is in (one level)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    indent = len(line) - len(line.lstrip(" \t"))
    pos = line_start
    while indent > 0 and pos > 0:
        pos = text.rfind("class", 0, pos)
        if pos < 0:
            return ()
        start = text.rfind("\n", 0, pos) + 1
        m = _PY_CLASS.match(text, start)
        if m is None or start + len(m.group(1)) != pos or len(m.group(1)) >= indent:
            continue
        names = [
            b.strip().split("[", 1)[0].rsplit(".", 1)[-1] for b in (m.group(3) or "").split(",")
        ]
        return tuple(n for n in names if n.isidentifier() and n != "object")
    return ()


def candidates(text: str, offset: int, language_id: str) -> list[Candidate]:
    """Names to look up, in priority order, nearest use first: imported names, and identifiers
    used near the cursor that look like references to definitions (called, attributes, or
    capitalized), and, farther away, calls through ``self`` or a module; then the imported
    names not used around the cursor, nearest import first."""
    found = imports(text, language_id)
    by_alias = {i.alias: i for i in found if i.name}
    modules = {i.alias: i.module for i in found if not i.name}
    plain_modules = set(modules)
    for i in found:  # ``from pkg import mod``: `mod` may be a module too
        if i.name:
            modules.setdefault(i.alias, f"{i.module.rstrip('.')}.{i.name}")
    python = language_group(language_id) == "python"
    bases = enclosing_bases(text, offset) if python else ()
    receivers = {"self", "cls", *modules} if python else set(modules)
    refs = references(
        text,
        offset,
        language_id,
        lines_before=SCAN_LINES,
        lines_after=SCAN_LINES,
        receiver_names=receivers,
    )
    out: list[Candidate] = []
    seen: set[str] = set()
    for ref in refs:
        imp = by_alias.get(ref.name)
        if imp is None:
            if ref.name in modules and not ref.attribute:
                continue  # a module, not a definition (but `signal.signal` is both)
            if ref.distance <= NEAR_LINES:
                if not (ref.called or ref.attribute or ref.name[0].isupper()):
                    continue  # most likely a local variable
            elif not (ref.called and ref.receivers):
                continue  # farther away, only `self.name(` and `module.name(` count
        module = imp.module if imp is not None else ""
        if not module:
            module = next((modules[r] for r in ref.receivers if r in modules), "")
        self_bases = bases if any(r in ("self", "cls") for r in ref.receivers) else ()
        types = tuple(r for r in ref.receivers if r[0].isupper() and r not in plain_modules)
        out.append(
            Candidate(
                imp.name if imp is not None else ref.name,
                1.0 / (1 + ref.distance),
                module=module,
                imported=imp is not None,
                bases=self_bases,
                types=types if imp is None else (),
            )
        )
        seen.add(ref.name)
    cursor_line = text.count("\n", 0, offset)
    rest = [i for i in by_alias.values() if i.alias not in seen]
    rest.sort(key=lambda i: abs(i.line - cursor_line))
    out += [Candidate(i.name, 0.0, module=i.module, imported=True) for i in rest]
    return out


def _common_dirs(a: str, b: str) -> int:
    """How many leading directories two paths share."""
    n = 0
    for x, y in zip(
        os.path.dirname(a).split(os.sep), os.path.dirname(b).split(os.sep), strict=False
    ):
        if x != y:
            break
        n += 1
    return n


def _is_test(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return any(p in ("test", "tests", "testing") or p.startswith("test_") for p in parts)


def resolve(
    defs: list[Symbol], path: str, cand: Candidate, visible_lines: tuple[int, int]
) -> list[Symbol]:
    """The definitions a name most likely refers to, [] when too ambiguous or already shown.

    Definitions in the current file win (and are left out when the prompt shows them); then
    those matching the import or the receiver's module, then methods of the enclosing class's
    bases for ``self.name``; a name used through a type (``Stack::new``) must be a member of
    that type (or of a module named like it). Of several left, all when the import vouches
    for them, else the one nearest the current file in the directory tree (none beyond
    `MAX_AMBIGUOUS`).
    """
    local = [d for d in defs if d.path == path]
    if local:
        first, last = visible_lines
        return [d for d in local if not (d.start_line >= first and d.end_line <= last)]
    cands = defs
    narrowed = False
    if cand.module:
        scores = [module_score(d.path, cand.module) for d in cands]
        best = max(scores, default=0)
        if best > 0:
            cands = [d for d, score in zip(cands, scores, strict=True) if score == best]
            narrowed = True
    if cand.bases:
        matched = [d for d in cands if d.container.rsplit(".", 1)[-1] in cand.bases]
        if matched:
            cands, narrowed = matched, True
    if cand.types:  # `Type.name`: a member of that type, or of a module named like it
        lower = {t.lower() for t in cand.types}
        cands = [
            d
            for d in cands
            if d.container.rsplit(".", 1)[-1] in cand.types
            or any(module_score(d.path.lower(), t) for t in lower)
        ]
        if not cands:
            return []
        narrowed = True
    if len(cands) <= 1 or (narrowed and len(cands) <= MAX_CANDIDATES):
        return cands
    if len(cands) > MAX_AMBIGUOUS:
        return []
    test = _is_test(path)
    nearest = min(
        cands,
        key=lambda d: (-_common_dirs(d.path, path), _is_test(d.path) != test, d.path, d.start_line),
    )
    return [nearest]


def gather_context(
    *,
    path: str,
    text: str,
    offset: int,
    language_id: str,
    index: DefinitionLookup | None,
    recent: RecentDocuments | None,
    tokenizer: PromptTokenizer,
    budget_tokens: int,
    time_budget_ms: float = 15.0,
    root: str | None = None,
    visible: tuple[int, int] | None = None,
    allow: Callable[[str], bool] | None = None,
    line_shift: int = 0,
) -> RepoContext:
    """The repository context for a completion at `offset` of `text` (the document at
    `path`), within `budget_tokens` (estimated per snippet, path line included) and about
    `time_budget_ms`.

    `root` is the workspace folder paths are shown relative to (default: the file's
    directory). `visible` is how many characters before and after the cursor the prompt will
    show (default: all of it): definitions in the current file within them are left out, as
    is any snippet whose text the prefix or suffix already contains. `allow`, when given,
    decides which source files (absolute paths, or URIs of unsaved documents) may be shown
    (the privacy filter). `line_shift` maps lines of `text` around the cursor to lines of the
    file (when `text` is a view of it).
    """
    started = time.perf_counter()
    path = os.path.abspath(path)
    deadline = started + time_budget_ms / 1000
    # Definitions may use most of the time; similar windows get at least a share of it.
    def_deadline = started + 0.7 * time_budget_ms / 1000
    budget = _Budget(tokenizer, budget_tokens)
    prefix_text, suffix_text = text[:offset], text[offset:]
    before, after = visible if visible is not None else (len(prefix_text), len(suffix_text))
    window_start = max(0, offset - before)
    window_end = min(len(text), offset + after)
    first_line = text.count("\n", 0, window_start) + line_shift
    last_line = first_line + text.count("\n", window_start, window_end)
    shown_prefix = text[window_start:offset]
    shown_suffix = text[offset:window_end]

    def already_shown(snippet: str) -> bool:
        return snippet in shown_prefix or snippet in shown_suffix

    timed_out = False
    chosen: list[_Chosen] = []
    taken: set[tuple[str, int, str]] = set()
    if index is not None and budget_tokens > 0:
        for order, cand in enumerate(candidates(text, offset, language_id)):
            if order >= MIN_LOOKUPS and time.perf_counter() > def_deadline:
                timed_out = True
                break
            if budget.left < 8:
                break
            try:
                defs = index.definitions(cand.name)
            except Exception:  # an index being rebuilt must not fail the completion
                log.debug("definition lookup failed for %r", cand.name, exc_info=True)
                continue
            for symbol in resolve(defs, path, cand, (first_line, last_line)):
                key = (symbol.path, symbol.start_byte, symbol.name)
                if key in taken or (allow is not None and not allow(symbol.path)):
                    continue
                snippet = render_signature(symbol, _constructors(index, symbol))
                if already_shown(snippet):
                    continue
                display = display_path(symbol.path, root)
                n = budget.count(display, snippet)
                if n > budget.left:
                    continue
                taken.add(key)
                budget.left -= n
                chosen.append(_Chosen(symbol, display, snippet, n, cand.score, order))

    similar: list[Snippet] = []
    if recent is not None and len(recent) and budget.left >= 8:
        if time.perf_counter() > deadline:
            timed_out = True
        else:
            query_start = text.rfind("\n", 0, offset) + 1
            for _ in range(SIMILAR_LINES - 1):
                if query_start == 0:
                    break
                query_start = text.rfind("\n", 0, query_start - 1) + 1
            query = text[query_start:offset]
            for window in recent.similar(
                query, language_id, exclude=path, limit=3, deadline=deadline
            ):
                body = window.text.strip("\n")
                if not body.strip() or already_shown(body):
                    continue
                if allow is not None and not allow(window.path or window.uri):
                    continue
                display = display_path(window.path, root) if window.path else window.uri
                n = budget.count(display, body)
                if n > budget.left:
                    continue
                budget.left -= n
                similar.append(
                    Snippet(
                        display,
                        body,
                        "similar",
                        round(window.score, 4),
                        source=window.path or window.uri,
                        line=window.start_line,
                    )
                )
            if time.perf_counter() > deadline:
                timed_out = True

    # Bodies in place of signatures, by priority, while budget and time last.
    for c in sorted(chosen, key=lambda c: c.order):
        if budget.left < 16 or time.perf_counter() > deadline:
            break
        limit = MAX_BODY_LINES
        if c.symbol.kind in _TYPES:
            if any(o.symbol.container == c.symbol.name and o.symbol.path == c.symbol.path
                   for o in chosen):  # fmt: skip
                continue  # its members are shown on their own
            limit = MAX_TYPE_BODY_LINES
        body_text = render_body(c.symbol, limit)
        if body_text is None or already_shown(body_text):
            continue
        n = budget.count(c.display, body_text)
        if n - c.n <= budget.left:
            budget.left -= n - c.n
            c.text, c.n, c.body = body_text, n, True

    definitions = [
        Snippet(
            c.display,
            c.text,
            "definition",
            round(c.score, 4),
            source=c.symbol.path,
            name=c.symbol.name,
            line=c.symbol.start_line,
            body=c.body,
            wrapper=_wrapper(c.symbol),
            opens=class_opener(c.symbol),
        )
        for c in sorted(chosen, key=lambda c: (c.display, c.symbol.start_line, c.symbol.name))
    ]
    similar.sort(key=lambda s: (s.path, s.line))
    snippets = definitions + similar
    elapsed = (time.perf_counter() - started) * 1000
    return RepoContext(
        snippets=snippets,
        file_path=display_path(path, root),
        tokens=budget_tokens - budget.left,
        elapsed_ms=elapsed,
        timed_out=timed_out,
    )


class _Gathered(msgspec.Struct, frozen=True):
    """A completion's context and its files as the prompt takes them (redacted when a
    redactor is on), with the kinds of secrets replaced in them."""

    context: RepoContext
    files: tuple[ContextFile, ...]
    kinds: tuple[tuple[str, int], ...]


ContextMemo = WordMemo[_Gathered]
"""What `prompt_with_context` reuses while a word is typed."""


class SecretAtCursor(ValueError):
    """The cursor is inside a secret value: nothing is completed there."""


def _window(text: str, offset: int, before: int, after: int) -> tuple[int, int]:
    """Whole lines around `offset`: at least `before` characters before it and `after` after
    it (or the document's ends)."""
    start = max(0, offset - before)
    start = text.rfind("\n", 0, start) + 1 if start > 0 else 0
    end = min(len(text), offset + after)
    if end < len(text):
        newline = text.find("\n", end)
        end = len(text) if newline < 0 else newline
    return start, end


def prompt_with_context(
    *,
    template: FimTemplate,
    tokenizer: PromptTokenizer,
    path: str,
    text: str,
    offset: int,
    language_id: str,
    index: DefinitionLookup | None,
    recent: RecentDocuments | None,
    budget_tokens: int,
    context_tokens: int,
    time_budget_ms: float = 15.0,
    root: str | None = None,
    repo_name: str = "",
    allow: Callable[[str], bool] | None = None,
    redactor: Redactor | None = None,
    stages: Stages | None = None,
    line_shift: int = 0,
    memo: ContextMemo | None = None,
    memo_scope: Hashable = None,
) -> tuple[BuiltPrompt, RepoContext]:
    """The completion prompt for `offset` of `text` with repository context: `gather_context`
    within `context_tokens` (at most half of `budget_tokens`), then `build_prompt` with the
    context files, the file path and `repo_name` (shown by repository formats). One place for
    the completion pipeline and `coder-lsp context`, so the command shows what is sent.

    With a `redactor`, secrets are replaced before the prompt is built, so the token budget
    counts the placeholders: in the document, a window of whole lines around the cursor
    (grown when the prompt could use more of it; a window cut at line ends never cuts a
    one-line secret, nor one the cursor splits), and in each context file. SecretAtCursor
    when the cursor is inside a secret. `stages` gets the `context` and `prompt` marks.

    With a `memo`, the context gathered (and redacted) at the first letter of the word being
    typed serves its next letters; `memo_scope` stands for what `allow` decides by (the
    privacy settings).
    """
    context_tokens = max(0, min(context_tokens, budget_tokens // 2))
    enabled = redactor is not None and redactor.enabled
    scope = (
        memo_scope,
        path,
        language_id,
        line_shift,
        budget_tokens,
        context_tokens,
        time_budget_ms,
        root,
        id(tokenizer),
        id(redactor) if enabled else None,
        (id(index), getattr(index, "generation", None)) if context_tokens else None,
        (id(recent), recent.generation) if context_tokens and recent is not None else None,
    )
    gathered = memo.get(path, scope, text, offset) if memo is not None else None
    if gathered is None:
        ctx = gather_context(
            path=path,
            text=text,
            offset=offset,
            language_id=language_id,
            index=index if context_tokens else None,
            recent=recent if context_tokens else None,
            tokenizer=tokenizer,
            budget_tokens=context_tokens,
            time_budget_ms=time_budget_ms,
            root=root,
            visible=visible_chars(budget_tokens - context_tokens),
            allow=allow,
            line_shift=line_shift,
        )
        files = ctx.files()
        kinds: Counter[str] = Counter()
        if enabled:
            assert redactor is not None
            clean: list[ContextFile] = []
            for file in files:
                red = redactor.redact(file.text)
                kinds.update(red.kinds)
                clean.append(ContextFile(file.path, red.text))
            files = clean
        gathered = _Gathered(ctx, tuple(files), tuple(kinds.items()))
        if memo is not None and not ctx.timed_out:
            memo.put(path, scope, text, offset, gathered)
    ctx, files = gathered.context, list(gathered.files)
    if stages is not None:
        stages.mark("context")

    def build(prefix: str, suffix: str, context: Sequence[ContextFile]) -> BuiltPrompt:
        return build_prompt(
            template,
            tokenizer,
            prefix,
            suffix,
            budget_tokens,
            context=context,
            file_path=ctx.file_path,
            repo_name=repo_name,
            context_share=context_tokens / budget_tokens if budget_tokens > 0 else 0.0,
        )

    if redactor is None or not redactor.enabled:
        built = build(text[:offset], text[offset:], files)
        if stages is not None:
            stages.mark("prompt")
        return built, ctx

    kinds = Counter(dict(gathered.kinds))
    clean_files = files
    # About 5 characters a token, shared as `build_prompt` shares them (3/4 before the
    # cursor); a side the prompt uses up is grown, its chunks already known to the redactor.
    code_tokens = budget_tokens - min(ctx.tokens, context_tokens)
    before, after = max(1024, code_tokens * 15 // 4), max(512, code_tokens * 5 // 4)
    while True:
        start, end = _window(text, offset, before, after)
        window = redactor.redact(text[start:end])
        if window.covers(offset - start):
            raise SecretAtCursor("the cursor is inside a secret value")
        cut = window.offset(offset - start)
        prompt = build(window.text[:cut], window.text[cut:], clean_files)
        more_before = start > 0 and not prompt.truncated_prefix
        more_after = end < len(text) and not prompt.truncated_suffix
        if not (more_before or more_after):
            break
        before, after = before * (2 if more_before else 1), after * (2 if more_after else 1)
    kinds.update(window.kinds)
    redactor.vouch(prompt.text)
    if stages is not None:
        stages.mark("prompt")
    return prompt, msgspec.structs.replace(ctx, redacted=dict(kinds))


__all__ = [
    "FILES",
    "ContextMemo",
    "DefinitionLookup",
    "FileCache",
    "FileSymbols",
    "RepoContext",
    "SecretAtCursor",
    "Snippet",
    "display_path",
    "gather_context",
    "merge_definitions",
    "module_matches",
    "module_score",
    "prompt_with_context",
    "render_body",
    "render_signature",
    "visible_chars",
]
