"""Where a request's time goes, and what keeps the event loop free: stage marks, the trace of
a message, the loop-lag probe, background parsing, the recent documents' worker, the
incremental syntax check."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import tree_sitter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import timing
from lsp_server.completion.stages import Stages, Trace
from lsp_server.completion.syntax import count_errors, error_count
from lsp_server.context.similar import RecentDocuments
from lsp_server.loop_probe import LoopProbe
from lsp_server.workspace.documents import DocumentTrees
from lsp_server.workspace.languages import ts_language

REPO = Path(__file__).parent.parent / "fixtures" / "repo"
URI = "file:///doc.py"


def fresh(text: str) -> tree_sitter.Tree:
    lang = ts_language("python")
    assert lang is not None
    return tree_sitter.Parser(lang).parse(text.encode())


def test_stages_end_where_the_next_begins() -> None:
    stages = Stages(time.perf_counter() - 0.010)
    stages.mark("request")
    time.sleep(0.002)
    stages.mark("gate")
    stages.add("document", 1.5)
    stages.mark("gate")  # a stage may come back: its times add up
    assert list(stages.ms) == ["request", "gate", "document"]
    assert stages.ms["request"] >= 10
    assert 2 <= stages.ms["gate"] < 100
    assert stages.ms["document"] == 1.5
    assert "request" in str(stages)


def test_engine_marks_reach_the_caller_that_times_and_no_one_else() -> None:
    seen: list[str] = []
    timing.mark("engineQueue")  # nobody timing: nothing happens
    with timing.timed(seen.append):
        timing.mark("engineQueue")
    timing.mark("later")
    assert seen == ["engineQueue"]


class _Message:
    def __init__(self, id_: object, method: str | None = None) -> None:
        self.id = id_
        self.method = method


def test_a_trace_marks_the_response_only_for_its_own_answer() -> None:
    trace = Trace(time.perf_counter(), msg_id=7)
    trace.answered(_Message(7))  # no stages yet: nothing to mark
    trace.stages = Stages()
    trace.answered(_Message(8))  # another request's answer
    trace.answered(_Message(7, "window/logMessage"))  # a message from the server, not an answer
    assert "response" not in trace.stages.ms
    trace.answered(_Message(7))
    assert "response" in trace.stages.ms


async def test_the_loop_probe_sees_a_stall() -> None:
    probe = LoopProbe(2)
    probe.start()
    await asyncio.sleep(0.05)
    time.sleep(0.03)  # the loop is blocked for 30 ms
    await asyncio.sleep(0.02)
    lag = probe.read()
    probe.stop()
    assert lag["samples"] >= 5
    assert lag["max"] >= 20
    assert probe.read()["samples"] <= 1  # read starts counting afresh


async def test_background_parsing_keeps_each_slice_short_and_ends_in_the_right_tree() -> None:
    """An edit leaves the tree out of date until the parser has caught up, in slices between
    which the loop runs; the tree it ends with is a fresh parse's."""
    text = (REPO / "shapes" / "geometry.py").read_text(encoding="utf-8") * 40
    trees = DocumentTrees(background=True, slice_ms=0.2, idle_ms=0)
    trees.open(URI, "python", text)
    assert trees.tree(URI) is None  # not parsed yet
    ticks = 0

    async def count() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    await trees.settled()
    assert ticks > 3  # the loop ran between slices
    tree = trees.tree(URI)
    assert tree is not None and str(tree.root_node) == str(fresh(text).root_node)

    trees.change(URI, (3, 0), (3, 0), "x = f(\n")  # an open bracket: a long reparse
    text = trees.text(URI) or ""
    assert trees.tree(URI) is None
    got = await trees.current_tree(URI)
    counter.cancel()
    assert got is not None and str(got.root_node) == str(fresh(text).root_node)


async def test_a_newer_edit_restarts_a_parse_halted_midway() -> None:
    text = (REPO / "shapes" / "geometry.py").read_text(encoding="utf-8") * 40
    trees = DocumentTrees(background=True, slice_ms=0.05, idle_ms=0)
    trees.open(URI, "python", text)
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # a slice or two of the first parse
    trees.change(URI, (0, 0), (0, 0), "import os\n")
    await trees.settled()
    tree = trees.tree(URI)
    assert tree is not None
    assert str(tree.root_node) == str(fresh("import os\n" + text).root_node)


async def test_recent_documents_are_cut_in_the_background_and_kept_while_typed() -> None:
    clock = [0.0]
    recent = RecentDocuments(
        window_lines=2, stride=1, clock=lambda: clock[0], background=True, settle_s=0.5
    )
    recent.touch("a", "alpha_one = beta_two(gamma_three)\n", "python")
    deadline = time.monotonic() + 5
    while not recent.similar("beta_two(gamma_three)", "python"):
        assert time.monotonic() < deadline, "the new document was never cut"
        await asyncio.sleep(0.01)
    # Edited: the old windows serve until typing pauses.
    clock[0] = 0.1
    recent.touch("a", "delta_four = epsilon_five()\n", "python")
    await asyncio.sleep(0.05)
    assert recent.similar("beta_two(gamma_three)", "python")
    assert not recent.similar("epsilon_five()", "python")
    clock[0] = 1.0  # a pause in "a", but typing goes on in "b": nothing is cut yet
    recent.touch("b", "zeta_six = 1\n", "python")  # new: cut at once
    deadline = time.monotonic() + 5
    while not recent.similar("zeta_six", "python"):
        assert time.monotonic() < deadline, "the new document was never cut"
        await asyncio.sleep(0.01)
    assert not recent.similar("epsilon_five()", "python")
    clock[0] = 1.6  # typing paused everywhere (the worker looks again within settle_s)
    deadline = time.monotonic() + 5
    while not recent.similar("epsilon_five()", "python"):
        assert time.monotonic() < deadline, "the edited document was never cut again"
        await asyncio.sleep(0.01)
    assert not recent.similar("beta_two(gamma_three)", "python")
    recent.stop()


PIECES = ["x", "(", ")", ":", "\n", "    ", "def f():\n", "'", '"', "#", "[", "]", "return 1\n"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_incremental_error_counts_are_a_fresh_parses(data: st.DataObject) -> None:
    """The syntax check parses each text incrementally from the previous one; the counts of
    ERROR and MISSING nodes must be those of a parse from scratch."""
    text = (REPO / "shapes" / "geometry.py").read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        start = data.draw(st.integers(0, len(text)), label="start")
        end = min(len(text), start + data.draw(st.sampled_from([0, 0, 1, 3, 20]), label="n"))
        new = "".join(data.draw(st.lists(st.sampled_from(PIECES), max_size=4), label="new"))
        text = text[:start] + new + text[end:]
        assert error_count("python", text) == count_errors(fresh(text).root_node)


@pytest.mark.parametrize("text", ["", "x = (", "def f(:\n  pass\n"])
def test_error_counts_of_small_texts(text: str) -> None:
    assert error_count("python", text) == count_errors(fresh(text).root_node)


async def test_edits_while_a_long_parse_runs_do_not_start_it_over() -> None:
    """A document typed into faster than it can be parsed from scratch still gets trees: the
    parse goes on over the text it started with, and the edits made meanwhile are applied to
    its tree (a restart at every keystroke would never finish)."""
    text = (REPO / "shapes" / "geometry.py").read_text(encoding="utf-8") * 60
    trees = DocumentTrees(background=True, slice_ms=0.3, idle_ms=0)
    trees.open(URI, "python", text)
    seen_trees = 0
    for _ in range(200):
        for _ in range(6):  # a few slices of the parser (a parse from scratch takes ~50)
            await asyncio.sleep(0)
        seen_trees += trees.tree(URI) is not None
        trees.change(URI, (0, 0), (0, 0), "#\n")
    assert seen_trees > 0
    await asyncio.wait_for(trees.settled(), 30)
    tree = trees.tree(URI)
    assert tree is not None
    assert str(tree.root_node) == str(fresh("#\n" * 200 + text).root_node)
