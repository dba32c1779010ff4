"""Data the package ships or finds offline: the full MNIST set (``mnist.npz``, see ``MNIST_PROVENANCE.md``)
and natural photos (a user's folder, or the foolbox wheel's samples)."""

from fooling_ext.classifiers.datasets.mnist import MNIST_NPZ, MNIST_NUM_CLASSES, MnistData, load_mnist, read_idx
from fooling_ext.classifiers.datasets.photos import foolbox_photos, image_files, photo_views

__all__ = [
    "MNIST_NPZ",
    "MNIST_NUM_CLASSES",
    "MnistData",
    "foolbox_photos",
    "image_files",
    "load_mnist",
    "photo_views",
    "read_idx",
]
