"""The fooling-class experiment on ImageNet (``fooling imagenet-fooling-class``): a 1001st "fooling image" class
learned from evolved elites and natural photos, then evolution against the 1001-class network."""

from fooling_ext.experiments.imagenet_fooling_class.experiment import (
    FoolingClassConfig,
    evolve_again,
    load_source_run,
    recorded_config,
    run_experiment,
    summary_text,
)
from fooling_ext.experiments.imagenet_fooling_class.network import (
    FOOLING_CLASS,
    FoolingHead,
    RowFit,
    fit_fooling_row,
    imagenet_with_fooling_class,
)

__all__ = [
    "FOOLING_CLASS",
    "FoolingClassConfig",
    "FoolingHead",
    "RowFit",
    "evolve_again",
    "fit_fooling_row",
    "imagenet_with_fooling_class",
    "load_source_run",
    "recorded_config",
    "run_experiment",
    "summary_text",
]
