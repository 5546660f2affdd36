"""The completion cache: exact hits, typing through a suggestion, never contradicting typing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.completion.cache import CompletionCache, remainders, typed_since

PREFIX = "def area(r):\n    return "
SUFFIX = "\n\nprint(area(2))\n"


def test_exact_hit_returns_the_items() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["3.14 * r * r", "math.pi * r ** 2"])
    hit = cache.get(PREFIX, SUFFIX)
    assert hit is not None
    assert hit.items == ("3.14 * r * r", "math.pi * r ** 2")
    assert hit.typed == ""
    assert cache.stats.exact == 1


def test_typing_through_returns_the_remainder() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["3.14 * r * r", "math.pi * r ** 2"])
    hit = cache.get(PREFIX + "math.", SUFFIX)
    assert hit is not None
    assert hit.items == ("pi * r ** 2",)  # the item that disagrees with the typing is gone
    assert hit.typed == "math."
    assert hit.origin == ("3.14 * r * r", "math.pi * r ** 2")
    assert cache.stats.forward == 1


def test_typing_something_else_misses() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["3.14 * r * r"])
    assert cache.get(PREFIX + "2", SUFFIX) is None
    assert cache.stats.misses == 1


def test_typing_the_whole_suggestion_leaves_nothing_to_show() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["r * r"])
    assert cache.get(PREFIX + "r * r", SUFFIX) is None


def test_other_suffix_or_tag_or_earlier_text_misses() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["r * r"], tag="python|auto")
    assert cache.get(PREFIX, SUFFIX + "x", tag="python|auto") is None
    assert cache.get(PREFIX, SUFFIX, tag="python|invoked") is None
    assert cache.get(PREFIX.replace("area", "size"), SUFFIX, tag="python|auto") is None
    assert cache.get(PREFIX[:-1], SUFFIX, tag="python|auto") is None  # backspaced past it


def test_latest_suggestion_wins() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["r * r"])
    cache.put(PREFIX + "r", SUFFIX, [" ** 2"])
    hit = cache.get(PREFIX + "r", SUFFIX)
    assert hit is not None and hit.items == (" ** 2",)


def test_empty_items_are_not_kept() -> None:
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, ["", ""])
    assert len(cache) == 0 and cache.get(PREFIX, SUFFIX) is None


def test_least_recently_used_entries_go_first() -> None:
    cache = CompletionCache(capacity=3)
    for i in range(3):
        cache.put(f"p{i}", f"s{i}", [f"x{i}"])
    assert cache.get("p0", "s0") is not None  # p0 becomes the most recent
    cache.put("p3", "s3", ["x3"])
    assert len(cache) == 3
    assert cache.get("p1", "s1") is None
    assert cache.get("p0", "s0") is not None
    assert cache.get("p3", "s3") is not None


def test_typed_since() -> None:
    assert typed_since("abcdef", 3, "abc") == "def"
    assert typed_since("abXdef", 3, "abc") is None
    assert typed_since("ab", 3, "abc") is None
    assert typed_since("abcdef", 3, "abc", suffix_matches=False) is None


def test_remainders() -> None:
    assert remainders(("foo()", "fob", "bar"), "fo") == ("o()", "b")
    assert remainders(("fo",), "fo") == ()


@given(
    items=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3),
    typed=st.text(max_size=8),
)
def test_never_contradicts_typing(items: list[str], typed: str) -> None:
    """What the cache shows plus what was typed is always one of the suggestions made."""
    cache = CompletionCache()
    cache.put(PREFIX, SUFFIX, items)
    hit = cache.get(PREFIX + typed, SUFFIX)
    if hit is None:
        assert not any(i.startswith(typed) and len(i) > len(typed) for i in items)
        return
    assert hit.typed == typed
    for shown in hit.items:
        assert shown and typed + shown in items
