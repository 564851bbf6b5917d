"""The code, its tests and docs stand alone: no pointers to a specification or issue tracker
outside the repository (a reader of the code cannot follow them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLACES = ("src", "docs", "deploy", "tests", "benchmarks", "loadtests", "scripts", "README.md")
HERE = Path(__file__).resolve()
SUFFIXES = {".py", ".md", ".yml", ".yaml", ".json", ".html", ".toml", ".ini", ".cfg", ".txt", ""}
# "SPEC" as a word (not SPECIAL_USE_...), a section sign, or "issue 12" / "issue #12".
FORBIDDEN = re.compile(r"\bSPEC\b|§|\bSPEC\.md\b|\b[Ii]ssues? #?\d+")


def _files() -> list[Path]:
    found: list[Path] = []
    for place in PLACES:
        path = ROOT / place
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        found += [
            p
            for p in candidates
            if p.suffix in SUFFIXES and "__pycache__" not in p.parts and p != HERE
        ]
    return found


def test_no_references_to_a_spec_or_issue_numbers() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
