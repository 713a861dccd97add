"""``deploy_checkpoint``: a checkpoint's deploy forms (reparameterised, fused, optimised, int8, ONNX) written to a
folder, each measured before and after on the checkpoint's test set (accuracy, size on disk, latency).

``fp32.pt`` is the fp32 deploy form (after ``reparam``/``fuse``, and ``optimize``'s choice), ``int8.pt`` the
quantised one (from the fp32 form before ``optimize``, which quantisation needs as Python modules); both are
TorchScript files that ``torch.jit.load`` reads without convzoo. With ``int8="pt2e"`` (torchao's
``X86InductorQuantizer``, run through ``torch.compile``) the int8 form is ``int8.pt2`` instead, a ``torch.export``
program (``torch.export.load``; compile it with inductor's ``freezing`` on for int8 kernels). ``quantize.md``
lists the module classes the int8 form keeps in float, and why; ``optimize.md`` what ``optimize`` measured.
``deploy.md`` is :meth:`DeployReport.table` and ``deploy.json`` :meth:`DeployReport.to_dict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from convzoo.core.files import atomic_write_json, atomic_write_text
from convzoo.core.validate import check_choice, check_int
from convzoo.data import load_dataset
from convzoo.deploy.export import export_onnx, onnx_session, save_torchscript
from convzoo.deploy.fuse_bn import fuse_bn
from convzoo.deploy.layout import fastest_layout
from convzoo.deploy.optimize import optimize_with_report
from convzoo.deploy.quantize import quantize_with_report
from convzoo.deploy.reparam import reparameterize_with_report
from convzoo.profile.report import text_table
from convzoo.profile.timing import interleaved
from convzoo.train import build_from_checkpoint, evaluate

__all__ = ["DeployForm", "DeployReport", "deploy_checkpoint"]

INT8_BACKENDS = ("fx", "pt2e")
CALIB_BATCH = 32


@dataclass(frozen=True)
class DeployForm:
    """One form of the model: what was done to it, where it was written, and how it measured."""

    label: str
    path: Path
    accuracy: float
    bytes: int
    latency_ms: float


@dataclass(frozen=True)
class DeployReport:
    """What :func:`deploy_checkpoint` made: the checkpoint's fp32 eager form first, then each deploy form."""

    checkpoint: Path
    data: str
    steps: tuple[str, ...]
    forms: tuple[DeployForm, ...]
    batch: int
    repeats: int
    threads: int
    out: Path

    @property
    def written(self) -> tuple[Path, ...]:
        """The deploy forms' files (the checkpoint's own weights excluded)."""
        return tuple(form.path for form in self.forms[1:])

    def speedup(self, form: DeployForm) -> float:
        """Latency of the checkpoint's eager form / latency of ``form``."""
        return self.forms[0].latency_ms / form.latency_ms

    def table(self) -> str:
        """The before/after table with the conditions it was measured under (what ``deploy.md`` holds)."""
        headers = ("model", f"{self.data} test acc", "size MB", f"latency ms (batch {self.batch})", "speed-up")
        rows = [
            (f.label, f"{f.accuracy:.4f}", f"{f.bytes / 1e6:.2f}", f"{f.latency_ms:.2f}", f"{self.speedup(f):.2f}×")
            for f in self.forms
        ]
        return text_table(headers, rows) + f"\n\n{self.threads} threads, median of {self.repeats} interleaved runs\n"

    def to_dict(self) -> dict[str, Any]:
        """What ``deploy.json`` holds."""
        results = [
            {"model": f.label, "accuracy": f.accuracy, "bytes": f.bytes, "latency_ms": f.latency_ms} for f in self.forms
        ]
        return {"checkpoint": str(self.checkpoint), "steps": list(self.steps), "results": results}


def _latencies(runners: list[Callable[[Tensor], Tensor]], x: Tensor, repeats: int) -> list[float]:
    with torch.no_grad():
        return [t.median_ms for t in interleaved([lambda r=r: r(x) for r in runners], repeats=repeats, warmup=3)]


def _onnx_runner(path: Path) -> Callable[[Tensor], Tensor]:
    session = onnx_session(path, torch.get_num_threads())
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def _check_arguments(out: Path, int8: str | None, calib: str | None, qat: bool, batch: int, repeats: int) -> None:
    check_int(batch, "batch", "deploy")
    check_int(repeats, "repeats", "deploy")
    if int8 is not None:
        check_choice(int8, INT8_BACKENDS, "int8", "deploy")
        if calib is None:
            raise ValueError("deploy: int8 needs calib=DATA, a dataset whose train split calibrates the ranges")
    elif calib is not None or qat:
        raise ValueError(f"deploy: calib and qat apply to int8 only, got int8=None with calib={calib!r}, qat={qat}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"deploy: out must be a directory, got the file {str(out)!r}")


def deploy_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    reparam: bool = False,
    fuse: bool = False,
    optimize: bool = False,
    int8: str | None = None,
    calib: str | None = None,
    qat: bool = False,
    onnx: str | Path | None = None,
    batch: int = 8,
    repeats: int = 20,
) -> DeployReport:
    """Build the deploy forms of the checkpoint folder ``checkpoint``, write them to ``out`` and measure them.

    ``reparam`` merges training-form ops and blocks into single convs, ``fuse`` folds BatchNorms into the convs
    before them, ``optimize`` keeps each layer's fastest equivalent form (``fp32.pt``); ``int8`` (``"fx"`` or
    ``"pt2e"``) quantises the fp32 form with the train split of the dataset ``calib`` (``qat``: one epoch of
    quantisation-aware training first); ``onnx`` also exports the fp32 form to that ``.onnx`` path. Without
    ``int8`` the fp32 form is always written. Every form is evaluated on the checkpoint's test set with
    :func:`convzoo.train.evaluate` in batches of exactly ``batch`` (traced forms are specialised to it) and timed
    interleaved at that batch, ``repeats`` rounds; ``deploy.md`` and ``deploy.json`` hold the results.
    """
    out = Path(out)
    _check_arguments(out, int8, calib, qat, batch, repeats)
    model, saved = build_from_checkpoint(checkpoint)
    data = saved.meta.get("data", {})
    if not data.get("name"):
        raise ValueError(f"deploy: checkpoint {str(checkpoint)!r} names no dataset to evaluate on")
    test = load_dataset(data["name"], "test", data.get("root"))
    example = test.images[:batch]  # (B, C, H, W)
    steps, fp32 = [], model
    if reparam:
        fp32, reparam_report = reparameterize_with_report(fp32)
        steps.append(f"reparam ({len(reparam_report.blocks)} blocks, {len(reparam_report.merged)} ops merged)")
    if fuse:
        fp32 = fuse_bn(fp32, example)
        steps.append("fuse_bn")
    forms: list[tuple[str, nn.Module | Callable[[Tensor], Tensor], Path]] = [
        ("checkpoint (fp32 eager)", model, saved.path / "model.safetensors")
    ]
    if steps or optimize or int8 is None:
        if optimize:
            deployed, plan = optimize_with_report(fp32, example)
            atomic_write_text(out / "optimize.md", plan.markdown())
            label = " + ".join([*steps, f"optimize ({plan.whole_chosen}, {plan.layout})"])
        else:  # the memory layout is chosen by measurement here too (channels-last is often faster on x86)
            deployed, layout, _ = fastest_layout(fp32, example, repeats=repeats)
            label = " + ".join(steps or ["fp32 (traced)"]) + f" ({layout})"
        forms.append((label, deployed, save_torchscript(deployed, out / "fp32.pt", example)))
    if int8 is not None:
        calib_root = data.get("root") if calib == data["name"] else None
        shuffle = torch.Generator().manual_seed(0)  # the same calibration batches on every run
        loader = DataLoader(
            load_dataset(calib, "train", calib_root), batch_size=CALIB_BATCH, shuffle=True, generator=shuffle
        )
        mode = "qat" if qat else "ptq"
        quantized, quant_report = quantize_with_report(fp32, loader, mode, backend=int8)
        atomic_write_text(out / "quantize.md", quant_report.markdown())
        label = " + ".join([*steps, f"int8 {mode}" + (" (pt2e)" if int8 == "pt2e" else "")])
        if int8 == "pt2e":
            forms.append((label, quantized, quantized.save(out / "int8.pt2")))
        else:
            forms.append((label, quantized, save_torchscript(quantized, out / "int8.pt", example)))
    if onnx is not None:
        exported = export_onnx(fp32, onnx, example)
        label = f"onnxruntime fp32 (max |diff| {exported.max_abs_diff:.1e})"
        forms.append((label, _onnx_runner(exported.path), exported.path))
    times = _latencies([run for _, run, _ in forms], example, repeats)
    measured = tuple(
        DeployForm(label, Path(path), evaluate(run, test, batch, fixed_batch=True)[1], Path(path).stat().st_size, ms)
        for (label, run, path), ms in zip(forms, times, strict=True)
    )
    threads = torch.get_num_threads()
    report = DeployReport(saved.path, data["name"], tuple(steps), measured, batch, repeats, threads, out)
    atomic_write_text(out / "deploy.md", report.table())
    atomic_write_json(out / "deploy.json", report.to_dict())
    return report
