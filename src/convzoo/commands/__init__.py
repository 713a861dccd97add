"""Subcommands of ``convzoo``: one module per command family, each with ``add_commands(subparsers)``.

Every module of this package is discovered by :mod:`convzoo.cli`, so a new command is a new file.
Shared helpers for commands live in :mod:`convzoo.commands._util`.
"""
