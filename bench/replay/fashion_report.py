"""The Fashion-MNIST replay's report: the per-arm and per-phase tables, the plot, and its
section of docs/benchmarks.md."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from bench.harness import ROOT
from bench.harness.docs import command_line, heading_section_write
from bench.harness.machine import machine_summary
from bench.replay.report import figure_save

HEADING = "## Replay on Fashion-MNIST: earned automation at an error budget"
TITLES = {
    "manual": "(a) all manual (offline)",
    "threshold": "(b) fixed 0.9 threshold (offline)",
    "handoff": "(c) Handoff from shadow (running system)",
    "oracle": "(d) oracle, per-class hindsight thresholds (offline)",
    "paid": "(d′) oracle that pays for its evidence, per class (offline)",
    "paid_pooled": "(d″) oracle that pays for its evidence, pooled (offline)",
}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def table(result: dict, epsilon: float) -> str:
    """One line per arm."""
    head = (
        "| arm | automated | solo error | worst window of automatic decisions | human decisions "
        "| camera onset → last automatic decision in it (items) | OOD decided alone |\n|"
        + " --- |" * 7
        + "\n"
    )
    lines = []
    for key, title in TITLES.items():
        a = result["arms"][key]
        w, after = a["window"], a["after_onset"]
        worst = f"{_pct(w['max_error'])} over {w['window']}" if w["window"] else "–"
        lines.append(
            f"| {title} | {a['auto']}/{a['items']} ({_pct(a['automation_rate'])}) "
            f"| {a['solo_wrong']}/{a['auto']} ({_pct(a['solo_error'])}) | {worst} "
            f"| {a['human_decisions']} | {after['items_to_last_auto']} "
            f"({after['auto_in_shift']} automatic of {after['shift_items']}) "
            f"| {a['ood_auto']}/{a['ood_items']} ({_pct(a['ood_auto'] / a['ood_items'])}) |\n"
        )
    oracle = result["arms"]["oracle"]["automation_rate"] or 0
    ratios = []
    for key, name in (("handoff", "Handoff's"), ("paid", "(d′)'s"), ("paid_pooled", "(d″)'s")):
        rate = result["arms"][key]["automation_rate"] or 0
        ratios.append(
            f"{name} coverage / the oracle's at ε={epsilon}: "
            + (f"{rate / oracle:.2f}×" if oracle else "–")
        )
    return head + "".join(lines) + "\n" + "; ".join(ratios) + ".\n"


def phase_table(result: dict) -> str:
    """Automation and solo error per arm and phase."""
    phases = list(result["meta"]["phases"])
    head = "| arm | " + " | ".join(
        f"{p} ({a}–{b})" for p, (a, b) in result["meta"]["phases"].items()
    )
    head += " |\n|" + " --- |" * (len(phases) + 1) + "\n"
    lines = []
    for key, title in TITLES.items():
        cells = []
        for p in phases:
            s = result["arms"][key]["phases"][p]
            cells.append(f"{_pct(s['automation_rate'])} auto, err {_pct(s['solo_error'])}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |\n")
    return head + "".join(lines)


def plot(result: dict, path: Path) -> None:
    """Automation rate and solo error over the stream per arm, the phases shaded (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for key, title in TITLES.items():
        points = result["arms"][key]["series"]
        xs = [(p["start"] + p["end"]) / 2 for p in points]
        top.plot(xs, [p["automation_rate"] for p in points], marker=".", label=title)
        errors = [math.nan if p["solo_error"] is None else p["solo_error"] for p in points]
        bottom.plot(xs, errors, marker=".", label=title)
    shades = {"camera": "0.85", "ood-burst": "#f4c7c3", "class-mix": "#d9e8f5"}
    for ax in (top, bottom):
        for name, (start, end) in result["meta"]["phases"].items():
            if name in shades:
                ax.axvspan(start, end, color=shades[name], zorder=0)
                if ax is top:
                    ax.annotate(name, (start + 2, 1.02), fontsize=7)
        ax.grid(alpha=0.3)
    top.set_ylabel("automation rate")
    top.set_ylim(-0.02, 1.1)
    bottom.set_ylabel("solo-decision error")
    bottom.set_xlabel("stream position (items, in time order)")
    handles, labels = top.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=2, frameon=False)
    fig.suptitle("Fashion-MNIST replay: camera change, out-of-domain burst, class mix", fontsize=10)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    figure_save(fig, path)


def _body(result: dict, meta: dict, args, plot_name: str) -> str:
    c = result["arms"]["handoff"]
    trained = (
        f"loaded from `{args.champion_artifact}` (trained beforehand with the same parameters)"
        if args.champion_artifact
        else f"trained in this run ({meta['train_seconds']:.0f} s)"
    )
    thresholds = {k: round(v, 4) for k, v in result["arms"]["oracle"]["thresholds"].items()}
    champions = "; ".join(
        f"v{ch['version']} (from item {ch['from_item']}): {_pct(ch['accuracy_clean'])} clean, "
        f"{_pct(ch['accuracy_shifted'])} camera-changed"
        for ch in result["champions"]
    )
    return f"""Command: `{meta["command"]}` (seed {args.seed}, {meta["date"]}; {meta["machine"]}).
Numbers taken on a shared machine (other engineers' jobs on the same 2 cores): slower than idle.

World: Fashion-MNIST (Debian's dataset-fashion-mnist). Champion v1: `small_cnn` on the first
{meta["base"]} training images, {trained}. Stream: the next
{meta["stream"]} images through the API (Python client) at {args.rate} items/s; phases
{meta["phases"]}: camera change `{args.shift}`, a burst of out-of-domain images (scikit-learn
digits and photo crops, 28×28 grayscale), then 85% of items from the five look-alike classes.
{args.reviewers} simulated reviewers at {args.reviewer_accuracy:.0%} accuracy,
{args.think_ms} ms per item, over the desk's HTTP endpoints; error budget ε={args.epsilon},
δ={args.delta}; project settings {meta["settings"]}.

(c) is the running system (gunicorn, a prediction worker, a training worker, beat, from an empty
PostgreSQL database). (a), (b) and (d) are computed offline from the predictions (c) recorded,
by the champion of each item's time: honest for (a) and (d) (which by definition see the same
champions); for (b) it assumes the threshold rule would have had the same champions, whereas a
real fixed-threshold deployment would keep v1. Human decisions: (c) counts the reviews and
audits the desk recorded; the offline arms count one review per item they do not automate.
(d′) and (d″) take (d)'s hindsight thresholds but automate a class only after enough items it
would automate have gone by, all labelled by people and none wrong: the fewest labels Learn then
Test needs at ε and δ (per class at δ split over the classes for (d′); for (d″) in all, a
guarantee on the error of all automatic decisions together). No procedure that certifies its
thresholds on labels can beat them, so they show what the guarantee itself costs.
"Camera onset → last automatic decision" counts stream items from the camera change's first
item to the last one decided automatically inside the change (0 = none automated).

{table(result, args.epsilon)}
{phase_table(result)}
![automation and solo error over the Fashion-MNIST stream](img/{plot_name})

- (c): {c["predicted"]} items predicted; {c["queued"]} still queued and {c["pending"]} pending
  when the stream ended and the drain ({result["drain_seconds"]:.0f} s) timed out or finished.
- Oracle thresholds: {json.dumps(thresholds)}
- Champions (accuracy on {meta["eval"]} never-streamed test images): {champions}
- Stages: {result["stages"] or "unchanged"}; training runs: {result["training_runs"] or "none"}
- Wall time: stream {result["stream_seconds"]:.0f} s, whole arm {result["wall_seconds"]:.0f} s
  ({result["throughput"]:.2f} items/s); the whole command {meta["total_seconds"] / 60:.1f} min.
"""


def write(args, result: dict) -> None:
    """results.json, the plot and (unless --no-write) the docs section."""
    meta = {
        **result["meta"],
        "command": command_line(),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_summary(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({**result, "meta": meta}, indent=2, default=str)
    )
    plot_path = (args.out if args.no_write else ROOT / "docs" / "img") / "replay-fashion.png"
    plot(result, plot_path)
    body = _body(result, meta, args, plot_path.name)
    (args.out / "report.md").write_text(body)
    if not args.no_write:
        heading_section_write(HEADING, body)
    print(table(result, args.epsilon))
    print(f"total {meta['total_seconds']:.0f} s; results in {args.out / 'results.json'}")
