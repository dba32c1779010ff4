"""The rendering section's tables, in Markdown, from a pytest-benchmark JSON file.

    python -m pytest bench --benchmark-only --benchmark-json=bench.json
    python bench/render_table.py bench.json

Per workload: each renderer's median time, its images per second (renderers benchmarked on a subset of a
workload are compared per image), and how its throughput compares with the C++ CPU backend's; then the
targets of the rendering benchmarks, and the peak memory measured by bench/peak_memory.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = {
    "cpp-cpu": "fooling_ext C++ CPU",
    "cpp-cuda": "fooling_ext CUDA",
    "torch-cpu": "PyTorch batched, CPU",
    "torch-cuda": "PyTorch batched, CUDA",
    "numpy-reference": "NumPy reference",
    "neat-python": "neat-python, pixel by pixel",
}
# (faster, slower, minimum ratio of their images per second)
TARGETS = [("cpp-cpu", "torch-cpu", 3.0), ("cpp-cpu", "neat-python", 300.0), ("cpp-cuda", "torch-cuda", 10.0)]
MB = 10**6


def _seconds(t: float) -> str:
    return f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"


def _rate(images_per_second: float) -> str:
    return f"{images_per_second:,.0f}" if images_per_second >= 100 else f"{images_per_second:.3g}"


def _relative(rate: float, base: float) -> str:
    if rate == base:
        return "1x"
    return f"{rate / base:.3g}x faster" if rate > base else f"{base / rate:.3g}x slower"


def render_tables(results: dict) -> str:
    rows: dict[str, dict[str, dict]] = {}
    memory = None
    for bench in results["benchmarks"]:
        info = bench["extra_info"]
        if bench["group"] == "render peak memory":
            memory = info
        elif "renderer" in info:
            median = bench["stats"]["median"]
            rows.setdefault(info["workload"], {})[info["renderer"]] = {
                "images": info["images"],
                "median": median,
                "rate": info["images"] / median,
            }
    machine = results["machine_info"]
    lines = [
        f"CPU: {machine.get('cpu', {}).get('brand_raw', 'unknown')}, {machine['torch']['threads']} threads; "
        f"GPU: {machine.get('gpu', 'none')}; torch {machine['torch']['version']}; "
        f"Python {machine['python_version']}.",
        "",
    ]
    for workload, by_renderer in rows.items():
        base = by_renderer.get("cpp-cpu")
        lines += [
            f"**{workload}**",
            "",
            "| renderer | images | median | images/s | vs C++ CPU |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in LABELS:
            if name not in by_renderer:
                continue
            r = by_renderer[name]
            relative = _relative(r["rate"], base["rate"]) if base else "-"
            lines.append(
                f"| {LABELS[name]} | {r['images']} | {_seconds(r['median'])} | {_rate(r['rate'])} | {relative} |"
            )
        lines.append("")
        for fast, slow, minimum in TARGETS:
            if fast in by_renderer and slow in by_renderer:
                ratio = by_renderer[fast]["rate"] / by_renderer[slow]["rate"]
                verdict = "met" if ratio >= minimum else "NOT met"
                lines.append(f"- {LABELS[fast]} / {LABELS[slow]}: {ratio:.3g}x (target >= {minimum:g}x, {verdict})")
        lines.append("")
    if memory:
        for b in memory["backends"]:
            verdict = "met" if b["extra_bytes"] <= memory["limit_bytes"] else "NOT met"
            lines.append(
                f"- Peak memory, {memory['workload']}, {b['backend']}: output {b['output_bytes'] / MB:.1f} MB, "
                f"beyond it {b['extra_bytes'] / MB:.1f} MB (target <= {memory['limit_bytes'] / MB:g} MB, {verdict})"
            )
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", type=Path, help="written by pytest --benchmark-json")
    args = parser.parse_args()
    print(render_tables(json.loads(args.json_file.read_text())), end="")


if __name__ == "__main__":
    main()
