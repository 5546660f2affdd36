"""Walking a workspace: .gitignore rules, excludes, binary and large files, symlinks, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_server.workspace.walk import IgnoreRules, WorkspaceRules, walk


def make(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def walked(root: Path, **kwargs: object) -> set[str]:
    return {fs.path.relative_to(root).as_posix() for fs in walk([root], **kwargs)}  # type: ignore[arg-type]


TREE: dict[str, str | bytes] = {
    ".gitignore": "build/\n*_gen.py\n!keep_gen.py\n/top_only.py\n",
    "main.py": "x = 1\n",
    "top_only.py": "",
    "skip_gen.py": "",
    "keep_gen.py": "",
    "build/out.py": "",
    "README.md": "# not a supported language\n",
    "sub/.gitignore": "local.py\n!special_gen.py\n",
    "sub/top_only.py": "",
    "sub/local.py": "",
    "sub/other_gen.py": "",
    "sub/special_gen.py": "",
    "sub/deeper/local.py": "",
    "sub/deeper/lib.go": "package lib\n",
    "local.py": "",
    "node_modules/pkg/index.js": "",
    "web/node_modules/pkg/index.js": "",
    "web/app.ts": "",
    "secrets/key.py": "",
    "other/secrets/key.py": "",
    ".git/hooks/pre_commit.py": "",
    ".git/config": "",
}

EXPECTED = {
    "main.py",
    "keep_gen.py",
    "sub/top_only.py",
    "sub/special_gen.py",
    "sub/deeper/lib.go",
    "local.py",
    "web/app.ts",
    "other/secrets/key.py",
}

EXCLUDE = ["**/node_modules/**", "secrets/**"]


def test_gitignore_and_excludes(tmp_path: Path) -> None:
    make(tmp_path, TREE)
    assert walked(tmp_path, exclude=EXCLUDE) == EXPECTED


def test_excludes_are_optional(tmp_path: Path) -> None:
    make(tmp_path, TREE)
    assert walked(tmp_path) == EXPECTED | {
        "node_modules/pkg/index.js",
        "web/node_modules/pkg/index.js",
        "secrets/key.py",
    }


def test_ignored_agrees_with_walk(tmp_path: Path) -> None:
    make(tmp_path, TREE)
    rules = IgnoreRules(tmp_path, EXCLUDE)
    for rel in TREE:
        if rel.endswith((".py", ".go", ".ts", ".js")):
            assert rules.ignored(tmp_path / rel) == (rel not in EXPECTED), rel
    assert rules.ignored(tmp_path / "build", is_dir=True)
    assert not rules.ignored(tmp_path / "sub", is_dir=True)
    assert rules.ignored(tmp_path.parent / "elsewhere.py")  # outside the root


def test_workspace_rules_pick_the_deepest_root(tmp_path: Path) -> None:
    make(tmp_path, {"outer/.gitignore": "*.py\n", "outer/inner/a.py": ""})
    rules = WorkspaceRules([tmp_path / "outer", tmp_path / "outer" / "inner"])
    assert rules.rules_for(tmp_path / "outer/inner/a.py") is not None
    assert not rules.ignored(tmp_path / "outer/inner/a.py")  # judged by the inner root
    assert rules.ignored(tmp_path / "outer/b.py")
    assert not rules.ignored(tmp_path / "unrelated.py")


def test_changed_gitignore_is_reloaded_after_invalidate(tmp_path: Path) -> None:
    make(tmp_path, {".gitignore": "", "a.py": ""})
    rules = WorkspaceRules([tmp_path])
    assert not rules.ignored(tmp_path / "a.py")
    (tmp_path / ".gitignore").write_text("a.py\n")
    rules.invalidate(tmp_path / ".gitignore")
    assert rules.ignored(tmp_path / "a.py")


def test_binary_and_large_files_are_skipped(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "text.py": "x = 1\n",
            "binary.py": b"x = 1\n\0\0\0",
            "late_nul.py": b"#" * 9000 + b"\0",  # NUL after the sniffed head: text
            "big.py": "x = 1\n" * 100,
        },
    )
    assert walked(tmp_path, max_file_bytes=200) == {"text.py"}
    assert walked(tmp_path, max_file_bytes=10_000) == {"text.py", "late_nul.py", "big.py"}


def test_stat_results(tmp_path: Path) -> None:
    make(tmp_path, {"a.py": "abc"})
    (fs,) = walk([tmp_path])
    st = os.stat(tmp_path / "a.py")
    assert fs == (tmp_path / "a.py", 3, st.st_mtime_ns)


def test_symlink_loops_end_and_files_come_once(tmp_path: Path) -> None:
    make(tmp_path, {"pkg/mod.py": "", "pkg/sub/deep.py": ""})
    os.symlink(tmp_path, tmp_path / "pkg" / "sub" / "to_root")
    os.symlink(".", tmp_path / "pkg" / "self")
    os.symlink(tmp_path / "pkg", tmp_path / "alias")
    assert walked(tmp_path) in (
        {"pkg/mod.py", "pkg/sub/deep.py"},
        {"alias/mod.py", "alias/sub/deep.py"},
    )


def test_links_to_outside_the_root_and_broken_links_are_skipped(tmp_path: Path) -> None:
    """A repository's symlink must not make its reader's other files into context."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    make(outside, {"lib.py": "", "pkg/mod.py": ""})
    make(root, {"own/inner.py": ""})
    os.symlink(outside / "lib.py", root / "lib.py")
    os.symlink(outside / "pkg", root / "pkg")
    os.symlink(root / "own" / "inner.py", root / "alias.py")
    os.symlink(root / "missing.py", root / "broken.py")
    os.symlink(root / "nowhere", root / "broken_dir")
    # The inside alias is the same file as own/inner.py: walked once, by either path.
    assert walked(root) in ({"alias.py"}, {"own/inner.py"})
    rules = IgnoreRules(root)
    assert rules.ignored(root / "lib.py") and rules.ignored(root / "pkg" / "mod.py")
    assert not rules.ignored(root / "alias.py") and not rules.ignored(root / "own" / "inner.py")


def test_unreadable_directory_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, {"ok/a.py": "", "locked/b.py": ""})
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert walked(tmp_path) == {"ok/a.py"}


def test_file_deleted_while_walking(tmp_path: Path) -> None:
    make(tmp_path, {"a/one.py": "", "b/two.py": ""})
    it = walk([tmp_path])
    first = next(it)
    (tmp_path / "b" / "two.py").unlink()
    rest = list(it)
    assert first.path == tmp_path / "a" / "one.py"
    assert rest == []


def test_missing_root(tmp_path: Path) -> None:
    assert list(walk([tmp_path / "nope"])) == []
