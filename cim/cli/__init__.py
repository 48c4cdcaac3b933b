"""The ``cim`` command line (Typer): one group per concern, registered here."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Annotated

import typer
from typer._click import exceptions as click_exceptions  # Typer ≥ 0.26 ships its own click

from cim import __version__
from cim.cli.analyse import app as analyse_app
from cim.cli.archive import app as archive_app
from cim.cli.broker import app as broker_app
from cim.cli.common import CliState, ExitCode, stderr
from cim.cli.datasets import app as datasets_app
from cim.cli.db import app as db_app
from cim.cli.demo import demo
from cim.cli.ingest import app as ingest_app
from cim.cli.keys import app as keys_app
from cim.cli.publish import publish
from cim.cli.review import review
from cim.cli.sensors import app as sensors_app
from cim.cli.serve import serve
from cim.cli.tiles import app as tiles_app
from cim.errors import CimError
from cim.settings import load_settings

app = typer.Typer(
    name="cim",
    help="CIM platform: IFC and GIS into one PostGIS database (CGCS2000), 3D Tiles, spatial APIs and CIM+ analyses.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",  # help texts are not rich markup: "[local_crs]" stays as written
)
app.add_typer(db_app, name="db")
app.add_typer(analyse_app, name="analyse")
app.add_typer(ingest_app, name="ingest")
app.add_typer(tiles_app, name="tiles")
tiles_app.command("publish")(publish)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(datasets_app, name="datasets")
app.command("review")(review)
app.add_typer(archive_app, name="archive")
app.add_typer(broker_app, name="broker")
app.add_typer(sensors_app, name="sensors")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cim {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars or informational messages.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Settings come from the environment: CIM_DATA_DIR, DATABASE_URL, CIM_HEIGHT_ANOMALY."""
    level = (
        logging.WARNING
        if quiet
        else (logging.INFO if verbose == 1 else logging.DEBUG if verbose > 1 else logging.WARNING)
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(settings=load_settings(), debug=debug, quiet=quiet)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of raising (for tests and the console script)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="cim", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_exceptions.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        stderr.print("cim: aborted")
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        stderr.print("cim: interrupted")
        return int(ExitCode.INTERRUPTED)
    except CimError as exc:
        if debug:
            traceback.print_exc()
        print(f"cim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the last line of defence: one line, no traceback unless --debug
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"cim: unexpected error: {type(exc).__name__}: {first} (rerun with --debug for details)", file=sys.stderr)
        return int(ExitCode.RUNTIME_ERROR)
    return int(result) if isinstance(result, int) else int(ExitCode.OK)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
