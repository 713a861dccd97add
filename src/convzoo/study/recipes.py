"""Training recipes of ``convzoo study --recipe``, among them the CIFAR schedule of the ResNet paper (He et al.).

``digits-quick`` is the trainer's default recipe at 4 epochs of batch 32 (minutes on a CPU for the default ops).
``cifar-standard`` is the CIFAR-10 schedule of He et al., "Deep Residual Learning for Image Recognition" (CVPR
2016, section 4.2; the base family of ResNeXt, S68): SGD with momentum 0.9, weight decay 1e-4, batch 128,
learning rate 0.1 divided by 10 at 32k and 48k iterations and stopped at 64k, i.e. at epochs 82 and 123 and
after 164 epochs of the 50k training images; no label smoothing. It is expressed in what the trainer has, with
these departures: the rate follows a cosine from 0.1 to 0 over the 164 epochs instead of the two ÷10 steps (the
trainer's schedule is warm-up + cosine), the momentum is Nesterov's (the trainer's SGD), and the paper's
4-pixel-pad random crop and horizontal flip are not applied (the ``cifar10`` dataset has no augmentation); the
paper's ResNet-20 error (8.75 %) is therefore not expected from it as is.
``--epochs``, ``--batch-size`` and ``--lr`` override a recipe's values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from convzoo.core.validate import check_choice

__all__ = ["RECIPES", "Recipe", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """Fields of :class:`convzoo.train.TrainConfig` a study run takes from its recipe."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    label_smoothing: float
    summary: str
    departures: str = ""

    def train_fields(self) -> dict[str, object]:
        """The recipe as ``TrainConfig`` keyword arguments."""
        fields = asdict(self)
        fields.pop("summary")
        fields.pop("departures")
        return fields


RECIPES: dict[str, Recipe] = {
    "digits-quick": Recipe(
        epochs=4,
        batch_size=32,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        warmup_epochs=0.2,
        label_smoothing=0.1,
        summary="SGD 0.05 (Nesterov 0.9, wd 5e-4), 0.2-epoch warm-up then cosine, label smoothing 0.1, "
        "batch 32, 4 epochs: the trainer's defaults, minutes on a CPU",
    ),
    "cifar-standard": Recipe(
        epochs=164,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        warmup_epochs=0.0,
        label_smoothing=0.0,
        summary="the ResNet paper's CIFAR schedule: SGD 0.1, momentum 0.9, wd 1e-4, batch 128, 164 epochs",
        departures="cosine decay to 0 instead of ÷10 at epochs 82 and 123; Nesterov momentum; no pad-and-crop or "
        "flip augmentation",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``; an unknown name raises naming the recipes there are."""
    check_choice(name, tuple(RECIPES), "recipe", "study")
    return RECIPES[name]
