"""Analyses of finished runs, the paper's three findings about evolved images as measurements: run-to-run
diversity (:func:`diversity`), removing repeated motifs (:func:`repetition`) and global structure
(:func:`structure`); and how the elites fare on other networks (:func:`transfer`). Each writes an analysis
folder (:class:`AnalysisFolder`): analysis.json, report.md, CSV tables, PNG figures and example grids."""

from fooling_ext.analyses.diversity import DiversityConfig, diversity
from fooling_ext.analyses.folder import ANALYSIS_FORMAT, ANALYSIS_VERSION, AnalysisFolder, read_analysis
from fooling_ext.analyses.motifs import Motif, find_motif, remove_copies
from fooling_ext.analyses.repetition import RepetitionConfig, repetition
from fooling_ext.analyses.sources import RunData, expand_runs, load_run, run_classifier
from fooling_ext.analyses.structure import StructureConfig, structure
from fooling_ext.analyses.tiles import shuffle_tiles
from fooling_ext.analyses.transfer import TransferConfig, transfer

ANALYSES = ("diversity", "repetition", "structure", "transfer")
"""The names of the analyses, which are also the commands of ``fooling analyze``."""

__all__ = [
    "ANALYSES",
    "ANALYSIS_FORMAT",
    "ANALYSIS_VERSION",
    "AnalysisFolder",
    "DiversityConfig",
    "Motif",
    "RepetitionConfig",
    "RunData",
    "StructureConfig",
    "diversity",
    "expand_runs",
    "find_motif",
    "load_run",
    "read_analysis",
    "remove_copies",
    "repetition",
    "run_classifier",
    "shuffle_tiles",
    "structure",
    "TransferConfig",
    "transfer",
]
