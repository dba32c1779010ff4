"""The package version: one source, pyproject.toml, compiled into the core by CMake."""

from fooling_ext._core import __version__

__all__ = ["__version__"]
