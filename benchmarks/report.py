"""Renders benchmark results (benchmarks/results/latest.json) as markdown.

    python -m benchmarks.report [--results FILE] [--readme README.md] [--section NAME]

prints the table with the machine it was measured on; with --readme, also replaces the text
between `<!-- bench:start -->` and `<!-- bench:end -->` in that file (nothing else changes);
with --section NAME, between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`
(a second table from another run, e.g. a subset measured on another day or machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results", "latest.json")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _other(row: dict[str, Any]) -> str:
    if row.get("torch") is not None:
        # Train rows: the faster torch layout, named when it is not PyTorch's default NCHW.
        layout = row.get("torch_layout")
        return _cell(row["torch"]) + (f" ({layout})" if layout not in (None, "nchw") else "")
    if row.get("peer") is not None and row.get("peer_value") is not None:
        return f"{_cell(row['peer_value'])} ({row['peer']})"
    errors = (row.get("config") or {}).get("errors") or {}
    return "error" if set(errors) - {"jax"} else "—"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: name | unit | jax | torch/peer | ratio (ratio > 1: JAX faster)."""
    lines = ["| name | unit | jax | torch/peer | ratio |", "|---|---|---:|---:|---:|"]
    for row in rows:
        jax = _cell(row.get("jax"))
        if row.get("jax") is None and "jax" in ((row.get("config") or {}).get("errors") or {}):
            jax = "error"
        ratio = row.get("ratio")
        lines.append(f"| {row['name']} | {row['unit']} | {jax} | {_other(row)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def machine_line(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    threads = m.get("threads", m.get("cores"))
    when = (doc.get("date") or "")[:10]
    kind = " (`--quick` subset)" if doc.get("quick") else ""
    conv = f", JAX conv: {m['conv_impl']}" if m.get("conv_impl") else ""
    return (f"Measured {when}{kind} on {m.get('cpu', '?')} — {threads} of {m.get('cores', '?')} "
            f"cores for every framework, device {m.get('device', '?')}; jax {m.get('jax')}, "
            f"torch {m.get('torch') or 'not installed'}{conv}.")


def shown(path: str) -> str:
    """`path` as the README names it: relative to the repository."""
    return os.path.relpath(os.path.abspath(path), REPO)


def render(doc: dict[str, Any], source: str = shown(RESULTS)) -> str:
    """The machine line, the table and how to read it (`source`: where the JSON is)."""
    return "\n".join([
        machine_line(doc), "",
        table(doc.get("cases", [])), "",
        "ratio > 1: the project's side is better (torch/jax for s/step, jax/torch for "
        "MP/s). torch/peer: the PyTorch twin (same layers, parameter count and MACs; eager "
        "float32; train steps: the faster of NCHW and channels_last, named when it is "
        "channels_last; inference: NCHW), or the peer named in brackets; for NLM and BM3D "
        "the jax column is the project's classical method (scikit-image / bm3d). Medians "
        "after warm-up, compilation excluded" + (
            "; a train step's ratio is the median over rounds that alternate JAX and its "
            "twin (config.round_ratios)" if any(c.get("config", {}).get("round_ratios")
                                                for c in doc.get("cases", [])) else "")
        + f"; each case's config is in `{source}`.",
    ])


def markers(section: str | None = None) -> tuple[str, str]:
    """The (start, end) marker lines of the README's bench table `section` (None: the main one)."""
    if not section:
        return START, END
    return f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"


def replace_section(text: str, body: str, section: str | None = None) -> str:
    """`text` with the part between the bench markers of `section` replaced by `body`.

    Raises ValueError when the markers are missing or out of order.
    """
    first, last = markers(section)
    start, end = text.find(first), text.find(last)
    if start < 0 or end < start:
        raise ValueError(f"no {first} ... {last} section")
    return text[: start + len(first)] + "\n" + body.strip() + "\n" + text[end:]


def update_readme(path: str, doc: dict[str, Any], section: str | None = None,
                  source: str = shown(RESULTS)) -> None:
    """Rewrites the bench section `section` of the file at `path` (atomically)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    from denoise_jax.images import write_text

    write_text(path, replace_section(text, render(doc, source), section))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=RESULTS, help="results JSON (default: latest)")
    parser.add_argument("--readme", help="rewrite this file's bench section")
    parser.add_argument("--section", help="the named bench section instead of the main one")
    args = parser.parse_args(argv)
    try:
        with open(args.results, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: cannot read {args.results} ({e}); run python -m benchmarks.run first",
              file=sys.stderr)
        return 2
    source = shown(args.results)
    print(render(doc, source))
    if args.readme:
        try:
            update_readme(args.readme, doc, args.section, source)
        except (OSError, ValueError) as e:
            first, last = markers(args.section)
            print(f"error: {args.readme}: {e}; add the two marker lines {first} and {last}",
                  file=sys.stderr)
            return 2
        print(f"\nupdated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
