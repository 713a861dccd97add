"""``convzoo study``: which convolution should I use, on my data and my hardware?

One backbone (default: ``mixer_resnet20``, a CIFAR ResNet-20 layout whose blocks keep their width; any registered
classifier that takes ``op=``) is trained per operator on the same data (any registered classification dataset)
with the same recipe (:mod:`convzoo.study.recipes`), once per seed (``seeds`` runs with seeds ``seed``,
``seed + 1``, ...): the accuracy is the mean over the seeds with its sample standard deviation (n − 1) and its
min–max. An op that cannot stand in the backbone's positions is listed with the reason and not trained. The model
of the first seed is then measured as a user would ship it: its deploy form
(:func:`convzoo.deploy.layout.deploy_form`: re-parameterised, BatchNorms folded, in the memory layout measured
fastest) is timed on the CPU at batch 1 interleaved with the model as trained (eager, NCHW), by one process with
no training beside it. Seeds change the weights, not the architecture, so one seed's model is timed for the op.

The study lives in a folder (:mod:`convzoo.study.folder`): each (op, seed) run writes its row when it ends and the
report is rewritten after every run, so ``resume=True`` (``--resume``) skips the finished runs, continues an
interrupted one from its last checkpoint, and refuses settings that differ from the folder's. Under ``torchrun``
the runs are spread over the ranks (:mod:`convzoo.study.distributed`).

Params and MACs are the trained operator's; the deploy form's MACs are kept beside them. The rows, a Pareto plot of
mean accuracy against deploy latency, accuracy against params and MACs, the machine and the load are written to
``report.html``, ``results.json`` and ``results.csv``.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.ops.base import kernel_for
from convzoo.registry import DATASETS, MODELS, OPS
from convzoo.study.distributed import Ranks, train_alone
from convzoo.study.folder import StudyFolder
from convzoo.study.recipes import RECIPES, get_recipe

__all__ = ["DEFAULT_OPS", "PARALLEL", "StudyConfig", "StudyInterrupted", "StudyRow", "run_study", "kernel_for"]

DEFAULT_OPS = ("conv", "dwsep", "shift", "inception_dw", "asym", "cp", "e2gc", "dilated_reparam", "sic")
PARALLEL = ("runs", "data")


@dataclass
class StudyConfig:
    """What to study. ``ops=("all",)`` means every registered op. ``epochs``, ``batch_size`` and ``lr`` (``None``:
    the recipe's) override the ``recipe``; ``cfg`` overrides fields of the backbone's config. ``threads``
    (``None``: the idle cores, at most torch's count) holds for training and timing; ``repeats`` is the number of
    interleaved timed rounds per op. ``parallel`` says what the ranks of a torchrun launch share: whole ``runs``
    (each rank trains its own) or each run's ``data`` (DDP)."""

    ops: tuple[str, ...] = DEFAULT_OPS
    model: str = "mixer_resnet20"
    data: str = "digits"
    data_root: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    recipe: str = "digits-quick"
    cfg: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    seeds: int = 2  # 3 seeds of the 9 default ops take about 12.5 CPU-minutes at 1 thread; 2 fit `make study` in 10
    out: str = "study"
    threads: int | None = None
    repeats: int = 50
    progress: bool = True
    resume: bool = False
    parallel: str = "runs"

    def __post_init__(self) -> None:
        self.ops = tuple(self.ops)
        if self.ops == ("all",):
            self.ops = tuple(OPS.names())
        if not self.ops:
            raise ValueError("study: needs at least one op")
        for op in self.ops:
            OPS.get(op)  # unknown names fail before any training, with suggestions
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"study: ops must be distinct, got {', '.join(self.ops)}")
        entry = MODELS.get(self.model)
        if entry.kind != "classify" or not entry.info.takes_op:
            takers = [e.name for e in MODELS.entries() if e.kind == "classify" and e.info.takes_op]
            raise ValueError(
                f"study: model {self.model!r} is not a classifier that takes op= "
                f"(those that do: {', '.join(takers[:10])}, ...); other tasks: --task"
            )
        data = DATASETS.get(self.data)
        if data.kind != "classify":
            images = [e.name for e in DATASETS.entries() if e.kind == "classify"]
            raise ValueError(
                f"study: dataset {self.data!r} is a {data.kind} dataset; the classify study takes "
                f"{', '.join(images)} (other tasks: --task)"
            )
        get_recipe(self.recipe)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, "study")
        if self.lr is not None:
            check_number(self.lr, "lr", "study", low=0, low_open=True)
        check_int(self.seeds, "seeds", "study")
        check_int(self.repeats, "repeats", "study")
        check_choice(self.parallel, PARALLEL, "parallel", "study")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    def train_settings(self) -> dict[str, Any]:
        """The recipe with ``epochs``, ``batch_size`` and ``lr`` applied: ``TrainConfig`` keyword arguments."""
        settings = get_recipe(self.recipe).train_fields()
        for name in ("epochs", "batch_size", "lr"):
            if getattr(self, name) is not None:
                settings[name] = getattr(self, name)
        return settings

    def fixed_settings(self, data_ranks: int) -> dict[str, Any]:
        """What every run of one study folder must share (``--resume`` refuses a change and names it): the
        backbone, the data, the recipe as resolved and how many ranks share each run's batches."""
        return {
            "task": "classify",
            "model": self.model,
            "cfg": dict(self.cfg),
            "data": self.data,
            "data_root": self.data_root,
            "recipe": self.recipe,
            **self.train_settings(),
            "data_parallel_ranks": data_ranks,
        }


@dataclass
class StudyRow:
    """One operator: accuracy over the seeds, the trained op's counts, its deploy form's latency and layout, and the
    trained (eager) form's latency measured beside it."""

    op: str
    status: str  # "ok", why the op could not be studied, or how far its runs are
    kernel_size: int | None = None
    test_acc: float | None = None  # mean over the seeds
    test_acc_std: float | None = None  # sample standard deviation (n - 1); None for one seed
    test_acc_min: float | None = None
    test_acc_max: float | None = None
    test_accs: list[float] = field(default_factory=list)  # one per seed, in seed order
    seeds: list[int] = field(default_factory=list)
    params: int | None = None  # the trained model's
    macs: int | None = None  # the trained model's
    deploy_params: int | None = None
    deploy_macs: int | None = None
    latency_ms: float | None = None  # the deploy form, in `layout`
    latency_iqr_ms: float | None = None
    layout: str | None = None
    layout_ms: dict[str, float] = field(default_factory=dict)  # the deploy form in every layout tried
    train_latency_ms: float | None = None  # the model as trained, eager, default layout
    train_latency_iqr_ms: float | None = None
    efficiency: float | None = None  # the deploy form's waterline / its latency
    timed_on: str | None = None  # "cpu (<model>), 2 threads, rank 0 alone"
    train_s: float | None = None  # all seeds together
    history: list[dict[str, Any]] = field(default_factory=list)  # every epoch of every seed, each with its "seed"

    @property
    def speedup(self) -> float | None:
        """Training-form latency / deploy latency."""
        if self.latency_ms is None or self.train_latency_ms is None or self.latency_ms <= 0:
            return None
        return self.train_latency_ms / self.latency_ms


TIMING_FIELDS = (
    "params",
    "macs",
    "deploy_params",
    "deploy_macs",
    "latency_ms",
    "latency_iqr_ms",
    "layout",
    "layout_ms",
    "train_latency_ms",
    "train_latency_iqr_ms",
    "efficiency",
    "timed_on",
)


class StudyInterrupted(Exception):
    """Ctrl-C stopped the study while training ``op`` (seed ``seed``); that run's checkpoint is in ``run_dir``.

    ``rows`` are the operators finished before it (the partial report is written); ``remaining`` the ops not
    finished. ``convzoo study --resume`` continues it.
    """

    def __init__(self, op: str, seed: int, run_dir: Path) -> None:
        super().__init__(f"interrupted while training {op} (seed {seed})")
        self.op, self.seed, self.run_dir = op, seed, run_dir
        self.rows: list[StudyRow] = []
        self.remaining: tuple[str, ...] = ()
        self.paths: dict[str, Path] = {}


# --- which ops can stand in the backbone ----------------------------------------------------------------------


def _kernels(config: StudyConfig) -> dict[str, int | None]:
    takes_kernel = "kernel_size" in MODELS.get(config.model).info.config_fields()
    return {op: (kernel_for(op) if takes_kernel else None) for op in config.ops}


def stand_in_reason(config: StudyConfig, op: str, kernel: int | None) -> str | None:
    """Why ``op`` cannot replace the backbone's spatial convs (the model refuses to build), else ``None``.

    The backbone is built on the meta device (no memory, no data); an op whose construction needs real tensors
    is left for training to decide.
    """
    from convzoo.models import create_model

    cfg = dict(config.cfg) | ({"kernel_size": kernel} if kernel is not None else {})
    try:
        with torch.device("meta"):
            create_model(config.model, num_classes=10, in_chans=3, op=op, **cfg)
    except (ValueError, TypeError) as error:
        return str(error)
    except (RuntimeError, NotImplementedError):  # the meta device cannot build it: training will say
        return None
    return None


# --- one run --------------------------------------------------------------------------------------------------


def _finished_checkpoint(checkpoint: Path) -> dict[str, Any] | None:
    """The description of ``checkpoint`` when it exists; ``None`` when there is none to resume."""
    from convzoo.train import read_checkpoint

    if not (checkpoint / "checkpoint.json").is_file():
        return None
    return read_checkpoint(checkpoint).meta


def _record(
    op: str, seed: int, history: list[dict[str, Any]], ranks: Ranks, device: str, data_parallel: bool
) -> dict[str, Any]:
    last = history[-1]
    return {
        "op": op,
        "seed": seed,
        "status": "ok",
        "test_acc": last["test_acc"],
        "test_loss": last.get("test_loss"),
        "history": history,
        "train_s": sum(record.get("time_s", 0.0) for record in history),
        "trained_on": f"{device}, {ranks.world} ranks (DDP)"
        if data_parallel
        else f"{device}, rank {ranks.rank} of {ranks.world}",
    }


def _train_run(
    config: StudyConfig, folder: StudyFolder, op: str, seed: int, kernel: int | None, ranks: Ranks, progress
) -> tuple[dict[str, Any], Any]:
    """Train (or continue) the run ``(op, seed)``; returns its row record and the trained model with its input
    shape (``None`` when the run had already finished before a kill and was only read back)."""
    from convzoo.train import TrainConfig, train

    run_dir = folder.run_dir(op, seed, config.seed)
    settings = config.train_settings()
    meta = _finished_checkpoint(run_dir / "checkpoint")
    writer = ranks.rank == 0 or config.parallel == "runs"  # a data-parallel run's files are rank 0's
    if meta is None and run_dir.exists() and writer:
        shutil.rmtree(run_dir)  # killed before its first checkpoint: its metrics.jsonl would repeat epochs
    done_epochs = 0 if meta is None else meta["epoch"]
    progress.start_run(op, seed, done_epochs)
    if meta is not None and done_epochs >= settings["epochs"]:  # killed after its last checkpoint, before its row
        history = meta.get("metrics", {}).get("history", [])
        return _record(op, seed, history, ranks, ranks.device, config.parallel == "data"), None
    train_config = TrainConfig(
        model=config.model,
        op=op,
        data=config.data,
        data_root=config.data_root,
        seed=seed,
        out=str(run_dir),
        cfg=dict(config.cfg) | ({"kernel_size": kernel} if kernel is not None else {}),
        progress=config.progress and ranks.rank == 0,
        **settings,
    )
    alone = train_alone() if ranks.world > 1 and config.parallel == "runs" else contextlib.nullcontext()
    try:
        with alone:
            result = train(train_config, resume=meta is not None, on_epoch_end=progress.epoch_done)
    except (ValueError, TypeError) as error:
        if f"'{op}'" not in str(error) and not str(error).startswith(f"{op}:"):
            raise  # not about the op (the data, the settings): the study stops with the trainer's message
        return {"op": op, "seed": seed, "status": f"skipped: {error}"}, None  # the op cannot stand: reported
    if result.interrupted:
        raise StudyInterrupted(op, seed, run_dir)
    if not writer:  # the other ranks of a data-parallel run: rank 0 holds the metrics
        return {"op": op, "seed": seed, "status": "ok"}, None
    data_parallel = config.parallel == "data" and ranks.world > 1
    return _record(op, seed, result.history, ranks, ranks.device, data_parallel), (result.model, result.input_shape)


# --- timing ---------------------------------------------------------------------------------------------------


def _measure(config: StudyConfig, model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The deploy form's latency, layout and counts, and the trained form's, on one ``input_shape`` input."""
    from convzoo.deploy.layout import deploy_form
    from convzoo.profile import count_layers, machine_peaks

    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    deployed, report = deploy_form(model, example, repeats=config.repeats)
    trained_counts, deployed_counts = count_layers(model, (example,)), count_layers(deployed, (example,))
    peaks = machine_peaks(torch.get_num_threads())
    waterline = sum(peaks.roofline_ms(2 * layer.macs, layer.bytes) for layer in deployed_counts.layers)
    return {
        "params": trained_counts.params,
        "macs": trained_counts.macs,
        "deploy_params": deployed_counts.params,
        "deploy_macs": deployed_counts.macs,
        "latency_ms": report.latency_ms,
        "latency_iqr_ms": report.latency.iqr_ms,
        "layout": report.layout,
        "layout_ms": {name: timing.median_ms for name, timing in report.timings.items()},
        "train_latency_ms": report.trained.median_ms,
        "train_latency_iqr_ms": report.trained.iqr_ms,
        "efficiency": waterline / report.latency_ms if report.latency_ms > 0 else None,
    }


def _time_op(config: StudyConfig, folder: StudyFolder, op: str, trained: Any, ranks: Ranks) -> None:
    """Time ``op``'s first-seed model (``trained``: the model and input shape in memory, else its checkpoint) on
    the CPU, and write the op's timing record."""
    from convzoo.profile.machine import cpu_name
    from convzoo.train import build_from_checkpoint

    if trained is None:
        model, checkpoint = build_from_checkpoint(folder.run_dir(op, config.seed, config.seed) / "checkpoint")
        data = checkpoint.meta["data"]
        trained = (model, (1, data["channels"], *data["image_size"]))
    model, input_shape = trained
    threads = torch.get_num_threads()
    alone = "alone" if ranks.world == 1 else f"rank 0 alone, the other {ranks.world - 1} ranks idle"
    record: dict[str, Any] = {"timed_on": f"cpu ({cpu_name()}), {threads} threads, {alone}"}
    try:
        record |= _measure(config, model.to("cpu"), input_shape)
        record["status"] = "ok"
    except (ValueError, TypeError) as error:  # a deploy form that differs from the model: trained, not timed
        record["status"] = f"no deploy form: {error}"
    folder.write_timing(op, record)


# --- rows and report ------------------------------------------------------------------------------------------


def _accuracy_fields(accuracies: list[float]) -> dict[str, Any]:
    return {
        "test_acc": statistics.fmean(accuracies),
        "test_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        "test_acc_min": min(accuracies),
        "test_acc_max": max(accuracies),
        "test_accs": accuracies,
    }


def collect_rows(
    config: StudyConfig, folder: StudyFolder, skipped: dict[str, str], kernels: dict[str, int | None]
) -> list[StudyRow]:
    """One row per op of ``config`` from the run and timing records in the folder, finished or not."""
    rows = []
    for op in config.ops:
        kernel = kernels[op]
        if op in skipped:
            rows.append(StudyRow(op, f"skipped: {skipped[op]}", kernel))
            continue
        records = [r for r in (folder.read_row(op, seed) for seed in config.seed_list) if r is not None]
        refused = [r["status"] for r in records if r["status"] != "ok"]
        if refused:
            rows.append(StudyRow(op, refused[0], kernel))
            continue
        if not records:
            rows.append(StudyRow(op, "pending", kernel))
            continue
        history = [{"seed": r["seed"], **epoch} for r in records for epoch in r["history"]]
        row = StudyRow(
            op, "ok", kernel, seeds=[r["seed"] for r in records], history=history,
            train_s=sum(r["train_s"] for r in records), **_accuracy_fields([r["test_acc"] for r in records]),
        )  # fmt: skip
        timing = folder.read_timing(op)
        if len(records) < config.seeds:
            row.status = f"training: {len(records)} of {config.seeds} seeds done"
        elif timing is None:
            row.status = "trained, not timed yet"
        else:
            row.status = timing["status"]
            for name in TIMING_FIELDS:
                if name in timing:
                    setattr(row, name, timing[name])
        rows.append(row)
    return rows


# --- progress -------------------------------------------------------------------------------------------------


class _Progress:
    """One bar over the runs, one over the epochs of the current run, and an ETA from the epochs' times."""

    def __init__(self, enabled: bool, total: int, done: int, pending_epochs: int, epochs: int, ranks: int) -> None:
        from tqdm.auto import tqdm

        self.enabled, self.epochs, self.ranks = enabled, epochs, ranks
        self.remaining = pending_epochs
        self.seconds: list[float] = []
        self.runs = tqdm(total=total, initial=done, desc="study", unit="run", disable=not enabled, position=0)
        self.epoch_bar = tqdm(total=epochs, desc="run", unit="epoch", disable=not enabled, position=1, leave=False)

    def start_run(self, op: str, seed: int, done_epochs: int) -> None:
        self.epoch_bar.reset(total=self.epochs)
        self.epoch_bar.update(done_epochs)
        self.epoch_bar.set_description(f"{op} seed {seed}")
        self._show()

    def epoch_done(self, record: dict[str, Any]) -> None:
        self.remaining = max(0, self.remaining - 1)
        if "time_s" in record:
            self.seconds.append(record["time_s"])
        self.epoch_bar.update(1)
        self.epoch_bar.set_postfix(acc=f"{record.get('test_acc', float('nan')):.3f}")
        self._show()

    def run_done(self, finished: int) -> None:
        self.runs.n = finished
        self._show()

    def eta(self) -> str | None:
        """Time left: the epochs not yet trained × the mean epoch so far, shared by the ranks."""
        if not self.seconds:
            return None
        seconds = round(self.remaining * statistics.fmean(self.seconds) / self.ranks)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _show(self) -> None:
        eta = self.eta()
        if eta is not None:
            self.runs.set_postfix(eta=eta)
        self.runs.refresh()

    def close(self) -> None:
        self.epoch_bar.close()
        self.runs.close()


# --- the study ------------------------------------------------------------------------------------------------


def run_study(config: StudyConfig) -> tuple[list[StudyRow], dict[str, Path]]:
    """Train every (op, seed) run of ``config`` not yet finished in ``config.out``, time each op's deploy form,
    and write the report; returns the rows and the paths of ``report.html``, ``results.json`` and ``results.csv``
    (on rank 0; other ranks of a torchrun launch return no rows and no paths)."""
    ranks = Ranks()
    try:
        return _run(config, ranks)
    finally:
        ranks.close()


def _finished(record: dict[str, Any] | None) -> bool:
    """A run whose row says it trained; a run refused by the trainer is tried again by ``--resume``."""
    return record is not None and record["status"] == "ok"


def _run(config: StudyConfig, ranks: Ranks) -> tuple[list[StudyRow], dict[str, Path]]:
    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch, choose_threads, use_threads
    from convzoo.study.report import write_study

    folder = StudyFolder(config.out)
    kernels = _kernels(config)
    data_ranks = ranks.world if config.parallel == "data" else 1
    problem, skipped, pending = None, {}, []
    if ranks.rank == 0:
        try:
            folder.start(config.fixed_settings(data_ranks), resume=config.resume)
            for op in config.ops:
                if (reason := stand_in_reason(config, op, kernels[op])) is not None:
                    skipped[op] = reason
            runs = [(op, seed) for op in config.ops if op not in skipped for seed in config.seed_list]
            pending = [(op, seed) for op, seed in runs if not _finished(folder.read_row(op, seed))]
        except ValueError as error:
            problem = str(error)
    problem, skipped, pending = ranks.broadcast((problem, skipped, pending))
    if problem is not None:
        raise ValueError(problem)
    runs = [(op, seed) for op in config.ops if op not in skipped for seed in config.seed_list]
    threads, threads_reason = choose_threads(config.threads)
    epochs = config.train_settings()["epochs"]
    base = (
        asdict(config)
        | config.train_settings()
        | {
            "threads_reason": threads_reason,
            "torch": torch.__version__,
            "batch": 1,
            "accuracy_spread": "sample standard deviation (n - 1) over the seeds; min and max also given",
            "recipe_summary": RECIPES[config.recipe].summary,
            "recipe_departures": RECIPES[config.recipe].departures or None,
            "ranks": ranks.world,
            "latency_timed_by": "one process on the CPU after training, no other rank working",
        }
    )
    trained: dict[str, Any] = {}  # op -> (model, input shape) of its first seed, trained by this process

    with use_threads(threads) as used, LoadWatch() as watch:
        settings = base | {"threads_used": used, "machine": fingerprint(used), "partial": True}

        def report() -> dict[str, Path]:
            return write_study(collect_rows(config, folder, skipped, kernels), settings, folder.root)

        def time_finished_ops() -> None:
            for op in config.ops:
                done = all(_finished(folder.read_row(op, seed)) for seed in config.seed_list)
                if op not in skipped and done and folder.read_timing(op) is None:
                    _time_op(config, folder, op, trained.get(op), ranks)

        progress = _Progress(
            config.progress and ranks.rank == 0, len(runs), len(runs) - len(pending), len(pending) * epochs,
            epochs, ranks.world if config.parallel == "runs" else 1,
        )  # fmt: skip
        mine: list[dict[str, Any]] = []
        try:
            if config.parallel == "runs":
                for index in ranks.counter():
                    if index >= len(pending):
                        break
                    op, seed = pending[index]
                    record, model = _train_run(config, folder, op, seed, kernels[op], ranks, progress)
                    folder.write_row(record)
                    mine.append(record)
                    if model is not None and seed == config.seed:
                        trained[op] = model
                    if ranks.world == 1:
                        time_finished_ops()  # one process: the CPU is idle between runs
                    report()
                    progress.run_done(sum(_finished(folder.read_row(o, s)) for o, s in runs))
            else:
                for op, seed in pending:
                    record, model = _train_run(config, folder, op, seed, kernels[op], ranks, progress)
                    ranks.ensure_group()  # the data-parallel trainer leaves the process group
                    if ranks.rank == 0:
                        folder.write_row(record)
                        if model is not None and seed == config.seed:
                            trained[op] = model
                        report()
                    progress.run_done(len(runs) - len(pending) + len(mine) + 1)
                    mine.append(record)
        except StudyInterrupted as interrupted:
            progress.close()
            interrupted.paths = report()
            rows = collect_rows(config, folder, skipped, kernels)
            interrupted.rows = [row for row in rows if row.status == "ok"]
            interrupted.remaining = tuple(row.op for row in rows if row.status != "ok" and row.op not in skipped)
            raise
        progress.close()
        ranks.wait_for_all("trained")
        _merge(config, folder, ranks, mine)
        ranks.on_rank0_alone("timing", time_finished_ops)
    if ranks.rank != 0:
        return [], {}
    rows = collect_rows(config, folder, skipped, kernels)
    settings |= {
        "partial": any(row.status != "ok" and row.op not in skipped for row in rows),
        "load": watch.load.to_dict() if watch.load is not None else None,
        "load_warning": watch.load.warning(used) if watch.load is not None else None,
    }
    return rows, write_study(rows, settings, folder.root)


def _merge(config: StudyConfig, folder: StudyFolder, ranks: Ranks, mine: list[dict[str, Any]]) -> None:
    """Rank 0 gathers every rank's rows, and the first-seed checkpoints it needs for timing, where its folder lacks
    them (ranks on other machines without a shared disk)."""
    if ranks.world == 1 or config.parallel == "data":
        return
    gathered = ranks.gather(mine)
    if ranks.rank == 0:
        for record in (r for records in gathered for r in records):
            if folder.read_row(record["op"], record["seed"]) is None:
                folder.write_row(record)
    wanted = []
    if ranks.rank == 0:
        for op in config.ops:
            checkpoint = folder.run_dir(op, config.seed, config.seed) / "checkpoint"
            record = folder.read_row(op, config.seed)
            if record is not None and record["status"] == "ok" and not (checkpoint / "checkpoint.json").is_file():
                wanted.append(op)
    wanted = ranks.broadcast(wanted)
    if not wanted:
        return
    packed = {
        record["op"]: StudyFolder.pack_checkpoint(folder.run_dir(record["op"], config.seed, config.seed) / "checkpoint")
        for record in mine
        if record["op"] in wanted and record["seed"] == config.seed and record["status"] == "ok"
    }
    gathered = ranks.gather(packed)
    if ranks.rank == 0:
        for files in gathered:
            for op, parts in files.items():
                StudyFolder.unpack_checkpoint(parts, folder.run_dir(op, config.seed, config.seed) / "checkpoint")
