#!/usr/bin/env bash
# The documentation site (mkdocs.yml): the README, docs/*.md, bench/README.md and the API reference from the
# docstrings, built into site/ (git-ignored); open site/index.html. Strict: a warning (a broken link or anchor,
# a docstring griffe cannot parse, a page missing from the navigation) fails the build. Needs
# `pip install ".[docs]"`, not the compiled package: the reference is read from the source in python/.
# Arguments go to `mkdocs build`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Material's banner about its successor says nothing about this site.
export NO_MKDOCS_2_WARNING=1
mkdocs build --strict --site-dir site "$@"
