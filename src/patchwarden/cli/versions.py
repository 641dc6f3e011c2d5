"""`patchwarden versions`: compare versions under a scheme, one pair or a file of pairs."""

from __future__ import annotations

from typing import Annotated

import typer

from patchwarden.cli.common import fail, numbered_lines
from patchwarden.errors import InvalidInput
from patchwarden.versions import SCHEMES, InvalidVersion, VersionScheme, get_scheme

app = typer.Typer(help="Compare package versions (deb, rpm, apk, pep440, semver, generic).")


@app.callback()
def versions() -> None:
    """Compare package versions (deb, rpm, apk, pep440, semver, generic)."""


def _compare_batch(scheme: VersionScheme, batch: str) -> list[int]:
    """Results for every pair in the file, or Exit(2) listing every bad line."""
    results: list[int] = []
    errors: list[str] = []
    try:
        for number, raw in numbered_lines(batch):
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
        raise fail([f"cannot read {batch}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise fail([f"cannot read {batch}: not UTF-8 text ({exc.reason})"]) from exc
    if errors:
        raise fail(errors)
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
        raise fail([str(exc)]) from exc
    if batch is not None:
        if a is not None or b is not None:
            raise fail(["give either two versions or --batch FILE, not both"])
        for result in _compare_batch(version_scheme, batch):
            typer.echo(result)
        return
    if a is None or b is None:
        raise fail(["give two versions to compare, or --batch FILE"])
    try:
        typer.echo(version_scheme.compare(a, b))
    except InvalidVersion as exc:
        raise fail([str(exc)]) from exc
