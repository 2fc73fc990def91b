"""``python -m filmcolor`` and the ``filmcolor`` console script: the one top-level error policy.

Errors filmcolor raises on purpose print one line and exit non-zero; unexpected ones print one line
too, unless ``--debug`` (or ``FILMCOLOR_DEBUG=1``) asks for the traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("FILMCOLOR_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    from filmcolor.cli import main as cli
    from filmcolor.errors import FilmcolorError, JobInterrupted

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    logging.basicConfig(
        level=logging.DEBUG if "--debug" in argv else logging.WARNING,
        format="filmcolor: %(levelname)s: %(message)s",
    )
    try:
        cli.main(args=argv, prog_name="filmcolor", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("filmcolor: interrupted", err=True)
        return 130
    except JobInterrupted as e:
        click.echo(f"filmcolor: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("filmcolor: interrupted (no partial file is left at the output path)", err=True)
        return 130
    except FilmcolorError as e:
        if "--debug" in argv:
            # The traceback for the report, and still the documented exit code: scripts that
            # branch on it must not see 1 because someone asked for details.
            traceback.print_exc()
        click.echo(f"filmcolor: error: {e}", err=True)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            traceback.print_exc()
            return 1
        msg = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        click.echo(f"filmcolor: error: {msg} (run with --debug for details)", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
