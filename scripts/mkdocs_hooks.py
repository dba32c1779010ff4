"""MkDocs hooks of the documentation site (mkdocs.yml): the README is the home page, bench/README.md the
benchmarks page, and CONTRIBUTING.md, CHANGELOG.md and LICENSE pages of their own, read from where they are in the
repository rather than copied into docs/.

The markdown files link to each other by their paths in the repository (README.md to docs/x.md, docs/x.md to
../README.md and ../bench/README.md), which is what a reader browsing the repository follows. On the site those
files live elsewhere, so each relative link that names one of them is rewritten to the page's place in the site;
a link to anything else is left as written, for mkdocs --strict to report."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent

# Files outside docs/ that are pages of the site: path in the repository -> path in the site.
OUTSIDE_PAGES = {
    "README.md": "index.md",
    "bench/README.md": "benchmarks.md",
    "CONTRIBUTING.md": "contributing.md",
    "CHANGELOG.md": "changelog.md",
    "LICENSE": "license.md",
}
# Plain-text files among them, shown as they are.
_TEXT_PAGES = {"LICENSE"}
_SITE_TO_REPOSITORY = {site: repository for repository, site in OUTSIDE_PAGES.items()}

# A markdown link or image target: ](target) or ](target "title").
_LINK = re.compile(r"\]\((?P<target>[^()\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def on_files(files, config):
    for repository, site in OUTSIDE_PAGES.items():
        if repository in _TEXT_PAGES:
            text = (ROOT / repository).read_text()
            files.append(File.generated(config, site, content=f"# {repository}\n\n```text\n{text}```\n"))
        else:
            files.append(File.generated(config, site, abs_src_path=str(ROOT / repository)))
    return files


def _site_path(repository_path: str) -> str | None:
    """Where a file of the repository is in the site, or None when it is not part of the site."""
    if repository_path.startswith("docs/"):
        return repository_path[len("docs/") :]
    return OUTSIDE_PAGES.get(repository_path)


def on_page_markdown(markdown, page, config, files):
    source = page.file.src_uri
    repository_dir = posixpath.dirname(_SITE_TO_REPOSITORY.get(source, "docs/" + source))
    site_dir = posixpath.dirname(source) or "."

    def rewrite(match: re.Match) -> str:
        target, _, fragment = match["target"].partition("#")
        if not target or "://" in target or target.startswith(("/", "mailto:")):
            return match[0]
        site = _site_path(posixpath.normpath(posixpath.join(repository_dir, target)))
        if site is None:
            return match[0]
        new = posixpath.relpath(site, site_dir) + (f"#{fragment}" if fragment else "")
        return f"]({new}{match['title'] or ''})"

    return _LINK.sub(rewrite, markdown)
