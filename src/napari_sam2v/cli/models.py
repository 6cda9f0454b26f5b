"""``napari-sam2v models``: list, download and locate SAM 2 weights."""

from __future__ import annotations

import argparse
from typing import Any

from napari_sam2v.cli.common import EXIT_OK, add_command, format_table

__all__ = ["register", "run_download", "run_list", "run_path"]

_EXAMPLES = """\
  napari-sam2v models list                     # every model, cached or not, size, licence
  napari-sam2v models                          # the same as "models list"
  napari-sam2v models download sam2.1-tiny     # fetch into the Hugging Face cache
  napari-sam2v models path                     # where weights are cached
  napari-sam2v models path sam2.1-tiny         # the folder of one cached model
  HF_HUB_OFFLINE=1 napari-sam2v models list    # offline: only report the cache
"""


def register(commands: Any) -> None:
    """Add the ``models`` command group to the sub-command parsers."""
    parser = add_command(
        commands,
        "models",
        help="list, download and locate SAM 2 model weights",
        description=(
            "SAM 2 weights come from the Hugging Face hub and live in its standard cache "
            "(HF_HOME / HF_HUB_CACHE). Offline machines: download on a connected one, copy "
            "the cache, and set HF_HUB_OFFLINE=1; or pass a local folder or Meta .pt "
            "checkpoint to --model."
        ),
        examples=_EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=False)
    listing = actions.add_parser(
        "list", help="list the models, their size and licence, and whether they are cached"
    )
    listing.set_defaults(run=run_list)
    download = actions.add_parser("download", help="download a model into the cache")
    download.add_argument("name", help="model name, e.g. sam2.1-tiny")
    download.set_defaults(run=run_download)
    path = actions.add_parser("path", help="print the cache folder, or a cached model's folder")
    path.add_argument("name", nargs="?", default=None, help="model name")
    path.set_defaults(run=run_path)
    parser.set_defaults(run=run_list)


def _registry() -> Any:
    from napari_sam2v.engines.sam2 import registry

    return registry


def run_list(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v models list``."""
    registry = _registry()
    rows = []
    for spec in registry.list_models():
        if spec.random_weights:
            cached, size = "built locally", "-"
        else:
            cached = "yes" if registry.is_cached(spec.name) else "no"
            size = f"{spec.download_mb} MB"
        rows.append([spec.name, cached, size, spec.licence, spec.hub_id or "-", spec.guidance])
    print(format_table(["name", "cached", "size", "licence", "hub id", "guidance"], rows))
    return EXIT_OK


def run_download(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v models download NAME``."""
    path = _registry().download_model(args.name)
    print(f"{args.name}: cached in {path}")
    return EXIT_OK


def run_path(args: argparse.Namespace) -> int:
    """Run ``napari-sam2v models path [NAME]``."""
    if args.name is None:
        from huggingface_hub import constants

        print(constants.HF_HUB_CACHE)
        return EXIT_OK
    from napari_sam2v.errors import ModelError

    registry = _registry()
    spec = registry.get_model(args.name)
    if spec.hub_id is None:
        raise ModelError(f"{spec.name} is built locally and has no files on disk")
    if not registry.is_cached(spec.name):
        raise ModelError(
            f"{spec.name} is not cached; fetch it with 'napari-sam2v models download {spec.name}'"
        )
    print(registry.download_model(spec.name, progress=False))
    return EXIT_OK
