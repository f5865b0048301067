"""One writer per record: only reviewapp.review.outcomes writes Outcome rows."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WRITER = ROOT / "reviewapp" / "review" / "outcomes.py"
WRITES = re.compile(
    r"Outcome\.objects[^\n]*\.(create|bulk_create|update|get_or_create|update_or_create|delete)\("
    r"|\boutcome\.save\("
    r"|INSERT INTO reviewapp_outcome|UPDATE reviewapp_outcome|DELETE FROM reviewapp_outcome"
)


def _writes(path: Path) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if WRITES.search(line)
    ]


def test_only_the_outcome_writer_writes_outcomes():
    found = [
        hit
        for path in sorted((ROOT / "reviewapp").rglob("*.py"))
        if "migrations" not in path.parts and path != WRITER
        for hit in _writes(path)
    ]
    assert found == [], "write Outcome rows through reviewapp.review.outcomes:\n" + "\n".join(found)


def test_the_scan_sees_the_writers_own_writes():
    assert len(_writes(WRITER)) >= 4  # create, revise (save), withdraw (delete), the settle SQL
