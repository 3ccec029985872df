"""Every relative link in README.md and docs/*.md resolves: the file exists and, for a
``#anchor``, the target Markdown file has a heading with that GitHub anchor. Every file of
this repository a doc names in backticks (`tests/...`, `hack/...`, `core/planner.py`, ...)
exists.

GitHub's anchor of a heading: lowercased, every character but letters, digits, ``_``, ``-``
and spaces dropped, spaces turned into ``-``; a repeated anchor gets ``-1``, ``-2``, ...
Links inside fenced code blocks or code spans, and headings inside fenced code blocks, are
not links or headings and are skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+).+?\1")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `tests/unit/x.py`, `examples/fleet/`, `hack/bench.py:12`; a package's module by its own path.
_REPO_PATH = re.compile(
    r"`((?:tests|hack|examples|operator|charts|crds|docs)/[\w./-]+?)(?::\d+)?`"
    r"|`((?:api|core|reconciler|loop|clusters|providers|metrics|serving|gateway|sim|profile)"
    r"/[\w./-]+\.py)(?::\d+)?`"
)
# Paths of other projects that the docs cite by name (vLLM's metrics design notes).
_ELSEWHERE = {"docs/design/metrics.md"}


def _prose(text: str) -> str:
    return _FENCE.sub("", text)


def _links_text(text: str) -> str:
    return _CODE_SPAN.sub("", _prose(text))


def anchors(markdown: str) -> set[str]:
    """The GitHub anchors of a Markdown text's headings."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(_prose(markdown)):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(file: Path) -> list[str]:
    """The relative links of one Markdown file that do not resolve, as written."""
    broken = []
    for match in _LINK.finditer(_links_text(file.read_text())):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (file.parent / path) if path else file
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target} (no such heading)")
    return broken


def missing_paths(text: str, root: Path) -> list[str]:
    """The repository paths named in backticks in ``text`` that do not exist under ``root``."""
    missing = []
    for match in _REPO_PATH.finditer(text):
        named = match.group(1) or f"operator/modelfleet/{match.group(2)}"
        path = named.rstrip("/.")
        if path not in _ELSEWHERE and not (root / path).exists():
            missing.append(path)
    return missing


@pytest.mark.parametrize("file", DOC_FILES, ids=lambda f: str(f.relative_to(ROOT)))
def test_relative_links_resolve(file: Path) -> None:
    assert broken_links(file) == []


@pytest.mark.parametrize("file", DOC_FILES, ids=lambda f: str(f.relative_to(ROOT)))
def test_named_repository_files_exist(file: Path) -> None:
    assert missing_paths(file.read_text(), ROOT) == []


def test_a_missing_named_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "hack").mkdir()
    (tmp_path / "hack" / "there.py").write_text("")
    text = "`hack/there.py`, `hack/gone.py:12`, `core/gone.py`, `docs/design/metrics.md`"
    assert missing_paths(text, tmp_path) == ["hack/gone.py", "operator/modelfleet/core/gone.py"]


def test_the_docs_have_links_to_check() -> None:
    # A link pattern that stopped matching would pass every file above.
    readme = ROOT / "README.md"
    assert len(_LINK.findall(_links_text(readme.read_text()))) >= 10


def test_anchor_rules() -> None:
    text = "# Install on a real cluster\n## `modelfleet plan`: what-if\n## Zones\n## Zones\n"
    assert anchors(text) == {
        "install-on-a-real-cluster",
        "modelfleet-plan-what-if",
        "zones",
        "zones-1",
    }
    assert anchors("```\n# not a heading\n```\n") == set()


def test_a_broken_link_and_a_broken_anchor_are_reported(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# Real heading\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#real-heading) [gone](c.md) [typo](b.md#real-headin) "
        "[web](https://example.com/x.md) [self](#top) `[in](code)`\n# Top\n"
    )
    assert broken_links(page) == ["c.md (no such file)", "b.md#real-headin (no such heading)"]
