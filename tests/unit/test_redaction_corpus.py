"""No planted secret reaches a model: completions, context from other files, fixes and test
generation, over a seeded corpus of 25+ file kinds, with a spy engine recording every prompt.

The spy stands in for the model only (it is behind the real engine boundary, `GuardedEngine`,
as `EngineHost.run` puts every engine); everything between the editor's text and the engine
is the real code. A second run with `privacy.redact = false` shows the spy would see them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.secret_corpus import (
    CorpusFile,
    clean_corpus,
    leaks,
    ordinary_code,
    planted_corpus,
    write,
)
from engine import EngineState, EngineStatus, GenerationChunk, GenerationRequest, RequestRecord
from engine.models.tiny_moe import SPECIAL_TOKENS, train_byte_level_bpe
from engine.profiles import get_profile
from engine.templates import template_for
from engine.tokenizer import HFTokenizer
from lsp_server.completion.pipeline import complete
from lsp_server.config import PrivacySettings, Settings
from lsp_server.engine_host import EngineHost
from lsp_server.fixes.propose import FixError, propose_fix, propose_tests
from lsp_server.privacy import PLACEHOLDER_PATTERN, Redactor
from lsp_server.privacy.guard import GuardedEngine
from lsp_server.workspace.service import WorkspaceService

CODE_LANGUAGES = {"python", "javascript", "typescript", "java", "go"}
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)


class SpyEngine:
    """Records every prompt; answers like a model would, echoing placeholders it was shown."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    @property
    def state(self) -> EngineState:
        return EngineState(EngineStatus.READY, "", "spy")

    async def start(self) -> None:
        pass

    def answer(self, prompt: str) -> str:
        if "Here are its unit tests" in prompt:
            return "def test_it():\n    assert True\n```"
        if "Here is the corrected" in prompt:
            blocks = FENCE.findall(prompt)
            code = blocks[-1] if blocks else "pass\n"
            comment = "#" if prompt.rstrip().endswith("```python") else "//"
            return code.rstrip("\n") + f"  {comment} checked\n```"
        shown = PLACEHOLDER_PATTERN.findall(prompt)
        return f"value = {shown[-1]}\n" if shown else "value = 1\n"

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.prompts.append(request.prompt)
        text = self.answer(request.prompt)
        for i in range(request.n):
            yield GenerationChunk(
                index=i, text=text, token_count=3, finished=True, finish_reason="stop"
            )

    def unfinished_requests(self) -> int:
        return 0

    def request_log(self) -> list[RequestRecord]:
        return []

    async def shutdown(self) -> None:
        pass


def _positions(f: CorpusFile) -> list[tuple[int, bool]]:
    """(offset, inside a secret) around every planted value: the end of its line, the start
    of the next line, and the middle of the value."""
    out: list[tuple[int, bool]] = []
    for _, value in f.planted:
        first = value.split("\n")[0]
        at = f.text.find(first)
        if at < 0:
            continue
        end = f.text.find("\n", at)
        end = len(f.text) if end < 0 else end
        out += [(end, False), (min(end + 1, len(f.text)), False), (at + len(first) // 2, True)]
    return out


async def _exercise(
    tmp_path: Path, settings: Settings
) -> tuple[SpyEngine, GuardedEngine, dict[str, Any]]:
    files = planted_corpus(seed=0)
    root = tmp_path / "ws"
    write(files, root)
    service = WorkspaceService([root], settings, tmp_path / "cache")
    service.index.build()
    tokenizer = HFTokenizer(
        train_byte_level_bpe([f.text for f in files], list(SPECIAL_TOKENS), 2000)
    )
    host = EngineHost(profile=get_profile("tiny-moe"), settings=settings)
    spy = SpyEngine()
    host.engine = host.guard(spy)
    host.template = template_for("deepseek")
    host.tokenizer = tokenizer
    assert host.ready
    for f in files:
        service.recent.touch((root / f.path).as_uri(), f.text, f.language_id)

    seen: dict[str, int] = {"completions": 0, "refused": 0, "fixes": 0, "tests": 0}
    for f in files:
        path = str(root / f.path)
        for offset, inside in _positions(f):
            result = await complete(
                host, f.text, offset, f.language_id, path=path, workspace=service, invoked=True
            )
            seen["completions"] += 1
            if inside and settings.privacy.redact:
                assert not result.items, (f.path, offset, result.items)
            for item in result.items:
                assert not PLACEHOLDER_PATTERN.search(item) or any(
                    m in f.text for m in PLACEHOLDER_PATTERN.findall(item)
                ), item
            seen["refused"] += not result.items
        if f.language_id not in CODE_LANGUAGES:
            continue
        for offset, inside in _positions(f):
            if inside:
                continue
            line = f.text.rfind("\n", 0, offset - 1) + 1
            try:
                proposal = await propose_fix(
                    host,
                    text=f.text,
                    language_id=f.language_id,
                    path=path,
                    start=line,
                    end=line,
                    workspace=service,
                )
            except FixError:
                continue
            seen["fixes"] += 1
            # The edit keeps the user's secrets: placeholders came back as the values.
            assert not PLACEHOLDER_PATTERN.search(proposal.new_text)
            for _, value in f.planted:
                for part in value.split("\n"):  # the spy's comment may split a key block
                    assert part in proposal.new_text, (f.path, part)
            try:
                await propose_tests(
                    host,
                    text=f.text,
                    language_id=f.language_id,
                    path=path,
                    offset=line + len(f.text[line:]) - len(f.text[line:].lstrip(" \t")),
                    read=lambda p: p.read_text() if p.is_file() else None,
                    workspace=service,
                )
                seen["tests"] += 1
            except FixError:
                pass
    service.stop()
    guard = host.engine
    assert isinstance(guard, GuardedEngine)
    return spy, guard, seen


async def test_no_planted_secret_reaches_any_prompt(tmp_path: Path) -> None:
    files = planted_corpus(seed=0)
    planted = [p for f in files for p in f.planted]
    assert len(planted) >= 250 and len({kind for kind, _ in planted}) >= 25

    spy, guard, seen = await _exercise(tmp_path, Settings())
    assert seen["completions"] >= 700 and seen["fixes"] >= 20 and seen["tests"] >= 10, seen
    assert len(spy.prompts) >= 500, len(spy.prompts)
    for prompt in spy.prompts:
        assert leaks(prompt, planted) == [], leaks(prompt, planted)[:3]
    # Context from other files was there (settings.py's values are imported by payments.py),
    # and shown redacted.
    assert any("<redacted:stripe" in p and "payments" in p for p in spy.prompts)
    assert guard.caught == 0, "every feature redacted its own prompts before the boundary"


async def test_without_redaction_the_spy_sees_the_secrets(tmp_path: Path) -> None:
    """The check above can fail: with `privacy.redact = false` the same run leaks."""
    settings = Settings(privacy=PrivacySettings(redact=False))
    spy, _, _ = await _exercise(tmp_path, settings)
    planted = [p for f in planted_corpus(seed=0) for p in f.planted]
    leaked = {kind for prompt in spy.prompts for kind, _ in leaks(prompt, planted)}
    assert len(leaked) >= 20, leaked


def test_a_clean_corpus_is_almost_untouched() -> None:
    redactor = Redactor()
    files = clean_corpus(seed=0) + ordinary_code()
    lines = sum(f.text.count("\n") + 1 for f in files)
    altered = 0
    for f in files:
        spans = redactor.redact(f.text).spans
        altered += len({f.text.count("\n", 0, s.start) for s in spans})
    assert lines >= 2000
    assert altered / lines <= 0.01, (altered, lines)


def test_every_planted_secret_is_found_in_its_file() -> None:
    redactor = Redactor()
    for f in planted_corpus(seed=0):
        assert leaks(redactor.redact(f.text).text, f.planted) == [], f.path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_leak_nothing_either(seed: int) -> None:
    redactor = Redactor()
    for f in planted_corpus(seed=seed):
        assert leaks(redactor.redact(f.text).text, f.planted) == [], (seed, f.path)
