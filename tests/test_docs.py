"""The repository explains itself: no pointers to documents outside it, no broken anchors.

Code comments point to `docs/architecture.md#<anchor>` (or another page of docs/); every such
anchor must be a heading of that page, spelled the way GitHub makes heading anchors.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Built from parts, so this file does not mention what it looks for.
_WORD = "DES" + "IGN"
# The external design contract, however it was cited: `<word> §4`, `<word>.md`, `<word>'s`.
EXTERNAL_REFERENCE = re.compile(rf"\b{_WORD}\b")

# Applied SQL migrations cannot change: shared/db.py records each file's checksum and refuses
# to start when an applied file differs, so editing even a comment would stop every existing
# database. These comments predate the rule and stay as they are, word for word.
FROZEN_MENTIONS = {
    ("services/migration/migrations/0001_init.sql", f"-- {_WORD} Migration.name"),
    (
        "services/verification/migrations/0001_init.sql",
        f"-- One verification of one migration ({_WORD} §1 Verification, plus org, tables,"
        " progress).",
    ),
}

_SKIPPED_DIRS = {".git", ".venv", ".sensei", "node_modules", "__pycache__", "build"}


def _tracked_files() -> list[str]:
    """Paths (relative to the root) of the files under version control."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (e.g. an unpacked archive): every file but the usual clutter.
        return sorted(
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if path.is_file() and not _SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
        )
    return sorted(name for name in listed.decode().split("\0") if name)


def _text(path: str) -> str | None:
    try:
        return (ROOT / path).read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary, or deleted in the working tree


def _text_files() -> dict[str, str]:
    texts = {}
    for path in _tracked_files():
        text = _text(path)
        if text is not None:
            texts[path] = text
    return texts


TEXT_FILES = _text_files()


def test_files_are_found() -> None:
    assert "docs/architecture.md" in TEXT_FILES
    assert "shared/auth.py" in TEXT_FILES


def test_no_source_file_points_to_the_external_design_document() -> None:
    found = []
    for path, text in TEXT_FILES.items():
        if path.startswith("sensei/"):
            continue  # generated from protos/, which this test covers
        for number, line in enumerate(text.splitlines(), 1):
            if EXTERNAL_REFERENCE.search(line) and not _frozen(path, line):
                found.append(f"{path}:{number}: {line.strip()}")
    assert not found, (
        "point to docs/architecture.md#<anchor>, the proto or another docs/ page instead:\n"
        + "\n".join(found)
    )


def _frozen(path: str, line: str) -> bool:
    return (path, _trailing_comment(line)) in FROZEN_MENTIONS


def _trailing_comment(line: str) -> str:
    position = line.find("--")
    return line[position:].rstrip() if position >= 0 else ""


def test_the_frozen_mentions_are_still_there() -> None:
    # When one goes (say, a squashed migration history), drop it from FROZEN_MENTIONS.
    for path, comment in FROZEN_MENTIONS:
        comments = {_trailing_comment(line) for line in TEXT_FILES[path].splitlines()}
        assert comment in comments, path


# --- anchors ------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# `docs/<page>.md#anchor`, `<page>.md#anchor` (from docs/ itself) and `../docs/<page>.md#...`.
_PAGE_REFERENCE = re.compile(r"(?<![\w.-])(?:(?:\.\./)?docs/)?([a-z0-9][a-z0-9_-]*)\.md#([\w-]+)")
_SAME_PAGE_REFERENCE = re.compile(r"\]\(#([\w-]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: text only, lower case, punctuation dropped, spaces
    to hyphens (`Who calls whom` → `who-calls-whom`)."""
    text = _LINK.sub(r"\1", heading).replace("`", "")
    text = text.strip().lower()
    text = "".join(char for char in text if char.isalnum() or char in " -_")
    return text.replace(" ", "-")


def anchors_of(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown page (repeats get `-1`, `-2`, ... as on GitHub)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def test_github_anchor_spelling() -> None:
    assert github_anchor("Who calls whom") == "who-calls-whom"
    assert github_anchor("The `jobs` table, FOR UPDATE SKIP LOCKED!") == (
        "the-jobs-table-for-update-skip-locked"
    )
    assert github_anchor("Signing keys: rotation & revocation") == (
        "signing-keys-rotation--revocation"
    )
    assert anchors_of("# A\n```sh\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def _references() -> list[tuple[str, str, str]]:
    """(file, page, anchor) of every anchor link to a page of docs/."""
    found = []
    for path, text in TEXT_FILES.items():
        for match in _PAGE_REFERENCE.finditer(text):
            page, anchor = match.groups()
            if (DOCS / f"{page}.md").is_file():
                found.append((path, page, anchor))
        if path.startswith("docs/") and path.endswith(".md"):
            page = Path(path).stem
            found.extend((path, page, anchor) for anchor in _SAME_PAGE_REFERENCE.findall(text))
    return found


REFERENCES = _references()


def test_code_points_into_the_architecture_document() -> None:
    pointers = {path for path, page, _ in REFERENCES if page == "architecture"}
    assert "services/org/domain/users.py" in pointers


@pytest.mark.parametrize(
    ("path", "page", "anchor"), REFERENCES, ids=[f"{p}->{d}#{a}" for p, d, a in REFERENCES]
)
def test_every_docs_anchor_referenced_exists(path: str, page: str, anchor: str) -> None:
    headings = anchors_of((DOCS / f"{page}.md").read_text(encoding="utf-8"))
    assert anchor in headings, f"{path} points to docs/{page}.md#{anchor}, which has no heading"
