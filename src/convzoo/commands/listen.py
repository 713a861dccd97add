"""``convzoo predict-audio``: :func:`convzoo.train.listen.predict_audio` from the command line."""

from __future__ import annotations

import argparse

from convzoo.commands._util import positive_int, table


def run_predict_audio(args: argparse.Namespace) -> int:
    from convzoo.train.listen import predict_audio

    predictions = predict_audio(args.checkpoint, args.files, args.top_k)
    k = len(predictions[0].top)
    rows = [(p.image, ", ".join(f"{name} {probability:.3f}" for name, probability in p.top)) for p in predictions]
    print(table(("file", f"top-{k} classes (probability)"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict-audio", help="top-k classes of WAV files with an audio checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("files", nargs="+", metavar="clip.wav")
    p.add_argument("--top-k", type=positive_int, default=5)
    p.set_defaults(run=run_predict_audio)
