"""`xthink cache`: what the local caches hold, and pruning the image store by hand.

Two caches live under $XTHINK_CACHE (default ~/.cache/extract-think): the image store (the images clients
sent, content-addressed, bounded as it is used by XTHINK_STORE_MAX_MB / XTHINK_STORE_MAX_AGE_DAYS) and
converted checkpoints (one folder per LLaVA-NeXT checkpoint converted on first use, reused on every load).
`prune` applies a bound to the store now and removes only files the store wrote. Converted checkpoints are
shown, never deleted here: each is a model someone converted on purpose (remove its folder to redo it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from graphs.cli.common import EXIT_INPUT, check_image_settings, fail

cache_app = typer.Typer(add_completion=False, help="Show the local caches (image store, converted checkpoints); "
                        "prune the image store.")  # fmt: skip


@cache_app.callback(invoke_without_command=True)
def cache_command(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="print one JSON object")):
    """Show where the caches are, how many files and bytes they hold, and the least recently used image."""
    if ctx.invoked_subcommand is not None:
        return
    summary = {"image_store": _store_summary(_store()), "converted": _converted_summary()}
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    out = Console(highlight=False)
    for line in _store_lines(summary["image_store"]) + _converted_lines(summary["converted"]):
        out.print(line, markup=False, soft_wrap=True)


@cache_app.command("prune")
def prune_command(
    max_mb: str | None = typer.Option(None, "--max-mb", metavar="MB",
                                      help="keep at most this many MB (default: XTHINK_STORE_MAX_MB, else 1024)"),
    max_age_days: str | None = typer.Option(None, "--max-age-days", metavar="DAYS", help="remove images unused for "
                                            "longer (default: XTHINK_STORE_MAX_AGE_DAYS, else 30)"),  # fmt: skip
    keep_recent_minutes: str = typer.Option("60", "--keep-recent-minutes", metavar="MINUTES", help="never remove "
                                            "images used this recently (runs in progress, live conversations)"),
    all_images: bool = typer.Option(False, "--all", help="remove every image the store wrote, recent ones too"),
) -> None:
    """Remove images from the store: unused too long first, then least recently used until the size fits."""
    from tools.images.store import EVERYTHING, StoreBound

    store = _store()
    if all_images:
        bound = EVERYTHING
    else:
        env = store.bound
        max_bytes = _number("--max-mb", max_mb, env.max_bytes, 1024 * 1024)
        bound = StoreBound(None if max_bytes is None else int(max_bytes),
                           _number("--max-age-days", max_age_days, env.max_age_s, 24 * 3600),
                           _number("--keep-recent-minutes", keep_recent_minutes, 0, 60))  # fmt: skip
    report = store.prune(bound)
    Console(highlight=False).print(
        f"removed {report.removed} images ({_size(report.freed)}) from {store.root}; {report.kept} kept "
        f"({_size(report.kept_bytes)})", markup=False, soft_wrap=True)  # fmt: skip
    if report.failed:
        fail(f"{report.failed} images could not be removed (no permission to write {store.root})", EXIT_INPUT)


def _number(flag: str, text: str | None, default, unit: float):
    """A flag's value in bytes or seconds (None: the default); a bad one is a one-line error, exit 2."""
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        fail(f"{flag} must be a number >= 0, not '{text}'", EXIT_INPUT)
    return value * unit


def _store():
    """The store the server would use, with its configured bound; a bad setting is a one-line error."""
    from tools.images.inputs import ImagePolicy

    check_image_settings()
    return ImagePolicy.from_env().store


def _store_summary(store) -> dict:
    files = store.files()
    bound = store.bound
    return {
        "path": str(store.root), "files": len(files), "bytes": sum(f.size for f in files),
        "least_recently_used": _when(files[0].used) if files else None,
        "most_recently_used": _when(files[-1].used) if files else None,
        "max_mb": None if bound.max_bytes is None else bound.max_bytes / (1024 * 1024),
        "max_age_days": None if bound.max_age_s is None else bound.max_age_s / (24 * 3600),
    }  # fmt: skip


def _converted_summary() -> dict:
    """Each converted checkpoint's folder (tools/backends/conversion_cache.py writes `converted/<name>/conversion.json`)."""
    from tools.files.cache import cache_root

    root = cache_root() / "converted"
    checkpoints = []
    if root.is_dir() and not root.is_symlink():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
            checkpoints.append({"name": folder.name, "source": _source(folder), "bytes": _folder_bytes(folder)})
    return {"path": str(root), "checkpoints": checkpoints, "bytes": sum(c["bytes"] for c in checkpoints)}


def _source(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / "conversion.json").read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a conversion that did not finish


def _folder_bytes(folder: Path) -> int:
    total = 0
    for parent, _, names in os.walk(folder):  # symlinks are not followed
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def _store_lines(store: dict) -> list[str]:
    size_bound = "no size bound" if store["max_mb"] is None else f"{store['max_mb']:g} MB"
    age_bound = "no age bound" if store["max_age_days"] is None else f"{store['max_age_days']:g} days unused"
    lines = [f"image store  {store['path']}",
             f"  {store['files']} images, {_size(store['bytes'])} (bound: {size_bound}, {age_bound})"]  # fmt: skip
    if store["files"]:
        lines.append(f"  least recently used {store['least_recently_used']}, most recently "
                     f"{store['most_recently_used']}")  # fmt: skip
    return lines


def _converted_lines(converted: dict) -> list[str]:
    count = len(converted["checkpoints"])
    lines = [f"converted    {converted['path']}", f"  {count} checkpoints, {_size(converted['bytes'])}"]
    lines += [f"  {c['name']}  {_size(c['bytes'])}" + (f"  (from {c['source']})" if c["source"] else "  (incomplete)")
              for c in converted["checkpoints"]]  # fmt: skip
    return lines


def _when(timestamp: float) -> str:
    days = (time.time() - timestamp) / (24 * 3600)
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp)) + f" ({days:.1f} days ago)"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
