"""``convzoo deploy CHECKPOINT``: the checkpoint's deploy forms (fused, reparameterised, optimised, int8, ONNX),
written to a folder with a before/after table (test accuracy, size on disk, latency).

``fp32.pt`` is the fp32 deploy form (after ``--reparam``/``--fuse``, and ``--optimize``'s choice), ``int8.pt``
the quantised one (from the fp32 form before ``--optimize``, which quantisation needs as Python modules); both
are TorchScript files that ``torch.jit.load`` reads without convzoo. With ``--int8-backend pt2e`` (torchao's
``X86InductorQuantizer``, run through ``torch.compile``) the int8 form is ``int8.pt2`` instead, a ``torch.export``
program (``torch.export.load``; compile it with inductor's ``freezing`` on for int8 kernels). ``quantize.md``
lists the module classes the int8 form keeps in float, and why."""

from __future__ import annotations

import argparse
from pathlib import Path

from convzoo.commands._util import UsageError, positive_int, table


def _latencies(runners: list, x, repeats: int) -> list[float]:
    import torch

    from convzoo.profile.timing import interleaved

    with torch.no_grad():
        return [t.median_ms for t in interleaved([lambda r=r: r(x) for r in runners], repeats=repeats, warmup=3)]


def _accuracy(run, dataset, batch: int) -> float:
    """Test accuracy, fed in batches of exactly ``batch`` (traced and frozen forms are specialised to it)."""
    import torch

    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            images = dataset.images[start : start + batch]  # (b, C, H, W), b ≤ batch
            count = images.shape[0]
            if count < batch:  # pad the last batch with copies of its first image
                images = torch.cat([images, images[:1].expand(batch - count, *images.shape[1:])])
            predicted = run(images)[:count].argmax(1)
            correct += (predicted == dataset.labels[start : start + count]).sum().item()
    return correct / len(dataset)


def run_deploy(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from convzoo import deploy
    from convzoo.core.files import atomic_write_json, atomic_write_text
    from convzoo.data import load_dataset
    from convzoo.deploy.export import save_torchscript
    from convzoo.train import build_from_checkpoint

    if args.calib is not None and not args.int8:
        raise UsageError("--calib only applies with --int8")
    if args.int8_backend is not None and not args.int8:
        raise UsageError("--int8-backend only applies with --int8")
    if args.int8 and args.calib is None:
        raise UsageError("--int8 needs --calib DATA (a dataset name whose train split calibrates the ranges)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a directory, got the file {args.out!r}")
    model, checkpoint = build_from_checkpoint(args.checkpoint)
    data = checkpoint.meta.get("data", {})
    if not data.get("name"):
        raise UsageError(f"checkpoint {args.checkpoint!r} names no dataset to evaluate on")
    test = load_dataset(data["name"], "test", data.get("root"))
    example = test.images[: args.batch]  # (B, C, H, W)
    steps, fp32 = [], model
    if args.reparam:
        fp32, report = deploy.reparameterize_with_report(fp32)
        steps.append(f"reparam ({len(report.blocks)} blocks, {len(report.merged)} ops merged)")
    if args.fuse:
        fp32 = deploy.fuse_bn(fp32, example)
        steps.append("fuse_bn")
    rows = [("checkpoint (fp32 eager)", model, checkpoint.path / "model.safetensors")]
    if steps or args.optimize or not args.int8:
        deployed, label = fp32, " + ".join(steps) or "fp32 (traced)"
        if args.optimize:
            deployed, plan = deploy.optimize_with_report(fp32, example)
            atomic_write_text(out / "optimize.md", plan.markdown())
            label = " + ".join([*steps, f"optimize ({plan.whole_chosen})"])
        rows.append((label, deployed, save_torchscript(deployed, out / "fp32.pt", example)))
    if args.int8:
        calib_root = data.get("root") if args.calib == data["name"] else None
        calib_set = load_dataset(args.calib, "train", calib_root)
        shuffle = torch.Generator().manual_seed(0)  # the same calibration batches on every run
        calib = DataLoader(calib_set, batch_size=32, shuffle=True, generator=shuffle)
        mode, backend = "qat" if args.qat else "ptq", args.int8_backend or "fx"
        quantized, quant_report = deploy.quantize_with_report(fp32, calib, mode, backend=backend)
        atomic_write_text(out / "quantize.md", quant_report.markdown())
        label = " + ".join([*steps, f"int8 {mode}" + (" (pt2e)" if backend == "pt2e" else "")])
        if backend == "pt2e":
            rows.append((label, quantized, quantized.save(out / "int8.pt2")))
        else:
            rows.append((label, quantized, save_torchscript(quantized, out / "int8.pt", example)))
    runners = [m for _, m, _ in rows]
    if args.onnx:
        exported = deploy.export_onnx(fp32, args.onnx, example)
        session = deploy.onnx_session(exported.path, torch.get_num_threads())
        name = session.get_inputs()[0].name
        runners.append(lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]))
        rows.append((f"onnxruntime fp32 (max |diff| {exported.max_abs_diff:.1e})", None, exported.path))
    times = _latencies(runners, example, args.repeats)
    results = []
    for (label, _, path), run, ms in zip(rows, runners, times, strict=True):
        size = Path(path).stat().st_size
        results.append({"model": label, "accuracy": _accuracy(run, test, args.batch), "bytes": size, "latency_ms": ms})
    headers = ("model", f"{data['name']} test acc", "size MB", f"latency ms (batch {args.batch})", "speed-up")
    lines = [
        (r["model"], f"{r['accuracy']:.4f}", f"{r['bytes'] / 1e6:.2f}", f"{r['latency_ms']:.2f}",
         f"{times[0] / r['latency_ms']:.2f}×")
        for r in results
    ]  # fmt: skip
    text = table(headers, lines) + f"\n\n{torch.get_num_threads()} threads, median of {args.repeats} interleaved runs\n"
    atomic_write_text(out / "deploy.md", text)
    atomic_write_json(out / "deploy.json", {"checkpoint": str(checkpoint.path), "steps": steps, "results": results})
    written = ", ".join(str(path) for _, _, path in rows[1:])
    print(text + f"wrote {written} and {out / 'deploy.md'}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="the deploy form of a checkpoint (fuse BN, reparam, optimize, int8, ONNX)")
    p.add_argument("checkpoint", help="a checkpoint folder written by `convzoo train`")
    p.add_argument("--fuse", action="store_true", help="fold BatchNorms into the convs before them")
    p.add_argument("--reparam", action="store_true", help="merge training-form ops and blocks into single convs")
    p.add_argument("--int8", action="store_true", help="int8 post-training quantisation (x86)")
    p.add_argument(
        "--int8-backend",
        choices=("fx", "pt2e"),
        default=None,
        help="with --int8: FX eager int8 (default, TorchScript int8.pt) or PT2E + torch.compile (torchao, int8.pt2)",
    )
    p.add_argument("--qat", action="store_true", help="with --int8: one epoch of quantisation-aware training")
    p.add_argument("--calib", default=None, metavar="DATA", help="dataset whose train split calibrates --int8")
    p.add_argument("--onnx", default=None, metavar="OUT", help="also export the fp32 deploy form to this .onnx")
    p.add_argument("--optimize", action="store_true", help="measure each layer's equivalent forms, keep the fastest")
    p.add_argument("--batch", type=positive_int, default=8, help="batch for latency (default 8)")
    p.add_argument("--repeats", type=positive_int, default=20, help="timed rounds (default 20)")
    p.add_argument("--out", required=True, help="folder for fp32.pt / int8.pt (TorchScript), deploy.md, deploy.json")
    p.set_defaults(run=run_deploy)
