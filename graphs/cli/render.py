"""Terminal rendering of trace steps and results (rich) for `xthink ask` and `xthink chat`.

Library code never prints: the commands stream the run's steps and hand each one here as it arrives.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from agent.trace import ExtractStep, ReasonStep, Result, Step

MAX_THINKING_CHARS = 600


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def print_step(console: Console, index: int, step: Step) -> None:
    """One step as it happens: a reasoner turn (its cost, clipped thinking, tool calls) or an extraction."""
    if isinstance(step, ReasonStep):
        cost = f"{step.thinking_tokens} thinking + {step.output_tokens - step.thinking_tokens} visible tokens"
        console.print(f"[bold cyan][{index}] reason[/] ({step.purpose}) {cost}, {step.seconds:.2f}s")
        if step.thinking:
            console.print(f"  [dim]thinking: {escape(_clip(step.thinking, MAX_THINKING_CHARS))}[/]")
        if step.text:
            console.print(f"  {escape(_clip(step.text, 2000))}")
        for call in step.tool_calls:
            console.print(f"  [yellow]-> {escape(call.name)}({escape(str(call.arguments))})[/]")
        for error in step.tool_errors:
            console.print(f"  [red]malformed tool call: {escape(error)}[/]")
    elif isinstance(step, ExtractStep):
        where = step.image_id or ""
        if step.region:
            where += " region [" + ", ".join(f"{v:.2f}" for v in step.region) + "]"
        if step.crop_id:
            where += f" -> {step.crop_id}"
        what = escape(step.request) if step.request else step.purpose
        console.print(f"[bold magenta][{index}] extract[/] {escape(where)}: {what}, {step.seconds:.2f}s")
        if step.repairs:
            console.print(f"  [yellow]region repaired: {escape('; '.join(step.repairs))}[/]")
        if step.error:
            console.print(f"  [red]refused: {escape(step.error)}[/]")
        else:
            console.print(f"  {escape(_clip(step.output, 2000))}")


def print_result(console: Console, result: Result) -> None:
    """The answer line, or why there is none, with the run's mode, extraction count and time."""
    answer = result.answer if result.answer_found else "(no 'Answer:' line found in the final output)"
    console.print(
        f"[bold green]Answer:[/] {escape(str(answer))}   "
        f"[dim]mode={result.mode} extractions={result.extraction_calls} {result.seconds:.2f}s[/]"
    )
