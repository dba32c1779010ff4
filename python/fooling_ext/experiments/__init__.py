"""The paper's experiments beyond one evolution run: gradient ascent on the pixels, and the fooling-class
experiments on MNIST (several rounds of retraining) and ImageNet (a 1001st class)."""

from fooling_ext.experiments.gradient_ascent import GradientConfig, GradientFolder, GradientResult, gradient_ascent

__all__ = ["GradientConfig", "GradientFolder", "GradientResult", "gradient_ascent"]
