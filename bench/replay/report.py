"""The replay's report: the markdown tables, the plot, and the section of docs/benchmarks.md."""

from __future__ import annotations

import io
import math
from pathlib import Path

from bench.harness.docs import heading_section_write

HEADING = "## Replay: human effort saved at a bounded error"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def table(results: list[dict]) -> str:
    """The markdown table: one line per arm."""
    head = (
        "| run | items | automated | solo-decision error | final-outcome error | human decisions "
        "| onset → detection (items) | detection → demotion (items) | onset → demotion (items) "
        "| champions: accuracy clean / night | wall s | items/s |\n|" + " --- |" * 12 + "\n"
    )
    lines = []
    for r in results:
        t, d = r["totals"], r["detection"]
        champs = "; ".join(
            f"v{c['version']} (from item {c['from_item']}): {_pct(c['accuracy_clean'])} / "
            f"{_pct(c['accuracy_night'])}"
            for c in r["champions"]
        )
        lines.append(
            f"| {r['title']} | {t['items']} | {t['auto']} ({_pct(t['automation_rate'])}) "
            f"| {t['solo_wrong']}/{t['auto']} ({_pct(t['solo_error'])}) "
            f"| {t['final_wrong']}/{t['auto'] + t['human']} ({_pct(t['final_error'])}) "
            f"| {r['human_decisions']} | {d['onset_to_detection']} | {d['detection_to_demotion']} "
            f"| {d['onset_to_demotion']} | {champs} | {r['wall_seconds']:.0f} "
            f"| {r['throughput']:.2f} |\n"
        )
    return head + "".join(lines)


def phase_table(results: list[dict]) -> str:
    """Automation and solo-decision error before, during and after the shift."""
    head = "| run | phase | items | automated | solo-decision error | left in queue |\n"
    head += "|" + " --- |" * 6 + "\n"
    lines = []
    for r in results:
        for name, p in r["phases"].items():
            lines.append(
                f"| {r['title']} | {name} | {p['items']} | {_pct(p['automation_rate'])} "
                f"| {p['solo_wrong']}/{p['auto']} ({_pct(p['solo_error'])}) | {p['queued']} |\n"
            )
    return head + "".join(lines)


def plot(results: list[dict], *, onset: int | None, recovery: int | None, path: Path) -> None:
    """Automation rate and solo-decision error over the stream, shift marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    tagged = 0
    for r in results:
        xs = [(p["start"] + p["end"]) / 2 for p in r["series"]]
        auto = [p["automation_rate"] for p in r["series"]]
        err = [math.nan if p["solo_error"] is None else p["solo_error"] for p in r["series"]]
        (line,) = top.plot(xs, auto, marker=".", label=r["title"])
        bottom.plot(xs, err, marker=".", label=r["title"])
        marks: dict[int, list[str]] = {}
        for key in ("detection_index", "demotion_index"):
            at = r["detection"].get(key)
            if isinstance(at, int):
                marks.setdefault(at, []).append(key.split("_")[0])
        for at, what in marks.items():
            top.axvline(at, linestyle=":", color=line.get_color())
            tag = f"{r['title'].split()[0]} {' + '.join(what)}"
            top.annotate(tag, (at + 3, 0.98 - 0.07 * tagged), fontsize=7, color=line.get_color())
            tagged += 1
    for ax in (top, bottom):
        if onset is not None:
            ax.axvspan(
                onset,
                recovery if recovery is not None else ax.get_xlim()[1],
                color="0.9",
                zorder=0,
                label="night shift" if ax is top else None,
            )
            ax.axvline(onset, color="red", linewidth=1)
        ax.grid(alpha=0.3)
    top.set_ylabel("automation rate")
    top.set_ylim(-0.02, 1.08)
    bottom.set_ylabel("solo-decision error")
    bottom.set_xlabel("stream position (items, in time order)")
    handles, labels = top.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.suptitle("Replay: night shift from the red line; shaded while it lasts", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    figure_save(fig, path)


def docs_write(results: list[dict], meta: dict, plot_path: Path) -> None:
    notes = "\n".join(f"- **{r['title']}**: {r['notes']}." for r in results)
    runs = "\n".join(
        f"- {r['title']}: stages {r['stages'] or 'unchanged'}; "
        f"training runs {r['training_runs'] or 'none'}; admin actions "
        f"{[a['what'] for acts in r['admin_actions'] for a in acts] or 'none'}; "
        f"detection: {r['detection'].get('alarm')}; "
        f"demotion: {r['detection'].get('demotion', 'none')}"
        for r in results
    )
    body = f"""Command: `{meta["command"]}` (seed {meta["seed"]}, {meta["date"]};
{meta["machine"]}).

{meta["stream"]} held-out digits (1000..1796 minus every 5th, which is kept to evaluate
champions) in index order; night shift (`mlcore.shifts.night`) from item {meta["onset"]} to item
{meta["recovery"]}; {meta["reviewers"]} simulated reviewers at {meta["accuracy"]:.0%} accuracy and
{meta["think_ms"]} ms per item; {meta["rate"]} items/s through the API. Champion v1: resnet18,
{meta["epochs"]} epochs on the demo's 1,000 base digits (trained in {meta["train_seconds"]:.0f} s).
The whole command, from an empty database to this table, took {meta["total_seconds"] / 60:.1f} min.
Solo-decision error = wrong labels among the items the model decided alone; final-outcome error =
wrong final labels among all decided items; champions' accuracy is on the never-streamed held-out
digits, as they are / night-shifted. Detection = the first DriftAlarm raised after the onset;
demotion = the automatic stage change that followed (drift alarm or audit). Other jobs shared
the 2 CPU cores during the run, so times are slower than on an idle machine.

{table(results)}
{phase_table(results)}
![automation rate and solo-decision error over the stream](img/{plot_path.name})

{notes}

{runs}
"""
    heading_section_write(HEADING, body)


def figure_save(fig, path: Path) -> None:
    """Write a matplotlib figure as a PNG at path (folders made) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
