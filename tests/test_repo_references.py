"""The repository stands on its own: no tracked file points at material outside it (a sibling `shared/`
directory, "the reference", the seed documents or audits by file name), and every docs page a file names exists.
"""

import re
import subprocess

from harness import ROOT

# What points outside the repository. A cited public source (a URL, an upstream repo path) is fine: these are
# the project's private working material, which a reader of the repository cannot open.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\.\./shared",
            r"\bshared/(?:seeds|audits|reference|style|crd-schemas)",
            r"\breference\.md\b",
            r"\bthe reference\b",
            r"\b(?:reference|seed)s? 00\d\b",
            r"\bseeds/",
            r"\baudits?/",
            r"\baudit [a-z-]+\.md\b",
            r"/work/",
        ]
    ),
    re.IGNORECASE,
)
THIS_FILE = "tests/test_repo_references.py"
# Files still to be rewritten (none now); each listed must still need it, so the list cannot outlive the fix.
PENDING: set[str] = set()


def _tracked() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in listed.stdout.split("\0") if p and p != THIS_FILE and p != "uv.lock"]


def _text(path: str) -> str:
    try:
        return (ROOT / path).read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return ""


def _hits(path: str) -> list[str]:
    return [
        f"{path}:{number}: {line.strip()[:160]}"
        for number, line in enumerate(_text(path).splitlines(), 1)
        if OUTSIDE.search(line)
    ]


def test_no_tracked_file_refers_to_material_outside_the_repository():
    hits = [hit for path in _tracked() if path not in PENDING for hit in _hits(path)]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_the_pending_files_still_need_their_fix():
    assert all(_hits(path) for path in PENDING), "fixed: remove it from PENDING"


def test_the_pattern_catches_what_it_is_for():
    for text in (
        "see ../shared/seeds/000_x.txt",
        "as the reference does",
        "reference 003",
        "(audit gke.md M5)",
        "/work/notes/x.md",
    ):
        assert OUTSIDE.search(text), text
    for text in ("the configuration reference", "an API reference", "https://example.org/docs/x"):
        assert not OUTSIDE.search(text), text


# Pages of upstream repositories cited as sources (gpu-recipes, the GCS FUSE CSI driver), not of this one.
UPSTREAM_PAGES = {"docs/configuring-environment-gke-a4.md", "docs/authentication.md"}


def test_every_docs_page_a_file_names_exists():
    named = {
        (path, page)
        for path in _tracked()
        for page in re.findall(r"(?<![\w./-])docs/[\w./-]+\.md\b", _text(path))
        if page not in UPSTREAM_PAGES
    }
    missing = sorted(f"{path} names {page}" for path, page in named if not (ROOT / page).exists())
    assert not missing, "\n".join(missing)
