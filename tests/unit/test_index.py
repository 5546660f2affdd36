"""The workspace index: definitions, the on-disk cache, live updates, open documents, search."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from lsp_server.workspace import index as index_module
from lsp_server.workspace.index import IndexStats, WorkspaceIndex, word_form
from lsp_server.workspace.symbols import Symbol
from lsp_server.workspace.walk import FileStat, walk


def make(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def names(symbols: list[Symbol]) -> list[str]:
    return [s.name for s in symbols]


REPO = {
    ".gitignore": "generated/\n",
    "geometry.py": (
        "RATIO = 2\n\n\n"
        "def area_of(shape):\n"
        '    """The area."""\n'
        "    return shape.area()\n\n\n"
        "class Square:\n"
        "    def perimeter(self):\n"
        "        return 4\n"
    ),
    "pkg/util.py": "def helper():\n    pass\n",
    "src/main.go": "package main\n\nfunc Serve() {}\n",
    "web/app.ts": "export function renderPage(): void {}\n",
    "generated/out.py": "def hidden_function():\n    pass\n",
    "notes.txt": "def not_code(): pass\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make(root, REPO)
    return root


def new_index(root: Path, cache: Path | None = None, **kwargs: object) -> WorkspaceIndex:
    return WorkspaceIndex([root], cache_dir=cache, workers=0, **kwargs)  # type: ignore[arg-type]


def test_build_finds_definitions(repo: Path) -> None:
    idx = new_index(repo)
    stats = idx.build()
    assert stats.files == 4
    assert stats.parsed == 4 and stats.reused == 0
    assert stats.symbols == idx.symbol_count >= 6
    assert {p.relative_to(repo).as_posix() for p in idx.files()} == {
        "geometry.py",
        "pkg/util.py",
        "src/main.go",
        "web/app.ts",
    }
    (area,) = idx.definitions("area_of")
    assert area.path == str(repo / "geometry.py")
    assert area.container == ""
    (perimeter,) = idx.definitions("perimeter")
    assert perimeter.container == "Square"
    assert idx.definitions("Serve")[0].language == "go"
    assert idx.definitions("renderPage")[0].language == "typescript"
    assert idx.definitions("hidden_function") == []
    assert idx.search("hidden") == []
    assert "Square" in names(idx.symbols_in(repo / "geometry.py"))
    assert idx.symbols_in(repo / "nope.py") == []


def test_progress_reports_the_end(repo: Path) -> None:
    reports: list[tuple[int, int]] = []
    new_index(repo).build(progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (4, 4)
    assert all(done <= total for done, total in reports)


def test_cache_is_reused_and_only_changes_reparsed(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = new_index(repo, cache).build()
    assert (first.parsed, first.reused) == (4, 0)
    assert len(list(cache.iterdir())) == 1

    warm_index = new_index(repo, cache)
    warm = warm_index.build()
    assert (warm.parsed, warm.reused, warm.files, warm.symbols) == (0, 4, 4, first.symbols)
    assert names(warm_index.definitions("area_of")) == ["area_of"]

    util = repo / "pkg" / "util.py"
    util.write_text("def helper():\n    pass\n\n\ndef helper_two():\n    pass\n")
    st = util.stat()
    os.utime(util, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    (repo / "web" / "app.ts").unlink()
    third_index = new_index(repo, cache)
    third = third_index.build()
    assert (third.parsed, third.reused, third.files) == (1, 2, 3)
    assert names(third_index.definitions("helper_two")) == ["helper_two"]
    assert third_index.definitions("renderPage") == []


def test_rebuild_in_the_same_process_reuses_memory(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    again = idx.build()
    assert (again.parsed, again.reused) == (0, 4)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not msgpack at all \xff\xfe", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(msgspec.msgpack.encode([0, "x", "/", {}]), id="old-format"),
        pytest.param(msgspec.msgpack.encode({"files": 3}), id="other-shape"),
    ],
)
def test_corrupt_or_old_cache_is_ignored(repo: Path, tmp_path: Path, content: bytes) -> None:
    cache = tmp_path / "cache"
    new_index(repo, cache).build()
    (cache_file,) = cache.iterdir()
    cache_file.write_bytes(content)
    stats = new_index(repo, cache).build()
    assert (stats.parsed, stats.reused, stats.files) == (4, 0, 4)
    assert new_index(repo, cache).build().reused == 4  # rewritten


def test_cache_of_another_root_is_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    make(tmp_path / "a", {"x.py": "def a(): pass\n"})
    make(tmp_path / "b", {"x.py": "def b(): pass\n"})
    new_index(tmp_path / "a", cache).build()
    idx = new_index(tmp_path / "b", cache)
    assert idx.build().parsed == 1
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize("fault", ["full", "not a directory"])
def test_an_unwritable_cache_degrades_to_no_cache(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    cache = tmp_path / "cache"
    if fault == "full":

        def full(target: Path, data: bytes) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

        monkeypatch.setattr(index_module, "_write_atomic", full)
    else:
        cache.write_text("a file, not a directory")
    idx = new_index(repo, cache)
    stats = idx.build()
    assert stats.files == 4 and names(idx.search("area_of")) == ["area_of"]
    assert idx.cache_error is not None and str(cache) in idx.cache_error
    assert idx.cache_dir is None  # no further tries on every save
    idx.save()  # and saving again is quiet
    if fault == "full":
        assert not cache.exists()


def test_binary_and_oversized_files_are_not_indexed(tmp_path: Path) -> None:
    make(tmp_path, {"ok.py": "def ok(): pass\n", "big.py": "def big(): pass\n" + "#" * 5000})
    (tmp_path / "bin.py").write_bytes(b"def binary(): pass\n\0")
    idx = new_index(tmp_path, max_file_bytes=1000)
    assert idx.build().files == 1
    assert names(idx.search("big")) == names(idx.search("binary")) == []


def test_file_deleted_mid_index(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_walk = walk
    victim = repo / "pkg" / "util.py"

    def walk_then_delete(*args: object, **kwargs: object) -> Iterator[FileStat]:
        yield from real_walk(*args, **kwargs)  # type: ignore[arg-type]
        victim.unlink()  # after the walk saw it, before it is parsed

    monkeypatch.setattr(index_module, "walk", walk_then_delete)
    idx = new_index(repo)
    stats = idx.build()
    assert stats.files == 3
    assert idx.definitions("helper") == []


def test_parallel_build_matches_serial(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        make(repo, {f"many/m{i}.py": f"def func_{i}():\n    pass\n\n\nclass K{i}:\n    pass\n"})
    serial = new_index(repo)
    serial.build()
    monkeypatch.setattr(index_module, "PARALLEL_MIN_FILES", 2)
    parallel = WorkspaceIndex([repo], workers=2)
    stats = parallel.build()
    assert stats.parsed == 10
    for path in serial.files():
        assert parallel.symbols_in(path) == serial.symbols_in(path)


def test_cancelled_build(repo: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    idx = new_index(repo, tmp_path / "cache")
    stats = idx.build(cancel=cancel)
    assert stats.cancelled
    assert stats.files == 0
    assert idx.build().files == 4
    stats = idx.build(cancel=cancel)  # a cancelled rebuild keeps the index it had
    assert (stats.cancelled, stats.files) == (True, 4)
    assert names(idx.definitions("area_of")) == ["area_of"]


def test_cancel_midway_caches_the_parsed_files(repo: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    progress: list[int] = []

    def report(done: int, total: int) -> None:
        progress.append(done)
        if done >= 1:
            cancel.set()

    stats = new_index(repo, tmp_path / "cache").build(report, cancel)
    assert stats.cancelled and stats.parsed < 4
    again = new_index(repo, tmp_path / "cache").build()
    assert again.reused == stats.parsed >= 1
    assert again.files == 4


def test_update_and_remove(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    util = repo / "pkg" / "util.py"
    util.write_text("def renamed():\n    pass\n")
    idx.update_file(util)
    assert idx.definitions("helper") == []
    assert names(idx.definitions("renamed")) == ["renamed"]
    assert names(idx.search("renam")) == ["renamed"]

    new = repo / "pkg" / "new_module.py"
    new.write_text("class Fresh:\n    pass\n")
    idx.update_file(new)
    assert names(idx.search("Fresh")) == ["Fresh"]

    idx.remove_file(util)
    assert idx.search("renamed") == []
    idx.remove_file(repo / "pkg")  # a directory: everything under it
    assert idx.search("Fresh") == []
    assert {p.name for p in idx.files()} == {"geometry.py", "main.go", "app.ts"}


def test_update_of_ignored_gone_or_unsupported_files(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    idx.update_file(repo / "generated" / "out.py")
    idx.update_file(repo / "notes.txt")
    idx.update_file(repo / "missing.py")
    assert idx.search("hidden_function") == idx.search("not_code") == []
    (repo / "geometry.py").unlink()
    idx.update_file(repo / "geometry.py")
    assert idx.definitions("area_of") == []


def test_update_files_batch(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    (repo / "pkg" / "util.py").unlink()
    (repo / "pkg" / "util.py").parent.rmdir()
    make(repo, {"lib/a.py": "def alpha(): pass\n"})
    idx.update_files([repo / "lib" / "a.py"], deleted=[repo / "pkg"])
    assert names(idx.definitions("alpha")) == ["alpha"]
    assert idx.definitions("helper") == []


def test_open_document_wins_over_disk(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    util = repo / "pkg" / "util.py"
    idx.set_open(util, "def from_editor():\n    pass\n")
    assert names(idx.search("from_editor")) == ["from_editor"]
    assert idx.definitions("helper") == []

    util.write_text("def from_disk():\n    pass\n")
    idx.update_file(util)  # a disk event for an open file: ignored
    idx.remove_file(util)
    assert idx.search("from_disk") == []
    assert names(idx.definitions("from_editor")) == ["from_editor"]

    stats = idx.build()  # a rebuild keeps the editor's version too
    assert stats.files == 4
    assert idx.search("from_disk") == []

    idx.update_file(util, "def typed_more():\n    pass\n")
    assert names(idx.definitions("typed_more")) == ["typed_more"]

    idx.set_closed(util)
    assert names(idx.definitions("from_disk")) == ["from_disk"]
    assert idx.definitions("typed_more") == []


def test_open_document_outside_the_roots_and_unsaved(repo: Path, tmp_path: Path) -> None:
    idx = new_index(repo)
    idx.build()
    scratch = tmp_path / "scratch.py"
    idx.set_open(scratch, "def scratch_fn(): pass\n")
    assert names(idx.definitions("scratch_fn")) == ["scratch_fn"]
    idx.set_closed(scratch)  # never saved: gone
    assert idx.definitions("scratch_fn") == []


def test_open_ignored_document_is_not_indexed(repo: Path) -> None:
    idx = new_index(repo)
    idx.build()
    idx.set_open(repo / "generated" / "out.py", "def still_hidden(): pass\n")
    assert idx.definitions("still_hidden") == []


def test_open_documents_are_not_cached(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    idx = new_index(repo, cache)
    idx.build()
    idx.set_open(repo / "pkg" / "util.py", "def unsaved(): pass\n")
    idx.save()
    fresh = new_index(repo, cache)
    stats = fresh.build()
    assert (stats.parsed, stats.reused) == (1, 3)  # the open file is read from disk again
    assert fresh.definitions("unsaved") == []
    assert names(fresh.definitions("helper")) == ["helper"]


def test_changes_during_build_are_kept(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = new_index(repo)
    real_walk = walk
    util = repo / "pkg" / "util.py"

    def walk_and_edit(*args: object, **kwargs: object) -> Iterator[FileStat]:
        found = list(real_walk(*args, **kwargs))  # type: ignore[arg-type]
        idx.set_open(util, "def live_edit(): pass\n")  # while the build runs
        yield from found

    monkeypatch.setattr(index_module, "walk", walk_and_edit)
    idx.build()
    assert names(idx.definitions("live_edit")) == ["live_edit"]
    assert idx.definitions("helper") == []


SEARCH_REPO = {
    "a.py": (
        "def gcd(): pass\n"
        "def Gcd2(): pass\n"
        "def gcd_helper(): pass\n"
        "def get_current_dir(): pass\n"
        "def getCurrentDir(): pass\n"
        "def bigcatdog(): pass\n"
        "def ag_c_d(): pass\n"
        "def unrelated(): pass\n"
    ),
    "b.py": "class Runner:\n    def run(self): pass\n\n\ndef run(): pass\n\n\ndef runner(): pass\n",
}


@pytest.fixture
def searchable(tmp_path: Path) -> WorkspaceIndex:
    make(tmp_path, SEARCH_REPO)
    idx = new_index(tmp_path)
    idx.build()
    return idx


def test_search_ranks_exact_prefix_word_subsequence(searchable: WorkspaceIndex) -> None:
    assert names(searchable.search("gcd")) == [
        "gcd",  # exact
        "Gcd2",  # case-insensitive prefix, shorter first
        "gcd_helper",
        "getCurrentDir",  # word boundaries, shorter first
        "get_current_dir",
        "ag_c_d",  # plain subsequence
        "bigcatdog",
    ]


def test_search_prefers_top_level_then_shorter(searchable: WorkspaceIndex) -> None:
    found = searchable.search("run")
    assert [(s.name, s.container) for s in found] == [
        ("run", ""),
        ("run", "Runner"),
        ("Runner", ""),
        ("runner", ""),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("GETCD", ["getCurrentDir", "get_current_dir"], id="case-insensitive"),
        pytest.param("get_cur", ["get_current_dir", "getCurrentDir"], id="underscore-kept"),
        pytest.param("  gcd_h ", ["gcd_helper"], id="trimmed"),
        pytest.param("zzz", [], id="no-match"),
        pytest.param("unrelated", ["unrelated"], id="exact-only"),
    ],
)
def test_search_cases(searchable: WorkspaceIndex, query: str, expected: list[str]) -> None:
    assert names(searchable.search(query)) == expected


def test_search_limit_and_empty_query(searchable: WorkspaceIndex) -> None:
    assert names(searchable.search("gcd", limit=2)) == ["gcd", "Gcd2"]
    assert searchable.search("gcd", limit=0) == []
    everything = searchable.search("", limit=3)
    assert [(s.name, s.container) for s in everything] == [
        ("gcd", ""),
        ("run", ""),
        ("run", "Runner"),
    ]


def test_search_sees_names_added_later(searchable: WorkspaceIndex, tmp_path: Path) -> None:
    extra = tmp_path / "c.py"
    extra.write_text("def getCommonDenominator(): pass\ndef gxcxd(): pass\n")
    searchable.update_file(extra)
    found = names(searchable.search("gcd"))
    assert found.index("getCommonDenominator") < found.index("ag_c_d")
    assert found.index("gxcxd") > found.index("get_current_dir")
    assert names(searchable.search("getcommon")) == ["getCommonDenominator"]


def test_many_new_names_fold_into_the_search_table(tmp_path: Path) -> None:
    make(tmp_path, {"seed.py": "def seed(): pass\n"})
    idx = new_index(tmp_path)
    idx.build()
    for i in range(30):
        body = "".join(f"def generated_{i}_{j}(): pass\n" for j in range(20))
        make(tmp_path, {f"gen{i}.py": body})
        idx.update_file(tmp_path / f"gen{i}.py")
    wait_for(lambda: not idx._rebuilding and len(idx._state.table.names) > 256)
    assert len(idx.search("generated_", limit=1000)) == 600
    assert names(idx.search("generated_29_19")) == ["generated_29_19"]
    idx.remove_file(tmp_path / "gen0.py")
    assert idx.definitions("generated_0_1") == []
    assert "generated_0_1" not in names(idx.search("generated_0_1"))


def test_search_during_build(tmp_path: Path) -> None:
    make(tmp_path, {f"m{i}.py": f"def fn_{i}(): pass\n" for i in range(200)})
    idx = new_index(tmp_path)
    errors: list[BaseException] = []
    result: list[IndexStats] = []

    def run() -> None:
        try:
            result.append(idx.build())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        idx.search("fn_1")
        idx.definitions("fn_5")
    thread.join()
    assert not errors
    assert result[0].files == 200
    assert names(idx.search("fn_199")) == ["fn_199"]


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("get_current_dir", "get current dir"),
        ("getCurrentDir", "get current dir"),
        ("HTTPServer", "http server"),
        ("__init__", "init"),
        ("utf8_decode", "utf 8 decode"),
        ("MAX_SIZE", "max size"),
    ],
)
def test_word_form(name: str, form: str) -> None:
    assert word_form(name) == form
