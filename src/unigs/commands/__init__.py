"""Subcommands of the `unigs` CLI: each module has `configure(parser, name)` and `run(args) -> int`."""
