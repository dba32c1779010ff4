"""A static HTML gallery of runs (``fooling gallery``): every class as a thumbnail to sort, filter and
threshold; a page per class with each run's image side by side, its lineage and its CPPN genome as a graph;
each run's summary and confidence plot; sweeps and analyses. Plain HTML, CSS and JavaScript written with
Jinja2: it opens from disk, offline."""

from fooling_ext.gallery.genome_svg import genome_svg
from fooling_ext.gallery.markdown import render_markdown
from fooling_ext.gallery.site import build_gallery, gallery_size
from fooling_ext.gallery.sources import GalleryError, load_sources

__all__ = ["GalleryError", "build_gallery", "gallery_size", "genome_svg", "load_sources", "render_markdown"]
