"""Context reuse while a word is typed (`lsp_server.context.memo`, `prompt_with_context`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.templates import DEEPSEEK
from engine.tokenizer import HFTokenizer
from lsp_server.context.gather import ContextMemo, RepoContext, prompt_with_context
from lsp_server.context.memo import WordMemo, word_start
from lsp_server.privacy.redact import redactor_for
from lsp_server.workspace.index import WorkspaceIndex
from tests.unit.test_context_repo import SIGNATURE, blanked_call, index_of

pytest_plugins = ["tests.unit.test_context_repo"]


@pytest.mark.parametrize(
    ("text", "offset", "start"),
    [
        ("x = comp", 8, 4),
        ("x = comp)", 8, 4),
        ("x = comp_2", 10, 4),
        ("x = co|mp", 6, 4),  # `|` is no identifier: `co` ends here
        ("x = comp", 6, 6),  # inside a word: nothing is being typed at its end
        ("x = ", 4, 4),
        ("", 0, 0),
        ("a\nbc", 4, 2),  # never before the line
    ],
)
def test_word_start(text: str, offset: int, start: int) -> None:
    assert word_start(text, offset) == start


def test_memo_holds_while_only_the_word_grows() -> None:
    memo: WordMemo[str] = WordMemo()
    memo.put("doc", "s", "total = co\nrest", 10, "first")
    assert memo.get("doc", "s", "total = com\nrest", 11) == "first"
    assert memo.get("doc", "s", "total = compute\nrest", 15) == "first"
    assert memo.get("doc", "s", "total = c\nrest", 9) == "first"  # a letter taken back
    misses = memo.misses
    assert memo.get("doc", "s", "total = co(\nrest", 11) is None  # not a word character
    assert memo.get("doc", "s", "total = com\nrest!", 11) is None  # after the cursor
    assert memo.get("doc", "s", "totals = com\nrest", 12) is None  # before the word
    assert memo.get("doc", "other", "total = com\nrest", 11) is None  # another scope
    assert memo.get("other", "s", "total = com\nrest", 11) is None  # another document
    assert memo.misses == misses + 5


def test_memo_is_bounded() -> None:
    memo: WordMemo[int] = WordMemo(max_documents=2)
    for n in range(3):
        memo.put(f"doc{n}", None, "a", 1, n)
    assert memo.get("doc0", None, "a", 1) is None
    assert memo.get("doc2", None, "a", 1) == 2


def _prompt(
    index: WorkspaceIndex,
    tok: HFTokenizer,
    repo: Path,
    path: str,
    text: str,
    offset: int,
    memo: ContextMemo,
    *,
    redact: bool = False,
) -> tuple[str, RepoContext]:
    built, ctx = prompt_with_context(
        template=DEEPSEEK,
        tokenizer=tok,
        path=path,
        text=text,
        offset=offset,
        language_id="python",
        index=index,
        recent=None,
        budget_tokens=400,
        context_tokens=200,
        root=str(repo),
        redactor=redactor_for(True, {}, []) if redact else None,
        memo=memo,
    )
    return built.text, ctx


@pytest.mark.parametrize("redact", [False, True])
def test_a_typed_word_reuses_the_context_of_its_first_letter(
    repo: Path, tmp_path: Path, tok: HFTokenizer, redact: bool
) -> None:
    index = index_of(repo, tmp_path)
    path, text, offset = blanked_call(repo)
    memo = ContextMemo()
    typed = ""
    contexts = []
    for ch in "total":
        typed += ch
        now = text[:offset] + typed + text[offset:]
        prompt, ctx = _prompt(index, tok, repo, path, now, offset + len(typed), memo, redact=redact)
        assert typed + text[offset:].split("\n")[0] in prompt  # the typed text itself is new
        contexts.append(ctx)
    assert (memo.misses, memo.hits) == (1, 4)
    assert SIGNATURE in contexts[0].snippets[0].text
    assert all(c.snippets == contexts[0].snippets for c in contexts)

    # Anything but the word: gathered again.
    now = text[:offset] + "total " + text[offset:]
    _prompt(index, tok, repo, path, now, offset + 6, memo, redact=redact)
    assert memo.misses == 2

    # The index changed: gathered again, and the change is seen.
    billing = repo / "shop" / "billing.py"
    billing.write_text(billing.read_text().replace("def compute_total(", "def compute_sum("))
    index.update_files([billing])
    now = text[:offset] + "total" + text[offset:]
    _prompt(index, tok, repo, path, now, offset + 5, memo, redact=redact)
    assert memo.misses == 3
    now = text[:offset] + "totals" + text[offset:]
    _, ctx = _prompt(index, tok, repo, path, now, offset + 6, memo, redact=redact)
    assert memo.hits == 5
    assert not any(SIGNATURE in s.text for s in ctx.snippets)
