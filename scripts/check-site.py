"""Opens the built documentation site in a real browser, as a reader would, and fails on what a reader would see.

Usage: .venv/bin/python scripts/check-site.py SCREENSHOT_DIR

Builds the site (`mkdocs build --strict`), serves it on 127.0.0.1, opens every page in Debian's headless Chromium
(driven by playwright, which never downloads a browser of its own here), and fails when a page logs a console
error, raises a JavaScript error, gets an HTTP error or a failed request, or shows an image that did not load.
Writes screenshots of the landing page, one target page (and its diagram as shown) and the configuration reference
to SCREENSHOT_DIR.

Needs: `apt-get install chromium` and the `browser` dependency group (`"$UV" sync --locked --group browser`, with
UV from scripts/uv.sh; `./scripts/test.sh` syncs it away again). Not part of the test command: it takes a
browser and about a minute.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = {
    "landing.png": ("", False),
    "target-acs.png": ("targets/acs/", True),
    "config-reference.png": ("reference/config/", False),
}
# What a page may ask for that is not on this machine: nothing. The site must be self-contained.
IMAGES_LOADED = """() => Array.from(document.images)
    .filter(img => !img.complete || img.naturalWidth === 0)
    .map(img => img.getAttribute('src'))"""


def build(site: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}")


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def pages(site: Path) -> list[str]:
    """Every page of the site as a path below its root ("" for the landing page)."""
    found = []
    for index in sorted(site.rglob("index.html")):
        relative = index.parent.relative_to(site).as_posix()
        if relative.startswith(("assets", "search")):
            continue
        found.append("" if relative == "." else f"{relative}/")
    return found


def check(base: str, paths: list[str], shots: Path) -> list[str]:
    from playwright.sync_api import sync_playwright  # pyright: ignore[reportMissingImports] (the browser group)

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for path in paths:
            page = context.new_page()
            seen: list[str] = []
            page.on("console", lambda m, s=seen: s.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e, s=seen: s.append(f"JavaScript error: {e}"))
            page.on("requestfailed", lambda r, s=seen: s.append(f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r, s=seen: s.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.on(
                "request",
                lambda r, s=seen: (
                    None
                    if r.url.startswith((base, "data:", "blob:"))
                    else s.append(f"request to another host: {r.url}")
                ),
            )
            response = page.goto(base + path, wait_until="networkidle")
            if response is None or not response.ok:
                seen.append(f"HTTP {response.status if response else 'no response'}: {base + path}")
            seen += [f"image did not load: {src}" for src in page.evaluate(IMAGES_LOADED)]
            problems += [f"/{path}: {problem}" for problem in seen]
            for name, (shot_path, full_page) in SCREENSHOTS.items():
                if shot_path == path:
                    page.screenshot(path=str(shots / name), full_page=full_page)
                    diagram = page.locator("img[src*='diagrams/']")
                    if diagram.count():  # the diagram as the page shows it, at its displayed size
                        diagram.first.screenshot(path=str(shots / name.replace(".png", "-diagram.png")))
            page.close()
        browser.close()
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    shots = Path(sys.argv[1]).resolve()
    shots.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        import playwright  # noqa: F401  # pyright: ignore[reportMissingImports] (the browser group)
    except ImportError:
        sys.exit('playwright is missing: source scripts/uv.sh && "$UV" sync --locked --group browser')
    site = Path(tempfile.mkdtemp(prefix="llm-site-"))
    try:
        build(site)
        server, base = serve(site)
        try:
            paths = pages(site)
            missing = [p for _, (p, _) in SCREENSHOTS.items() if p not in paths]
            if missing:
                sys.exit(f"pages to screenshot are not in the site: {missing}")
            problems = check(base, paths, shots)
        finally:
            server.shutdown()
    finally:
        shutil.rmtree(site, ignore_errors=True)
    print(f"{len(paths)} pages opened; screenshots in {shots}: {', '.join(SCREENSHOTS)}")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
