"""Safe loading of Meta SAM 2 checkpoints and their key mapping onto transformers.

Meta's checkpoints (``sam2.1_hiera_tiny.pt`` and the others) are ``{'model':
state_dict}`` dictionaries. They are read with ``torch.load(weights_only=True)``
(or :mod:`safetensors`), so a file whose pickle would run code is refused, never
executed. :func:`meta_to_transformers` renames every key to the transformers
``Sam2VideoModel`` layout; loading is strict: every key is used, none is missing.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_sam2v.errors import CheckpointError, UnsafeCheckpointError

__all__ = [
    "load_meta_state_dict",
    "meta_to_transformers",
    "transformers_to_meta",
]

#: The random Fourier matrix of the prompt encoder appears twice in transformers.
_PE_META = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
_PE_HF = (
    "prompt_encoder.shared_embedding.positional_embedding",
    "shared_image_embedding.positional_embedding",
)
_POINT_EMBED = re.compile(r"sam_prompt_encoder\.point_embeddings\.(\d+)\.weight")

# Plain renames, applied in order to every key (after the MLP renames below).
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^image_encoder\.trunk\.", "vision_encoder.backbone."),
    (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
    (r"^(vision_encoder\.backbone\.patch_embed)\.proj\.", r"\1.projection."),
    (r"^(vision_encoder\.backbone\.blocks\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^no_obj_ptr$", "no_object_pointer"),
    (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),
    (r"^obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),
    (r"^obj_ptr_proj\.", "object_pointer_proj."),
    (r"\.out_proj\.(weight|bias)$", r".o_proj.\1"),
    (r"^(memory_attention\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^memory_attention\.norm\.", "memory_attention.layer_norm."),
    (r"^memory_encoder\.pix_feat_proj\.", "memory_encoder.feature_projection."),
    (r"^memory_encoder\.o_proj\.", "memory_encoder.projection."),
    (r"^memory_encoder\.fuser\.", "memory_encoder.memory_fuser."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.gamma$", r"\1.scale"),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.dwconv\.", r"\1.depthwise_conv."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.norm\.", r"\1.layer_norm."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.pwconv(\d)\.", r"\1.pointwise_conv\2."),
    (r"^sam_prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^sam_prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^sam_prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^sam_prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^sam_prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (
        r"^mask_decoder\.transformer\.norm_final_attn\.",
        "mask_decoder.transformer.layer_norm_final_attn.",
    ),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
)
_COMPILED = tuple((re.compile(p), r) for p, r in _RENAMES)

# Meta's MLP(layers.0 .. layers.{n-1}) becomes transformers' (proj_in, layers.*, proj_out).
_MLP_PREFIXES = re.compile(
    r"^(image_encoder\.trunk\.blocks\.\d+\.mlp|sam_mask_decoder\.transformer\.layers\.\d+\.mlp|"
    r"sam_mask_decoder\.output_hypernetworks_mlps\.\d+|sam_mask_decoder\.iou_prediction_head|"
    r"sam_mask_decoder\.pred_obj_score_head|obj_ptr_proj)\.layers\.(\d+)\.(.*)$"
)
_DOWNSAMPLER = re.compile(r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.(.*)$")


def _mlp_depths(keys: list[str]) -> dict[str, int]:
    depths: dict[str, int] = {}
    for key in keys:
        if m := _MLP_PREFIXES.match(key):
            depths[m.group(1)] = max(depths.get(m.group(1), 0), int(m.group(2)) + 1)
    return depths


def _rename(key: str, depths: Mapping[str, int], downsampler_last: int) -> str:
    if m := _MLP_PREFIXES.match(key):
        prefix, i, rest = m.group(1), int(m.group(2)), m.group(3)
        n = depths[prefix]
        part = "proj_in" if i == 0 else "proj_out" if i == n - 1 else f"layers.{i - 1}"
        key = f"{prefix}.{part}.{rest}"
    elif m := _DOWNSAMPLER.match(key):
        i, rest = int(m.group(1)), m.group(2)
        if i == downsampler_last:
            part = "final_conv"
        elif i % 3 == 0:
            part = f"layers.{i // 3}.conv"
        elif i % 3 == 1:
            part = f"layers.{i // 3}.layer_norm"
        else:
            raise CheckpointError(f"unexpected memory-encoder key {key!r}")
        key = f"memory_encoder.mask_downsampler.{part}.{rest}"
    for pattern, replacement in _COMPILED:
        key = pattern.sub(replacement, key)
    return key


def meta_to_transformers(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a Meta SAM 2 / 2.1 state dict to the transformers ``Sam2VideoModel`` layout.

    Works on tensors or on any placeholder values (shapes, for instance): values
    are passed through, except the four prompt point embeddings, which are stacked
    (tensors) or merged into one ``(4, C)`` shape (shape tuples).

    Parameters
    ----------
    state_dict : mapping
        Meta key -> tensor (or shape).

    Returns
    -------
    dict
        transformers key -> tensor (or shape).

    Raises
    ------
    CheckpointError
        If a key has no place in the transformers model or the point embeddings
        are incomplete.
    """
    keys = list(state_dict)
    depths = _mlp_depths(keys)
    down = [int(m.group(1)) for k in keys if (m := _DOWNSAMPLER.match(k))]
    downsampler_last = max(down) if down else -1
    out: dict[str, Any] = {}
    points: dict[int, Any] = {}
    for key, value in state_dict.items():
        if key == _PE_META:
            for target in _PE_HF:
                out[target] = value
            continue
        if m := _POINT_EMBED.fullmatch(key):
            points[int(m.group(1))] = value
            continue
        new = _rename(key, depths, downsampler_last)
        if new in out:
            raise CheckpointError(f"two checkpoint keys map onto {new!r} (last: {key!r})")
        out[new] = value
    if points:
        if sorted(points) != list(range(len(points))):
            raise CheckpointError(
                f"incomplete prompt point embeddings: found indices {sorted(points)}"
            )
        ordered = [points[i] for i in range(len(points))]
        out["prompt_encoder.point_embed.weight"] = _stack_rows(ordered)
    return out


def _stack_rows(rows: list[Any]) -> Any:
    first = rows[0]
    if hasattr(first, "dim"):
        import torch

        return torch.cat(list(rows), dim=0)
    return (sum(int(r[0]) for r in rows), *tuple(first[1:]))


def transformers_to_meta(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`meta_to_transformers` (for exporting and round-trip tests).

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        A transformers ``Sam2VideoModel`` state dict.

    Returns
    -------
    dict of str to torch.Tensor
        The same weights under Meta's key names.
    """
    import torch

    forward = _meta_name_table(list(state_dict))
    pe = [state_dict[k] for k in _PE_HF if k in state_dict]
    if len(pe) == 2 and not pe[0].is_meta and not torch.equal(pe[0], pe[1]):
        raise CheckpointError(
            f"{_PE_HF[0]} and {_PE_HF[1]} differ; Meta's layout stores one shared matrix"
        )
    out: dict[str, torch.Tensor] = {}
    for hf_key, tensor in state_dict.items():
        if hf_key in _PE_HF:
            out[_PE_META] = tensor
        elif hf_key == "prompt_encoder.point_embed.weight":
            for i in range(tensor.shape[0]):
                out[f"sam_prompt_encoder.point_embeddings.{i}.weight"] = tensor[i : i + 1].clone()
        elif hf_key in forward:
            out[forward[hf_key]] = tensor
        else:
            raise CheckpointError(f"no Meta name for transformers key {hf_key!r}")
    return out


# transformers name fragments -> Meta name fragments, used to invert the renames.
_INVERSE: tuple[tuple[str, str], ...] = (
    (
        r"^vision_encoder\.backbone\.patch_embed\.projection\.",
        "image_encoder.trunk.patch_embed.proj.",
    ),
    (
        r"^vision_encoder\.backbone\.blocks\.(\d+)\.layer_norm(\d)\.",
        r"image_encoder.trunk.blocks.\1.norm\2.",
    ),
    (r"^vision_encoder\.backbone\.", "image_encoder.trunk."),
    (r"^vision_encoder\.neck\.convs\.(\d+)\.", r"image_encoder.neck.convs.\1.conv."),
    (r"^memory_temporal_positional_encoding$", "maskmem_tpos_enc"),
    (r"^no_memory_embedding$", "no_mem_embed"),
    (r"^no_memory_positional_encoding$", "no_mem_pos_enc"),
    (r"^no_object_pointer$", "no_obj_ptr"),
    (r"^occlusion_spatial_embedding_parameter$", "no_obj_embed_spatial"),
    (r"^temporal_positional_encoding_projection_layer\.", "obj_ptr_tpos_proj."),
    (r"^object_pointer_proj\.", "obj_ptr_proj."),
    (r"^memory_encoder\.projection\.", "memory_encoder.out_proj."),
    (r"\.o_proj\.(weight|bias)$", r".out_proj.\1"),
    (r"^(memory_attention\.layers\.\d+)\.layer_norm(\d)\.", r"\1.norm\2."),
    (r"^memory_attention\.layer_norm\.", "memory_attention.norm."),
    (r"^memory_encoder\.feature_projection\.", "memory_encoder.pix_feat_proj."),
    (
        r"^memory_encoder\.memory_fuser\.layers\.(\d+)\.scale$",
        r"memory_encoder.fuser.layers.\1.gamma",
    ),
    (
        r"^memory_encoder\.memory_fuser\.layers\.(\d+)\.depthwise_conv\.",
        r"memory_encoder.fuser.layers.\1.dwconv.",
    ),
    (
        r"^memory_encoder\.memory_fuser\.layers\.(\d+)\.layer_norm\.",
        r"memory_encoder.fuser.layers.\1.norm.",
    ),
    (
        r"^memory_encoder\.memory_fuser\.layers\.(\d+)\.pointwise_conv(\d)\.",
        r"memory_encoder.fuser.layers.\1.pwconv\2.",
    ),
    (r"^prompt_encoder\.mask_embed\.conv1\.", "sam_prompt_encoder.mask_downscaling.0."),
    (r"^prompt_encoder\.mask_embed\.layer_norm1\.", "sam_prompt_encoder.mask_downscaling.1."),
    (r"^prompt_encoder\.mask_embed\.conv2\.", "sam_prompt_encoder.mask_downscaling.3."),
    (r"^prompt_encoder\.mask_embed\.layer_norm2\.", "sam_prompt_encoder.mask_downscaling.4."),
    (r"^prompt_encoder\.mask_embed\.conv3\.", "sam_prompt_encoder.mask_downscaling.6."),
    (r"^prompt_encoder\.", "sam_prompt_encoder."),
    (
        r"^mask_decoder\.transformer\.layers\.(\d+)\.layer_norm(\d)\.",
        r"sam_mask_decoder.transformer.layers.\1.norm\2.",
    ),
    (
        r"^mask_decoder\.transformer\.layer_norm_final_attn\.",
        "sam_mask_decoder.transformer.norm_final_attn.",
    ),
    (r"^mask_decoder\.upscale_conv1\.", "sam_mask_decoder.output_upscaling.0."),
    (r"^mask_decoder\.upscale_layer_norm\.", "sam_mask_decoder.output_upscaling.1."),
    (r"^mask_decoder\.upscale_conv2\.", "sam_mask_decoder.output_upscaling.3."),
    (r"^mask_decoder\.", "sam_mask_decoder."),
)
_INVERSE_COMPILED = tuple((re.compile(p), r) for p, r in _INVERSE)
_HF_MLP = re.compile(
    r"^(?P<prefix>.+)\.(?P<part>proj_in|proj_out|layers\.(?P<i>\d+))\.(?P<rest>weight|bias)$"
)
_HF_MLP_OWNERS = re.compile(
    r"^(vision_encoder\.backbone\.blocks\.\d+\.mlp|mask_decoder\.transformer\.layers\.\d+\.mlp|"
    r"mask_decoder\.output_hypernetworks_mlps\.\d+|mask_decoder\.iou_prediction_head|"
    r"mask_decoder\.pred_obj_score_head|object_pointer_proj)$"
)
_HF_DOWN = re.compile(
    r"^memory_encoder\.mask_downsampler\.(?:layers\.(\d+)\.(conv|layer_norm)|final_conv)\.(.*)$"
)


def _meta_name_table(hf_keys: list[str]) -> dict[str, str]:
    inner: dict[str, int] = {}
    for key in hf_keys:
        m = _HF_MLP.match(key)
        if m and _HF_MLP_OWNERS.match(m.group("prefix")) and m.group("i") is not None:
            inner[m.group("prefix")] = max(inner.get(m.group("prefix"), 0), int(m.group("i")) + 1)
    n_down = 1 + max(
        (int(m.group(1)) for k in hf_keys if (m := _HF_DOWN.match(k)) and m.group(1)), default=-1
    )
    table: dict[str, str] = {}
    for key in hf_keys:
        name = key
        m = _HF_MLP.match(key)
        if m and _HF_MLP_OWNERS.match(m.group("prefix")):
            prefix, part = m.group("prefix"), m.group("part")
            depth = inner.get(prefix, 0) + 2
            index = (
                0
                if part == "proj_in"
                else depth - 1
                if part == "proj_out"
                else int(m.group("i")) + 1
            )
            name = f"{prefix}.layers.{index}.{m.group('rest')}"
        elif d := _HF_DOWN.match(key):
            if d.group(1) is None:
                index = 3 * n_down
            else:
                index = 3 * int(d.group(1)) + (0 if d.group(2) == "conv" else 1)
            name = f"memory_encoder.mask_downsampler.encoder.{index}.{d.group(3)}"
        for pattern, replacement in _INVERSE_COMPILED:
            name = pattern.sub(replacement, name)
        table[key] = name
    return table


def _check_zip_crcs(path: Path) -> None:
    """Verify the CRC-32 of every member of a zip-format ``.pt`` file.

    ``torch.load`` does not check them, so damaged tensor bytes would load silently
    as wrong weights, and a damaged pickle stream would look like unsafe code. A
    file that is neither a zip archive nor a pickle is no checkpoint at all.
    """
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as file:
                head = file.read(2)
            bad = None
        else:
            head = b""
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint, the file is truncated or corrupt "
            f"({type(exc).__name__}); download it again"
        ) from None
    # a zip cut short (no directory at its end) starts with PK; a legacy torch file is a
    # pickle (protocol 2 or later starts with 0x80); torch.load reports what is wrong
    if head and head[:1] != b"\x80" and not head.startswith(b"PK"):
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle): give a "
            "SAM 2 .pt or .safetensors file, or a model name"
        )
    if bad is not None:
        raise CheckpointError(
            f"{path}: the checkpoint is corrupt (checksum mismatch in {bad!r}); download it again"
        )


def load_meta_state_dict(path: Path) -> dict[str, Any]:
    """Read a Meta checkpoint safely and return its ``model`` state dict.

    ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``;
    ``.safetensors`` files with :mod:`safetensors`.

    Parameters
    ----------
    path : Path
        Checkpoint file.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    UnsafeCheckpointError
        If the pickle would need to run code (anything beyond tensors and containers).
    CheckpointError
        If the file is truncated, corrupt or not a SAM 2 checkpoint.
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: corrupt or truncated safetensors file ({exc})"
            ) from None
    _check_zip_crcs(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise UnsafeCheckpointError(
                f"{path}: refused: the checkpoint contains pickled code, not only weights. "
                "Only load checkpoints from a source you trust; re-save it as a plain "
                "state dict or use the safetensors weights from the Hugging Face hub"
            ) from None
        raise CheckpointError(f"{path}: corrupt checkpoint ({exc})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint, the file is truncated or corrupt "
            f"({type(exc).__name__}); download it again"
        ) from None
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(
            f"{path}: not a SAM 2 checkpoint: expected {{'model': state_dict}} of tensors"
        )
    return state
