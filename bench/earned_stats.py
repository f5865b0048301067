"""Earned automation's statistics by simulation (issue 18): what the error budget costs and buys.

    .venv/bin/python bench/earned_stats.py --quick        # ~20 s: 200 runs per row
    .venv/bin/python bench/earned_stats.py --runs 2000    # the numbers in docs/benchmarks.md

Pure functions only (reviewapp.rollout.ltt and reviewapp.rollout.monitor), no database:

- Learn then Test on simulated calibration sets of one class whose error rises as confidence
  falls (P(wrong | c) = 1.2 (1 - c), confidences ~ Beta(5, 1)): the share of runs whose chosen
  threshold's true error exceeds ε (must be <= δ), the share certified, and the coverage (share
  of the class's items above the threshold) against the oracle's (the lowest threshold whose
  true error is <= ε).
- The betting monitor on audits of a class whose true error is ε, 3ε and 10ε: the share of
  10,000-audit runs that demote, and the audits to demotion (median, 95th percentile).
- The blind labels one class needs before it can graduate, by ε (at δ = 5%, 10 classes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `reviewapp` importable without Django
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviewapp.rollout import ltt, monitor  # noqa: E402  (pure modules: no Django set-up)


def _true_risk(threshold: float) -> float:
    """E[1.2 (1 - C) | C >= t] for C ~ Beta(5, 1)."""
    mass = 1 - threshold**5
    return 1.2 * ((1 - threshold**5) - 5 * (1 - threshold**6) / 6) / mass


def _oracle(epsilon: float) -> float:
    grid = np.linspace(0.5, 0.9999, 20_000)
    ok = grid[[_true_risk(t) <= epsilon for t in grid]]
    return float(ok.min())


def ltt_rows(*, runs: int, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for epsilon, delta in ((0.02, 0.05), (0.05, 0.05), (0.05, 0.1)):
        violations = certified = 0
        coverage = []
        for _ in range(runs):
            confidences = rng.beta(5, 1, size=n)
            wrong = rng.random(n) < np.clip(1.2 * (1 - confidences), 0, 1)
            sample = [
                ltt.Labelled(float(c), bool(w)) for c, w in zip(confidences, wrong, strict=True)
            ]
            result = ltt.class_threshold(label="a", labelled=sample, epsilon=epsilon, level=delta)
            if result.certified:
                certified += 1
                violations += _true_risk(result.threshold) > epsilon
                coverage.append(1 - result.threshold**5)
        oracle = 1 - _oracle(epsilon) ** 5
        rows.append(
            {
                "epsilon": epsilon,
                "delta": delta,
                "labels": n,
                "violation_share": violations / runs,
                "certified_share": certified / runs,
                "coverage_median": float(np.median(coverage)) if coverage else 0.0,
                "oracle_coverage": oracle,
            }
        )
    return rows


def monitor_rows(*, runs: int, seed: int, epsilon: float = 0.01, alpha: float = 0.05) -> list:
    rng = np.random.default_rng(seed)
    rows = []
    for factor, length in ((1, 10_000), (3, 5_000), (10, 1_000)):
        outcomes = rng.random((runs, length)) < factor * epsilon
        crossings = monitor.first_crossing(outcomes, null=epsilon, alpha=alpha)
        hit = crossings[crossings > 0]
        rows.append(
            {
                "true_error": factor * epsilon,
                "audits": length,
                "demoted_share": float((crossings > 0).mean()),
                "audits_median": float(np.median(hit)) if hit.size else None,
                "audits_p95": float(np.percentile(hit, 95)) if hit.size else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 runs per row")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    runs = 200 if args.quick else args.runs
    needed = {
        f"{eps:.0%}": ltt.min_labels(epsilon=eps, level=0.05 / 10) for eps in (0.01, 0.02, 0.05)
    }
    result = {
        "runs": runs,
        "ltt": ltt_rows(runs=runs, n=800, seed=args.seed),
        "monitor_eps_1pct_alpha_5pct": monitor_rows(runs=runs, seed=args.seed),
        "clean_blind_labels_per_class_delta5pct_10_classes": needed,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
