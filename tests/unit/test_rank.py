"""Ranking candidates: a sample that rejoins the code after the cursor ranks first."""

from lsp_server.completion.pipeline import rejoins_suffix

SUFFIX = "\n    return total\n"


def test_model_went_on_with_the_suffix() -> None:
    raw = "for v in values:\n        total += v\n    return total\n"
    assert rejoins_suffix(raw, "for v in values:\n        total += v", SUFFIX)


def test_model_went_elsewhere() -> None:
    raw = "for v in values:\n        total += v\n    print(total)\n"
    assert not rejoins_suffix(raw, "for v in values:\n        total += v", SUFFIX)


def test_nothing_after_the_item_or_no_suffix() -> None:
    assert not rejoins_suffix("total = 0", "total = 0", SUFFIX)
    assert not rejoins_suffix("total = 0\nreturn total", "total = 0", "\n\n")
