"""``convzoo train``, ``convzoo eval`` and ``convzoo predict``: :func:`convzoo.train.train`,
:func:`~convzoo.train.evaluate_checkpoint` and :func:`~convzoo.train.predict` from the command line."""

from __future__ import annotations

import argparse
import sys

from convzoo.commands._util import assignments, positive_int, table


def run_train(args: argparse.Namespace) -> int:
    from convzoo.train import TrainConfig, train

    options = assignments("--option", args.option)
    if args.scale is not None:
        options["scale"] = args.scale
    config = TrainConfig(
        model=args.model,
        op=args.op,
        task=args.task,
        options=options,
        data=args.data,
        data_root=args.data_root,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        nesterov=False if args.classical_momentum else None,
        warmup_epochs=args.warmup_epochs,
        schedule=args.schedule,
        lr_steps=args.lr_steps,
        lr_gamma=args.lr_gamma,
        label_smoothing=args.label_smoothing,
        bf16=args.bf16,
        grad_clip=args.grad_clip,
        ema_decay=args.ema,
        seed=args.seed,
        out=args.out,
        save_every=args.save_every,
        cfg=assignments("--cfg", args.cfg),
        progress=not args.no_progress,
        device=args.device,
    )
    result = train(config, resume=args.resume)
    if result.interrupted:
        where = f"checkpoint {result.checkpoint}" if result.checkpoint else "no checkpoint (no --out)"
        print(f"interrupted: saved {where}; continue with the same command and --resume", file=sys.stderr)
        return 130
    if result.history:
        last = result.history[-1]
        print(
            f"{config.model}{f' op={config.op}' if config.op else ''} on {config.data}: "
            f"test {_metrics_text(result.test_metrics)} after {last['epoch']} epochs; checkpoint {result.checkpoint}"
        )
    return 0


def _fractions(text: str) -> tuple[float, ...]:
    """``"0.5,0.75"`` → ``(0.5, 0.75)``; anything else is refused naming the text."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.75, got {text!r}") from None


NAMES = {"acc": "accuracy"}


def _metrics_text(metrics: dict[str, float]) -> str:
    """``accuracy 0.9650, loss 0.1234`` — the task's primary metrics first, the loss last."""
    keys = [k for k in metrics if k != "loss"] + (["loss"] if "loss" in metrics else [])
    return ", ".join(f"{NAMES.get(k, k)} {metrics[k]:.4f}" for k in keys)


def run_eval(args: argparse.Namespace) -> int:
    from convzoo.train import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.data, args.data_root)
    print(f"{result.model} on {result.data} test: {_metrics_text(result.metrics)} ({result.images} {result.unit})")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from convzoo.train import predict

    predictions = predict(args.checkpoint, args.images, args.top_k)
    k = len(predictions[0].top)
    rows = [(p.image, ", ".join(f"{name} {probability:.3f}" for name, probability in p.top)) for p in predictions]
    print(table(("image", f"top-{k} classes (probability)"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model of any task (classify, sr, node, ...) on a dataset")
    p.add_argument(
        "--task",
        default="classify",
        help="what to train: classify (default), sr (super-resolution), node (node classification), recommend, ... "
        "(convzoo tasks lists them)",
    )
    p.add_argument("--model", default="resnet20", help="a registered model of the task (default: %(default)s)")
    p.add_argument("--op", default=None, help="a registered operator in place of the model's spatial convs")
    p.add_argument(
        "--data", default=None, help="a registered dataset (default: the task's embedded data: digits for classify)"
    )
    p.add_argument("--data-root", default=None, help="folder of an on-disk dataset (cifar10, imagefolder, ...)")
    p.add_argument("--epochs", type=positive_int, default=10, help="passes over the training data (default: 10)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="examples per step (default: 32)")
    p.add_argument(
        "--optimizer", choices=("sgd", "adamw"), default=None, help="default: the task's recipe (SGD for classify)"
    )
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the task's recipe)")
    p.add_argument("--weight-decay", type=float, default=None, help="default: the task's recipe")
    p.add_argument(
        "--classical-momentum", action="store_true", help="SGD with heavy-ball momentum (default: Nesterov's)"
    )
    p.add_argument("--warmup-epochs", type=float, default=0.2, help="linear warm-up before the schedule (epochs)")
    p.add_argument(
        "--schedule",
        choices=("cosine", "step"),
        default="cosine",
        help="after the warm-up: cosine decay to 0, or step (× --lr-gamma at each --lr-steps) (default: cosine)",
    )
    p.add_argument(
        "--lr-steps",
        type=_fractions,
        default=(),
        metavar="F1,F2",
        help="step schedule: fractions of training where the rate drops, e.g. 0.5,0.75 (the ResNet CIFAR schedule)",
    )
    p.add_argument("--lr-gamma", type=float, default=0.1, help="step schedule: factor at each drop (default: 0.1)")
    p.add_argument(
        "--label-smoothing", type=float, default=None, help="classify only (default: the task's recipe, else 0.1)"
    )
    p.add_argument("--scale", type=positive_int, default=None, help="sr: the upscaling factor (2, 3 or 4)")
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a setting of the task (repeatable)"
    )
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--ema", type=float, default=None, metavar="DECAY", help="keep an EMA of the weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    p.add_argument("--device", default=None)
    p.add_argument("--out", required=True, help="folder for metrics.jsonl and the checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--save-every", type=positive_int, default=1, metavar="EPOCHS", help="epochs between checkpoints (default: 1)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_train)

    e = sub.add_parser("eval", help="test metrics of a checkpoint (accuracy, PSNR, recall, ... by its task)")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None, help="default: the dataset it was trained on")
    e.add_argument("--data-root", default=None)
    e.set_defaults(run=run_eval)

    r = sub.add_parser("predict", help="top-k classes of images with a checkpoint")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="+")
    r.add_argument("--top-k", type=positive_int, default=5)
    r.set_defaults(run=run_predict)
