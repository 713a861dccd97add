"""``convzoo search-pooling CHECKPOINT [--top N] [--json OUT]``: the pooling search of S66 on a ``pooling-search``
checkpoint: every configuration scored on the validation half with the SuperNet it is assigned to, ranked; the
best one's standalone network scored on the test split, and the command that retrains it.

Nothing is written except ``--json``, atomically and only once the whole search has run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from convzoo.commands._util import UsageError, positive_int, table

__all__ = ["search_pooling", "add_commands"]


def search_pooling(checkpoint: str | Path, *, batch_size: int = 128, progress: bool = False) -> dict[str, Any]:
    """The search on ``checkpoint``: ``{"ranking": [...], "best": {...}, "data": ..., "retrain": "convzoo ..."}``
    (every configuration, best first; ``best`` adds the standalone network's test accuracy)."""
    import torch

    from convzoo.data.base import load_dataset
    from convzoo.train.checkpoint import build_from_checkpoint, read_checkpoint
    from convzoo.train.tasks.pooling_search import accuracy, search, validation_split

    saved = read_checkpoint(checkpoint)
    if saved.task != "pooling-search":
        raise UsageError(
            f"search-pooling: {str(checkpoint)!r} is a {saved.task} checkpoint, not a pooling-search one "
            "(train one with: convzoo train --task pooling-search --model pooling_supernet_resnet20)"
        )
    model, saved = build_from_checkpoint(checkpoint)
    run = saved.meta.get("train_config", {})
    options, data, root = run.get("options", {}), run.get("data", "digits"), run.get("data_root")
    threshold = options.get("threshold", 1e-4)
    validation = validation_split(data, root, options.get("val_fraction", 0.5))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(model.configs), desc="configurations", leave=False, dynamic_ncols=True)
    device = torch.device("cpu")
    ranking = search(
        model, validation, batch_size=batch_size, threshold=threshold, device=device,
        on_config=(lambda _: bar.update(1)) if bar is not None else None,
    )  # fmt: skip
    if bar is not None:
        bar.close()
    top = ranking[0]
    standalone = model.supernets[top.supernet].extract(top.pool_at).eval()
    test_acc = accuracy(standalone, load_dataset(data, "test", root), batch_size, device)
    pool_at = ",".join(str(i) for i in top.pool_at)
    return {
        "checkpoint": str(checkpoint),
        "data": data,
        "validation_images": len(validation),
        "ranking": [
            {
                "rank": r.rank,
                "pool_at": list(r.pool_at),
                "supernet": r.supernet,
                "val_acc": r.accuracy,
                "score": r.score,
                "batches": r.batches,
            }
            for r in ranking
        ],  # fmt: skip
        "best": {"pool_at": list(top.pool_at), "supernet": top.supernet, "val_acc": top.accuracy, "test_acc": test_acc},
        "retrain": f"convzoo train --model pooling_resnet20 --cfg pool_at={pool_at} --data {data}",
    }


def run_search_pooling(args: argparse.Namespace) -> int:
    from convzoo.core.files import atomic_write_json

    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"search-pooling: the folder of --json {str(out)!r} does not exist")
    result = search_pooling(args.checkpoint, batch_size=args.batch_size, progress=not args.no_progress)
    rows = [
        (r["rank"], "(" + ", ".join(map(str, r["pool_at"])) + ")", r["supernet"], f"{r['val_acc']:.4f}",
         f"{r['score']:.4f}", r["batches"])
        for r in result["ranking"][: args.top]
    ]  # fmt: skip
    print(
        f"{len(result['ranking'])} pooling configurations of {args.checkpoint}, scored on "
        f"{result['validation_images']} validation images of {result['data']} with their assigned SuperNet"
    )
    print(table(["rank", "pool_at", "supernet", "val acc", "score W", "batches"], rows))
    best = result["best"]
    print(
        f"best: pool_at=({', '.join(map(str, best['pool_at']))}) on SuperNet {best['supernet']}: validation "
        f"accuracy {best['val_acc']:.4f}; its standalone network (weights copied) scores {best['test_acc']:.4f} on "
        "the test split"
    )
    print(f"retrain it: {result['retrain']}")
    if out is not None:
        atomic_write_json(out, result)
        print(f"ranking written to {out}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search-pooling", help="rank the pooling configurations of a pooling-search checkpoint (S66)")
    p.add_argument("checkpoint", help="a checkpoint folder of convzoo train --task pooling-search")
    p.add_argument("--top", type=positive_int, default=5, help="configurations to print (default 5; --json has all)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="validation batch size (default 128)")
    p.add_argument("--json", metavar="OUT", help="also write the whole ranking as JSON (atomically, when done)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the configurations")
    p.set_defaults(run=run_search_pooling)
