"""Write one self-contained HTML report (inline SVG charts, no scripts, no network) from `vllm bench serve` results.

Usage: python3 benchmark_report.py RESULTS [RESULTS ...] [--out report.html] [--model NAME] [--gpu NAME]
RESULTS are result JSON files or directories holding them (`vllm bench serve --save-result`). Standard library
only: it runs in the engine image the benchmark Job already uses, and on any machine with Python 3.10+.

The report shows each run's throughput and its TTFT, TPOT, ITL and end-to-end latency percentiles; with runs at
several request rates, latency and throughput against the rate; and, where one of the deployments this program
replaces published figures for the same model and GPU, those figures beside the measured ones.
It prints the report's path.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from pathlib import Path

METRICS = (("ttft", "Time to first token"), ("tpot", "Time per output token"), ("itl", "Inter-token latency"))
E2E = ("e2el", "End-to-end latency")
PERCENTILES = ("50", "90", "99")
COLOURS = ("#3366cc", "#dc8a16", "#109618", "#990099", "#dc3912", "#0099c6")
REFERENCE_COLOUR = "#9e9e9e"

# Figures the deployments this program replaces published. Only Compute Nest's vLLM on ACS guide gives numbers:
# DeepSeek-R1 (671B, FP8) on ACS H20 GPU pods, ShareGPT, 200 prompts at 1 request/s,
# vLLM's benchmark_serving.py (its result block, as printed). Compute Nest's ECS guide shows its results as images
# only, the GKE A4 recipe prints placeholders (x.xx): neither is quoted.
PUBLISHED = (
    {
        "source": "Compute Nest LLM inference, ACS edition (its guide)",
        "model": "DeepSeek-R1",
        "gpu": "H20",
        "dataset": "sharegpt",
        "num_prompts": 200,
        "request_rate": 1.0,
        "completed": 200,
        "duration": 272.15,
        "request_throughput": 0.73,
        "output_throughput": 146.91,
        "total_token_throughput": 306.34,
        "mean_ttft_ms": 246.46,
        "median_ttft_ms": 244.58,
        "p99_ttft_ms": 342.11,
        "mean_tpot_ms": 130.30,
        "median_tpot_ms": 130.12,
        "p99_tpot_ms": 139.09,
        "mean_itl_ms": 129.89,
        "median_itl_ms": 125.40,
        "p99_itl_ms": 173.20,
    },
)


def load_results(paths: list[str]) -> list[dict]:
    """Every result JSON under `paths` (files, or directories searched recursively), oldest first."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        files.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    runs = []
    for file in files:
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "completed" in data and "duration" in data:
            data["_file"] = file.name
            runs.append(data)
    return sorted(runs, key=lambda r: (str(r.get("date", "")), r["_file"]))


def rate_of(run: dict) -> float:
    """The run's request rate in requests/s (inf: every prompt at once)."""
    value = run.get("request_rate", "inf")
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.inf


def percentile(run: dict, metric: str, p: str):
    """p50 falls back to the median, which every vLLM version reports."""
    value = run.get(f"p{p}_{metric}_ms")
    if value is None and p == "50":
        value = run.get(f"median_{metric}_ms")
    return value


def published_for(model: str, gpu: str) -> list[dict]:
    return [p for p in PUBLISHED if p["model"].lower() == model.lower() and p["gpu"].lower() == gpu.lower()]


# --- SVG --------------------------------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _axis(width: int, height: int, left: int, top: int, plot_h: int, top_value: float, unit: str) -> list[str]:
    parts = []
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:g}</text>')
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="11" transform="rotate(-90 12 {top + plot_h / 2:.1f})" '
        f'text-anchor="middle">{html.escape(unit)}</text>'
    )
    return parts


def bar_chart(title: str, groups: list[str], series: list[tuple[str, list],], unit: str, colours=COLOURS) -> str:
    """Grouped bars: one group per label in `groups`, one bar per (name, values) in `series` (None: no bar)."""
    width, height, left, top, bottom = 640, 300, 60, 30, 60
    plot_w, plot_h = width - left - 10, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = _nice_max(max(values) if values else 1.0)
    parts = [f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    parts += _axis(width, height, left, top, plot_h, top_value, unit)
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    for g, label in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, vs) in enumerate(series):
            value = vs[g] if g < len(vs) else None
            if value is None:
                continue
            h = plot_h * value / top_value
            x, y = x0 + s * bar_w, top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colours[s % len(colours)]}"><title>{html.escape(name)} {html.escape(label)}: '
                f"{value:.2f} {html.escape(unit)}</title></rect>"
            )
            parts.append(
                f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="9">'
                f"{value:.3g}</text>"
            )
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">'
            f"{html.escape(label)}</text>"
        )
    parts += _legend([name for name, _ in series], width, height - 22, colours)
    return _svg(width, height, parts)


def line_chart(title: str, xs: list[float], series: list[tuple[str, list]], x_unit: str, unit: str) -> str:
    """Lines over the request rates `xs` (finite ones; inf is drawn at the right edge)."""
    width, height, left, top, bottom = 640, 300, 60, 30, 60
    plot_w, plot_h = width - left - 20, height - top - bottom
    finite = [x for x in xs if math.isfinite(x)]
    x_max = _nice_max(max(finite) * 1.1 if finite else 1.0)
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = _nice_max(max(values) if values else 1.0)

    def px(x: float) -> float:
        return left + plot_w * ((x / x_max) if math.isfinite(x) else 1.0)

    parts = [f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    parts += _axis(width, height, left, top, plot_h, top_value, unit)
    for x in xs:
        label = "inf" if not math.isfinite(x) else f"{x:g}"
        parts.append(
            f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{label}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle" font-size="11">'
        f"{html.escape(x_unit)}</text>"
    )
    for s, (_, vs) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        points = [(px(x), top + plot_h - plot_h * v / top_value) for x, v in zip(xs, vs, strict=True) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    parts += _legend([name for name, _ in series], width, height - 14, COLOURS)
    return _svg(width, height, parts)


def _legend(names: list[str], width: int, y: int, colours) -> list[str]:
    parts, x = [], 60
    for s, name in enumerate(names):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colours[s % len(colours)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" font-size="11">{html.escape(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def _svg(width: int, height: int, parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" role="img">\n{body}\n</svg>'
    )


# --- the report ---------------------------------------------------------------------------------------------


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return html.escape(str(value))


def _run_label(run: dict) -> str:
    rate = rate_of(run)
    return f"{'inf' if not math.isfinite(rate) else f'{rate:g}'} req/s"


def summary_table(runs: list[dict], references: list[dict]) -> str:
    columns = [
        ("run", lambda r: r.get("_file") or r.get("source")),
        ("request rate (req/s)", lambda r: r.get("request_rate")),
        ("completed", lambda r: r.get("completed")),
        ("duration (s)", lambda r: r.get("duration")),
        ("requests/s", lambda r: r.get("request_throughput")),
        ("output tokens/s", lambda r: r.get("output_throughput")),
        ("total tokens/s", lambda r: r.get("total_token_throughput")),
    ]
    for metric, _ in (*METRICS, E2E):
        columns.append((f"mean {metric.upper()} (ms)", lambda r, m=metric: r.get(f"mean_{m}_ms")))
        for p in PERCENTILES:
            columns.append((f"p{p} {metric.upper()} (ms)", lambda r, m=metric, p=p: percentile(r, m, p)))
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    rows = []
    for run in runs:
        rows.append("<tr>" + "".join(f"<td>{_fmt(get(run))}</td>" for _, get in columns) + "</tr>")
    for ref in references:
        rows.append('<tr class="ref">' + "".join(f"<td>{_fmt(get(ref))}</td>" for _, get in columns) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render(runs: list[dict], model: str = "", gpu: str = "") -> str:
    if not runs:
        raise ValueError("no vllm bench serve result JSON found")
    references = published_for(model, gpu) if model and gpu else []
    latest = runs[-1]
    charts = []
    # Percentiles of the latest run, beside the published figures (which give p50 and p99 only).
    for metric, title in METRICS:
        series = [(f"measured ({_run_label(latest)})", [percentile(latest, metric, p) for p in PERCENTILES])]
        for ref in references:
            series.append(
                (f"published ({ref['request_rate']:g} req/s)", [percentile(ref, metric, p) for p in PERCENTILES])
            )
        colours = COLOURS[:1] + (REFERENCE_COLOUR,) * len(references)
        charts.append(bar_chart(title, [f"p{p}" for p in PERCENTILES], series, "ms", colours))
    throughput = [("measured", [latest.get("request_throughput"), latest.get("output_throughput")])]
    for ref in references:
        throughput.append(("published", [ref.get("request_throughput"), ref.get("output_throughput")]))
    charts.append(
        bar_chart(
            "Throughput",
            ["requests/s", "output tokens/s"],
            throughput,
            "per second",
            COLOURS[:1] + (REFERENCE_COLOUR,) * len(references),
        )
    )
    by_rate: dict[float, dict] = {}
    for run in runs:  # the latest run of each rate
        by_rate[rate_of(run)] = run
    if len(by_rate) > 1:
        rates = sorted(by_rate)
        ordered = [by_rate[r] for r in rates]
        for metric, title in (*METRICS[:1], METRICS[2], E2E):
            series = [(f"p{p}", [percentile(r, metric, p) for r in ordered]) for p in PERCENTILES]
            charts.append(line_chart(f"{title} against request rate", rates, series, "request rate (req/s)", "ms"))
        charts.append(
            line_chart(
                "Throughput against request rate",
                rates,
                [("output tokens/s", [r.get("output_throughput") for r in ordered])],
                "request rate (req/s)",
                "tokens/s",
            )
        )
    what = html.escape(str(latest.get("model_id") or model or "the model"))
    where = f" on {html.escape(gpu)}" if gpu else ""
    reference_note = (
        "<p>Grey: figures published by "
        + "; ".join(html.escape(r["source"]) for r in references)
        + f" for {html.escape(model)} on {html.escape(gpu)} (dataset {html.escape(references[0]['dataset'])}, "
        f"{references[0]['num_prompts']} prompts). Compare like with like: dataset, prompt count and rate matter.</p>"
        if references
        else "<p>No reference deployment published figures for this model and GPU.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Benchmark: {what}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th{{background:#f4f4f4}}tr.ref td{{color:#666}}
.charts{{display:flex;flex-wrap:wrap;gap:12px}}</style></head>
<body><h1>Benchmark: {what}{where}</h1>
<p>{len(runs)} run(s) of <code>vllm bench serve</code>; the charts show the latest
({html.escape(latest.get("_file", ""))}, {_fmt(latest.get("date"))}). Latencies in milliseconds.</p>
{reference_note}
<div class="charts">{"".join(charts)}</div>
<h2>All runs</h2>{summary_table(runs, references)}
</body></html>
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write a self-contained HTML report from vllm bench serve results.")
    parser.add_argument("results", nargs="+", help="result JSON files or directories")
    parser.add_argument("--out", default="benchmark-report.html")
    parser.add_argument("--model", default="", help="catalog model name, for the published figures")
    parser.add_argument("--gpu", default="", help="GPU name (H20, A10, ...), for the published figures")
    args = parser.parse_args(argv)
    runs = load_results(args.results)
    if not runs:
        print(f"benchmark report: no result JSON in {' '.join(args.results)}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.write_text(render(runs, args.model, args.gpu))
    print(f"benchmark report: {out} ({len(runs)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
