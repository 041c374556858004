"""`unigs generate` (placeholder until its issue lands)."""

import argparse


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("unigs generate is not implemented yet")
