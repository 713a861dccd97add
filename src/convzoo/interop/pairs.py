"""The timm and torchvision architectures that equal a convzoo model once their weights are mapped.

Each :class:`~convzoo.interop.mapping.Pair` below was checked in float64 on random weights (the peer tests,
``tests/interop``): same parameter count, outputs equal after the mapping. Where a convzoo default departs from
the weights' source, the pair edits the source tensors or adjusts the loaded model so that it computes what the
source computes:

- EfficientNet-B0: BN eps 1e-3 in convzoo (the TensorFlow original), 1e-5 in timm and torchvision;
- TResNet-M: space-to-depth channel order ``c·16 + offset`` in convzoo, ``offset·C + c`` in timm;
- InceptionNeXt-T: one concatenated bias for the three depthwise branches in convzoo, three in timm;
- ConvFormer-S18, CAFormer-S18: the MLP head's LayerNorm eps 1e-5 in convzoo, 1e-6 in timm;
- SE-ResNet-50 as released (timm ``legacy_seresnet50``, the Caffe layout): the stride sits in the first 1×1
  conv of a downsampling bottleneck, and the stem max-pool has padding 0 with ceil mode;
- VGG-16-BN from timm: the first FC is held as a 7×7 conv (equal where the last feature map is 7×7);
- Inception-v3: timm's port has no auxiliary classifier (convzoo's keeps its values, reported as kept);
  torchvision's released weights run with ``transform_input``, folded exactly into the first conv and its BN;
- NASNet-A Large (timm ``nasnetalarge``, ported from the TF-Slim checkpoint): each normal and in-stage reduction
  cell registers the previous cell's 1×1 before the last one's (convzoo: the last one's first), and the stride-2
  separable convs and pools pad as TensorFlow's SAME does (convzoo: symmetric k // 2; they differ at even
  sides), except that timm's stride-2 average pools count the zero padding (TensorFlow's excludes it): the
  loaded model is switched to ``padding="timm"`` (:meth:`convzoo.models.nasnet.NASNetA.set_padding`);
- CrossViT-S, CrossViT-9†: timm keeps each fusion's query, key and value projections apart (``wq``, ``wk``,
  ``wv``; convzoo: one ``qkv``, concatenated), and a block's projections, fusions and back-projections grouped
  by kind (convzoo: by branch); the class tokens and position embeddings come first in timm.

No HaloNet pair: timm's ``halonet_h1`` has convzoo's HaloNet-H1 layout (all 8,100,056 parameters pair up), but
timm releases no weights for it (tag ``untrained``), and its attention lets the zero-padded keys of the border
halos into the softmax where convzoo's masks them out, so the outputs differ (the only difference: equal once the
mask is left out); timm's HaloNets with weights (``halonet26t``, ``sehalonet33ts``, ``halonet50ts``,
``eca_halonext26ts``, ``halo2botnet50ts_256``, ``lamhalobotnet50ts_256``, ``haloregnetz_b``) are other
architectures: 4× expanded bottlenecks with conv blocks in the early stages, or RegNet-Z blocks; tiered or
RegNet stems; SE, ECA or SiLU in some; 10.76M to 22.73M parameters.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from convzoo.interop.mapping import Pair, Regroup, set_norm_eps

__all__ = ["PAIRS", "pairs_for"]


def _tresnet_space_to_depth(state: dict[str, Tensor]) -> list[str]:
    """Permute the stem conv's input channels from timm's ``offset·C + c`` to convzoo's ``c·16 + offset``."""
    key = "body.conv1.conv.weight"
    weight = state[key]  # (O, 16·C, k, k), input channel offset·C + c
    out, channels = weight.shape[0], weight.shape[1] // 16
    # (O, 16, C, k, k) -> (O, C, 16, k, k): input channel c·16 + offset
    state[key] = weight.reshape(out, 16, channels, *weight.shape[2:]).transpose(1, 2).reshape(weight.shape)
    return [f"{key}: input channels permuted from offset·C + c (timm) to c·16 + offset (convzoo space-to-depth)"]


def _inceptionnext_biases(state: dict[str, Tensor]) -> list[str]:
    """Concatenate each block's three branch biases (hw, w, h) into the one bias convzoo's InceptionDW holds."""
    first = re.compile(r"^(.*token_mixer\.)dwconv_hw\.weight$")
    branch_bias = re.compile(r"token_mixer\.dwconv_(hw|w|h)\.bias$")
    items, edited = dict(state), []
    state.clear()
    for key, value in items.items():
        match = first.match(key)
        if match:  # the merged bias goes first, where convzoo's InceptionDW registers it
            prefix = match.group(1)
            branches = [f"{prefix}dwconv_{b}.bias" for b in ("hw", "w", "h")]
            state[f"{prefix}bias"] = torch.cat([items[b] for b in branches])  # (3·g,) in branch order
            edited.append(f"{prefix}bias = cat({', '.join(branches)})")
        if not branch_bias.search(key):
            state[key] = value
    return edited


def _vgg_conv_mlp(state: dict[str, Tensor]) -> list[str]:
    """timm's VGG head holds its first FC as a 7×7 conv (``ConvMlp``): the same matrix over the flattened
    ``(C, 7, 7)`` map, so the two agree where the last feature map is 7×7 (224×224 input)."""
    key = "pre_logits.fc1.weight"
    weight = state[key]  # (O, C, 7, 7)
    state[key] = weight.reshape(weight.shape[0], -1)  # (O, C·7·7), flattened as (C, H, W)
    return [f"{key}: {tuple(weight.shape)} conv as a linear on the flattened (C, 7, 7) map"]


# torchvision's Inception-v3 with transform_input: x_c -> x_c·std_c/0.5 + (mean_c - 0.5)/0.5 (ImageNet-normalised
# input back to the [-1, 1] scaling of the original weights)
_TV_SCALE = (0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5)
_TV_SHIFT = ((0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5)


def _fold_transform_input(state: dict[str, Tensor]) -> list[str]:
    """Fold torchvision's ``transform_input`` (a per-channel affine map of the input) into the first conv and
    its BN, exactly: the conv has no padding and no bias, so ``conv(a·x + d) = conv_{W·a}(x) + Σ W·d`` and the
    constant moves into the BN's running mean."""
    conv, mean = "Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_mean"
    weight = state[conv]  # (32, 3, 3, 3)
    scale = weight.new_tensor(_TV_SCALE).view(1, 3, 1, 1)
    shift = weight.new_tensor(_TV_SHIFT).view(1, 3, 1, 1)
    state[mean] = state[mean] - (weight * shift).sum(dim=(1, 2, 3))  # (32,)
    state[conv] = weight * scale
    return [f"{conv}, {mean}: transform_input folded in (input scaled by std/0.5, shifted by (mean - 0.5)/0.5)"]


def _tv_inception_settings(source: nn.Module) -> tuple:
    return (_fold_transform_input,) if getattr(source, "transform_input", False) else ()


def _legacy_seresnet(model: nn.Module) -> list[str]:
    """The released (Caffe) SE-ResNet layout: stride in the first 1×1 conv, stem max-pool padding 0, ceil mode."""
    changed = []
    pool = model.stem[3]
    pool.padding, pool.ceil_mode = 0, True
    changed.append("stem.3: MaxPool2d padding 1 -> 0, ceil_mode False -> True")
    for i, stage in enumerate(model.stages):
        body = stage[0].body
        if body[3].stride != (1, 1):
            body[0].stride, body[3].stride = body[3].stride, (1, 1)
            changed.append(f"stages.{i}.0: stride {body[0].stride} moved from the 3x3 (body.3) to the 1x1 (body.0)")
    return changed


def _timm_nasnet_padding(model: nn.Module) -> list[str]:
    """Pad the stride-2 separable convs and pools as timm's ``nasnetalarge`` port does (SAME; its stride-2
    average pools count the zero padding)."""
    return model.set_padding("timm")


def _crossvit_fusion_qkv(state: dict[str, Tensor]) -> list[str]:
    """Concatenate each fusion's ``wq``, ``wk``, ``wv`` (weights, biases) into the one ``qkv`` convzoo's
    attention holds, rows in that order, where ``wq`` was."""
    first = re.compile(r"^(.*\.attn\.)wq\.(weight|bias)$")
    part = re.compile(r"\.attn\.w[qkv]\.(weight|bias)$")
    items, edited = dict(state), []
    state.clear()
    for key, value in items.items():
        match = first.match(key)
        if match:
            prefix, kind = match.groups()
            parts = [f"{prefix}w{p}.{kind}" for p in "qkv"]
            state[f"{prefix}qkv.{kind}"] = torch.cat([items[k] for k in parts])  # (3·C, C) or (3·C,)
            edited.append(f"{prefix}qkv.{kind} = cat({', '.join(parts)})")
        if not part.search(key):
            state[key] = value
    return edited


# timm's CrossViT: the class tokens and position embeddings first (pos_embed_i, cls_token_i per branch), and in a
# block the branches' blocks, then projs, fusion and revert_projs each for both branches; convzoo's fusion d is
# projs.d, fusion.d, revert_projs.d
_CROSSVIT = (
    Regroup("", (r"patch_embed\.", r"cls_token_0$", r"cls_token_1$", r"pos_embed_0$", r"pos_embed_1$", "*")),
    Regroup(
        r"blocks\.\d+\.",
        (r"blocks\.", r"projs\.0\.", r"fusion\.0\.", r"revert_projs\.0\.", r"projs\.1\.", r"fusion\.1\.", "*"),
    ),
)
_CROSSVIT_DIFFERS = "wq, wk, wv of each fusion (convzoo: one qkv, concatenated)"

_EFFICIENTNET_EPS = set_norm_eps(nn.BatchNorm2d, 1e-5)
_METAFORMER_HEAD_EPS = set_norm_eps(nn.LayerNorm, 1e-6, "head.hidden")
_CONVNEXT_BLOCK = Regroup(r"stages\.\d+\.blocks\.\d+\.", ("*", "gamma$"))

PAIRS: tuple[Pair, ...] = (
    Pair("resnet18", "timm", "resnet18"),
    Pair("resnet18", "torchvision", "resnet18"),
    Pair("resnet50", "timm", "resnet50"),
    Pair("resnet50", "torchvision", "resnet50"),
    Pair("se_resnet50", "timm", "seresnet50"),
    Pair(
        "se_resnet50",
        "timm",
        "legacy_seresnet50",
        adjust=(_legacy_seresnet,),
        differs="the released Caffe layout: stride in the first 1x1, max-pool padding 0 with ceil mode",
    ),
    Pair("resnext50_32x4d", "timm", "resnext50_32x4d"),
    Pair("resnext50_32x4d", "torchvision", "resnext50_32x4d"),
    Pair(
        "resnest50d",
        "timm",
        "resnest50d",
        regroup=(Regroup(r"layer\d+\.\d+\.conv2\.", (r"conv\.", r"fc1\.", r"fc2\.", r"bn0\.", r"bn1\.")),),
    ),
    Pair("densenet121", "timm", "densenet121"),
    Pair("densenet121", "torchvision", "densenet121"),
    Pair(
        "vgg16_bn",
        "timm",
        "vgg16_bn",
        edits=(_vgg_conv_mlp,),
        differs="first FC held as a 7x7 conv (ConvMlp); equal where the last map is 7x7 (224 input)",
    ),
    Pair("vgg16_bn", "torchvision", "vgg16_bn"),
    Pair(
        "efficientnet_b0", "timm", "efficientnet_b0", adjust=(_EFFICIENTNET_EPS,), differs="BN eps 1e-5 (convzoo 1e-3)"
    ),
    Pair(
        "efficientnet_b0",
        "torchvision",
        "efficientnet_b0",
        adjust=(_EFFICIENTNET_EPS,),
        differs="BN eps 1e-5 (convzoo 1e-3)",
    ),
    Pair(
        "tresnet_m",
        "timm",
        "tresnet_m",
        regroup=(Regroup(r"body\.layer\d+\.\d+\.", (r"conv1\.", r"conv2\.", r"se\.", r"conv3\.", r"downsample\.")),),
        edits=(_tresnet_space_to_depth,),
        differs="space-to-depth channel order offset·C + c (convzoo c·16 + offset)",
    ),
    Pair("convnext_tiny", "timm", "convnext_tiny", regroup=(_CONVNEXT_BLOCK,)),
    Pair(
        "convnext_tiny",
        "torchvision",
        "convnext_tiny",
        regroup=(Regroup(r"features\.\d+\.\d+\.", ("*", "layer_scale$")),),
    ),
    Pair(
        "inceptionnext_tiny",
        "timm",
        "inception_next_tiny",
        regroup=(_CONVNEXT_BLOCK,),
        edits=(_inceptionnext_biases,),
        differs="three branch biases (convzoo: one, concatenated)",
    ),
    Pair("convmixer_768_32", "timm", "convmixer_768_32"),
    Pair("mixer_b16_224", "timm", "mixer_b16_224"),
    Pair("poolformerv2_s12", "timm", "poolformerv2_s12"),
    Pair(
        "convformer_s18",
        "timm",
        "convformer_s18",
        adjust=(_METAFORMER_HEAD_EPS,),
        differs="MLP head LayerNorm eps 1e-6 (convzoo 1e-5)",
    ),
    Pair(
        "caformer_s18",
        "timm",
        "caformer_s18",
        adjust=(_METAFORMER_HEAD_EPS,),
        differs="MLP head LayerNorm eps 1e-6 (convzoo 1e-5)",
    ),
    Pair(
        "inception_v3",
        "timm",
        "inception_v3",
        keep=(r"head\.aux\.",),
        differs="no auxiliary classifier in timm's port (convzoo's stays as initialised)",
    ),
    Pair(
        "inception_v3",
        "torchvision",
        "inception_v3",
        regroup=(Regroup("", ("*", r"AuxLogits\.")),),
        settings=_tv_inception_settings,
        differs="transform_input (on with the released weights) folded into the first conv and BN",
    ),
    Pair(
        "nasnet_a_large",
        "timm",
        "nasnetalarge",
        regroup=(Regroup(r"(?:reduction_)?cell_\d+\.", (r"conv_1x1\.", "*")),),
        adjust=(_timm_nasnet_padding,),
        differs="SAME padding at stride 2, average pools counting the padding (convzoo: symmetric k // 2)",
    ),
    Pair(
        "crossvit_small",
        "timm",
        "crossvit_small_240",
        regroup=_CROSSVIT,
        edits=(_crossvit_fusion_qkv,),
        differs=_CROSSVIT_DIFFERS,
    ),
    Pair(
        "crossvit_9_dagger",
        "timm",
        "crossvit_9_dagger_240",
        regroup=_CROSSVIT,
        edits=(_crossvit_fusion_qkv,),
        differs=_CROSSVIT_DIFFERS,
    ),
    Pair(
        "rdnet_tiny",
        "timm",
        "rdnet_tiny",
        regroup=(Regroup(r"dense_stages\.\d+\.\d+\.dense_block\d+\.", ("*", "gamma$")),),
    ),
)


def pairs_for(model: str) -> list[Pair]:
    """The pairs whose convzoo side is ``model`` (timm first), in the order above."""
    return [p for p in PAIRS if p.model == model]
