"""The study folder: what makes ``convzoo study --resume`` safe to run any number of times.

::

    study.json              the settings every run shares (model, data, recipe, ...), written when the study starts
    rows/<op>-seed<s>.json  one finished (op, seed) run: its test accuracy and every epoch's record
    rows/<op>.timing.json   the op's measured deploy form (latency, layout, counts), taken once after training
    runs/<op>[-seed<s>]/    each run's checkpoint folder and metrics.jsonl (the trainer's)
    report.html, results.json, results.csv   rewritten after every run, so a partial report is always readable

Every file is written atomically (a temporary file moved in one rename), so a kill at any moment leaves each
finished row whole or absent, never half-written. A run whose row is absent is resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from convzoo.core.files import atomic_write_bytes, atomic_write_json

__all__ = ["StudyFolder", "settings_differences"]

SETTINGS_FILE = "study.json"


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so saved and given settings compare equal."""
    return json.loads(json.dumps(value))


def settings_differences(saved: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """``["epochs: 4 in the folder, 2 given", ...]`` for every key whose values differ."""
    given = _jsonable(given)
    return [
        f"{key}: {saved.get(key)!r} in the folder, {given.get(key)!r} given"
        for key in sorted(set(saved) | set(given))
        if saved.get(key) != given.get(key)
    ]


class StudyFolder:
    """The files of one study under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.rows = self.root / "rows"
        self.runs = self.root / "runs"

    # --- settings -------------------------------------------------------------------------------------------

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    def saved_settings(self) -> dict[str, Any] | None:
        if not self.settings_path.is_file():
            return None
        return json.loads(self.settings_path.read_text(encoding="utf-8"))

    def start(self, settings: dict[str, Any], *, resume: bool) -> None:
        """Open the folder for a study with ``settings``.

        ``resume=True`` continues the folder's study and refuses settings that differ from the saved ones, naming
        each difference; otherwise an earlier study's rows and runs there are removed (rows trained with other
        settings must not be mistaken for this study's) and the settings are saved.
        """
        saved = self.saved_settings()
        if resume and saved is not None:
            differences = settings_differences(saved, settings)
            if differences:
                raise ValueError(
                    f"study: {str(self.root)!r} was started with other settings ({'; '.join(differences)}); "
                    "resume it with the same settings, or give a new --out"
                )
            return
        if not resume:
            for folder in (self.rows, self.runs):
                if folder.is_dir():
                    shutil.rmtree(folder)
        atomic_write_json(self.settings_path, _jsonable(settings))

    # --- runs -----------------------------------------------------------------------------------------------

    def run_dir(self, op: str, seed: int, first_seed: int) -> Path:
        """``runs/<op>`` for the first seed (the model timed), ``runs/<op>-seed<s>`` for the others."""
        return self.runs / op if seed == first_seed else self.runs / f"{op}-seed{seed}"

    def row_path(self, op: str, seed: int) -> Path:
        return self.rows / f"{op}-seed{seed}.json"

    def timing_path(self, op: str) -> Path:
        return self.rows / f"{op}.timing.json"

    def write_row(self, record: dict[str, Any]) -> Path:
        """Write one finished run's record (with ``op`` and ``seed``) atomically."""
        return atomic_write_json(self.row_path(record["op"], record["seed"]), _jsonable(record))

    def read_row(self, op: str, seed: int) -> dict[str, Any] | None:
        path = self.row_path(op, seed)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def write_timing(self, op: str, record: dict[str, Any]) -> Path:
        return atomic_write_json(self.timing_path(op), _jsonable(record))

    def read_timing(self, op: str) -> dict[str, Any] | None:
        path = self.timing_path(op)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    # --- checkpoints between machines -----------------------------------------------------------------------

    @staticmethod
    def pack_checkpoint(checkpoint: Path) -> dict[str, bytes]:
        """The files of the checkpoint version ``checkpoint`` (a link or folder) names, by name."""
        folder = checkpoint.resolve()
        return {file.name: file.read_bytes() for file in sorted(folder.iterdir()) if file.is_file()}

    @staticmethod
    def unpack_checkpoint(files: dict[str, bytes], checkpoint: Path) -> Path:
        """Write ``files`` (from :meth:`pack_checkpoint` on another machine) as the checkpoint folder
        ``checkpoint``; each file atomically, the description last, so a reader sees the whole or nothing."""
        for name in sorted(files, key=lambda n: n == "checkpoint.json"):
            atomic_write_bytes(checkpoint / name, files[name])
        return checkpoint
