"""The convzoo command itself (convzoo.cli): subcommand discovery, the version, and parser errors as one line
with exit status 2. Each command module's own tests are under tests/commands/."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import convzoo
import convzoo.commands
from convzoo.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["ops", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "convzoo", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"convzoo {convzoo.__version__}"


def test_each_command_module_has_its_test_file():
    modules = {m.name for m in pkgutil.iter_modules(convzoo.commands.__path__) if not m.name.startswith("_")}
    tests = {path.stem.removeprefix("test_") for path in (Path(__file__).parent / "commands").glob("test_*.py")}
    untested = sorted(modules - tests)
    assert not untested, f"add tests/commands/test_<module>.py for convzoo.commands {', '.join(untested)}"
    assert tests <= modules, f"tests/commands has files for no command module: {sorted(tests - modules)}"
