"""The replay benchmark (``python -m bench.replay``): ``world`` (stream, arms, projects),
``clients`` (API client, simulated reviewers, rollout admin), ``run`` (one run, arm by arm),
``metrics`` (the accounting) and ``report`` (tables, plot, docs)."""
