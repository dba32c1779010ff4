"""The search: MAP-Elites over one archive cell per class. The archive, the ask/tell loop, the two encodings
(CPPN and direct), the paper's settings per model and encoding, and the run that ties them to a classifier
and a run folder (:func:`evolve`)."""

from fooling_ext.search.archive import IMPROVED, INSERTION_MODES, NEW, NOT_ADDED, AddResult, Archive
from fooling_ext.search.config import EvolveConfig
from fooling_ext.search.defaults import paper_batch, render_size
from fooling_ext.search.encodings import ENCODINGS, CPPNEncoding, DirectEncoding, Encoding, make_encoding
from fooling_ext.search.evolve import EvolveResult, RunInterrupted, evolve, resume
from fooling_ext.search.map_elites import MapElites
from fooling_ext.search.pack import pack_run, read_pack, unpack_run

__all__ = [
    "ENCODINGS",
    "IMPROVED",
    "INSERTION_MODES",
    "NEW",
    "NOT_ADDED",
    "AddResult",
    "Archive",
    "CPPNEncoding",
    "DirectEncoding",
    "Encoding",
    "EvolveConfig",
    "EvolveResult",
    "MapElites",
    "RunInterrupted",
    "evolve",
    "make_encoding",
    "pack_run",
    "paper_batch",
    "read_pack",
    "render_size",
    "resume",
    "unpack_run",
]
