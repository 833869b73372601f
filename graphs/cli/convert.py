"""`xthink convert SOURCE DEST`: a LLaVA-NeXT perception checkpoint into a transformers model folder.

The conversion itself is tools/backends/checkpoint_convert.py (models also convert on first use); this
command refuses a source or destination that cannot be right before any download or write.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, fail


def convert_command(
    source: str = typer.Argument(..., help="LLaVA-NeXT checkpoint: hub id (e.g. markendo/llava-extract-qwen3-0.6B) "
                                 "or folder"),
    dest: Path = typer.Argument(..., help="folder to write the transformers LlavaOnevision model into"),
    tokenizer: str | None = typer.Option(None, help="tokenizer to use when the checkpoint ships none"),
) -> None:
    """Convert a perception checkpoint from LLaVA-NeXT training format to transformers format."""
    from tools.backends.checkpoint_convert import convert
    from tools.backends.llava_next_mapping import ConversionError

    looks_local = source.startswith(("/", "./", "../", "~")) or Path(source).exists()
    if looks_local and not Path(source).expanduser().is_dir():
        fail(f"'{source}' is not a folder; pass a checkpoint folder or a hub id", EXIT_INPUT)
    if dest.exists() and not dest.is_dir():
        fail(f"'{dest}' is a file; pass a folder to write the converted model into", EXIT_INPUT)
    try:
        report = convert(source, dest, tokenizer)
    except ConversionError as exc:
        fail(str(exc), EXIT_INPUT)
    Console().print(
        f"converted {source} -> {report.dest}: {report.mapped} tensors mapped, {len(report.ignored)} unused "
        f"source tensors ignored, {len(report.filled)} filled (see conversion.json)", markup=False, highlight=False
    )
