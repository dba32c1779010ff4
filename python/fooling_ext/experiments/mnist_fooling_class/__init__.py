"""The fooling-class experiment on MNIST (``fooling retrain``): rounds of retraining LeNet with an 11th class
of the fooling images evolved against it, and evolving again (see :mod:`.experiment`)."""

from fooling_ext.experiments.mnist_fooling_class.config import (
    CLASS_NAMES,
    FOOLING_LABEL,
    EvolutionSummary,
    RetrainConfig,
    RoundMetrics,
    run_seed,
    training_seed,
)
from fooling_ext.experiments.mnist_fooling_class.experiment import ExperimentFolder, load_fooling_images, run_retrain
from fooling_ext.experiments.mnist_fooling_class.report import format_table, plot_rounds, write_summary

__all__ = [
    "CLASS_NAMES",
    "FOOLING_LABEL",
    "EvolutionSummary",
    "ExperimentFolder",
    "RetrainConfig",
    "RoundMetrics",
    "format_table",
    "load_fooling_images",
    "plot_rounds",
    "run_retrain",
    "run_seed",
    "training_seed",
    "write_summary",
]
