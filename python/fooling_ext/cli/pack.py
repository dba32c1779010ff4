"""``fooling pack`` and ``fooling unpack``: an evolve run as one small file without its images, and the run
folder made again from it (:mod:`fooling_ext.search.pack`)."""

from __future__ import annotations

import os
import time

from fooling_ext.cli.options import CLIError, add_backend_argument


def register_cli(sub) -> None:
    p = sub.add_parser(
        "pack",
        help="an evolve run as one small file: genomes, scores and history, without the images",
        description="Write an evolve run (its last checkpoint) to one compressed file without its images: the "
        "recorded configuration, every cell's genome, confidence, generation and ids, and every generation's "
        "metrics. `fooling unpack` makes the run folder again, rendering the images from the genomes, and the "
        "run continues with --resume. An ImageNet CPPN run's 200 MB checkpoint packs into a few MB.",
    )
    p.add_argument("run", metavar="RUN", help="an evolve run folder (finished, stopped, or being written)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (.npz)")
    p.set_defaults(func=_cmd_pack)

    u = sub.add_parser(
        "unpack",
        help="the run folder of a file of `fooling pack`, its images rendered again",
        description="Make the run folder of a file of `fooling pack`: the images are rendered again from the "
        "genomes and must be the run's bit for bit (checked against their SHA-256), then the run's readable "
        "outputs (archive.npz, images, grids, report) are written by scoring its elites with the recorded "
        "model. `fooling evolve --out RUN --resume --generations N` continues the run.",
    )
    u.add_argument("pack", metavar="FILE", help="a file written by `fooling pack`")
    u.add_argument("--out", required=True, metavar="RUN", help="the run folder to write (new or empty)")
    u.add_argument("--overwrite", action="store_true", help="replace an earlier evolve run in --out")
    u.add_argument(
        "--no-outputs",
        dest="outputs",
        action="store_false",
        help="write only config.json, metrics.csv and checkpoint.pt (no model is loaded); the outputs come "
        "with the next `fooling evolve --resume`",
    )
    u.add_argument(
        "--model", metavar="PATH", help="where the run's model file is now, when it moved (default: the recorded path)"
    )
    add_backend_argument(u, "the device that scores the elites for the outputs", default=None)
    u.set_defaults(func=_cmd_unpack)


def _cmd_pack(args) -> int:
    from fooling_ext.runs.folder import RunFolderError
    from fooling_ext.search.pack import pack_run, read_pack

    start = time.perf_counter()
    try:
        path = pack_run(args.run, args.out)
    except RunFolderError as exc:
        raise CLIError(str(exc)) from exc
    meta, arrays = read_pack(path)
    cells = int(arrays["occupied"].sum())
    print(
        f"packed {args.run}: generation {meta['generation']}, {cells} elites, {os.path.getsize(path) / 1e6:.2f} MB "
        f"-> {path} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def _cmd_unpack(args) -> int:
    from fooling_ext.runs.folder import RunFolderError
    from fooling_ext.search.evolve import resume
    from fooling_ext.search.pack import read_pack, unpack_run

    start = time.perf_counter()
    try:
        out = unpack_run(args.pack, args.out, overwrite=args.overwrite)
    except RunFolderError as exc:
        raise CLIError(str(exc)) from exc
    generation = int(read_pack(args.pack)[0]["generation"])
    print(
        f"unpacked {args.pack}: {out} at generation {generation}, images checked ({time.perf_counter() - start:.1f} s)"
    )
    if not args.outputs:
        print(f"continue or write its outputs with: fooling evolve --out {out} --resume --generations N")
        return 0
    try:
        resume(out, generations=generation, backend=args.backend, model=args.model, progress=False)
    except (RunFolderError, ValueError, OSError) as exc:
        raise CLIError(
            f"{out} was written, but its outputs were not: {exc} (fooling evolve --out {out} --resume "
            f"--generations {generation} [--model PATH] writes them)"
        ) from exc
    print(f"outputs written: {out} (archive.npz, images, report.txt; {time.perf_counter() - start:.1f} s in all)")
    return 0
