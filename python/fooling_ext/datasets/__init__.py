"""Data files shipped inside the package; see ``MNIST_PROVENANCE.md`` for where they come from."""

from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parent

# The full MNIST set as uint8 arrays x_train, y_train, x_test, y_test (np.savez_compressed).
MNIST_NPZ = DATASETS_DIR / "mnist.npz"
