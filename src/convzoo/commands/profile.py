"""``convzoo profile TARGET``: per-layer cost of an op, a model or any module against this machine's roofline."""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import sys
from typing import Any

from convzoo.commands._util import UsageError, parse_shape, positive_int

DEFAULT_OP_SIDE = 56  # an op profiled without --input runs on (1, C, 56, 56): a ResNet stage-1 feature map


def _option(text: str) -> tuple[str, Any]:
    """argparse type: ``KEY=VALUE``, the value read as a Python literal (``rank=8``, ``directions='all'``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as rank=8, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word is a string: directions=all


def _build_op(name: str, args: argparse.Namespace):
    from convzoo.ops.base import create_op

    if args.op is not None:
        raise UsageError(f"--op applies to model targets; op:{name} is an op")
    shape = args.input or (1, args.channels or 64, DEFAULT_OP_SIDE, DEFAULT_OP_SIDE)
    if len(shape) < 3:
        raise UsageError(f"op {name!r} needs an input (N, C, *spatial) with 1 to 3 spatial sizes, got {shape}")
    out_channels = args.channels or shape[1]
    options = dict(args.option or [])
    module = create_op(name, shape[1], out_channels, args.kernel_size, args.stride, dim=len(shape) - 2, **options)
    return module, shape


def _build_model(name: str, args: argparse.Namespace):
    from convzoo.models.base import create_model
    from convzoo.registry import MODELS

    entry = MODELS.get(name)
    if args.channels is not None or args.option:
        raise UsageError(f"--channels and --option apply to op targets; {name!r} is a model")
    shape = args.input or (1, *entry.info.input_size)
    return create_model(name, op=args.op), shape


def _build_factory(target: str, args: argparse.Namespace):
    from torch import nn

    module_name, _, attribute = target.partition(":")
    if args.input is None:
        raise UsageError(f"{target}: a module:factory target needs --input (e.g. --input 1x3x224x224)")
    try:
        factory: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            factory = getattr(factory, part)
    except ImportError as error:
        raise UsageError(f"{target}: cannot import {module_name!r} ({error})") from None
    except AttributeError:
        raise UsageError(f"{target}: module {module_name!r} has no attribute {attribute!r}") from None
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise UsageError(f"{target}: expected a factory returning an nn.Module, got {type(model).__name__}")
    return model, args.input


def resolve_target(target: str, args: argparse.Namespace):
    """``(module, input_shape)`` for ``op:NAME``, ``model:NAME``, a model or op name, or ``module:factory``."""
    import convzoo.models  # noqa: F401  (registers the models)
    from convzoo.registry import MODELS, OPS

    kind, sep, rest = target.partition(":")
    if sep and kind == "op":
        return _build_op(rest, args)
    if sep and kind == "model":
        return _build_model(rest, args)
    if sep:
        return _build_factory(target, args)
    if target in MODELS:
        return _build_model(target, args)
    if target in OPS:
        return _build_op(target, args)
    known = MODELS.names() + [f"op:{name}" for name in OPS.names()]
    close = difflib.get_close_matches(target, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(
        f"unknown target {target!r}{hint} (expected a registered model, op:NAME from `convzoo ops`, or module:factory)"
    )


def run_profile(args: argparse.Namespace) -> int:
    import torch

    from convzoo.profile.machine import peaks_path
    from convzoo.profile.profiler import profile
    from convzoo.profile.report import to_csv, to_json

    module, shape = resolve_target(args.target, args)
    threads = args.threads or torch.get_num_threads()
    if not peaks_path(threads).is_file():
        print(f"measuring this machine's peaks at {threads} threads once (a few seconds) ...", file=sys.stderr)
    result = profile(
        module, tuple(shape), threads=args.threads, repeats=args.repeats, warmup=args.warmup, name=args.target
    )
    if args.json:
        print(to_json(result), end="")
    elif args.csv:
        print(to_csv(result), end="")
    else:
        print(result.table())
    if args.out is not None:
        written = result.write(args.out)
        print(f"\nwrote {', '.join(p.name for p in written.values())} to {args.out} (open {written['html']})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="per-layer params, MACs, bytes, latency and roofline efficiency of an op, model or module",
        description="TARGET: a registered model (resnet18), op:NAME (op:shift), or module:factory (mypkg.nets:build).",
    )
    parser.add_argument("target", help="model name, op:NAME or module:factory")
    parser.add_argument("--input", type=parse_shape, default=None, help="input shape such as 1x3x224x224")
    parser.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed forward passes (default 30)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed forward passes first (default 3)")
    parser.add_argument("--out", default=None, help="write profile.json, profile.csv, plots and report.html here")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of the table")
    output.add_argument("--csv", action="store_true", help="print CSV instead of the table")
    ops = parser.add_argument_group("op targets")
    ops.add_argument("--channels", type=positive_int, default=None, help="output channels (default: the input's)")
    ops.add_argument("--kernel-size", type=positive_int, default=3)
    ops.add_argument("--stride", type=positive_int, default=1)
    ops.add_argument("--option", type=_option, action="append", metavar="KEY=VALUE", help="an op option, repeatable")
    models = parser.add_argument_group("model targets")
    models.add_argument("--op", default=None, help="build the model with this op as its spatial mixer")
    parser.set_defaults(run=run_profile)
