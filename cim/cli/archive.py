"""``cim archive``: the as-built archive (OCFL objects, SM3 ledger, BagIt export)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from cim.cli.common import CliState, JsonOption, OverwriteOption, emit_json, emit_outcome, state, stderr
from cim.errors import ArchiveError

app = typer.Typer(help="As-built archive: put, get, log, diff, verify, export, ledger, delete.", no_args_is_help=True)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model key (letters, digits, . _ -).")]


def _archive(st: CliState) -> Any:
    from cim.archive import Archive

    return Archive.open(st.engine(), st.settings)


def _line(v: Any) -> str:
    what = f"{v.file_name} {v.size_bytes} B sm3 {v.sm3[:16]}…" if v.kind == "version" else f"deleted: {v.reason}"
    review = f" review {v.review_id}" if v.review_id else ""
    note = f" — {v.note}" if v.note else ""
    return f"{v.model_key} v{v.version}\t{v.created_at}\t{v.author}\t{what}{review}{note}"


@app.command("put")
def put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The model file (.ifc or .ifczip).")],
    model: ModelOption,
    note: Annotated[str | None, typer.Option("--note", help="What this version is.")] = None,
    review: Annotated[int | None, typer.Option("--review", help="Id of the pre-review this version passed.")] = None,
    building: Annotated[int | None, typer.Option("--building", help="building.id this model belongs to.")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Who archives (default: the OS user).")] = None,
    json_: JsonOption = False,
) -> None:
    """Archive FILE as the next version of the model."""
    st = state(ctx)
    info = _archive(st).put(file, model_key=model, note=note, review_id=review, building_id=building, author=author)
    if json_:
        emit_json(info.to_dict())
    else:
        typer.echo(_line(info))


@app.command("get")
def get(
    ctx: typer.Context,
    model: ModelOption,
    out: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    version: Annotated[int | None, typer.Option("--version", help="Version number (default: latest).")] = None,
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
) -> None:
    """Write a version's byte-identical file to -o (its sha512 is checked on the way)."""
    if out.exists() and not overwrite:
        raise ArchiveError(f"{out} exists; pass --overwrite to replace it")
    info = _archive(state(ctx)).get_to(model, version, out)
    emit_outcome(
        dict(info.to_dict(), output=str(out)),
        f"{info.model_key} v{info.version} → {out} ({info.size_bytes} bytes, digests checked)",
        as_json=json_,
    )


@app.command("log")
def log(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model key (default: every model).")] = None,
    json_: JsonOption = False,
) -> None:
    """The version history (who, when, note, review, digests)."""
    versions = _archive(state(ctx)).versions(model)
    if json_:
        emit_json([v.to_dict() for v in versions])
        return
    for v in versions:
        typer.echo(_line(v))


@app.command("diff")
def diff(
    ctx: typer.Context,
    model: ModelOption,
    v1: Annotated[int, typer.Argument(help="Older version.")],
    v2: Annotated[int, typer.Argument(help="Newer version.")],
    json_: JsonOption = False,
) -> None:
    """Elements added, removed and changed by GlobalId between two versions (ifcdiff)."""
    from cim.archive import diff_versions

    result = diff_versions(_archive(state(ctx)), model, v1, v2)
    if json_:
        emit_json(result)
        return
    c = result["counts"]
    typer.echo(f"{model} v{v1} → v{v2}: {c['added']} added, {c['removed']} removed, {c['changed']} changed")
    for e in result["added"]:
        typer.echo(f"+ {e['global_id']} {e.get('ifc_class', '')} {e.get('name') or ''}")
    for e in result["removed"]:
        typer.echo(f"- {e['global_id']} {e.get('ifc_class', '')} {e.get('name') or ''}")
    for e in result["changed"]:
        typer.echo(f"~ {e['global_id']} {e.get('ifc_class', '')} {', '.join(e['changes'])}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model (default: everything).")] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Remove orphans of interrupted puts, roll lagging inventories forward.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Re-hash every file, walk the ledger, compare metadata rows; exit 16 when anything is wrong."""
    from cim.archive import verify as run_verify

    report = run_verify(_archive(state(ctx)), model, repair=repair).to_dict()
    if json_:
        emit_json(report)
    else:
        for p in report["problems"]:
            typer.echo(f"{p['kind']}\t{p['detail']}")
        stderr.print(
            f"{report['objects']} object(s), {report['files']} file(s), {report['bytes']} bytes in "
            f"{report['seconds']} s; ledger {report['ledger_entries']} entries, head {report['ledger_head'][:16]}…"
        )
    if report["problems"]:
        if not json_:
            stderr.print(f"verify found {len(report['problems'])} problem(s)")
        raise typer.Exit(ArchiveError.exit_code)


@app.command("export")
def export(
    ctx: typer.Context,
    model: ModelOption,
    out: Annotated[Path, typer.Option("-o", "--output", help="New folder for the BagIt package.")],
    overwrite: OverwriteOption = False,
    json_: JsonOption = False,
) -> None:
    """Write a BagIt (RFC 8493) package of every version of the model, for handover."""
    from cim.archive import export_bag

    result = export_bag(_archive(state(ctx)), model, out, overwrite=overwrite)
    emit_outcome(result, f"bag of {model} ({len(result['files'])} file(s)) written to {out}", as_json=json_)


@app.command("ledger")
def ledger_root(
    ctx: typer.Context,
    root: Annotated[str, typer.Option("--root", help="UTC day YYYY-MM-DD (or 'today').")],
    json_: JsonOption = False,
) -> None:
    """Print the SM3 Merkle root of a day's ledger entries (copy it elsewhere to prove the day later)."""
    from cim.archive import day_root

    try:
        day = dt.datetime.now(dt.UTC).date() if root == "today" else dt.date.fromisoformat(root)
    except ValueError as exc:
        raise ArchiveError(f"--root {root!r}: give a day as YYYY-MM-DD") from exc
    result = day_root(state(ctx).engine(), day).to_dict()
    if json_:
        emit_json(result)
    else:
        typer.echo(result["root"])
        stderr.print(f"{result['entries']} entries (#{result['first_seq']}..#{result['last_seq']}) on {day}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    model: ModelOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the tombstone and the ledger).")],
    author: Annotated[str | None, typer.Option("--author", help="Who deletes (default: the OS user).")] = None,
    json_: JsonOption = False,
) -> None:
    """Withdraw a model (administrators): a tombstone version; earlier versions stay readable by number."""
    info = _archive(state(ctx)).delete(model, reason=reason, author=author)
    if json_:
        emit_json(info.to_dict())
    else:
        typer.echo(_line(info))
