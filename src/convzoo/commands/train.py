"""``convzoo train``, ``convzoo eval`` and ``convzoo predict``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from convzoo.commands._util import UsageError, positive_int, table


def _cfg(pairs: list[str]) -> dict:
    """``--cfg key=value`` pairs, values parsed as JSON where they parse (``layers=[1,1,1]``), else strings."""
    cfg = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--cfg expects key=value, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        cfg[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return cfg


def run_train(args: argparse.Namespace) -> int:
    from convzoo.train import TrainConfig, train

    config = TrainConfig(
        model=args.model,
        op=args.op,
        data=args.data,
        data_root=args.data_root,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        bf16=args.bf16,
        grad_clip=args.grad_clip,
        ema_decay=args.ema,
        seed=args.seed,
        out=args.out,
        cfg=_cfg(args.cfg),
        progress=not args.no_progress,
        device=args.device,
    )
    result = train(config, resume=args.resume)
    if result.history:
        last = result.history[-1]
        print(
            f"{config.model}{f' op={config.op}' if config.op else ''} on {config.data}: "
            f"test accuracy {last['test_acc']:.4f} after {last['epoch']} epochs; checkpoint {result.checkpoint}"
        )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from convzoo.data import load_dataset
    from convzoo.train import build_from_checkpoint, evaluate

    model, checkpoint = build_from_checkpoint(args.checkpoint)
    data = args.data or checkpoint.meta.get("data", {}).get("name")
    root = args.data_root if args.data_root is not None else checkpoint.meta.get("data", {}).get("root")
    if data is None:
        raise UsageError("the checkpoint names no dataset; pass --data")
    test = load_dataset(data, "test", root)
    if test.info.num_classes != checkpoint.architecture["num_classes"]:
        raise UsageError(
            f"{data} has {test.info.num_classes} classes but the checkpoint's model has "
            f"{checkpoint.architecture['num_classes']}"
        )
    loss, accuracy = evaluate(model, test)
    print(f"{checkpoint.describe()} on {data} test: accuracy {accuracy:.4f}, loss {loss:.4f} ({len(test)} images)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import torch

    from convzoo.data.imagefolder import read_image
    from convzoo.train import build_from_checkpoint

    model, checkpoint = build_from_checkpoint(args.checkpoint)
    data = checkpoint.meta.get("data", {})
    if not data.get("image_size"):
        raise UsageError(f"{args.checkpoint} records no input image size; it was not trained on an image dataset")
    size, channels = data["image_size"][0], data["channels"]
    mean = torch.tensor(data["mean"]).view(-1, 1, 1)
    std = torch.tensor(data["std"]).view(-1, 1, 1)
    names = data.get("class_names") or [str(i) for i in range(checkpoint.architecture["num_classes"])]
    k = min(args.top_k, len(names))
    rows = []
    for path in args.images:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image file {path!r}")
        image = (read_image(Path(path), size, channels) - mean) / std
        with torch.no_grad():
            probs = model(image[None]).softmax(1)[0]
        top = probs.topk(k)
        rows.append((path, ", ".join(f"{names[i]} {p:.3f}" for p, i in zip(top.values, top.indices, strict=True))))
    print(table(("image", f"top-{k} classes (probability)"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a classifier (any registered model, any op) on a dataset")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--op", default=None, help="a registered operator in place of the model's spatial convs")
    p.add_argument("--data", default="digits")
    p.add_argument("--data-root", default=None, help="folder of an on-disk dataset (cifar10, imagefolder, ...)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--warmup-epochs", type=float, default=0.2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--ema", type=float, default=None, metavar="DECAY", help="keep an EMA of the weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="folder for metrics.jsonl and the checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_train)

    e = sub.add_parser("eval", help="test accuracy of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None, help="default: the dataset it was trained on")
    e.add_argument("--data-root", default=None)
    e.set_defaults(run=run_eval)

    r = sub.add_parser("predict", help="top-k classes of images with a checkpoint")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--top-k", type=positive_int, default=5)
    r.set_defaults(run=run_predict)
