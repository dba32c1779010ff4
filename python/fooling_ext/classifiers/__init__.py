"""Classifiers: what the search scores images with. The :class:`Classifier` (a model plus its
:class:`InputSpec`), the :class:`ImageScorer` protocol of what the search needs, loading from names, files and
JSON descriptions, the choice of fast inference settings, the shipped models (the paper's LeNet, the ImageNet
stand-in) with LeNet's training, and the data they are trained or checked on."""

from fooling_ext.classifiers.classifier import Classifier
from fooling_ext.classifiers.combined import CombinedClassifier, combined_classifier
from fooling_ext.classifiers.inference import InferenceSettings, choose_inference_settings
from fooling_ext.classifiers.loading import BUILTIN_MODELS, ModelSpec, load_classifier
from fooling_ext.classifiers.models import LeNet, load_lenet
from fooling_ext.classifiers.protocol import DifferentiableScorer, ImageScorer, describe_classifier
from fooling_ext.classifiers.spec import MNIST_SPEC, InputSpec, imagenet_spec
from fooling_ext.classifiers.training import evaluate_accuracy, train_lenet

__all__ = [
    "BUILTIN_MODELS",
    "Classifier",
    "CombinedClassifier",
    "DifferentiableScorer",
    "ImageScorer",
    "InferenceSettings",
    "InputSpec",
    "LeNet",
    "MNIST_SPEC",
    "ModelSpec",
    "choose_inference_settings",
    "combined_classifier",
    "describe_classifier",
    "evaluate_accuracy",
    "imagenet_spec",
    "load_classifier",
    "load_lenet",
    "train_lenet",
]
