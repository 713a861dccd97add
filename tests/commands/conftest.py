"""Shared by the command tests: a private machine-peaks cache, and the check that a bad command line exits 2
with one readable line on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import pytest

from convzoo.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Peaks are cached in tmp_path, never in the user's cache."""
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def exits_2_with_one_line(capsys) -> Callable[[Sequence[str], str], str]:
    """``check(argv, message)``: ``convzoo argv`` exits 2 with one line on stderr containing ``message``."""

    def check(argv: Sequence[str], message: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            sys.exit(main(list(argv)))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        return err

    return check
