"""Attribution maps (S83 featurevis's gradient and perturbation families; S101 deconvnet and occlusion sensitivity).

Captum computes what it has (saliency, occlusion, deconvolution, guided backprop, integrated gradients:
:func:`attribute`). convzoo adds what Captum lacks: S101's occlusion *sensitivity map* (the probability of
the class as a function of where a grey square sits, one value per occluder position, batched), and
deconvnet / guided-backprop projections of any layer's strongest activation whose ReLU rule also reaches
functional ReLUs (``F.relu``, ``x.relu()``), which Captum's module hooks do not see.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from convzoo.core.names import unknown_name_message
from convzoo.core.validate import check_choice, check_int
from convzoo.registry import ANALYSES

__all__ = [
    "CAPTUM_METHODS",
    "attribute",
    "occlusion_sensitivity",
    "guided_projection",
    "find_module",
    "default_target",
]

CAPTUM_METHODS = ("saliency", "occlusion", "deconvolution", "guided_backprop", "integrated_gradients")


def _captum() -> Any:
    try:
        import captum.attr
    except ImportError:
        raise ImportError(
            "convzoo.interpret: this method uses Captum; install it with `pip install convzoo[interpret]`"
        ) from None
    return captum.attr


def default_target(model: nn.Module, x: Tensor) -> int:
    """The class the model predicts for the first sample of ``x``."""
    with torch.no_grad():
        return int(model(x[:1]).reshape(1, -1).argmax())


@ANALYSES.register(
    "attribution",
    kind="analysis",
    papers=("featurevis",),
    summary="saliency, occlusion, deconvolution, guided backprop and integrated gradients through Captum (S83)",
)
def attribute(
    model: nn.Module,
    x: Tensor,
    method: str,
    target: int | None = None,
    *,
    window: int = 16,
    stride: int = 8,
    steps: int = 32,
    batch: int = 32,
    progress: bool = False,
) -> Tensor:
    """Captum's attribution ``method`` of class ``target`` for ``x`` ``(N, C, *S)`` → ``(N, C, *S)``.

    ``window``/``stride``: occlusion's square and step (a baseline of zeros); ``steps``: integrated gradients'
    path points; ``batch``: perturbations or path points evaluated per forward pass.
    """
    check_choice(method, CAPTUM_METHODS, "method", "attribute")
    attr = _captum()
    model.eval()
    with warnings.catch_warnings():
        # Captum warns that it sets requires_grad on the input and hooks ReLUs, both by design here
        warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
        return _attribute(attr, model, x, method, target, window, stride, steps, batch, progress)


def _attribute(attr, model, x, method, target, window, stride, steps, batch, progress) -> Tensor:
    target = default_target(model, x) if target is None else target
    if method == "saliency":
        return attr.Saliency(model).attribute(x, target=target, abs=True).detach()
    if method == "occlusion":
        spatial = x.dim() - 2
        shape = (x.shape[1],) + (check_int(window, "window", "occlusion"),) * spatial
        strides = (x.shape[1],) + (check_int(stride, "stride", "occlusion"),) * spatial
        with torch.no_grad():
            return attr.Occlusion(model).attribute(
                x, shape, strides, baselines=0.0, target=target, perturbations_per_eval=batch, show_progress=progress
            )
    if method == "deconvolution":
        return attr.Deconvolution(model).attribute(x, target=target).detach()
    if method == "guided_backprop":
        return attr.GuidedBackprop(model).attribute(x, target=target).detach()
    ig = attr.IntegratedGradients(model)
    return ig.attribute(x, target=target, n_steps=steps, internal_batch_size=batch).detach()


def _occluder_positions(size: int, window: int, stride: int) -> list[int]:
    return list(range(0, max(size - window, 0) + 1, stride))


@ANALYSES.register(
    "occlusion_sensitivity",
    kind="analysis",
    papers=("deconvnet",),
    summary="class probability under a sliding grey square (S101)",
)
def occlusion_sensitivity(
    model: nn.Module,
    x: Tensor,
    target: int | None = None,
    *,
    window: int = 16,
    stride: int = 8,
    baseline: float = 0.0,
    batch: int = 32,
    progress: bool = False,
) -> Tensor:
    """S101's occlusion sensitivity: ``p(target | x with a grey square at (i, j))`` for every occluder position.

    ``x``: one image ``(1, C, H, W)``; returns ``(H', W')`` with ``H' = ⌊(H − window)/stride⌋ + 1``. A dark
    region is where the class depends on the image. ``batch`` occluded copies run per forward pass.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"occlusion_sensitivity: expected one image (1, C, H, W), got shape {tuple(x.shape)}")
    check_int(window, "window", "occlusion_sensitivity")
    check_int(stride, "stride", "occlusion_sensitivity")
    model.eval()
    target = default_target(model, x) if target is None else target
    rows = _occluder_positions(x.shape[2], window, stride)
    cols = _occluder_positions(x.shape[3], window, stride)
    positions = [(i, j) for i in rows for j in cols]
    probabilities = []
    chunks = range(0, len(positions), check_int(batch, "batch", "occlusion_sensitivity"))
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="occlusion sensitivity", unit="batch")
    with torch.no_grad():
        for start in chunks:
            chunk = positions[start : start + batch]
            occluded = x.repeat(len(chunk), 1, 1, 1)  # (B, C, H, W)
            for k, (i, j) in enumerate(chunk):
                occluded[k, :, i : i + window, j : j + window] = baseline
            probabilities.append(torch.softmax(model(occluded).reshape(len(chunk), -1), dim=1)[:, target])
    return torch.cat(probabilities).view(len(rows), len(cols))


class _ReluRule(torch.autograd.Function):
    """ReLU forward; backward by the deconvnet rule (``relu(grad)``) or guided backprop (``relu(grad)·[x > 0]``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, guided: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.guided = guided
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        grad = grad.clamp(min=0)
        return (grad * (x > 0) if ctx.guided else grad), None


class _RuleMode(TorchFunctionMode):
    def __init__(self, guided: bool) -> None:
        super().__init__()
        self.guided = guided

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("relu", "relu_") and isinstance(args[0], Tensor):
            return _ReluRule.apply(args[0], self.guided)
        return func(*args, **(kwargs or {}))


def find_module(model: nn.Module, name: str) -> nn.Module:
    """``model``'s submodule ``name`` (a dotted name from ``named_modules``); an unknown name suggests close ones."""
    modules = dict(model.named_modules())
    if name not in modules or not name:
        raise ValueError(unknown_name_message("layer", name, [n for n in modules if n]))
    return modules[name]


@ANALYSES.register(
    "deconvnet_projection",
    kind="analysis",
    papers=("deconvnet",),
    summary="deconvnet / guided-backprop projection of a layer's strongest unit (S101)",
)
def guided_projection(
    model: nn.Module, x: Tensor, layer: str, channel: int | None = None, *, rule: str = "deconvnet"
) -> tuple[Tensor, int]:
    """S101's deconvnet projection: the strongest activation of ``layer`` mapped back to pixel space.

    Keeps the single largest activation of ``channel`` (of the strongest channel when None) in the output of
    ``layer`` for the first sample, zeroes the rest and runs it back to the input: max-pool switches are the
    recorded arg-max positions, convolutions are transposed, and every ReLU passes ``relu(signal)``
    (``rule="deconvnet"``) or ``relu(signal)·[x > 0]`` (``rule="guided"``). Returns ``(projection, channel)``,
    the projection of ``x``'s shape.
    """
    check_choice(rule, ("deconvnet", "guided"), "rule", "guided_projection")
    module = find_module(model, layer)
    captured: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    try:
        with _RuleMode(guided=rule == "guided"):
            model(x)
    finally:
        handle.remove()
    activation = captured[0][:1]  # (1, C, *S)
    if channel is None:
        channel = int(activation.flatten(2).amax(-1)[0].argmax())
    check_int(channel, "channel", "guided_projection", low=0, high=activation.shape[1] - 1)
    chosen = activation[0, channel].reshape(-1)
    signal = torch.zeros_like(activation)
    signal[0, channel].view(-1)[int(chosen.argmax())] = chosen.max()
    (projection,) = torch.autograd.grad(activation, x, grad_outputs=signal)
    return projection.detach(), channel
