"""The ``convzoo`` command. Each subcommand lives in a module of :mod:`convzoo.commands`.

Every failure caused by the user's input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from convzoo.commands._util import UsageError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one readable line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    import convzoo.commands
    from convzoo import __version__

    parser = _Parser(prog="convzoo", description="The convolution literature as one verified, measured catalog.")
    parser.add_argument("--version", action="version", version=f"convzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in sorted(pkgutil.iter_modules(convzoo.commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"convzoo.commands.{module.name}").add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"convzoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `convzoo catalog | head`: the reader left, which is not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
