"""``fooling gallery``: a static HTML gallery of run folders (evolve, gradient), sweeps and analyses."""

from __future__ import annotations

import time

from fooling_ext.cli.options import CLIError


def register_cli(sub) -> None:
    p = sub.add_parser(
        "gallery",
        help="a static HTML gallery of runs, sweeps and analyses",
        description="Write a static site (open its index.html in a browser; no server, works offline): every "
        "class as a thumbnail to sort and filter, a page per class with each run's image side by "
        "side, its lineage and CPPN genome, each run's summary and confidence plot, sweeps and "
        "analyses.",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run folders (fooling evolve, fooling gradient), sweep folders or analysis folders",
    )
    p.add_argument(
        "--out",
        required=True,
        help="folder to write the gallery into (empty, or an earlier gallery; not one of the folders shown)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier gallery in --out (refused if the folder holds anything else)",
    )
    p.set_defaults(func=_cmd_gallery)


def _cmd_gallery(args) -> int:
    from fooling_ext.gallery import GalleryError, build_gallery, gallery_size
    from fooling_ext.runs.folder import RunFolderError

    start = time.perf_counter()
    if not args.out.strip():
        raise CLIError("--out is empty: name a folder for the gallery")
    try:
        index = build_gallery(args.runs, args.out, overwrite=args.overwrite)
    except (GalleryError, RunFolderError) as exc:
        raise CLIError(str(exc)) from exc
    size = gallery_size(index.parent)
    print(
        f"gallery: {index} (the whole site: {size / 1e6:.1f} MB in {index.parent}; {time.perf_counter() - start:.1f} s)"
    )
    return 0
