"""MNIST loading: the shipped copy, .npz files, and IDX folders (gzipped or not)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from fooling_ext.classifiers.datasets import MNIST_NPZ
from fooling_ext.classifiers.datasets.mnist import MNIST_NUM_CLASSES, load_mnist, read_idx

# IDX type codes, written independently of the reader under test.
IDX_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, IDX_TYPE_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def small_mnist_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=12, dtype=np.uint8),
        "x_test": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=5, dtype=np.uint8),
    }


def test_shipped_mnist_is_the_full_set_with_published_counts():
    data = load_mnist()
    assert data.x_train.shape == (60000, 28, 28) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (10000, 28, 28)
    assert data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    # Published per-class counts of the MNIST training and test sets.
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data.y_train, minlength=10).tolist() == train_counts
    assert np.bincount(data.y_test, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.x_train.max() == 255 and data.x_train.min() == 0


def test_shipped_mnist_file_matches_its_provenance_note():
    digest = hashlib.sha256(MNIST_NPZ.read_bytes()).hexdigest()
    provenance = (MNIST_NPZ.parent / "MNIST_PROVENANCE.md").read_text()
    assert digest == "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
    assert digest in provenance
    assert "CC BY-SA 3.0" in provenance and "Yann LeCun" in provenance and "Corinna Cortes" in provenance


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_round_trips(tmp_path, dtype, gzipped):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / ("a.idx.gz" if gzipped else "a.idx"), array)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(ValueError, match=r"bad magic number 0x12340801"):
        read_idx(path)


def test_read_idx_rejects_an_unknown_type_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(ValueError, match=r"bad magic number 0x00000701"):
        read_idx(path)


def test_read_idx_rejects_a_size_mismatch(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(np.zeros((4, 3), np.uint8))[:-2])
    with pytest.raises(ValueError, match=r"header says shape \(4, 3\).*12 bytes.*holds 10 bytes"):
        read_idx(path)


def test_read_idx_rejects_a_truncated_header(tmp_path):
    path = tmp_path / "header"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(ValueError, match=r"truncated IDX header: 3 dimensions need 16 bytes"):
        read_idx(path)


def test_read_idx_reports_a_broken_gzip(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"labels\.gz: cannot read as gzip"):
        read_idx(path)


@pytest.mark.parametrize("gzipped", [False, True])
def test_load_mnist_reads_an_idx_folder(tmp_path, gzipped):
    arrays = small_mnist_arrays()
    for key, name in IDX_NAMES.items():
        write_idx(tmp_path / (name + (".gz" if gzipped else "")), arrays[key])
    data = load_mnist(tmp_path)
    for key in IDX_NAMES:
        np.testing.assert_array_equal(getattr(data, key), arrays[key])
    assert data.y_train.dtype == np.int64


def test_load_mnist_reads_an_npz(tmp_path):
    arrays = small_mnist_arrays(seed=3)
    np.savez(tmp_path / "digits.npz", **arrays)
    data = load_mnist(tmp_path / "digits.npz")
    np.testing.assert_array_equal(data.x_test, arrays["x_test"])
    np.testing.assert_array_equal(data.y_train, arrays["y_train"])


def test_load_mnist_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST data not found: .*nowhere"):
        load_mnist(tmp_path / "nowhere")


def test_load_mnist_names_the_missing_idx_file(tmp_path):
    arrays = small_mnist_arrays()
    for key in ("x_train", "y_train", "x_test"):
        write_idx(tmp_path / IDX_NAMES[key], arrays[key])
    with pytest.raises(FileNotFoundError, match=r"no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path)


def test_load_mnist_names_missing_npz_keys(tmp_path):
    arrays = small_mnist_arrays()
    del arrays["y_test"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match=r"missing arrays \['y_test'\]"):
        load_mnist(tmp_path / "partial.npz")


def test_load_mnist_rejects_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=r"notes\.txt: not a \.npz file"):
        load_mnist(path)


def test_load_mnist_rejects_mismatched_labels_and_bad_values(tmp_path):
    arrays = small_mnist_arrays()
    np.savez(tmp_path / "short.npz", **{**arrays, "y_train": arrays["y_train"][:-1]})
    with pytest.raises(ValueError, match=r"y_train must have shape \[12\] to match x_train, got \[11\]"):
        load_mnist(tmp_path / "short.npz")
    np.savez(tmp_path / "label.npz", **{**arrays, "y_test": np.full(5, MNIST_NUM_CLASSES, np.uint8)})
    with pytest.raises(ValueError, match=r"y_test labels must lie in 0\.\.9, found 10\.\.10"):
        load_mnist(tmp_path / "label.npz")
    np.savez(tmp_path / "size.npz", **{**arrays, "x_test": np.zeros((5, 32, 32), np.uint8)})
    with pytest.raises(ValueError, match=r"x_test must have shape \[N, 28, 28\], got \[5, 32, 32\]"):
        load_mnist(tmp_path / "size.npz")
