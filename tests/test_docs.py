"""The documents in docs/ stay true to the code: every `docs/<file>.md §N` cited in the repository names an existing
file and section, and the prompts docs/protocol.md quotes as part of the benchmark's definition are the code's."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED_SUFFIXES = {".py", ".md", ".sh", ".ipynb", ".toml", ".cfg", ".txt"}
SKIPPED_DIRS = {".venv", ".git", "build", "dist", "node_modules", "__pycache__", ".pytest_cache"}

NUMBER = r"\d+[a-z]?(?:\.\d+)*"
REF = rf"§\s?{NUMBER}(?:\s?[–-]\s?{NUMBER})?"
# A citation: a docs file, then one or more section numbers ("docs/protocol.md §3.3–3.4, §6.1").
CITATION = re.compile(rf"docs/(?P<file>[\w./-]+?\.md)`?(?P<refs>\s?{REF}(?:\s?(?:,|and|or)\s?{REF})*)")
REF_NUMBERS = re.compile(rf"§\s?(?P<start>{NUMBER})(?:\s?[–-]\s?(?P<end>{NUMBER}))?")
HEADING = re.compile(rf"^#{{1,6}}\s+(?P<number>{NUMBER})[.\s]", re.M)
DOC_LINK = re.compile(r"docs/(?P<file>[\w./-]+?\.md)")


def scanned_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and path.suffix in SCANNED_SUFFIXES and not parts & SKIPPED_DIRS:
            hidden = any(p.startswith(".") for p in path.relative_to(ROOT).parts[:-1])
            if not hidden and path != Path(__file__).resolve():  # this file holds deliberately broken examples
                files.append(path)
    return sorted(files)


def headings(doc: Path) -> set[str]:
    return {m["number"] for m in HEADING.finditer(doc.read_text(encoding="utf-8"))}


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def check_numbers(refs: str, doc: Path, where: str, problems: list[str]) -> None:
    known = headings(doc)
    for ref in REF_NUMBERS.finditer(refs):
        for number in filter(None, (ref["start"], ref["end"])):
            if number not in known:
                problems.append(f"{where}: {doc.relative_to(ROOT)} has no section §{number}")


def citation_problems(strict: bool = True) -> tuple[list[str], int]:
    """Problems with the citations in the repository, and how many were read. `strict`: a § outside the docs must
    be part of a `docs/<file>.md §N` citation."""
    problems: list[str] = []
    count = 0
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        covered: list[tuple[int, int]] = []
        for match in DOC_LINK.finditer(text):
            if not (DOCS / match["file"]).is_file():
                problems.append(f"{rel}:{line_of(text, match.start())}: docs/{match['file']} does not exist")
        for match in CITATION.finditer(text):
            covered.append(match.span())
            count += 1
            doc = DOCS / match["file"]
            if doc.is_file():
                check_numbers(match["refs"], doc, f"{rel}:{line_of(text, match.start())}", problems)
        in_docs = path.parent == DOCS
        for ref in REF_NUMBERS.finditer(text):
            if any(start <= ref.start() < end for start, end in covered):
                continue
            where = f"{rel}:{line_of(text, ref.start())}"
            if in_docs:  # a bare § inside a document refers to that document
                check_numbers(ref.group(0), path, where, problems)
            elif strict:
                problems.append(
                    f"{where}: {ref.group(0)!r} does not say which document it means; cite it as "
                    f"docs/protocol.md {ref.group(0)} or docs/architecture.md {ref.group(0)}"
                )
    return problems, count


def test_every_cited_section_exists():
    problems, count = citation_problems()
    assert count > 0, "no docs/<file>.md § citation found: is the scan looking at the repository?"
    assert not problems, "\n".join(problems)


def test_the_check_catches_rot(tmp_path, monkeypatch):
    """A citation of a missing section, a missing file and an unqualified § are all reported."""
    import sys

    module = sys.modules[__name__]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "protocol.md").write_text("# P\n\n## 3. Engine\n\n### 3.5 One turn\n\nSee §3.\n")
    (tmp_path / "code.py").write_text(
        '"""docs/protocol.md §3.5 and §3.9; docs/missing.md §1; protocol §4.6; docs/protocol.md §3.5–3.6."""\n'
    )
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "DOCS", tmp_path / "docs")
    problems, count = citation_problems()
    text = "\n".join(problems)
    assert count == 3
    assert "code.py:1: docs/protocol.md has no section §3.9" in text
    assert "code.py:1: docs/protocol.md has no section §3.6" in text
    assert "docs/missing.md does not exist" in text
    assert "'§4.6' does not say which document it means" in text
    assert "§3.5 " not in text.replace("§3.5–", "")  # the existing section is not reported
    assert len(problems) == 4


# --- the prompts quoted in docs/protocol.md are the code's, byte for byte -------------------------------------


@pytest.fixture(scope="module")
def protocol() -> str:
    return (DOCS / "protocol.md").read_text(encoding="utf-8")


def fenced(text: str) -> str:
    return f"```\n{text}\n```"


def test_judge_prompts_are_quoted_exactly(protocol):
    from proactivebench.eval.judge import SYSTEM_PROMPT, USER_PROMPT

    assert fenced(SYSTEM_PROMPT) in protocol
    assert fenced(USER_PROMPT) in protocol
    assert "’" in SYSTEM_PROMPT  # the one non-ASCII character survives in the document too


def test_template_and_oeg_hint_are_quoted_exactly(protocol):
    from proactivebench.prompts import OEG_HINT, multi_choice

    example = multi_choice("Q? Hint: h.", ["Opt one.", "Opt two.", "Cat."], short_answer=True)
    assert f"`{example!r}`" in protocol
    assert fenced(OEG_HINT) in protocol


def test_scenario_texts_are_quoted_exactly(protocol, imported_rows):
    """Every hint, pre-prompt and reference question a row carries appears verbatim in the document."""
    texts = {(row["source"], field, row[field]) for row in imported_rows.values()
             for field in ("hint", "pre_prompt", "reference_question") if row[field]}
    assert {field for _, field, _ in texts} == {"hint", "pre_prompt", "reference_question"}
    missing = [f"{source} {field}: {text!r}" for source, field, text in sorted(texts) if f"`{text}`" not in protocol]
    assert not missing, "\n".join(missing)


def test_reference_cot_prompts_are_quoted_exactly(protocol):
    from proactivebench.eval.fewshot import cot_prompt

    for source in ("rod", "mvpn"):
        assert f"`{cot_prompt(source)}`" in protocol, source
