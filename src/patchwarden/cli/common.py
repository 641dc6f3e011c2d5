"""What CLI commands share: errors on stderr with exit code 2, and `--batch FILE` input."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from patchwarden.errors import PatchwardenError

err_console = Console(stderr=True)
MAX_ERRORS_SHOWN = 20


def fail(messages: list[str]) -> typer.Exit:
    """Print the errors (at most MAX_ERRORS_SHOWN) and return Exit(2) to raise."""
    for message in messages[:MAX_ERRORS_SHOWN]:
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    if len(messages) > MAX_ERRORS_SHOWN:
        err_console.print(f"… and {len(messages) - MAX_ERRORS_SHOWN} more errors")
    return typer.Exit(code=2)


def numbered_lines(batch: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of FILE, or of standard input for '-'."""
    if batch == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    with Path(batch).open(encoding="utf-8") as stream:
        yield from enumerate(stream, start=1)


@contextmanager
def report_errors() -> Iterator[None]:
    """Patchwarden errors become `error: message` on stderr and exit status 2."""
    try:
        yield
    except PatchwardenError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
