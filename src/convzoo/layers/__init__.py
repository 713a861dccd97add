"""Non-mixing layers and the blocks models share: norms, activations, drop path, LayerScale, MLP, SE, stages.

``convzoo.registry.LAYERS`` imports every module of this package on its first lookup, so adding a layer
family is adding a file.
"""
