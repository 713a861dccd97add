"""Non-mixing layers and the blocks models share: norms, activations, drop path, LayerScale, MLP, SE, stages.

``convzoo.registry.LAYERS`` imports every module of this package on its first lookup, so adding a layer
family is adding a file.
"""

from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import LayerScale
from convzoo.layers.metaformer_block import MetaFormerBlock
from convzoo.layers.metanext_block import MetaNeXtBlock
from convzoo.layers.mlp import Mlp
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.residual import ResidualBlock
from convzoo.layers.squeeze_excite import EffectiveSqueezeExcite, SqueezeExcite
from convzoo.layers.stage import Stage

__all__ = [
    "DropPath",
    "EffectiveSqueezeExcite",
    "LayerNormChannelsFirst",
    "LayerScale",
    "MetaFormerBlock",
    "MetaNeXtBlock",
    "Mlp",
    "ResidualBlock",
    "SqueezeExcite",
    "Stage",
]
