"""A run without its images: the genomes, scores and history of an evolve run in one small file, and the run
folder made again from it.

An ImageNet CPPN run's checkpoint is about 200 MB, three quarters of it the 1000 elites' rendered images; its
genomes compress to a few MB. :func:`pack_run` keeps everything a run needs to continue or to be analysed
(its recorded configuration, every cell's genome, confidence, generation and ids, the metrics of every
generation, the evaluation count and time) and, of the images, only their SHA-256. :func:`unpack_run` renders
the images again from the genomes, refuses the file when they are not the run's images bit for bit (a renderer
that changed since the run was made), and writes a run folder that `fooling evolve --resume` continues and that
the analyses and the gallery read (docs/run-folder.md, docs/file-formats.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fooling_ext._files import read_npz, require_regular_file, write_npz
from fooling_ext._version import __version__
from fooling_ext.runs.folder import RunFolder, RunFolderError
from fooling_ext.runs.images import to_uint8
from fooling_ext.search.archive import Archive
from fooling_ext.search.config import check_recorded_run, upgrade_recorded_config
from fooling_ext.search.encodings import Encoding, make_encoding

PACK_FORMAT = "fooling_ext.pack"
PACK_VERSION = 1
#: the archive's per-cell fields other than the genome and the images
CELL_FIELDS = ("confidence", "occupied", "generation", "elite_id", "parent_id")
RENDER_CHUNK = 64  # genomes rendered at once when the images are made again


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of a uint8 image array's shape and bytes."""
    digest = hashlib.sha256(repr(tuple(images.shape)).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return "sha256:" + digest.hexdigest()


def pack_run(run: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the evolve run in folder `run` (its checkpoint: the last generation it finished) to the file
    `out` (.npz, written atomically) without its images. Returns the path written."""
    folder = RunFolder(run)
    if not folder.path.is_dir():
        raise RunFolderError(f"no run folder at {folder.path}")
    if not folder.checkpoint_path.is_file():
        raise RunFolderError(f"{folder.path} holds no checkpoint.pt to pack (not an evolve run, or not started)")
    state = folder.load_checkpoint(required=("config", "generation", "archive", "metrics"))
    archive = state["archive"]
    if not isinstance(archive, Mapping) or "images" not in archive or "occupied" not in archive:
        raise RunFolderError(f"{folder.checkpoint_path} holds no archive with images")
    check_recorded_run(state["config"], folder.checkpoint_path)
    config = upgrade_recorded_config(state["config"])
    arrays = {key.replace(".", "_"): value.numpy() for key, value in archive.items() if key != "images"}
    images = archive["images"].numpy()
    meta = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "fooling_ext": __version__,
        "config": config,
        "generation": int(state["generation"]),
        "evaluations": int(state.get("evaluations", 0)),
        "elapsed": float(state.get("elapsed", 0.0)),
        "metrics": list(state["metrics"]),
        "images": {"shape": list(images.shape), "sha256": images_digest(images)},
    }
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out} is a folder: give the path of the file to write")
    return write_npz(out, meta, arrays)


def read_pack(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a file written by :func:`pack_run`, checked: format, version, checksum, and that
    it holds a run's configuration, history and every cell field."""
    require_regular_file(path, "run pack")
    meta, arrays = read_npz(path, None, what="run pack", format_name=PACK_FORMAT, version=PACK_VERSION)
    if "checksum" not in meta:
        raise ValueError(f"{path} is damaged: a run pack must carry a checksum")
    for key, kind in (("config", dict), ("generation", int), ("metrics", list), ("images", dict)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"{path} is not a readable run pack: its meta has no {key} ({kind.__name__})")
    shape = meta["images"].get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not isinstance(meta["images"].get("sha256"), str):
        raise ValueError(f"{path} is not a readable run pack: its images entry needs a shape [K, C, H, W] and sha256")
    missing = [f for f in CELL_FIELDS if f not in arrays]
    if missing or not any(f.startswith("genome_") for f in arrays):
        raise ValueError(f"{path} is not a readable run pack: it lacks {(missing or ['the genome fields'])[0]}")
    return meta, arrays


def recorded_encoding(config: Mapping[str, Any]) -> Encoding[Any]:
    """The encoding a recorded run configuration describes (its `encoding` section)."""
    section = dict(config.get("encoding") or {})
    name = section.pop("encoding", None)
    if not isinstance(name, str):
        raise ValueError("the recorded configuration has no encoding section")
    try:
        return make_encoding(name, **section)
    except TypeError as exc:  # a setting this version does not know
        raise ValueError(f"the recorded encoding cannot be built by this version: {exc}") from None


def render_archive_images(
    encoding: Encoding[Any], genomes: Mapping[str, torch.Tensor], occupied: np.ndarray
) -> np.ndarray:
    """The uint8 images of the occupied cells' genomes as the run stored them (zeros elsewhere), rendered on
    the CPU in chunks."""
    k = occupied.shape[0]
    images = np.zeros((k, encoding.channels, encoding.height, encoding.width), dtype=np.uint8)
    population = encoding.from_tensors(genomes)
    cells = np.flatnonzero(occupied)
    for start in range(0, cells.size, RENDER_CHUNK):
        chunk = torch.from_numpy(cells[start : start + RENDER_CHUNK]).to(torch.int64)
        rendered = encoding.render(population.select(chunk))
        images[chunk.numpy()] = to_uint8(rendered).numpy()
    return images


def unpack_run(
    pack: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Make the run folder `out` again from a file of :func:`pack_run`: config.json, metrics.csv and a
    checkpoint.pt whose images are rendered again from the genomes and must be the run's, bit for bit (a
    ValueError otherwise). `fooling evolve --out OUT --resume --generations G` then continues it, or, with
    the generations it has, writes its readable outputs (archive.npz, images, report). Returns `out`."""
    meta, arrays = read_pack(pack)
    check_recorded_run(meta["config"], pack)
    config = upgrade_recorded_config(meta["config"])
    encoding = recorded_encoding(config)
    class_names = config["classifier"]["class_names"]
    shape = tuple(meta["images"]["shape"])
    if shape != (len(class_names), encoding.channels, encoding.height, encoding.width):
        raise ValueError(f"{pack}: its images are {list(shape)}, its configuration describes other images")
    genomes = {
        name.removeprefix("genome_"): torch.from_numpy(np.ascontiguousarray(a))
        for name, a in arrays.items()
        if name.startswith("genome_")
    }
    occupied = arrays["occupied"]
    if occupied.dtype != np.bool_ or occupied.shape != (len(class_names),):
        raise ValueError(f"{pack}: occupied must be {len(class_names)} booleans, got {occupied.dtype} {occupied.shape}")
    archive = Archive(class_names, genomes, shape[1:], insertion=config["run"].get("insertion", "paper"))
    state: dict[str, torch.Tensor] = {f"genome.{k}": v for k, v in genomes.items()}
    state.update({f: torch.from_numpy(np.ascontiguousarray(arrays[f])) for f in CELL_FIELDS})
    state["images"] = torch.zeros(shape, dtype=torch.uint8)
    try:
        archive.load_state_dict(state)
        archive.validate(encoding, where=str(pack))
    except ValueError as exc:
        raise ValueError(f"{pack}: {exc}" if str(pack) not in str(exc) else str(exc)) from None
    images = render_archive_images(encoding, genomes, occupied)
    if images_digest(images) != meta["images"]["sha256"]:
        raise ValueError(
            f"{pack}: its genomes render to other images than the run's (made by fooling_ext "
            f"{meta.get('fooling_ext', '?')}): this build's renderer does not reproduce the run"
        )
    state["images"] = torch.from_numpy(images)
    folder = RunFolder(out)
    try:
        folder.prepare(resume=False, overwrite=overwrite)
    except RunFolderError as exc:  # a run folder is replaced here, never continued
        raise RunFolderError(str(exc).replace(RunFolder.RESUME_HINT, "pass ")) from None
    try:
        folder.write_config(config)
        folder.write_metrics(meta["metrics"])
        folder.save_checkpoint(
            {
                "config": config,
                "generation": meta["generation"],
                "archive": state,
                "metrics": meta["metrics"],
                "evaluations": int(meta.get("evaluations", 0)),
                "elapsed": float(meta.get("elapsed", 0.0)),
            }
        )
    except BaseException:
        folder.abandon()
        raise
    finally:
        folder.release()
    return folder.path
