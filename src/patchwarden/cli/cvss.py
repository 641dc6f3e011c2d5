"""`patchwarden cvss`: score CVSS v2, v3.0, v3.1 and v4.0 vectors."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from patchwarden.cli.common import fail, numbered_lines
from patchwarden.cvss import CvssScore, InvalidCvssVector
from patchwarden.cvss import score as score_vector

app = typer.Typer(help="Score CVSS v2, v3.0, v3.1 and v4.0 vectors.")


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.callback()
def cvss() -> None:
    """Score CVSS v2, v3.0, v3.1 and v4.0 vectors."""


def _score_batch(batch: str) -> list[CvssScore]:
    """Scores of every vector in the file, or Exit(2) listing every bad line."""
    results: list[CvssScore] = []
    errors: list[str] = []
    try:
        for number, raw in numbered_lines(batch):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                results.append(score_vector(line))
            except InvalidCvssVector as exc:
                errors.append(f"{batch}:{number}: {exc}")
    except OSError as exc:
        raise fail([f"cannot read {batch}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise fail([f"cannot read {batch}: not UTF-8 text ({exc.reason})"]) from exc
    if errors:
        raise fail(errors)
    return results


def _text(result: CvssScore) -> str:
    lines = [
        f"CVSS {result.version}  {result.vector}",
        f"base score:          {result.base_score:.1f} ({result.severity})",
    ]
    if result.nomenclature:
        lines[-1] += f"  [{result.nomenclature}]"
    if result.temporal_score is not None and result.has_temporal_metrics:
        lines.append(f"temporal score:      {result.temporal_score:.1f}")
    if result.environmental_score is not None and result.has_environmental_metrics:
        lines.append(f"environmental score: {result.environmental_score:.1f}")
    return "\n".join(lines)


@app.command()
def score(
    vector: Annotated[
        str | None,
        typer.Argument(help="A CVSS vector string.", metavar="VECTOR", show_default=False),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TEXT,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="File with one vector per line ('-' for stdin); prints "
            "score<TAB>severity<TAB>vector per line (JSON lines with --format json).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the base score and severity of VECTOR (and temporal/environmental if set)."""
    if batch is not None:
        if vector is not None:
            raise fail(["give either a vector or --batch FILE, not both"])
        for result in _score_batch(batch):
            if output_format is OutputFormat.JSON:
                typer.echo(json.dumps(result.to_dict()))
            else:
                typer.echo(f"{result.base_score:.1f}\t{result.severity}\t{result.vector}")
        return
    if vector is None:
        raise fail(["give a CVSS vector, or --batch FILE"])
    try:
        result = score_vector(vector)
    except InvalidCvssVector as exc:
        raise fail([str(exc)]) from exc
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(_text(result))
