"""``cim review FILE.ifc``: the BIM pre-review of a model against the stored city.

Exit 0 when the review ran, whatever its verdict (the verdict is in the output); non-zero with a one-line
reason only when it could not run (unreadable file, invalid IDS, unknown parcel…).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr
from cim.errors import ReviewError


def _refuse_existing(path: Path | None, overwrite: bool) -> None:
    if path is not None and path.exists() and not overwrite:
        raise ReviewError(f"{path} exists; add --overwrite to replace it")


def review(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="IFC model (.ifc or .ifczip) to review.")],
    ids: Annotated[list[Path] | None, typer.Option("--ids", help="IDS 1.0 file to check against (repeatable).")] = None,
    parcel: Annotated[str | None, typer.Option("--parcel", help="Parcel id or code the model is planned on.")] = None,
    checks: Annotated[
        list[str] | None,
        typer.Option(
            "--checks", help="Checks to run, comma-separated (schema,georef,ids,planning,sunlight,conflicts)."
        ),
    ] = None,
    replaces: Annotated[
        list[int] | None, typer.Option("--replaces", help="Id of a stored building the model replaces (repeatable).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report (Chinese, English switch).")
    ] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the PDF report.")] = None,
    bcf: Annotated[Path | None, typer.Option("--bcf", help="Write the findings as BCF 2.1 (.bcfzip).")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the PDF: zh or en.")] = "zh",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing report files.")] = False,
    json_: JsonOption = False,
) -> None:
    """Review a BIM model: schema, georeference, IDS, planning limits, sunlight and conflicts."""
    from cim.review.reports import write_reports
    from cim.review.run import review_file
    from cim.review.settings import ReviewSettings

    st = state(ctx)
    if lang not in ("zh", "en"):
        raise ReviewError("--lang must be zh or en")
    for out in (html, pdf, bcf):
        _refuse_existing(out, overwrite)
    engine = st.engine()
    report = review_file(
        file,
        st.settings,
        review_settings=ReviewSettings(),
        engine=engine,
        ids_files=list(ids or []),
        parcel=parcel,
        checks=checks,
        replaces=list(replaces or []),
        progress=None
        if st.quiet or not stderr.is_terminal
        else (lambda step: stderr.print(f"[dim]review: {step}…[/]")),
    )
    write_reports(report, html=html, pdf=pdf, bcf=bcf, lang=lang)
    if json_:
        emit_json(report.to_dict())
    elif not st.quiet:
        for name, result in report.checks.items():
            errors = sum(1 for f in result.findings if f.severity == "error")
            stderr.print(f"{name:10s} {result.verdict:8s} {errors} errors")
        stderr.print(f"{report.file_name}: verdict {report.verdict.upper()} ({report.seconds:.1f} s)")
