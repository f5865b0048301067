"""Command line: handoff-edge verify BUNDLE | run --bundle BUNDLE [--server URL ...] IMAGE..."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from handoff_edge.bundle import BundleError, bundle_load
from handoff_edge.client import ServerClient, ServerError
from handoff_edge.predict import EdgePredictor
from handoff_edge.runner import images_process


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with both sub-commands."""
    parser = argparse.ArgumentParser(prog="handoff-edge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check a bundle's manifest and print its summary")
    verify.add_argument("bundle")
    run = sub.add_parser("run", help="predict and decide images; send what people must see")
    run.add_argument("--bundle", required=True)
    run.add_argument("--server", default=None, help="base URL; without it nothing is sent")
    run.add_argument("--project", default=None, help="project slug (default: the bundle's)")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("images", nargs="+")
    return parser


def cmd_verify(args: argparse.Namespace) -> int:
    """Print the verified bundle's summary."""
    bundle = bundle_load(args.bundle)
    policy = bundle.policy
    summary = {
        "bundle": str(bundle.path),
        "sha256": bundle.sha256,
        "model_sha256": bundle.model_sha256,
        "labels": bundle.labels,
        "stage": policy.get("stage"),
        "parity": bundle.metadata.get("parity", {}),
    }
    _out(json.dumps(summary, indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Print one JSON decision per image; the token comes from HANDOFF_EDGE_TOKEN."""
    bundle = bundle_load(args.bundle)
    client = None
    if args.server:
        token = os.environ.get("HANDOFF_EDGE_TOKEN", "")
        if not token:
            raise ServerError("set HANDOFF_EDGE_TOKEN to the project's API token")
        slug = args.project or bundle.policy.get("project_slug", "")
        client = ServerClient(base_url=args.server, token=token, project=slug)
    predictor = EdgePredictor(bundle, threads=args.threads)
    try:
        decisions = images_process(
            bundle=bundle, predictor=predictor, paths=args.images, client=client
        )
    finally:
        if client is not None:
            client.close()
    for decision in decisions:
        _out(json.dumps(decision.to_dict()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return {"verify": cmd_verify, "run": cmd_run}[args.command](args)
    except (BundleError, ServerError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
