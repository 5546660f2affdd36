"""Identifiers around the cursor and names a file imports, for definition lookup.

A regex over identifiers is enough here: the names are only keys for an index lookup, and a
stray name from a string or a comment costs one dictionary probe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator

import msgspec

IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

_COMMON = "true false null nil self this super"
_KEYWORDS_BY_GROUP: dict[str, str] = {
    "python": (
        "False None True and as assert async await break class continue def del elif else "
        "except finally for from global if import in is lambda nonlocal not or pass raise "
        "return try while with yield match case type self cls "
        # builtins: never in a workspace index, always ambiguous in a big one
        "print len range str int float bool dict list set tuple object isinstance issubclass "
        "getattr setattr hasattr super open iter next enumerate zip map filter sorted reversed "
        "min max sum any all abs repr hash id format vars dir callable property staticmethod "
        "classmethod bytes bytearray frozenset Exception ValueError TypeError KeyError "
        "IndexError AttributeError RuntimeError NotImplementedError OSError StopIteration "
        "NotImplemented Ellipsis"
    ),
    "js": (
        "break case catch class const continue debugger default delete do else export extends "
        "finally for function if import in instanceof new return super switch this throw try "
        "typeof var void while with yield let static enum await implements package protected "
        "interface private public async of from as get set undefined null true false NaN "
        "Infinity console Object Array String Number Boolean Promise Map Set Error JSON Math "
        "type keyof readonly declare namespace module any unknown never string number boolean "
        "symbol bigint object require"
    ),
    "java": (
        "abstract assert boolean break byte case catch char class const continue default do "
        "double else enum extends final finally float for goto if implements import instanceof "
        "int interface long native new package private protected public return short static "
        "strictfp super switch synchronized this throw throws transient try void volatile while "
        "var record yield sealed permits true false null String Object Integer Long Double "
        "Boolean List Map Set Override"
    ),
    "c": (
        "auto break case char const continue default do double else enum extern float for goto "
        "if inline int long register restrict return short signed sizeof static struct switch "
        "typedef union unsigned void volatile while bool true false NULL nullptr class "
        "namespace template typename public private protected virtual override final using new "
        "delete this operator friend explicit constexpr noexcept static_cast dynamic_cast "
        "reinterpret_cast const_cast try catch throw std size_t uint8_t uint16_t uint32_t "
        "uint64_t int8_t int16_t int32_t int64_t auto include define ifdef ifndef endif"
    ),
    "go": (
        "break case chan const continue default defer else fallthrough for func go goto if "
        "import interface map package range return select struct switch type var true false "
        "nil iota append cap close copy delete len make new panic print println recover "
        "string int int8 int16 int32 int64 uint uint8 uint16 uint32 uint64 uintptr byte rune "
        "float32 float64 bool error any err"
    ),
    "rust": (
        "as async await break const continue crate dyn else enum extern false fn for if impl in "
        "let loop match mod move mut pub ref return self Self static struct super trait true "
        "type unsafe use where while Some None Ok Err Option Result Vec String Box bool char "
        "str u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize f32 f64 println format vec"
    ),
}
_GROUPS: dict[str, str] = {
    "python": "python",
    "javascript": "js",
    "javascriptreact": "js",
    "typescript": "js",
    "typescriptreact": "js",
    "java": "java",
    "c": "c",
    "cpp": "c",
    "go": "go",
    "rust": "rust",
}
KEYWORDS: dict[str, frozenset[str]] = {
    group: frozenset(words.split()) | frozenset(_COMMON.split())
    for group, words in _KEYWORDS_BY_GROUP.items()
}
"""Per language group: keywords and common builtins, never looked up."""
_DEFAULT_KEYWORDS = frozenset(_COMMON.split())


def language_group(language_id: str) -> str:
    """The group whose keywords and import syntax a language shares ("" if unknown)."""
    return _GROUPS.get(language_id, "")


def keywords(language_id: str) -> frozenset[str]:
    """Keywords and common builtins of `language_id`'s group."""
    return KEYWORDS.get(language_group(language_id), _DEFAULT_KEYWORDS)


_PY_NOISE = re.compile(
    r"#[^\n]*|[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"
    r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
)
_C_NOISE = re.compile(
    r"//[^\n]*|/\*[\s\S]*?\*/|`(?:\\.|[^`\\])*`|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'"
)
_RUST_NOISE = re.compile(r"//[^\n]*|/\*[\s\S]*?\*/|\"(?:\\.|[^\"\\])*\"")


def _blank(match: re.Match[str]) -> str:
    """The match as spaces, newlines kept (so offsets and lines do not move)."""
    found = match.group(0)
    if "\n" not in found:
        return " " * len(found)
    return "\n".join(" " * len(part) for part in found.split("\n"))


def scrub(text: str, language_id: str) -> str:
    """`text` with comments and string literals blanked out (same length, same lines).

    A regex, not a parser: good enough to keep words of prose out of definition lookups.
    """
    group = language_group(language_id)
    pattern = _PY_NOISE if group == "python" else _RUST_NOISE if group == "rust" else _C_NOISE
    return pattern.sub(_blank, text)


def _code_start(text: str, start: int, language_id: str) -> int:
    """`start`, moved past the end of a block string or comment that is open there."""
    if language_group(language_id) == "python":
        for quote in ('"""', "'''"):
            if text.count(quote, 0, start) % 2:
                end = text.find(quote, start)
                return len(text) if end < 0 else end + 3
        return start
    opened = text.rfind("/*", 0, start)
    if opened >= 0 and text.rfind("*/", 0, start) < opened:
        end = text.find("*/", start)
        return len(text) if end < 0 else end + 2
    return start


class Reference(msgspec.Struct, frozen=True):
    """An identifier used near the cursor (outside comments and strings)."""

    name: str
    distance: int
    """Lines between the cursor and the nearest use."""
    called: bool = False
    """Somewhere followed by ``(``."""
    attribute: bool = False
    """Somewhere preceded by ``.`` (or ``::``, ``->``)."""
    receivers: tuple[str, ...] = ()
    """Of the receiver names asked about and the capitalized names, those right before the
    ``.`` of its attribute uses (``self``, a module alias, a type)."""


_CALLED = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]*)\s*(?:!\s*)?\(")
_ATTRIBUTE = re.compile(r"(?:\.|::|->)\s*([A-Za-z_$][\w$]*)")
_AFTER_RECEIVER = re.compile(r"[ \t]*(?:\.|::|->)[ \t]*([A-Za-z_$][\w$]*)")


_RECEIVER_USE = re.compile(
    r"(?<![\w$.])([A-Za-z_$][\w$]*)(?=[ \t]*(?:\.|::|->)[ \t]*([A-Za-z_$][\w$]*))"
)
"""An identifier used as a receiver, and the attribute after it (``self.name``, ``T::new``)."""


class _LineFacts(msgspec.Struct, frozen=True):
    names: tuple[str, ...]
    """Identifiers, each once, in order."""
    called: frozenset[str]
    attributes: frozenset[str]
    receivers: tuple[tuple[str, str], ...]
    """(receiver, attribute) pairs, in order."""


@functools.lru_cache(maxsize=1 << 15)
def _line_facts(line: str) -> _LineFacts:
    """What `references` needs of one line, comments and strings blanked (cached: the lines
    around a cursor are the same from one keystroke to the next)."""
    return _LineFacts(
        tuple(dict.fromkeys(IDENTIFIER.findall(line))),
        frozenset(_CALLED.findall(line)),
        frozenset(_ATTRIBUTE.findall(line)),
        tuple(_RECEIVER_USE.findall(line)),
    )


def references(
    text: str,
    offset: int,
    language_id: str,
    *,
    lines_before: int = 40,
    lines_after: int = 15,
    min_length: int = 2,
    receiver_names: Collection[str] = (),
) -> list[Reference]:
    """Identifiers in the code around the cursor, nearest first.

    Lines are visited outwards from the cursor's (the cursor line, then one above and one
    below, and so on, the line above first); within a line, left to right. Comments and
    strings are skipped; so are keywords, common builtins (unless used as attributes), names
    shorter than `min_length`,
    and the word right before the cursor when it is still being typed (it occurs nowhere
    else). `Reference.receivers` lists which of `receiver_names` (``self``, module aliases)
    and of the capitalized identifiers (types: ``Stack::new``, ``Config.load``) appear right
    before its attribute uses. A call or an attribute use is seen within one line.
    """
    skip = keywords(language_id)
    line_start = text.rfind("\n", 0, offset) + 1
    start = line_start
    for _ in range(lines_before):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    end = text.find("\n", offset)
    for _ in range(lines_after):
        if end < 0:
            break
        end = text.find("\n", end + 1)
    end = len(text) if end < 0 else end
    start = min(_code_start(text, start, language_id), line_start)
    region = scrub(text[start:end], language_id)
    cursor = offset - start
    facts = [_line_facts(line) for line in region.split("\n")]
    called: set[str] = set().union(*(f.called for f in facts))
    attributes: set[str] = set().union(*(f.attributes for f in facts))
    typing = _word_before(region, cursor, line_start - start)
    here = region.count("\n", 0, cursor)
    seen: dict[str, int] = {}
    for distance in range(max(lines_before, lines_after) + 1):
        up, down = here - distance, here + distance
        if up < 0 and down >= len(facts):
            break
        for index in (up,) if distance == 0 else (up, down):
            limit = lines_before if index < here else lines_after
            if distance > limit or not 0 <= index < len(facts):
                continue
            for name in facts[index].names:
                if name in seen or len(name) < min_length:
                    continue
                if name in skip and name not in attributes:
                    continue  # a keyword or a builtin (but `x.print(` is a method)
                seen[name] = distance
    wanted = {*receiver_names, *(n for n in seen if n[0].isupper())}
    receivers: dict[str, list[str]] = {}
    for f in facts:
        for receiver, attribute in f.receivers:
            if receiver in wanted:
                got = receivers.setdefault(attribute, [])
                if receiver not in got:
                    got.append(receiver)
    if typing and seen.get(typing) == 0 and _whole_words(region, typing) <= 1:
        del seen[typing]
    return [
        Reference(
            name,
            distance,
            called=name in called,
            attribute=name in attributes,
            receivers=tuple(receivers.get(name, ())),
        )
        for name, distance in seen.items()
    ]


def _whole_words(text: str, word: str) -> int:
    """How often `word` occurs in `text` as a whole identifier (cheap when it is rare)."""
    if text.count(word) <= 1:
        return text.count(word)
    return len(re.findall(rf"(?<![\w$]){re.escape(word)}(?![\w$])", text))


def _word_before(text: str, offset: int, line_start: int) -> str:
    """The identifier characters right before `offset` (not crossing the line start)."""
    i = offset
    while i > line_start and (text[i - 1].isalnum() or text[i - 1] in "_$"):
        i -= 1
    if offset < len(text) and (text[offset].isalnum() or text[offset] in "_$"):
        return ""  # inside a word: it is not being typed at its end
    return text[i:offset]


def _outwards(
    text: str, offset: int, lines_before: int, lines_after: int
) -> Iterator[tuple[int, str]]:
    """(distance, line) for the cursor line, then alternately the lines above and below."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    end = len(text) if end < 0 else end
    yield 0, text[start:end]
    up_end, down_start = start - 1, end + 1
    for distance in range(1, max(lines_before, lines_after) + 1):
        if distance <= lines_before and up_end >= 0:
            up_start = text.rfind("\n", 0, up_end) + 1
            yield distance, text[up_start:up_end]
            up_end = up_start - 1
        if distance <= lines_after and down_start <= len(text):
            down_end = text.find("\n", down_start)
            down_end = len(text) if down_end < 0 else down_end
            yield distance, text[down_start:down_end]
            down_start = down_end + 1
        if up_end < 0 and down_start > len(text):
            return


class Import(msgspec.Struct, frozen=True):
    """One imported name: `name` as defined in `module`, bound locally as `alias`.

    A whole-module import (``import os``, Go packages, C includes) has `name` "" and `alias`
    the local name of the module.
    """

    name: str
    alias: str
    module: str
    line: int
    """0-based line of the import statement."""


_PY_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*(?:\\\n[^\n#;]*)*)",
    re.MULTILINE,
)
_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_JS_IMPORT = re.compile(
    r"^[ \t]*(?:import|export)[ \t]+(?:type[ \t]+)?([\w$*{}\s,]+?)[ \t\n]*from[ \t]*"
    r"""['"]([^'"]+)['"]""",
    re.MULTILINE,
)
_JS_REQUIRE = re.compile(
    r"(?:const|let|var)[ \t]+(\{[^}]*\}|[\w$]+)[ \t]*=[ \t]*require\(\s*['\"]([^'\"]+)['\"]\s*\)"
)
_JAVA_IMPORT = re.compile(r"^[ \t]*import[ \t]+(static[ \t]+)?([\w.]+)(\.\*)?[ \t]*;", re.MULTILINE)
_GO_IMPORT_BLOCK = re.compile(r"^import[ \t]*\(([^)]*)\)", re.MULTILINE)
_GO_IMPORT_LINE = re.compile(r"^import[ \t]+([\w.]+[ \t]+)?\"([^\"]+)\"", re.MULTILINE)
_GO_SPEC = re.compile(r"([\w.]+[ \t]+)?\"([^\"]+)\"")
_RUST_USE = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?use[ \t]+([^;]+);", re.MULTILINE)
_C_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]+)[\">]", re.MULTILINE)


def imports(text: str, language_id: str) -> list[Import]:
    """The names `text` imports, in file order. Unknown languages import nothing."""
    group = language_group(language_id)
    if group == "python":
        found = _python_imports(text)
    elif group == "js":
        found = _js_imports(text)
    elif group == "java":
        found = _java_imports(text)
    elif group == "go":
        found = _go_imports(text)
    elif group == "rust":
        found = _rust_imports(text)
    elif group == "c":
        line_of = _LineCounter(text)
        found = [
            Import("", _stem(m.group(1)), m.group(1), line_of(m.start()))
            for m in _matches(_C_INCLUDE, text, "include")
        ]
    else:
        found = []
    found.sort(key=lambda i: i.line)
    return found


def _matches(
    pattern: re.Pattern[str], text: str, *keywords: str, anchored: bool = True
) -> Iterator[re.Match[str]]:
    """Matches of `pattern` on the lines that contain one of `keywords`, in file order:
    matched at the line start (`anchored`) or searched for within the line. Finding the
    keyword is a C-speed scan, much faster than a multiline regex over a large file."""
    starts: set[int] = set()
    for keyword in keywords:
        pos = text.find(keyword)
        while pos >= 0:
            starts.add(text.rfind("\n", 0, pos) + 1)
            end = text.find("\n", pos)
            if end < 0:
                break
            pos = text.find(keyword, end)
    for start in sorted(starts):
        if anchored:
            m = pattern.match(text, start)
        else:
            end = text.find("\n", start)
            m = pattern.search(text, start, len(text) if end < 0 else end)
        if m is not None:
            yield m


class _LineCounter:
    """0-based line of an offset, counting on from the last one asked (offsets from one
    `finditer` increase)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 0

    def __call__(self, pos: int) -> int:
        if pos < self.pos:
            self.pos = self.line = 0
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _stem(path: str) -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return base.split(".", 1)[0]


def _split_alias(item: str, keyword: str) -> tuple[str, str]:
    """``a as b`` -> (a, b); ``a`` -> (a, a)."""
    parts = item.split()
    if len(parts) == 3 and parts[1] == keyword:
        return parts[0], parts[2]
    return (parts[0], parts[0]) if parts else ("", "")


def _python_imports(text: str) -> list[Import]:
    out: list[Import] = []
    line_of = _LineCounter(text)
    for m in _matches(_PY_FROM, text, "import"):
        line = line_of(m.start())
        module = m.group(1)
        names = m.group(2).strip().strip("()").replace("\\\n", " ")
        for raw in names.split(","):
            item = raw.split("#", 1)[0].strip()
            if not item or item == "*":
                continue
            name, alias = _split_alias(item, "as")
            if name.isidentifier():
                out.append(Import(name, alias, module, line))
    for m in _matches(_PY_IMPORT, text, "import"):
        line = line_of(m.start())
        for raw in m.group(1).split(","):
            module, alias = _split_alias(raw.strip(), "as")
            if module and all(p.isidentifier() for p in module.split(".")):
                if alias == module:
                    alias = module.split(".", 1)[0]
                out.append(Import("", alias, module, line))
    return out


def _js_imports(text: str) -> list[Import]:
    out: list[Import] = []
    line_of = _LineCounter(text)
    for m in _matches(_JS_IMPORT, text, "import", "export"):
        line = line_of(m.start())
        clause, module = m.group(1), m.group(2)
        braces = re.search(r"\{([^}]*)\}", clause)
        if braces:
            for raw in braces.group(1).split(","):
                item = raw.strip().removeprefix("type ").strip()
                name, alias = _split_alias(item, "as")
                if name and name != "default":
                    out.append(Import(name, alias, module, line))
            clause = clause[: braces.start()] + clause[braces.end() :]
        for raw in clause.split(","):
            item = raw.strip()
            if item.startswith("*"):
                _, alias = _split_alias(item, "as")
                out.append(Import("", alias, module, line))
            elif item and IDENTIFIER.fullmatch(item):
                # A default import is usually named after what the module exports.
                out.append(Import(item, item, module, line))
    for m in _matches(_JS_REQUIRE, text, "require", anchored=False):
        line = line_of(m.start())
        target, module = m.group(1), m.group(2)
        if target.startswith("{"):
            for raw in target.strip("{}").split(","):
                item = raw.strip()
                name, _, alias = item.partition(":")
                name = name.strip()
                if name:
                    out.append(Import(name, alias.strip() or name, module, line))
        else:
            out.append(Import("", target, module, line))
    return out


def _java_imports(text: str) -> list[Import]:
    out: list[Import] = []
    line_of = _LineCounter(text)
    for m in _matches(_JAVA_IMPORT, text, "import"):
        line = line_of(m.start())
        path = m.group(2)
        if m.group(3):  # wildcard: a package (or a class's static members)
            out.append(Import("", path.rsplit(".", 1)[-1], path, line))
            continue
        module, _, name = path.rpartition(".")
        out.append(Import(name, name, module, line))
    return out


def _go_imports(text: str) -> list[Import]:
    out: list[Import] = []
    line_of = _LineCounter(text)
    for m in _matches(_GO_IMPORT_BLOCK, text, "import"):
        base = m.start(1)
        for spec in _GO_SPEC.finditer(m.group(1)):
            line = line_of(base + spec.start())
            out.append(_go_import(spec.group(1), spec.group(2), line))
    for m in _matches(_GO_IMPORT_LINE, text, "import"):
        out.append(_go_import(m.group(1), m.group(2), line_of(m.start())))
    return out


def _go_import(alias: str | None, path: str, line: int) -> Import:
    name = (alias or "").strip()
    if not name or name in ("_", "."):
        name = path.rstrip("/").rsplit("/", 1)[-1]
    return Import("", name, path, line)


def _rust_imports(text: str) -> list[Import]:
    out: list[Import] = []
    line_of = _LineCounter(text)
    for m in _matches(_RUST_USE, text, "use"):
        line = line_of(m.start())
        tree = re.sub(r"\s*([{},]|::)\s*", r"\1", re.sub(r"\s+", " ", m.group(1).strip()))
        for path, alias in _rust_use_tree(tree):
            module, _, name = path.rpartition("::")
            if name == "self":
                module, _, name = module.rpartition("::")
                full = f"{module}::{name}" if module else name
                out.append(Import("", alias or name, full, line))
            elif name and name != "*":
                out.append(Import(name, alias or name, module, line))
    return out


def _rust_use_tree(tree: str, base: str = "") -> list[tuple[str, str]]:
    """Flatten ``a::b::{C,D as E,f::{G}}`` into (path, alias) pairs."""
    brace = tree.find("{")
    if brace < 0:
        path, _, alias = tree.partition(" as ")
        return [(base + path.strip(), alias.strip())]
    head, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    out: list[tuple[str, str]] = []
    depth, start = 0, 0
    for i, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:i]
            if part:
                out.extend(_rust_use_tree(part, base + head))
            start = i + 1
    return out


__all__ = [
    "IDENTIFIER",
    "KEYWORDS",
    "Import",
    "Reference",
    "imports",
    "keywords",
    "language_group",
    "references",
    "scrub",
]
