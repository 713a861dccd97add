"""``convzoo deploy CHECKPOINT``: the checkpoint's deploy forms (fused, reparameterised, optimised, int8, ONNX),
written to a folder with a before/after table (test accuracy, size on disk, latency); the work is
:func:`convzoo.deploy.deploy_checkpoint`.

``fp32.pt`` is the fp32 deploy form (after ``--reparam``/``--fuse``, and ``--optimize``'s choice), ``int8.pt``
the quantised one (from the fp32 form before ``--optimize``, which quantisation needs as Python modules); both
are TorchScript files that ``torch.jit.load`` reads without convzoo. With ``--int8-backend pt2e`` (torchao's
``X86InductorQuantizer``, run through ``torch.compile``) the int8 form is ``int8.pt2`` instead, a ``torch.export``
program (``torch.export.load``; compile it with inductor's ``freezing`` on for int8 kernels). ``quantize.md``
lists the module classes the int8 form keeps in float, and why."""

from __future__ import annotations

import argparse

from convzoo.commands._util import UsageError, positive_int


def run_deploy(args: argparse.Namespace) -> int:
    from convzoo.deploy import deploy_checkpoint

    if args.calib is not None and not args.int8:
        raise UsageError("--calib only applies with --int8")
    if args.int8_backend is not None and not args.int8:
        raise UsageError("--int8-backend only applies with --int8")
    if args.int8 and args.calib is None:
        raise UsageError("--int8 needs --calib DATA (a dataset name whose train split calibrates the ranges)")
    report = deploy_checkpoint(
        args.checkpoint,
        args.out,
        reparam=args.reparam,
        fuse=args.fuse,
        optimize=args.optimize,
        int8=(args.int8_backend or "fx") if args.int8 else None,
        calib=args.calib,
        qat=args.qat,
        onnx=args.onnx,
        batch=args.batch,
        repeats=args.repeats,
    )
    written = ", ".join(str(path) for path in report.written)
    print(report.table() + f"wrote {written} and {report.out / 'deploy.md'}")
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
