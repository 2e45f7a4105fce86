#!/usr/bin/env python3
"""Draws docs/e2e.svg from `foldertrack bench e2e --json` reports: move-to-record latency
(p50, p95, p99) and the agent's peak resident memory against the number of mailboxes.

    python3 docs/plot_e2e.py docs/e2e/small.json docs/e2e/office.json docs/e2e/enterprise.json > docs/e2e.svg

Standard library only; one SVG with two panels, mailboxes on a log scale.
"""

import json
import math
import sys

W, H, PAD = 360, 260, 50


def panel(x0, title, unit, series, points):
    """One panel: `series` is [(label, colour, key)], `points` is [(mailboxes, report)]."""
    xs = [math.log10(m) for m, _ in points]
    values = [r_value(r, key) for _, r in points for _, _, key in series]
    top = max(values + [1e-9]) * 1.15
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0

    def px(x):
        return x0 + PAD + (x - lo) / span * (W - 2 * PAD)

    def py(v):
        return H - PAD - v / top * (H - 2 * PAD)

    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>']
    out.append(f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - PAD}" y2="{H - PAD}" stroke="black"/>')
    out.append(f'<line x1="{x0 + PAD}" y1="{PAD}" x2="{x0 + PAD}" y2="{H - PAD}" stroke="black"/>')
    for i in range(5):
        v = top * i / 4
        out.append(f'<text x="{x0 + PAD - 6}" y="{py(v) + 4}" text-anchor="end" font-size="10">{v:.3g}</text>')
    for m, _ in points:
        x = px(math.log10(m))
        out.append(f'<text x="{x}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{m:,}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{H - 12}" text-anchor="middle" font-size="11">mailboxes</text>')
    out.append(f'<text x="{x0 + 12}" y="{H / 2}" font-size="11" transform="rotate(-90 {x0 + 12} {H / 2})" text-anchor="middle">{unit}</text>')
    for i, (label, colour, key) in enumerate(series):
        coords = " ".join(f"{px(math.log10(m))},{py(r_value(r, key))}" for m, r in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for m, r in points:
            out.append(f'<circle cx="{px(math.log10(m))}" cy="{py(r_value(r, key))}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{x0 + W - PAD}" y="{PAD + 14 * i}" text-anchor="end" font-size="11" fill="{colour}">{label}</text>')
    return out


def r_value(report, key):
    value = report
    for part in key.split("."):
        value = value[part]
    return float(value)


def main(paths):
    reports = [json.load(open(p)) for p in paths]
    points = sorted(((r["options"]["mailboxes"], r) for r in reports if not r["options"]["track_now"]), key=lambda p: p[0])
    if not points:
        sys.exit("no polling reports given")
    body = panel(0, "move → record latency", "seconds", [
        ("p50", "#1b9e77", "latency.p50"),
        ("p95", "#d95f02", "latency.p95"),
        ("p99", "#7570b3", "latency.p99"),
    ], points)
    body += panel(W, "agent peak memory", "MiB resident", [("peak RSS", "#e7298a", "agent_peak_rss_mib")], points)
    date = points[-1][1]["machine"]["date"]
    print(f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 10}" font-family="sans-serif">')
    print(f'<rect width="100%" height="100%" fill="white"/>')
    print("\n".join(body))
    print(f'<text x="{W}" y="{H + 6}" text-anchor="middle" font-size="9">foldertrack bench e2e, {date}</text>')
    print("</svg>")


if __name__ == "__main__":
    main(sys.argv[1:])
