"""`patchwarden versions`: compare versions under a scheme, one pair or a file of pairs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from patchwarden.errors import InvalidInput
from patchwarden.versions import SCHEMES, InvalidVersion, VersionScheme, get_scheme

app = typer.Typer(help="Compare package versions (deb, rpm, apk, pep440, semver, generic).")
err_console = Console(stderr=True)

MAX_ERRORS_SHOWN = 20


@app.callback()
def versions() -> None:
    """Compare package versions (deb, rpm, apk, pep440, semver, generic)."""


def _fail(messages: list[str]) -> typer.Exit:
    for message in messages[:MAX_ERRORS_SHOWN]:
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    if len(messages) > MAX_ERRORS_SHOWN:
        err_console.print(f"… and {len(messages) - MAX_ERRORS_SHOWN} more errors")
    return typer.Exit(code=2)


def _lines(batch: str) -> Iterator[tuple[int, str]]:
    if batch == "-":
        yield from enumerate(sys.stdin, start=1)
        return
    with Path(batch).open(encoding="utf-8") as stream:
        yield from enumerate(stream, start=1)


def _compare_batch(scheme: VersionScheme, batch: str) -> list[int]:
    """Results for every pair in the file, or Exit(2) listing every bad line."""
    results: list[int] = []
    errors: list[str] = []
    try:
        for number, raw in _lines(batch):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                errors.append(
                    f"{batch}:{number}: expected two tab-separated versions, got {len(fields)} "
                    "field(s)"
                )
                continue
            try:
                results.append(scheme.compare(fields[0], fields[1]))
            except InvalidVersion as exc:
                errors.append(f"{batch}:{number}: {exc}")
    except OSError as exc:
        raise _fail([f"cannot read {batch}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise _fail([f"cannot read {batch}: not UTF-8 text ({exc.reason})"]) from exc
    if errors:
        raise _fail(errors)
    return results


@app.command()
def compare(
    scheme: Annotated[
        str, typer.Option("--scheme", "-s", help=f"Version scheme: {', '.join(sorted(SCHEMES))}.")
    ],
    a: Annotated[
        str | None, typer.Argument(help="First version.", metavar="A", show_default=False)
    ] = None,
    b: Annotated[
        str | None, typer.Argument(help="Second version.", metavar="B", show_default=False)
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="File of tab-separated version pairs, one per line ('-' for stdin); "
            "blank lines and '#' comments are skipped.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print -1, 0 or 1 as A is older than, equal to or newer than B."""
    try:
        version_scheme = get_scheme(scheme)
    except InvalidInput as exc:
        raise _fail([str(exc)]) from exc
    if batch is not None:
        if a is not None or b is not None:
            raise _fail(["give either two versions or --batch FILE, not both"])
        for result in _compare_batch(version_scheme, batch):
            typer.echo(result)
        return
    if a is None or b is None:
        raise _fail(["give two versions to compare, or --batch FILE"])
    try:
        typer.echo(version_scheme.compare(a, b))
    except InvalidVersion as exc:
        raise _fail([str(exc)]) from exc
