"""File watching: disk events reach the index, debounced, coalesced, filtered."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lsp_server.workspace.index import WorkspaceIndex
from lsp_server.workspace.watcher import Watcher

TIMEOUT = 5.0


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


class Batches:
    """Collects what the watcher delivers."""

    def __init__(self) -> None:
        self.batches: list[tuple[set[Path], set[Path]]] = []
        self.lock = threading.Lock()

    def __call__(self, changed: set[Path], deleted: set[Path]) -> None:
        with self.lock:
            self.batches.append((set(changed), set(deleted)))

    @property
    def changed(self) -> set[Path]:
        with self.lock:
            return set().union(*(c for c, _ in self.batches))

    @property
    def deleted(self) -> set[Path]:
        with self.lock:
            return set().union(*(d for _, d in self.batches))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / ".gitignore").write_text("ignored/\n")
    (root / "pkg" / "mod.py").write_text("def original(): pass\n")
    return root


@pytest.fixture
def batches(root: Path) -> Iterator[tuple[Watcher, Batches]]:
    seen = Batches()
    watcher = Watcher([root], on_batch=seen, exclude=["**/node_modules/**"])
    watcher.start()
    assert watcher.watching
    yield watcher, seen
    watcher.stop()


def test_disk_changes_are_delivered_and_filtered(
    root: Path, batches: tuple[Watcher, Batches]
) -> None:
    _, seen = batches
    (root / "ignored").mkdir()
    (root / "ignored" / "x.py").write_text("def no(): pass\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("function no() {}\n")
    (root / "notes.txt").write_text("not code\n")
    (root / "pkg" / "new.py").write_text("def yes(): pass\n")
    wait_for(lambda: root / "pkg" / "new.py" in seen.changed)
    (root / "pkg" / "mod.py").unlink()
    wait_for(lambda: root / "pkg" / "mod.py" in seen.deleted)
    assert seen.changed == {root / "pkg" / "new.py"}


def test_events_are_coalesced_per_path(root: Path) -> None:
    seen = Batches()
    watcher = Watcher([root], on_batch=seen, quiet_s=0.2, settle_s=0.2)
    try:
        a, b = root / "pkg" / "a.py", root / "pkg" / "b.py"
        for _ in range(20):
            watcher.submit([a, b])
        watcher.submit([], [a])  # the latest event for a path wins
        wait_for(lambda: seen.batches)
        sentinel = root / "pkg" / "sentinel.py"
        watcher.submit([sentinel])
        wait_for(lambda: len(seen.batches) == 2)  # batches arrive in order
        assert seen.batches == [({b}, {a}), ({sentinel}, set())]
    finally:
        watcher.stop()


def test_continuous_events_are_still_delivered(root: Path) -> None:
    seen = Batches()
    watcher = Watcher([root], on_batch=seen, quiet_s=0.2, settle_s=0.2, max_wait_s=0.3)
    try:
        path = root / "pkg" / "busy.py"
        deadline = time.monotonic() + TIMEOUT
        while not seen.batches and time.monotonic() < deadline:
            watcher.submit([path])  # never quiet for 0.2 s
            time.sleep(0.01)
        assert seen.batches and seen.batches[0] == ({path}, set())
    finally:
        watcher.stop()


def test_submit_filters_like_the_disk(root: Path) -> None:
    seen = Batches()
    watcher = Watcher([root], on_batch=seen)
    try:
        watcher.submit(
            [root / "ignored" / "a.py", root / "readme.md", root / "pkg" / "ok.py"],
            [root / "ignored" / "b.py", root / "pkg" / "gone.py"],
        )
        wait_for(lambda: seen.batches)
        assert seen.batches == [({root / "pkg" / "ok.py"}, {root / "pkg" / "gone.py"})]
    finally:
        watcher.stop()


def test_failing_callback_does_not_stop_delivery(root: Path) -> None:
    calls: list[set[Path]] = []

    def on_batch(changed: set[Path], deleted: set[Path]) -> None:
        calls.append(changed)
        if len(calls) == 1:
            raise RuntimeError("boom")

    watcher = Watcher([root], on_batch=on_batch)
    try:
        watcher.submit([root / "pkg" / "one.py"])
        wait_for(lambda: len(calls) == 1)
        watcher.submit([root / "pkg" / "two.py"])
        wait_for(lambda: len(calls) == 2)
    finally:
        watcher.stop()


@pytest.fixture
def indexed(root: Path) -> Iterator[tuple[WorkspaceIndex, Watcher]]:
    index = WorkspaceIndex([root], workers=0)
    index.build()
    watcher = Watcher([root], index)
    watcher.start()
    yield index, watcher
    watcher.stop()


def test_unfinished_writes_wait_for_the_quiet_period(root: Path) -> None:
    seen = Batches()
    watcher = Watcher([root], on_batch=seen, quiet_s=60, settle_s=0.01)
    watcher.start()
    try:
        path = root / "pkg" / "slow.py"
        with path.open("w") as f:
            f.write("def half")
            f.flush()  # modified, not closed: the writer may go on
            watcher.submit([root / "pkg" / "sentinel.py"])  # complete, but the batch waits
            time.sleep(0.1)
            assert seen.batches == []
        wait_for(lambda: seen.batches)  # closed: delivered after settle_s
        assert seen.batches == [({path, root / "pkg" / "sentinel.py"}, set())]
    finally:
        watcher.stop()


def test_file_changed_on_disk_is_reindexed(
    root: Path, indexed: tuple[WorkspaceIndex, Watcher]
) -> None:
    index, _ = indexed
    assert index.definitions("original")
    (root / "pkg" / "mod.py").write_text("def rewritten(): pass\n")
    wait_for(lambda: index.definitions("rewritten"))
    assert index.definitions("original") == []
    (root / "pkg" / "fresh.py").write_text("class Fresh: pass\n")
    wait_for(lambda: index.search("Fresh"))


def test_atomic_save_by_rename_is_seen(root: Path, indexed: tuple[WorkspaceIndex, Watcher]) -> None:
    index, _ = indexed
    tmp = root / "pkg" / ".mod.py.tmp"
    tmp.write_text("def saved_by_rename(): pass\n")
    tmp.replace(root / "pkg" / "mod.py")
    wait_for(lambda: index.definitions("saved_by_rename"))


def test_directory_delete_and_move(
    root: Path, tmp_path: Path, indexed: tuple[WorkspaceIndex, Watcher]
) -> None:
    index, _ = indexed
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "lib.py").write_text("def moved_in(): pass\n")
    shutil.move(outside, root / "moved")
    wait_for(lambda: index.definitions("moved_in"))

    (root / "moved").rename(root / "renamed")
    wait_for(
        lambda: (
            [s.path for s in index.definitions("moved_in")]
            == [str(root / "renamed" / "deep" / "lib.py")]
        )
    )

    shutil.rmtree(root / "pkg")
    wait_for(lambda: not index.definitions("original"))
    shutil.move(root / "renamed", tmp_path / "gone")  # moved out of the workspace
    wait_for(lambda: not index.definitions("moved_in"))
    assert index.files() == []


def test_open_document_ignores_disk_events(
    root: Path, indexed: tuple[WorkspaceIndex, Watcher]
) -> None:
    index, _ = indexed
    mod = root / "pkg" / "mod.py"
    index.set_open(mod, "def in_editor(): pass\n")
    mod.write_text("def on_disk(): pass\n")
    (root / "pkg" / "marker.py").write_text("def marker(): pass\n")
    wait_for(lambda: index.definitions("marker"))  # the batch has been applied
    assert index.definitions("on_disk") == []
    assert index.definitions("in_editor")


def test_gitignore_change_applies_to_later_events(
    root: Path, indexed: tuple[WorkspaceIndex, Watcher]
) -> None:
    index, _ = indexed
    assert not index.rules.ignored(root / "pkg" / "secret_x.py")  # rules now loaded
    (root / ".gitignore").write_text("ignored/\nsecret_*.py\n")
    wait_for(lambda: index.rules.ignored(root / "pkg" / "secret_x.py"))
    (root / "pkg" / "secret_x.py").write_text("def secret(): pass\n")
    (root / "pkg" / "public.py").write_text("def public(): pass\n")
    wait_for(lambda: index.definitions("public"))
    assert index.definitions("secret") == []
