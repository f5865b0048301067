"""Learn then Test run along the stream without hindsight (offline, from a replay's predictions):
what a certifying rule automates when it must earn its thresholds from the labels it has seen.

Both rules see the stream in order. Every item they do not automate is labelled by a person
(truth, as a perfect reviewer would give it) and joins the calibration set; automated items are
not labelled. Every `every` items the thresholds are recomputed from the labels so far:

- ``per_class``: Handoff's rule (``reviewapp.rollout.ltt.thresholds``): per predicted class, the
  lowest grid threshold certified at δ split over the classes.
- ``pooled``: one threshold for all classes, certified at the full δ on the error of all the
  labelled items above it together (Learn then Test over a one-parameter family, fixed sequence
  from high to low). Its guarantee is on all automatic decisions together, not on each class.

No audit monitor or drift alarm is simulated: a rule that automates through a shift here would
be stopped there by them, so the solo error in a shift is an upper bound.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from bench.replay.offline import Scored
from reviewapp.rollout import ltt


def pooled_threshold(labelled: Sequence[ltt.Labelled], *, epsilon: float, delta: float) -> float:
    """The lowest grid threshold whose error over all classes together is certified (or NEVER)."""
    return ltt.class_threshold(label="*", labelled=labelled, epsilon=epsilon, level=delta).threshold


def certified_flags(
    items: Sequence[Scored],
    *,
    labels: Sequence[str],
    epsilon: float,
    delta: float,
    pooled: bool,
    every: int = 25,
) -> list[bool]:
    """Which items the rule automates, in stream order."""
    seen: dict[str, list[ltt.Labelled]] = defaultdict(list)
    thresholds: dict[str, float] = {}
    flags = []
    for i, s in enumerate(items):
        if i % every == 0:
            if pooled:
                everything = [x for group in seen.values() for x in group]
                t = pooled_threshold(everything, epsilon=epsilon, delta=delta)
                thresholds = dict.fromkeys(labels, t)
            else:
                found = ltt.thresholds(labelled=seen, labels=labels, epsilon=epsilon, delta=delta)
                thresholds = {label: r.threshold for label, r in found.items()}
        auto = s.confidence >= thresholds.get(s.predicted, ltt.NEVER)
        flags.append(bool(auto))
        if not auto:
            seen[s.predicted].append(ltt.Labelled(confidence=s.confidence, wrong=not s.right))
    return flags


def realised_error(items: Sequence[Scored], flags: Sequence[bool]) -> float | None:
    """The solo error of the automated items (None when there are none)."""
    wrong = [not s.right for s, f in zip(items, flags, strict=True) if f]
    return float(np.mean(wrong)) if wrong else None


def _from_database(url: str) -> list[Scored]:
    """The stream of the last Fashion replay, as champion v1 scored it, with its truth."""
    import psycopg

    from mlcore import datasets

    train = datasets.fashion_mnist("train")
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT i.client_key, p.label, p.confidence FROM reviewapp_item i"
            " JOIN reviewapp_prediction p ON p.item_id = i.id"
            " JOIN reviewapp_modelversion m ON m.id = p.model_version_id"
            " WHERE i.origin <> 'base' AND m.number = 1 ORDER BY i.id"
        ).fetchall()

    def truth(key: str) -> str:
        if key.startswith("ood-"):
            return ""  # fashion_world.OOD_TRUTH
        label = train.labels[int(key.split("-")[1])]
        return label if isinstance(label, str) else train.classes[label]

    return [Scored(i, label, conf, truth(key)) for i, (key, label, conf) in enumerate(rows)]


def main() -> None:
    """Print both rules and the oracle on the stream a Fashion replay left in its database."""
    import argparse

    from bench.replay import fashion_world, offline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/handoff_bench_replay_fashion",
    )
    parser.add_argument("--epsilon", type=float, default=0.01)
    parser.add_argument("--delta", type=float, default=0.05)
    args = parser.parse_args()
    items = _from_database(args.database_url)
    labels = sorted({s.predicted for s in items} | {s.truth for s in items if s.truth})
    bounds = fashion_world.phase_bounds(len(items))
    oracle = offline.automated_by_thresholds(items, offline.oracle_thresholds(items, args.epsilon))
    arms = {"oracle (hindsight)": oracle}
    for pooled in (False, True):
        name = "pooled, one threshold" if pooled else "per class, δ split"
        arms[name] = certified_flags(
            items, labels=labels, epsilon=args.epsilon, delta=args.delta, pooled=pooled
        )
    print("| rule | automated | × oracle | solo error | worst 500 | camera | OOD | first |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, flags in arms.items():
        n, error = sum(flags), realised_error(items, flags)
        solo = [s.right for s, f in zip(items, flags, strict=True) if f]
        worst = offline.worst_window(solo, 500)["max_error"]
        first = next((i for i, f in enumerate(flags) if f), None)
        cells = [
            name,
            f"{n} ({n / len(items):.1%})",
            f"{n / max(1, sum(oracle)):.2f}",
            "–" if error is None else f"{error:.2%}",
            "–" if worst is None else f"{worst:.1%}",
            str(sum(flags[slice(*bounds["camera"])])),
            str(sum(flags[slice(*bounds["ood-burst"])])),
            "–" if first is None else str(first),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
