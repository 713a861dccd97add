"""``convzoo study --task sr``: which super-resolution network, for its gain over bicubic and its deploy latency?

Each sr model (default: every registered one) is trained per scale (option ``scales=2,4`` or ``scale=N``; default
×2 and ×4) with the same budget through the trainer (``convzoo.train.train``, task ``sr``): ``--epochs`` (default
4) of ``samples`` patch pairs (default 4096) of ``patch`` HR pixels (default 64) drawn by ``sampler`` (default
``uniform``, positions drawn uniformly over the ``sr-photos`` training photographs; ``samplingaug`` draws them by
bicubic error, S52), batch ``--batch-size`` (default 16), Adam at ``--lr`` (default 5e-4, warm-up + cosine), once per
seed. The held-out photographs, each scored whole as benchmark images are, give PSNR and SSIM on Y (border =
scale, the mean over images) of the model and of bicubic; the gain is their difference (mean ± std over seeds),
and bicubic is a row of every scale.

The study trains with the global bicubic residual (option ``residual=true``, the default here; ``residual=false``
trains the papers' form): ``out = net(x) + bicubic(x)`` (:class:`~convzoo.models.sr_residual.BicubicResidual`, VDSR's
device) with the net's last conv zero at the start, so every network starts exactly at bicubic and a budget of
minutes on a CPU learns detail instead of first relearning the image (ESPCN ×4, 64 steps of 64² patches: 15.2 dB
below bicubic in the papers' form, 1.8 dB below as a residual, +0.01 dB as a zero-started residual; 512 steps of
it: +0.23 dB, and +0.59 dB at ×2; scored on 64² patches of the held-out photographs, as the test split then was).
A2N and SCNet add a bilinear upscale of their input themselves (their papers); the residual swaps it for bicubic.
This departs from every paper here, and the report says so.
DSCLoRA (S29) is a fine-tuning method, so its row follows its paper: a plain SPAN at its width and depth (its base,
26 channels and 6 blocks at full size) is trained first with the same budget, then its ConvLoRA adapters train over
the base's frozen kernels for the budget, distilled from the study's ``span`` row of the same scale and seed (L1 to
the teacher's output and the blocks' spatial affinity; without a ``span`` row, the adapters learn from L1 alone).
Its row's ``recipe`` says which, with the base's own gain (what the adapters add is the difference), and its
``train_s`` counts both runs. What the adapters add in this budget depends on the widths: at the test widths
(``size=tiny``, a 16-channel teacher over an 8-channel base) they raise the base from +0.164 to +0.229 dB (×2) and
from +0.142 to +0.154 (×4); at the published widths (×4) they lower it, from +0.286 to +0.262 with the same-budget
SPAN-48 (+0.265) as teacher. Beside it, with ``convzoo train`` at the study's settings (×4, published widths):
+0.271 with L1 alone, +0.249 from a SPAN-48 trained three budgets (+0.353), whose affinity term, two to five times
the L1 term at weight 1, pulls the features toward the teacher's (affinity weight 0.01: +0.282); at lr 1e-4 every
variant stays at the base (+0.282 to +0.287).
``size=tiny`` trains each model at its registry test config (narrow widths, few blocks) for a quick look (17–120 s
of training per model and scale at 1 thread on a 2-core Xeon; at published widths the default budget takes
minutes per model: CARN ×4 542 s, CARN-M ×4 365 s, TCSR far more);
``augment`` is ``dihedral`` by default (each training pair mirrored and turned, as the papers train; ``none``
turns it off).

Latency: the first seed's model, as it would ship (LoRA merged by :func:`~convzoo.deploy.lora.merge_lora`, then
:func:`~convzoo.deploy.layout.deploy_form`: re-parameterised, BNs folded, fastest memory layout) is timed on one
``latency_size``² input (default 256) at batch 1, interleaved with the same model in onnxruntime
(:func:`~convzoo.deploy.export.export_onnx`, all graph optimisations, the same threads). Bicubic's latency is
``F.interpolate`` and its ONNX ``Resize``. ``report.html`` holds the table, a Pareto plot of PSNR gain against
deploy latency per scale, and a row of example crops (bicubic, each model, HR) per scale: the ``patch``² window of
the held-out images that bicubic restores worst; ``results.json`` and ``results.csv`` hold the rows. All three are
written atomically.
"""

from __future__ import annotations

import argparse
import html
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.registry import DATASETS, MODELS
from convzoo.study import outputs
from convzoo.study.task_args import given_settings, model_names, refuse_flags, task_options

__all__ = ["SRRow", "SRStudyConfig", "SRStudyInterrupted", "main", "run_sr_study"]

BICUBIC = "bicubic"
LORA_MODEL, LORA_TEACHER = "dsclora", "span"  # DSCLoRA fine-tunes adapters over a SPAN base, distilled from SPAN
SIZES = ("full", "tiny")
SAMPLERS = ("uniform", "samplingaug", "patches")
OPTIONS = ("scale", "scales", "size", "residual", "samples", "patch", "sampler", "latency_size", "onnx", "augment")
COLUMNS = (
    "model", "scale", "status", "residual", "psnr", "psnr_bicubic", "psnr_gain", "psnr_gain_std", "ssim",
    "ssim_bicubic", "ssim_gain", "params", "latency_ms", "latency_iqr_ms", "layout", "ort_ms", "ort_iqr_ms",
    "ort_over_deploy", "onnx_max_abs_diff", "train_s", "recipe",
)  # fmt: skip


@dataclass
class SRStudyConfig:
    """What to study: ``models`` at ``scales`` trained with one budget; see the module docstring for defaults."""

    models: tuple[str, ...] = ()
    scales: tuple[int, ...] = (2, 4)
    data: str = "sr-photos"
    data_root: str | None = None
    size: str = "full"
    residual: bool = True
    augment: str = "dihedral"  # the sr task's option: each training pair mirrored and turned, as the papers train
    epochs: int = 4
    samples: int = 4096
    patch: int = 64
    sampler: str = "uniform"
    batch_size: int = 16
    lr: float = 5e-4
    seed: int = 0
    seeds: int = 1
    out: str = "study-sr"
    threads: int | None = None
    repeats: int = 20
    latency_size: int = 256
    onnx: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        from convzoo.core.validate import check_choice, check_int, check_number

        self.models = tuple(self.models) or tuple(e.name for e in MODELS.entries() if e.kind == "sr")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"study --task sr: models must be distinct, got {', '.join(self.models)}")
        sr_models = [e.name for e in MODELS.entries() if e.kind == "sr"]
        for name in self.models:
            entry = MODELS.get(name)  # an unknown name fails here, with suggestions
            if entry.kind != "sr":
                raise ValueError(
                    f"study --task sr: {name!r} is a {entry.kind} model, not a super-resolution one "
                    f"(sr models: {', '.join(sr_models)})"
                )
        self.scales = tuple(self.scales)
        if not self.scales or len(set(self.scales)) != len(self.scales):
            raise ValueError(f"study --task sr: scales must be distinct and at least one, got {self.scales!r}")
        for scale in self.scales:
            check_choice(scale, (2, 3, 4), "scale", "study --task sr")
        if DATASETS.get(self.data).kind != "sr":
            sets = [e.name for e in DATASETS.entries() if e.kind == "sr"]
            raise ValueError(f"study --task sr: {self.data!r} is not an sr dataset (sr datasets: {', '.join(sets)})")
        check_choice(self.size, SIZES, "size", "study --task sr")
        check_choice(self.sampler, SAMPLERS, "sampler", "study --task sr")
        from convzoo.data.augment import DIHEDRAL_CHOICES

        check_choice(self.augment, DIHEDRAL_CHOICES, "augment", "study --task sr")
        for name in ("residual", "onnx"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"study --task sr: {name} must be true or false, got {getattr(self, name)!r}")
        for name in ("epochs", "samples", "patch", "batch_size", "seeds", "repeats", "latency_size"):
            check_int(getattr(self, name), name, "study --task sr")
        for scale in self.scales:
            if self.patch % scale:
                raise ValueError(f"study --task sr: patch must be a multiple of every scale, got {self.patch}")
        check_number(self.lr, "lr", "study --task sr", low=0, low_open=True)

    def train_config(
        self,
        model: str,
        scale: int,
        seed: int,
        out: Path,
        *,
        cfg: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ):
        """The trainer's settings of one run: the same budget for every model (``cfg`` replaces the model's config
        overrides; ``options`` adds sr task options, as DSCLoRA's base and teacher)."""
        from convzoo.train import TrainConfig

        settings = {"scale": scale, "patch": self.patch, "sampler": self.sampler, "samples": self.samples}
        settings |= {"residual": self.residual, "augment": self.augment} | (options or {})
        return TrainConfig(
            model=model, task="sr", options=settings, data=self.data, data_root=self.data_root, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, seed=seed, out=str(out),
            cfg=self.cfg(model) if cfg is None else cfg, progress=self.progress,
            warmup_epochs=0.05 if self.epochs == 1 else 0.2,
        )  # fmt: skip

    def cfg(self, model: str) -> dict[str, Any]:
        return dict(MODELS.get(model).info.test_cfg) if self.size == "tiny" else {}


@dataclass
class SRRow:
    """One model at one scale: test PSNR/SSIM (mean over seeds) against bicubic, and deploy vs onnxruntime latency."""

    model: str
    scale: int
    status: str = "ok"
    residual: str = ""  # "bicubic" (trained with the study's residual), "own bilinear", "" (the paper's form)
    psnr: float | None = None
    psnr_bicubic: float | None = None
    psnr_gain: float | None = None
    psnr_gain_std: float | None = None  # sample std over seeds; None for one seed
    psnr_gains: list[float] = field(default_factory=list)
    ssim: float | None = None
    ssim_bicubic: float | None = None
    ssim_gain: float | None = None
    params: int | None = None  # the deploy form's (LoRA merged)
    latency_ms: float | None = None  # the deploy form, timed interleaved with onnxruntime
    latency_iqr_ms: float | None = None
    layout: str | None = None
    ort_ms: float | None = None
    ort_iqr_ms: float | None = None
    onnx_max_abs_diff: float | None = None
    train_s: float | None = None
    recipe: str = ""  # how the row was trained, where it is not the plain budget (DSCLoRA: base, then adapters)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ort_over_deploy(self) -> float | None:
        """onnxruntime latency / deploy-form latency: above 1 when the deploy form is faster."""
        if self.latency_ms is None or self.ort_ms is None or self.latency_ms <= 0:
            return None
        return self.ort_ms / self.latency_ms


class SRStudyInterrupted(Exception):
    """Ctrl-C stopped the run ``model`` ×``scale``; the rows finished before it are in ``results.json``."""

    def __init__(self, model: str, scale: int, paths: dict[str, Path]) -> None:
        super().__init__(f"interrupted while training {model} ×{scale}")
        self.model, self.scale, self.paths = model, scale, paths


class _Bicubic(nn.Module):
    """The baseline as a module: bicubic ×``scale``, clamped to [0, 1], so it is timed and exported like a model."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        from convzoo.data.sr_metrics import bicubic_upscale

        return bicubic_upscale(x, self.scale)  # (N, 3, sH, sW)


# --- command line ---------------------------------------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> SRStudyConfig:
    """The study of ``convzoo study --task sr``'s namespace; ``ValueError`` names a bad option."""
    options = task_options(args, "sr", OPTIONS)
    if "scale" in options and "scales" in options:
        raise ValueError("study --task sr: give scale=N or scales=A,B, not both")
    refuse_flags(args, "sr", ("model", "ops", "recipe"), "name the networks with --models")
    if getattr(args, "cfg", None):
        raise ValueError("study --task sr: --cfg is not for the sr study (option size=tiny trains narrow models)")
    if "scale" in options:
        scales: Any = (options.pop("scale"),)
    else:
        scales = options.pop("scales", (2, 4))
        scales = scales if isinstance(scales, tuple) else (scales,)
    return SRStudyConfig(
        models=model_names(args),
        scales=scales,
        data_root=args.data_root,
        seed=args.seed,
        progress=not args.no_progress,
        **given_settings(args),
        **options,
    )


def main(args: argparse.Namespace) -> int:
    """``convzoo study --task sr``: exit 2 with one line for a bad option, else run, print the table, return 0."""
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as error:
        print(f"convzoo study: error: {error}", file=sys.stderr)
        return 2
    try:
        rows, paths, settings = run_sr_study(config)
    except SRStudyInterrupted as stop:
        print(f"convzoo study: {stop}; the finished rows are in {stop.paths['json']}", file=sys.stderr)
        return 130
    from convzoo.profile.report import text_table

    print(text_table(
        ("model", "×", "PSNR dB", "gain dB", "SSIM gain", "params", "deploy ms", "layout", "ORT ms", "ORT/deploy",
         "status"),
        [(r.model, r.scale, _f(r.psnr, "{:.2f}"), _gain(r), _f(r.ssim_gain, "{:+.4f}"), _f(r.params, "{:,}"),
          _f(r.latency_ms, "{:.2f}"), r.layout or "", _f(r.ort_ms, "{:.2f}"), _f(r.ort_over_deploy, "{:.2f}"),
          r.status) for r in rows],
    ))  # fmt: skip
    from convzoo.study.outputs import machine_line

    print(f"\n{machine_line(settings)}; {settings['load_line']}")
    if settings.get("load_warning"):
        print(settings["load_warning"])
    print(f"Report: {paths['html']}  (also {paths['json'].name}, {paths['csv'].name})")
    return 0 if any(r.status == "ok" and r.model != BICUBIC for r in rows) else 2


def _f(value: Any, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _gain(row: SRRow) -> str:
    if row.psnr_gain is None:
        return ""
    return f"{row.psnr_gain:+.2f}" + ("" if row.psnr_gain_std is None else f" ± {row.psnr_gain_std:.2f}")


# --- the study ------------------------------------------------------------------------------------------------


def _train(config: SRStudyConfig, model: str, scale: int, seed: int, run_dir: Path) -> tuple[list[Any], str]:
    """The trainer's results of one model and seed (DSCLoRA: its base's run, then its own) and the row's recipe."""
    from convzoo.train import train

    if model != LORA_MODEL:
        return [train(config.train_config(model, scale, seed, run_dir))], ""
    registered = MODELS.get(LORA_MODEL).info.config
    base_cfg = {key: config.cfg(LORA_MODEL).get(key, getattr(registered, key)) for key in ("width", "blocks")}
    base = train(config.train_config(LORA_TEACHER, scale, seed, run_dir / "base", cfg=base_cfg))
    if base.interrupted:
        return [base], ""
    options = {"base": str(base.checkpoint)}
    recipe = (
        f"adapters over a {LORA_TEACHER} base ({base_cfg['width']} ch, {base_cfg['blocks']} blocks) trained first "
        f"(its gain {base.test_metrics['psnr_gain']:+.3f} dB)"
    )
    teacher = run_dir.parent / f"{LORA_TEACHER}-x{scale}-seed{seed}" / "checkpoint"
    if teacher.exists():
        options["teacher"] = str(teacher)
        recipe += f", distilled from the {LORA_TEACHER} row"
    else:
        recipe += f", L1 alone (no {LORA_TEACHER} row to distil from)"
    return [base, train(config.train_config(model, scale, seed, run_dir, options=options))], recipe


def _deploy(model: nn.Module) -> nn.Module:
    from convzoo.deploy.lora import merge_lora

    return merge_lora(model.eval())


def _time(config: SRStudyConfig, model: nn.Module, scale: int, folder: Path) -> dict[str, Any]:
    """Deploy form (fastest layout) and onnxruntime on one ``latency_size``² input, timed interleaved."""
    from convzoo.deploy.export import export_onnx, onnx_session
    from convzoo.deploy.layout import deploy_form
    from convzoo.profile.timing import interleaved

    example = torch.rand(1, 3, config.latency_size, config.latency_size, generator=torch.Generator().manual_seed(0))
    merged = _deploy(model)
    deployed, report = deploy_form(merged, example, repeats=max(3, config.repeats // 4), warmup=2)
    record: dict[str, Any] = {
        "params": sum(p.numel() for p in merged.parameters()),
        "layout": report.layout,
    }
    runners = [lambda: deployed(example)]
    if config.onnx:
        exported = export_onnx(getattr(deployed, "model", deployed), folder / f"x{scale}.onnx", example)
        session = onnx_session(exported.path, torch.get_num_threads())
        name, array = session.get_inputs()[0].name, example.numpy()
        runners.append(lambda: session.run(None, {name: array}))
        record["onnx_max_abs_diff"] = exported.max_abs_diff
    with torch.no_grad():
        timings = interleaved(runners, repeats=config.repeats, warmup=2)
    record |= {"latency_ms": timings[0].median_ms, "latency_iqr_ms": timings[0].iqr_ms}
    if config.onnx:
        record |= {"ort_ms": timings[1].median_ms, "ort_iqr_ms": timings[1].iqr_ms}
    return record


def _bicubic_row(config: SRStudyConfig, scale: int) -> tuple[SRRow, Tensor, Tensor]:
    """Bicubic's row (scored on the held-out set as the trainer scores models) and the held-out ``(lr, hr)`` window
    it restores worst (lowest PSNR on Y), for the example crops: (1, 3, h, w), (1, 3, sh, sw)."""
    from convzoo.data.sr_metrics import bicubic_upscale, psnr_y
    from convzoo.train.task import get_task
    from convzoo.train.tasks.sr import score_sr

    task = get_task("sr")
    options = task.resolve_options({"scale": scale, "patch": config.patch})
    test = task.load(config.data, "test", config.data_root, options)
    scores = score_sr(_Bicubic(scale), test, scale)
    row = SRRow(BICUBIC, scale, psnr=scores["psnr"], psnr_bicubic=scores["psnr_bicubic"], psnr_gain=0.0)
    row.ssim, row.ssim_bicubic, row.ssim_gain, row.params = scores["ssim"], scores["ssim_bicubic"], 0.0, 0
    pairs = [crop for i in range(min(len(test), 64)) for crop in _crops(*test[i], scale, config.patch)]
    lr, hr = min(pairs, key=lambda p: psnr_y(bicubic_upscale(p[0], scale), p[1], scale))
    return row, lr, hr


def _crops(lr: Tensor, hr: Tensor, scale: int, size: int) -> list[tuple[Tensor, Tensor]]:
    """The non-overlapping ``size``² HR windows of one held-out pair and their LR windows, (1, 3, size/s, size/s)
    and (1, 3, size, size); the whole pair when it is smaller."""
    from convzoo.data.sr_photos import patches

    step = size // scale
    if lr.shape[-2] < step or lr.shape[-1] < step:
        return [(lr[None], hr[None])]
    hr = hr[:, : lr.shape[-2] * scale, : lr.shape[-1] * scale]  # the HR pixels the LR image covers
    windows = zip(patches(lr, step), patches(hr, size), strict=True)  # (3, size/s, size/s), (3, size, size) each
    return [(low[None], high[None]) for low, high in windows]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def run_sr_study(config: SRStudyConfig) -> tuple[list[SRRow], dict[str, Path], dict[str, Any]]:
    """Train, score and time every (model, scale); write the report; returns the rows, the paths, the settings."""
    from tqdm.auto import tqdm

    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch, choose_threads, use_threads
    from convzoo.train.tasks.sr import OWN_SKIP

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "runs").is_dir():
        shutil.rmtree(out / "runs")  # an earlier study's runs: the trainer would append to their metrics.jsonl
    threads, threads_reason = choose_threads(config.threads)
    rows: list[SRRow] = []
    crops: dict[int, list[tuple[str, Tensor]]] = {}
    examples: dict[int, tuple[Tensor, Tensor]] = {}
    # a DSCLoRA row distils from the span row of its scale, so span trains first
    models = sorted(config.models, key=lambda m: m == LORA_MODEL and LORA_TEACHER in config.models)
    runs = [(m, s) for s in config.scales for m in models]
    started = time.perf_counter()
    with use_threads(threads) as used, LoadWatch() as watch, tempfile.TemporaryDirectory() as onnx_dir:
        for scale in config.scales:
            row, lr, hr = _bicubic_row(config, scale)
            examples[scale] = (lr, hr)
            bicubic = _Bicubic(scale)
            crops[scale] = [(BICUBIC, bicubic(lr))]
            rows.append(row)
            timing = _time(config, bicubic, scale, Path(onnx_dir) / BICUBIC)
            for key in ("latency_ms", "latency_iqr_ms", "layout", "ort_ms", "ort_iqr_ms", "onnx_max_abs_diff"):
                setattr(row, key, timing.get(key))
        bar = tqdm(runs, desc="sr study", unit="run", disable=not config.progress)
        for model, scale in bar:
            bar.set_postfix_str(f"{model} ×{scale}")
            residual = _residual_label(config.residual, OWN_SKIP.get(model))
            row = SRRow(model, scale, residual=residual)
            results, spent = [], []
            for seed in range(config.seed, config.seed + config.seeds):
                runs_of_seed, row.recipe = _train(
                    config, model, scale, seed, out / "runs" / f"{model}-x{scale}-seed{seed}"
                )
                results.append(runs_of_seed[-1])
                spent.extend(runs_of_seed)
                if results[-1].interrupted:
                    bar.close()
                    partial = asdict(config) | {"partial": True, "threads_used": used, "torch": torch.__version__}
                    raise SRStudyInterrupted(model, scale, _write_rows(rows, partial, out))
            metrics = [r.test_metrics for r in results]
            gains = [m["psnr_gain"] for m in metrics]
            row.psnr, row.psnr_bicubic = _mean([m["psnr"] for m in metrics]), metrics[0]["psnr_bicubic"]
            row.psnr_gain, row.psnr_gains = _mean(gains), gains
            row.psnr_gain_std = statistics.stdev(gains) if len(gains) > 1 else None
            row.ssim, row.ssim_bicubic = _mean([m["ssim"] for m in metrics]), metrics[0]["ssim_bicubic"]
            row.ssim_gain = row.ssim - row.ssim_bicubic
            row.train_s = sum(h.get("time_s", 0.0) for r in spent for h in r.history)
            row.history = [{"seed": config.seed + i, **h} for i, r in enumerate(results) for h in r.history]
            first = results[0].model.eval()
            lr = examples[scale][0]
            with torch.no_grad():
                crops[scale].append((model, first(lr).clamp(0, 1)))
            try:
                for key, value in _time(config, first, scale, Path(onnx_dir) / model).items():
                    setattr(row, key, value)
            except Exception as error:  # noqa: BLE001 — any exporter or runtime failure is the row's status
                row.status = f"not timed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            rows.append(row)
            _write_rows(rows, asdict(config) | {"partial": True, "threads_used": used, "torch": torch.__version__}, out)
        bar.close()
        for scale in config.scales:
            crops[scale].append(("HR", examples[scale][1]))
    rows.sort(key=lambda r: (r.scale, r.model != BICUBIC))
    load = watch.load
    settings = asdict(config) | {
        "threads_used": used,
        "threads_reason": threads_reason,
        "machine": fingerprint(used),
        "torch": torch.__version__,
        "batch": 1,
        "wall_s": time.perf_counter() - started,
        "load": load.to_dict() if load is not None else None,
        "load_warning": load.warning(used) if load is not None else None,
        "load_line": outputs.load_line(load),
        "budget": _budget(config),
    }
    paths = write_sr_study(rows, settings, crops, out)
    return rows, paths, settings


def _residual_label(residual: bool, own_skip: str | None) -> str:
    """What the row's global skip is: "bicubic", "bicubic (for its bilinear)", "own bilinear" or "" (none)."""
    if residual:
        return "bicubic" if own_skip is None else f"bicubic (for its {own_skip})"
    return "" if own_skip is None else f"own {own_skip}"


def _budget(config: SRStudyConfig) -> str:
    steps = config.epochs * -(-config.samples // config.batch_size)
    size = "registry test configs (narrow)" if config.size == "tiny" else "published configs"
    residual = (
        "bicubic residual, last conv zero at the start (A2N/SCNet: it replaces their papers' bilinear skip)"
        if config.residual
        else "the papers' form (no residual)"
    )
    return (
        f"{config.epochs} epoch(s) × {config.samples} {config.sampler} {config.patch}² HR patches, batch "
        f"{config.batch_size} ({steps} steps), AdamW lr {config.lr:g} warm-up + cosine, {config.seeds} seed(s); "
        f"{size}; {residual}" + ("; flips and 90° turns of each pair" if config.augment == "dihedral" else "")
    )


# --- report ---------------------------------------------------------------------------------------------------


def pareto(rows: list[SRRow], scale: int) -> list[str]:
    """Models of ``scale`` no other beats on both PSNR gain (higher) and deploy latency (lower), fastest first."""
    mine = [r for r in rows if r.scale == scale]
    return [r.model for r in outputs.pareto(mine, lambda r: r.latency_ms, lambda r: r.psnr_gain)]


def _pareto_png(rows: list[SRRow], settings: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    scales = settings["scales"]
    figure = Figure(figsize=(6 * len(scales), 4.5), layout="constrained")
    axes = figure.subplots(1, len(scales), squeeze=False)[0]
    for ax, scale in zip(axes, scales, strict=True):
        front = pareto(rows, scale)
        done = sorted(
            (r for r in rows if r.scale == scale and r.latency_ms is not None and r.psnr_gain is not None),
            key=lambda r: r.latency_ms,
        )
        for rank, row in enumerate(done):
            color = "tab:red" if row.model in front else "tab:blue"
            ax.scatter(row.latency_ms, row.psnr_gain, s=30, color=color, zorder=3)
            if row.psnr_gain_std is not None:
                ax.errorbar(row.latency_ms, row.psnr_gain, yerr=row.psnr_gain_std, fmt="none", ecolor=color)
            offset, align = [((5, 5), "left"), ((5, -12), "left"), ((-5, 8), "right")][rank % 3]
            ax.annotate(row.model, (row.latency_ms, row.psnr_gain), textcoords="offset points", xytext=offset,
                        ha=align, fontsize=8)  # fmt: skip
        points = sorted((r.latency_ms, r.psnr_gain) for r in done if r.model in front)
        if len(points) > 1:
            ax.plot(*zip(*points, strict=True), color="tab:red", lw=1, ls="--", label="Pareto front")
            ax.legend(loc="best")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(f"deploy latency, ms ({settings['latency_size']}² input, batch 1, {settings['threads_used']} th)")
        ax.set_ylabel(f"PSNR gain over bicubic, dB (Y, {settings['data']} test)")
        ax.set_title(f"×{scale}")
        ax.grid(alpha=0.3)
    return outputs.png(figure)


def _crops_png(crops: dict[int, list[tuple[str, Tensor]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    columns = max(len(c) for c in crops.values())
    figure = Figure(figsize=(1.6 * columns, 1.8 * len(crops)), layout="constrained")
    axes = figure.subplots(len(crops), columns, squeeze=False)
    for line, (scale, images) in zip(axes, sorted(crops.items()), strict=True):
        for ax in line:
            ax.axis("off")
        for ax, (label, image) in zip(line, images, strict=False):
            ax.imshow(image[0].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(f"{label} ×{scale}" if label == BICUBIC else label, fontsize=8)
    return outputs.png(figure)


def _html(rows: list[SRRow], settings: dict[str, Any], pngs: tuple[str, str]) -> str:
    cell = outputs.cell
    fronts = {s: set(pareto(rows, s)) for s in settings["scales"]}
    header = ("model", "scale", "residual", "PSNR dB", "gain dB", "SSIM", "SSIM gain", "params", "deploy ms",
              "layout", "ORT ms", "ORT / deploy", "train s", "status")  # fmt: skip
    cells = [
        (
            cell(r.model) + (" ★" if r.model in fronts[r.scale] else ""),
            f"×{r.scale}",
            cell(r.residual),
            cell(r.psnr, "{:.2f}"),
            cell(_gain(r)),
            cell(r.ssim, "{:.4f}"),
            cell(r.ssim_gain, "{:+.4f}"),
            cell(r.params, "{:,}"),
            cell(r.latency_ms, "{:.2f}"),
            cell(r.layout),
            cell(r.ort_ms, "{:.2f}"),
            cell(r.ort_over_deploy, "{:.2f}×"),
            cell(r.train_s, "{:.0f}"),
            cell(r.status),
        )  # fmt: skip
        for r in rows
    ]
    body = f"""<h1>Which super-resolution network? Gain over bicubic on {html.escape(settings["data"])} against deploy latency</h1>
{outputs.machine_paragraph(settings)}
<p>Budget, the same for every model: {html.escape(settings["budget"])}. PSNR and SSIM are on the Y channel of the
held-out photographs with a border of scale pixels (the field's protocol); the gain is the model's PSNR minus
bicubic's on the same images ({"mean ± std over seeds" if settings["seeds"] > 1 else "1 seed"}).
{_residual_note(settings)}
Latency: one {settings["latency_size"]}² input at batch 1; the deploy form (LoRA merged, re-parameterised, BNs folded,
fastest memory layout) timed interleaved with the same model in onnxruntime (median of {settings["repeats"]}).
★ marks each scale's Pareto front on PSNR gain and deploy latency.</p>
{outputs.image(pngs[0], "PSNR gain against deploy latency")}
<h2>Example crops (the held-out window bicubic restores worst)</h2>
{outputs.image(pngs[1], "bicubic, each model, HR")}
{outputs.table(header, cells)}
{_recipes(rows)}
{outputs.settings_table(settings)}"""  # noqa: E501
    return outputs.page("convzoo study: super-resolution", body)


def _recipes(rows: list[SRRow]) -> str:
    """A paragraph naming each row trained otherwise than the plain budget (DSCLoRA), or nothing."""
    notes = [f"{html.escape(r.model)} ×{r.scale}: {html.escape(r.recipe)}" for r in rows if r.recipe]
    if not notes:
        return ""
    return "<p>Trained as its paper fine-tunes (its train s counts both runs): " + "; ".join(notes) + ".</p>"


def _residual_note(settings: dict[str, Any]) -> str:
    if not settings["residual"]:
        return "The networks were trained in their papers' form."
    return (
        "The networks were trained as global residuals of bicubic (VDSR's device, not their papers' form): "
        "out = net(x) + bicubic(x), the net's last conv zero at the start, so each starts exactly at bicubic "
        "(for A2N and SCNet it replaces their papers' own bilinear skip)."
    )


def _results(rows: list[SRRow], settings: dict[str, Any]) -> dict[str, Any]:
    from convzoo.study.outputs import machine_line

    results: dict[str, Any] = {"settings": settings}
    if not settings.get("partial"):
        results["machine_line"] = machine_line(settings)
        results["pareto_front"] = {f"x{s}": pareto(rows, s) for s in settings["scales"]}
    results["rows"] = [asdict(r) | {"ort_over_deploy": r.ort_over_deploy} for r in rows]
    return results


def _write_rows(rows: list[SRRow], settings: dict[str, Any], out: Path) -> dict[str, Path]:
    """``results.json`` and ``results.csv`` of the rows so far (rewritten after every run; plots come at the end)."""
    return outputs.write_outputs(out, _results(rows, settings), csv=outputs.csv_text(COLUMNS, rows))


def write_sr_study(
    rows: list[SRRow], settings: dict[str, Any], crops: dict[int, list[tuple[str, Tensor]]], out: Path
) -> dict[str, Path]:
    """``results.json``, ``results.csv`` and ``report.html`` (plot and crops embedded), each written atomically."""
    report = _html(rows, settings, (_pareto_png(rows, settings), _crops_png(crops)))
    return outputs.write_outputs(out, _results(rows, settings), csv=outputs.csv_text(COLUMNS, rows), report=report)
