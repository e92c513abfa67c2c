"""The README quotes results only from committed results files (egs/<corpus>/RESULTS.md)."""

import re

from conftest import ROOT

NUMBER = re.compile(r"(?<![\d.])\d+\.\d+(?![\d])")


def quoted_results(readme):
    """Decimal numbers in the README's results section and in its line about the demo's WER."""
    section = readme.split("## Does early exit pay?", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines() + [line for line in readme.splitlines() if "WER per exit" in line]
    return {n for line in lines for n in NUMBER.findall(line)}


def test_every_result_the_readme_quotes_is_in_a_results_file():
    results = "\n".join(p.read_text() for p in sorted(ROOT.glob("egs/*/RESULTS.md")))
    numbers = quoted_results((ROOT / "README.md").read_text())
    assert numbers, "the README quotes no results: this test would check nothing"
    missing = sorted(n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", results))
    assert not missing, f"quoted in README.md but in no egs/*/RESULTS.md: {missing}"


def test_results_files_say_how_they_were_obtained():
    for path in ROOT.glob("egs/*/RESULTS.md"):
        text = path.read_text()
        for needed in ("```sh", "commit", "2026-", "Machine"):
            assert needed in text, f"{path}: no {needed!r}"
