"""MNIST: the copy shipped with the package, or a user's own files in IDX or .npz form.

The paper's MNIST experiments fool a LeNet trained on MNIST; the training command and the fooling-class
experiment both read the digits through :func:`load_mnist`. The full data set ships inside the package
(``fooling_ext/classifiers/datasets/mnist.npz``, see ``MNIST_PROVENANCE.md`` there), so nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# The full MNIST set as uint8 arrays x_train, y_train, x_test, y_test (np.savez_compressed).
MNIST_NPZ = Path(__file__).resolve().parent / "mnist.npz"

MNIST_IMAGE_SHAPE = (28, 28)
MNIST_NUM_CLASSES = 10

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The four files of the original distribution, as named on Yann LeCun's page.
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_NPZ_KEYS = tuple(_IDX_FILES)


@dataclass(frozen=True)
class MnistData:
    """MNIST as arrays: images uint8 [N, 28, 28] in 0..255, labels int64 [N] in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __repr__(self) -> str:
        return f"MnistData(train={len(self.y_train)}, test={len(self.y_test)}, source={self.source!r})"


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (gzipped when its name ends in ``.gz``) into an array in native byte order.

    IDX is the format MNIST was published in: two zero bytes, a type code, the number of dimensions, each
    dimension as a big-endian uint32, then the values in big-endian C order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                raw = stream.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read as {'gzip' if path.name.endswith('.gz') else 'IDX'}: {exc}") from exc

    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file: bad magic number 0x{magic:08X} (expected 0x0000TTNN with type TT in "
            f"{', '.join(f'0x{code:02X}' for code in _IDX_DTYPES)} and NN >= 1 dimensions)"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, file has {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        raise ValueError(
            f"{path}: IDX size mismatch: header says shape {shape} of {dtype.name} ({expected} bytes of data), "
            f"file holds {found} bytes of data"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def load_mnist(path: PathLike | None = None) -> MnistData:
    """Load MNIST: the shipped copy (``path=None``), a ``.npz`` file, or a folder of the four IDX files.

    A ``.npz`` must hold ``x_train``, ``y_train``, ``x_test`` and ``y_test``. A folder must hold
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``). Any 28 x 28 digit-like set with labels 0..9
    in this layout works too, e.g. Fashion-MNIST.
    """
    path = Path(MNIST_NPZ if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"MNIST data not found: {path} (give a .npz file or a folder of IDX files)")
    arrays = _read_idx_folder(path) if path.is_dir() else _read_npz(path)
    return _validated(arrays, source=str(path))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a .npz file (nor a folder of IDX files): {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array; an MNIST .npz needs the arrays {list(_NPZ_KEYS)}")
    with archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: missing arrays {missing}; an MNIST .npz needs {list(_NPZ_KEYS)}, found {archive.files}"
            )
        return {key: archive[key] for key in _NPZ_KEYS}


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, name in _IDX_FILES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"{folder}: no {name} or {name}.gz; an MNIST folder needs {list(_IDX_FILES.values())}"
            )
        arrays[key] = read_idx(found)
    return arrays


def _validated(arrays: dict[str, np.ndarray], source: str) -> MnistData:
    checked = {}
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != MNIST_IMAGE_SHAPE:
            raise ValueError(f"{source}: x_{split} must have shape [N, 28, 28], got {list(images.shape)}")
        if images.dtype != np.uint8:
            raise ValueError(f"{source}: x_{split} must be uint8 (0..255), got {images.dtype}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{source}: y_{split} must have shape [{len(images)}] to match x_{split}, got {list(labels.shape)}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{source}: y_{split} must hold integer labels, got {labels.dtype}")
        if len(labels) and (labels.min() < 0 or labels.max() >= MNIST_NUM_CLASSES):
            raise ValueError(
                f"{source}: y_{split} labels must lie in 0..{MNIST_NUM_CLASSES - 1}, "
                f"found {labels.min()}..{labels.max()}"
            )
        checked[f"x_{split}"] = np.ascontiguousarray(images)
        checked[f"y_{split}"] = labels.astype(np.int64)
    return MnistData(**checked, source=source)
