"""transformers configurations: the random-tiny test model and Meta checkpoint variants.

Meta's checkpoints carry no configuration. :func:`config_from_meta_shapes` picks the
variant (tiny, small, base-plus, large; SAM 2 or SAM 2.1) from the key shapes: the
patch-embedding width and the number of Hiera blocks per stage identify the size,
and the three tensors SAM 2.1 added identify the version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from napari_sam2v.errors import CheckpointError

if TYPE_CHECKING:  # transformers is imported when a configuration is built
    from transformers import Sam2VideoConfig

__all__ = [
    "RANDOM_TINY_IMAGE_SIZE",
    "HieraVariant",
    "config_from_meta_shapes",
    "random_tiny_config",
    "sam2_video_config",
]

#: Input size of the random-tiny test model (SAM 2 uses 1024).
RANDOM_TINY_IMAGE_SIZE = 128


@dataclass(frozen=True)
class HieraVariant:
    """Hyper-parameters of one Hiera image-encoder size (Meta's published configs)."""

    name: str
    embed_dim: int
    blocks_per_stage: tuple[int, int, int, int]
    heads_per_stage: tuple[int, int, int, int]
    window_size_per_stage: tuple[int, int, int, int]
    global_attention_blocks: tuple[int, ...]
    pos_embed_background: int


_VARIANTS = (
    HieraVariant("tiny", 96, (1, 2, 7, 2), (1, 2, 4, 8), (8, 4, 14, 7), (5, 7, 9), 7),
    HieraVariant("small", 96, (1, 2, 11, 2), (1, 2, 4, 8), (8, 4, 14, 7), (7, 10, 13), 7),
    HieraVariant("base-plus", 112, (2, 3, 16, 3), (2, 4, 8, 16), (8, 4, 14, 7), (12, 16, 20), 14),
    HieraVariant("large", 144, (2, 6, 36, 4), (2, 4, 8, 16), (8, 4, 16, 8), (23, 33, 43), 7),
)

#: Tensors present in SAM 2.1 checkpoints only.
SAM21_ONLY_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias")


def sam2_video_config(
    variant: HieraVariant,
    *,
    sam21: bool = True,
    image_size: int = 1024,
) -> Sam2VideoConfig:
    """Build a ``Sam2VideoConfig`` for one Hiera size.

    Parameters
    ----------
    variant : HieraVariant
        Image-encoder size.
    sam21 : bool, optional
        SAM 2.1 (occlusion embedding, temporal encoding of object pointers) or SAM 2.
    image_size : int, optional
        Model input size.

    Returns
    -------
    transformers.Sam2VideoConfig
    """
    from transformers import Sam2VideoConfig

    e = variant.embed_dim
    return Sam2VideoConfig(
        vision_config={
            "model_type": "sam2_vision_model",
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "image_size": [image_size, image_size],
                "hidden_size": e,
                "num_attention_heads": variant.heads_per_stage[0],
                "blocks_per_stage": list(variant.blocks_per_stage),
                "embed_dim_per_stage": [e, 2 * e, 4 * e, 8 * e],
                "num_attention_heads_per_stage": list(variant.heads_per_stage),
                "window_size_per_stage": list(variant.window_size_per_stage),
                "global_attention_blocks": list(variant.global_attention_blocks),
                "window_positional_embedding_background_size": [variant.pos_embed_background] * 2,
            },
            "backbone_channel_list": [8 * e, 4 * e, 2 * e, e],
            "backbone_feature_sizes": [[image_size // s] * 2 for s in (4, 8, 16)],
        },
        prompt_encoder_config={"image_size": image_size},
        image_size=image_size,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2,
        enable_occlusion_spatial_embedding=sam21,
        enable_temporal_pos_encoding_for_object_pointers=sam21,
    )


def random_tiny_config() -> Sam2VideoConfig:
    """Configuration of the ``random-tiny`` test model.

    Same architecture as SAM 2.1 (Hiera encoder, memory attention, memory encoder,
    two-way mask decoder) with a 128-pixel input, one to two blocks per stage and a
    128-wide hidden size, so a frame takes milliseconds on one CPU core.

    Returns
    -------
    transformers.Sam2VideoConfig
    """
    from transformers import Sam2VideoConfig

    size, hidden = RANDOM_TINY_IMAGE_SIZE, 128
    return Sam2VideoConfig(
        vision_config={
            "model_type": "sam2_vision_model",
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "image_size": [size, size],
                "hidden_size": 32,
                "num_attention_heads": 1,
                "blocks_per_stage": [1, 1, 2, 1],
                "embed_dim_per_stage": [32, 64, 128, 256],
                "num_attention_heads_per_stage": [1, 1, 2, 2],
                "window_size_per_stage": [8, 4, 4, 4],
                "global_attention_blocks": [3],
            },
            "backbone_channel_list": [256, 128, 64, 32],
            "backbone_feature_sizes": [[size // s] * 2 for s in (4, 8, 16)],
            "fpn_hidden_size": hidden,
        },
        prompt_encoder_config={"hidden_size": hidden, "image_size": size},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 256, "iou_head_hidden_dim": hidden},
        image_size=size,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=2,
        memory_attention_feed_forward_hidden_size=256,
        memory_attention_rope_feat_sizes=[size // 16] * 2,
        memory_encoder_hidden_size=hidden,
        # the transformers memory attention hard-codes 64 memory channels
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=256,
    )


def _blocks_per_stage(shapes: Mapping[str, Sequence[int]]) -> tuple[int, ...]:
    block_ids = sorted(
        {
            int(m.group(1))
            for k in shapes
            if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))
        }
    )
    if not block_ids or block_ids != list(range(len(block_ids))):
        raise CheckpointError("the checkpoint has no complete image_encoder.trunk.blocks.* layers")
    # the first block of every stage after the first changes width (it has a projection)
    starts = [0] + [i for i in block_ids if f"image_encoder.trunk.blocks.{i}.proj.weight" in shapes]
    ends = starts[1:] + [len(block_ids)]
    return tuple(end - start for start, end in zip(starts, ends, strict=True))


def config_from_meta_shapes(
    shapes: Mapping[str, Sequence[int]], *, source: str = "checkpoint"
) -> tuple[Sam2VideoConfig, str]:
    """Infer the transformers configuration of a Meta SAM 2 / 2.1 checkpoint.

    Parameters
    ----------
    shapes : mapping of str to shape
        Key -> tensor shape of the Meta state dict.
    source : str, optional
        File name used in error messages.

    Returns
    -------
    config : transformers.Sam2VideoConfig
    description : str
        For example ``"SAM 2.1 tiny"``.

    Raises
    ------
    CheckpointError
        If the shapes match no known SAM 2 variant.
    """
    patch = shapes.get("image_encoder.trunk.patch_embed.proj.weight")
    if patch is None:
        raise CheckpointError(
            f"{source}: not a SAM 2 checkpoint (no image_encoder.trunk.patch_embed.proj.weight)"
        )
    embed_dim = int(patch[0])
    blocks = _blocks_per_stage(shapes)
    for variant in _VARIANTS:
        if variant.embed_dim == embed_dim and variant.blocks_per_stage == blocks:
            break
    else:
        raise CheckpointError(
            f"{source}: unknown SAM 2 image encoder (width {embed_dim}, blocks per stage "
            f"{list(blocks)}); supported sizes: {', '.join(v.name for v in _VARIANTS)}"
        )
    present = [k in shapes for k in SAM21_ONLY_KEYS]
    if any(present) and not all(present):
        raise CheckpointError(
            f"{source}: inconsistent checkpoint (has only some of {', '.join(SAM21_ONLY_KEYS)})"
        )
    sam21 = all(present)
    config = sam2_video_config(variant, sam21=sam21)
    return config, f"SAM {'2.1' if sam21 else '2'} {variant.name}"
