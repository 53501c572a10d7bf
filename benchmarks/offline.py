"""Make a published asv dashboard work without internet.

    python -m benchmarks.offline .asv/html

asv's pages load jQuery, flot, bootstrap, blueimp-md5 and stupidtable from public CDNs; offline
they show only asv's error page. This takes each of those scripts from its npm registry package
(`npm pack`, so npm's own registry settings and cache apply), unpacks the files the pages use
into HTML/vendor/, and points the pages at the local copies, with each tag's subresource
integrity hash recomputed for the local file (the pages keep checking what they load). A CDN
address it does not know is an error, so a newer asv that adds a script cannot slip through
half-offline.
"""

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# CDN address -> (npm package@version, file inside the package). cdnjs serves flot 0.8.3 minified
# and stupidtable 1.0.1; npm has flot 0.8.3 unminified only and stupidtable as
# stupid-table-plugin 1.1.3 (same jQuery plugin API), so those are what the pages get.
CDN = "https://cdnjs.cloudflare.com/ajax/libs"
JSDELIVR = "https://cdn.jsdelivr.net/npm"
VENDOR = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    f"{CDN}/flot/0.8.3/jquery.flot.min.js": ("flot@0.8.3", "jquery.flot.js"),
    f"{CDN}/flot/0.8.3/jquery.flot.time.min.js": ("flot@0.8.3", "jquery.flot.time.js"),
    f"{CDN}/flot/0.8.3/jquery.flot.selection.min.js": ("flot@0.8.3", "jquery.flot.selection.js"),
    f"{CDN}/flot/0.8.3/jquery.flot.categories.min.js": (
        "flot@0.8.3",
        "jquery.flot.categories.js",
    ),
    f"{JSDELIVR}/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": (
        "flot-orderbars@1.0.0",
        "js/jquery.flot.orderBars.js",
    ),
    f"{CDN}/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5@2.19.0", "js/md5.min.js"),
    f"{CDN}/stupidtable/1.0.1/stupidtable.min.js": (
        "stupid-table-plugin@1.1.3",
        "stupidtable.min.js",
    ),
    f"{JSDELIVR}/bootstrap@3.1.1/dist/css/bootstrap.min.css": (
        "bootstrap@3.1.1",
        "dist/css/bootstrap.min.css",
    ),
    f"{JSDELIVR}/bootstrap@3.1.1/dist/js/bootstrap.min.js": (
        "bootstrap@3.1.1",
        "dist/js/bootstrap.min.js",
    ),
}
# files a vendored file loads by a relative address (bootstrap's css -> ../fonts/)
ALSO = {"bootstrap@3.1.1": ["dist/fonts/"]}
EXTERNAL = re.compile(r"""(?P<attr>src|href)=(?P<q>["'])(?P<url>https?://[^"']+)(?P=q)""")
TAG = re.compile(r"<(?:script|link)\b[^>]*>")
INTEGRITY = re.compile(r"""integrity=(["'])[^"']*\1""")
# links a person follows by hand (asv's home page) are not resources the page loads
LINKS = ("https://github.com/",)


def _local(spec, path):
    return f"vendor/{spec.replace('@', '-')}/{path}"


def fetch(specs, dest):
    """npm pack each package spec and unpack the files the pages use under dest/vendor/."""
    wanted = {}
    for spec, path in VENDOR.values():
        wanted.setdefault(spec, set()).add(path)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in sorted(specs):
            done = subprocess.run(
                ["npm", "pack", spec, "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm pack {spec} failed:\n{done.stderr.strip()}")
            tarball = Path(tmp) / done.stdout.strip().splitlines()[-1]
            prefixes = sorted(wanted[spec]) + ALSO.get(spec, [])
            with tarfile.open(tarball) as tar:
                members = [
                    m
                    for m in tar.getmembers()
                    if m.isfile()
                    and any(m.name.removeprefix("package/").startswith(p) for p in prefixes)
                ]
                missing = wanted[spec] - {m.name.removeprefix("package/") for m in members}
                if missing:
                    raise RuntimeError(f"{spec} has no {sorted(missing)}")
                for m in members:
                    target = dest / _local(spec, m.name.removeprefix("package/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(m).read())


def _sri(path):
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def rewrite(text, html_dir):
    """The page with every known CDN address in a script or link tag replaced by its local copy
    under html_dir (integrity recomputed); an unknown address raises."""

    def tag(match):
        found = EXTERNAL.search(match[0])
        if found is None or found["url"].startswith(LINKS):
            return match[0]
        url = found["url"]
        if url not in VENDOR:
            raise ValueError(f"unknown external resource {url}: add it to VENDOR")
        local = _local(*VENDOR[url])
        out = match[0].replace(url, local)
        return INTEGRITY.sub(f'integrity="{_sri(html_dir / local)}"', out)

    return TAG.sub(tag, text)


def make_offline(html_dir):
    html_dir = Path(html_dir)
    pages = sorted(html_dir.glob("*.html"))
    if not pages:
        raise FileNotFoundError(f"{html_dir}: no published asv pages (run `asv publish` first)")
    texts = {page: page.read_text(encoding="utf-8") for page in pages}
    used = {
        VENDOR[m["url"]][0]
        for t in texts.values()
        for m in EXTERNAL.finditer(t)
        if m["url"] in VENDOR
    }
    fetch(used, html_dir)
    for page, text in texts.items():
        page.write_text(rewrite(text, html_dir), encoding="utf-8")
    return sorted(used)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.offline", description=__doc__)
    parser.add_argument("html_dir", type=Path, help="asv's published folder (e.g. .asv/html)")
    args = parser.parse_args(argv)
    try:
        used = make_offline(args.html_dir)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.html_dir}: offline, with {', '.join(used)} from the npm registry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
