"""The fix and test-generation logic around the edit model, with a scripted engine.

The engine here only replays answers a model could give; the real engine path is covered by
tests/lsp/test_code_actions.py and the `coder-lsp fix` test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from engine import EngineState, EngineStatus, GenerationChunk, GenerationRequest, RequestRecord
from engine.profiles import get_profile
from lsp_server.config import EngineSettings, ReviewSettings, Settings
from lsp_server.engine_host import EngineHost
from lsp_server.fixes.prompt import Problem
from lsp_server.fixes.propose import FixError, propose_fix, propose_tests
from lsp_server.workspace.service import WorkspaceService

BUGGY = '''"""Arithmetic."""


def mean(values):
    """The average of `values`."""
    total = 0
    for v in values:
        total += v
    return total / len(values) + 1


def other():
    return 2
'''
FIXED_FUNCTION = '''def mean(values):
    """The average of `values`."""
    total = 0
    for v in values:
        total += v
    return total / len(values)
'''


class ScriptedEngine:
    """Answers every request with the next scripted (text, finish_reason)."""

    def __init__(self, answers: list[tuple[str, str]]) -> None:
        self.answers = answers
        self.requests: list[GenerationRequest] = []

    @property
    def state(self) -> EngineState:
        return EngineState(EngineStatus.READY, "", "scripted")

    async def start(self) -> None:
        pass

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        text, reason = self.answers.pop(0)
        yield GenerationChunk(index=0, text=text[: len(text) // 2], token_count=1)
        yield GenerationChunk(
            index=0, text=text, token_count=2, finished=True, finish_reason=reason
        )

    def unfinished_requests(self) -> int:
        return 0

    def request_log(self) -> list[RequestRecord]:
        return []

    async def shutdown(self) -> None:
        pass


class WordTokenizer:
    def encode(self, text: str) -> list[int]:
        return [len(w) for w in text.split()]

    def single_token_id(self, text: str) -> int | None:
        return None


def host_with(
    engine: ScriptedEngine, settings: Settings | None = None, chat: str = "plain"
) -> EngineHost:
    """A ready host on `engine`, prompting in `chat`'s format (plain: a base model)."""
    profile = msgspec.structs.replace(get_profile("tiny-moe"), chat=chat)
    host = EngineHost(profile=profile, settings=settings or Settings())
    host.engine = engine
    host.tokenizer = WordTokenizer()
    return host


async def fix(host: EngineHost, path: str = "/ws/stats.py", **extra: object) -> object:
    line = BUGGY.index("return total")
    return await propose_fix(
        host,
        text=BUGGY,
        language_id="python",
        path=path,
        start=line,
        end=line,
        problems=[
            Problem(
                line=8,
                message="test_mean failed: assert 3.0 == 2.0",
                source="coder-lsp tests",
                details="Traceback (most recent call last):\n  ...\nAssertionError: 3.0 != 2.0",
            )
        ],
        **extra,  # type: ignore[arg-type]
    )


async def test_a_chatty_answer_becomes_a_minimal_edit_of_the_function() -> None:
    engine = ScriptedEngine([(FIXED_FUNCTION + "```\n\nThe `+ 1` was wrong.", "stop")])
    proposal = await fix(host_with(engine))

    assert proposal.new_text == BUGGY.replace(" + 1\n", "\n")  # type: ignore[attr-defined]
    (replacement,) = proposal.replacements  # type: ignore[attr-defined]
    assert BUGGY[replacement.start : replacement.end] == " + 1" and replacement.text == ""
    (request,) = engine.requests
    assert request.prompt.endswith("```python\n"), "the answer is prefilled with a fence"
    assert "\n```" in request.stop
    assert "Error: test_mean failed: assert 3.0 == 2.0\n" in request.prompt
    assert "AssertionError: 3.0 != 2.0" in request.prompt
    assert request.prompt.endswith("Here is the corrected function:\n\n```python\n")
    assert "def other" not in request.prompt, "only the enclosing function is sent"


async def test_instruction_models_are_asked_with_the_problem_line_quoted() -> None:
    engine = ScriptedEngine([(FIXED_FUNCTION, "stop")])
    await fix(host_with(engine, chat="deepseek"))
    prompt = engine.requests[0].prompt
    assert "- line 9 `return total / len(values) + 1`: test_mean failed" in prompt
    assert prompt.endswith("\n\nAssistant: ```python\n")


def workspace_with(root: Path, files: dict[str, str]) -> WorkspaceService:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    service = WorkspaceService([root], Settings(), root / ".index")
    service.index.build()
    return service


async def test_a_failing_assertion_is_fixed_in_the_function_it_calls(tmp_path: Path) -> None:
    test = "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 3]) == 2\n"
    workspace = workspace_with(tmp_path, {"stats.py": BUGGY, "tests/test_stats.py": test})
    engine = ScriptedEngine([(FIXED_FUNCTION, "stop")])
    line = test.index("assert")

    proposal = await propose_fix(
        host_with(engine),
        text=test,
        language_id="python",
        path=str(tmp_path / "tests" / "test_stats.py"),
        start=line,
        end=line,
        problems=[Problem(line=4, message="assert 3.0 == 2", source="coder-lsp tests")],
        workspace=workspace,
        read=lambda p: p.read_text(),
    )

    assert proposal.path == str(tmp_path / "stats.py")
    assert proposal.old_text == BUGGY and proposal.new_text == BUGGY.replace(" + 1\n", "\n")
    prompt = engine.requests[0].prompt
    assert "test from `tests/test_stats.py` that fails" in prompt
    assert "    assert mean([1, 3]) == 2" in prompt
    assert "Here is the buggy function it calls, from `stats.py`" in prompt


@pytest.mark.parametrize(
    ("answer", "reason", "message"),
    [
        pytest.param("def mean(values):\n    total = 0\n", "length", "cut at", id="cut-by-length"),
        pytest.param("def mean(values:\n    return 1\n", "stop", "does not parse", id="broken"),
        pytest.param("", "stop", "code", id="empty"),
    ],
)
async def test_answers_that_give_no_edit_say_why(answer: str, reason: str, message: str) -> None:
    with pytest.raises(FixError, match=message):
        await fix(host_with(ScriptedEngine([(answer, reason)])))


async def test_privacy_excluded_files_never_reach_the_model() -> None:
    engine = ScriptedEngine([(FIXED_FUNCTION, "stop")])
    with pytest.raises(FixError, match=r"privacy\.exclude"):
        await fix(host_with(engine), path="/ws/.env")
    assert engine.requests == []


async def test_an_engine_that_is_not_ready_is_a_message() -> None:
    host = EngineHost(profile=get_profile("tiny-moe"), settings=Settings())
    with pytest.raises(FixError, match="no edit model: the engine is starting"):
        await fix(host)


async def test_explain_and_fix_returns_the_explanation() -> None:
    answer = "The mean adds one too many.\n\n```python\n" + FIXED_FUNCTION + "```\n"
    engine = ScriptedEngine([(answer, "stop")])
    host = host_with(engine, chat="deepseek")  # an instruction model
    proposal = await fix(host, explain=True, selection=False)
    assert proposal.explanation == "The mean adds one too many."  # type: ignore[attr-defined]
    prompt = engine.requests[0].prompt
    assert prompt.startswith("<\uff5cbegin\u2581of\u2581sentence\uff5c>User: Fix the bug")
    assert prompt.endswith("\n\nAssistant: "), "explanations come before the code: no prefill"


async def test_generated_tests_go_to_the_projects_test_file(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    source = tmp_path / "stats.py"
    source.write_text(BUGGY)
    generated = "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 3]) == 2\n"
    engine = ScriptedEngine([(generated + "```", "stop")])
    settings = msgspec.structs.replace(Settings(), review=ReviewSettings())
    host = host_with(engine, settings)

    workspace = WorkspaceService([tmp_path], settings, tmp_path / ".index")
    proposal = await propose_tests(
        host,
        text=BUGGY,
        language_id="python",
        path=str(source),
        offset=BUGGY.index("total = 0"),
        read=lambda p: p.read_text() if p.exists() else None,
        workspace=workspace,
    )

    assert proposal.target.path == tmp_path / "tests" / "test_stats.py"
    assert proposal.old_text is None and "def test_mean" in proposal.new_text
    assert proposal.name == "mean"
    prompt = engine.requests[0].prompt
    assert "from stats import mean" in prompt and "def mean(values)" in prompt


async def test_a_separate_edit_model_starts_on_the_first_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(engine=EngineSettings(edit_model="instruct-model"))
    host = host_with(ScriptedEngine([]), settings)
    editor = ScriptedEngine([(FIXED_FUNCTION, "stop"), (FIXED_FUNCTION, "stop")])
    built: list[str | None] = []

    def build(progress: object, model: str | None = None) -> ScriptedEngine:
        built.append(model)
        return editor

    monkeypatch.setattr(host, "build_engine", build)
    monkeypatch.setattr(
        "lsp_server.engine_host.HFTokenizer.from_model", lambda path: WordTokenizer()
    )
    assert not host.shares_edit_engine
    await fix(host)
    await fix(host)
    assert built == ["instruct-model"], "started once, on the first fix"
    assert len(editor.requests) == 2 and host.engine.requests == []  # type: ignore[union-attr]
