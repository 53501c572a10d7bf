"""Headless Chromium for the page checks: serve a folder on 127.0.0.1 and render a page in it.

Chromium runs as on a closed network: no background networking, no component updates, a fresh
profile, and every host name but 127.0.0.1 unresolvable, so a page that still reaches for the
internet fails here exactly as it would offline. `render` returns the DOM after the page's
scripts ran (Chromium's --dump-dom, with a virtual-time budget for timers and requests) and can
save a screenshot.
"""

import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
]
SHOTS = Path(__file__).resolve().parent.parent / "report" / "browser"


def chromium():
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        self.server.requests.append((self.path, args[1] if len(args) > 1 else ""))


@contextmanager
def serve(directory):
    """An HTTP server over `directory` on 127.0.0.1 (a free port); yields (base URL, requests),
    requests being the [(path, status)] it answered."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(directory)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.requests
    finally:
        server.shutdown()
        server.server_close()


def render(url, *, screenshot=None, size=(1280, 900), budget_ms=10000, timeout_s=120):
    """The page's DOM after its scripts ran; with `screenshot`, also a PNG of the viewport."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("Chromium is not installed")
    common = [*FLAGS, f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}"]
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [exe, *common, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if dom.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom {url} failed:\n{dom.stderr[-2000:]}")
    if screenshot is not None:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            shot = subprocess.run(
                [exe, *common, f"--user-data-dir={profile}", f"--screenshot={screenshot}", url],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        if shot.returncode != 0 or not Path(screenshot).exists():
            raise RuntimeError(f"chromium --screenshot {url} failed:\n{shot.stderr[-2000:]}")
    return dom.stdout


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def elements(dom):
    """([(tag, {attribute: value})] in document order, the page's text) of a DOM dump."""
    parser = _Elements()
    parser.feed(dom)
    return parser.elements, " ".join(parser.text)


def with_class(found, name, tag=None):
    """The elements of `found` whose class list has `name` (and, if given, of that tag)."""
    return [
        (t, a)
        for t, a in found
        if name in (a.get("class") or "").split() and (tag is None or t == tag)
    ]
