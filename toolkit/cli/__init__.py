"""The `edgecls` command. Each command imports heavy libraries (TensorFlow, onnxruntime) only
when it runs, so `edgecls --help` stays instant.

Exit codes (edgecls.cli.exit_codes): 0 all good; 1 usage error, bad model or unusable output
location; 2 the run finished but some inputs were unreadable or skipped; 130 interrupted (Ctrl-C).
Errors are one line on stderr, printed literally (a path holding `[/b]` is just text), never a traceback.
"""

from __future__ import annotations

import os  # os and sys are loaded by Python's start-up: importing this module cannot be interrupted midway
import sys

__all__ = ["app", "main"]

ERROR, INTERRUPTED = 1, 130  # as in edgecls.cli.exit_codes; literal so a Ctrl-C during imports needs nothing


def _load_app():
    from . import bench, evaluate, export, infer, models, quantize, serve, train, tune  # noqa: F401 - commands register on `app`
    from .root import app as typer_app

    globals()["app"] = typer_app  # later `from edgecls.cli import app` finds it without __getattr__
    return typer_app


def __getattr__(name: str) -> object:  # `from edgecls.cli import app` without importing everything on `import edgecls.cli`
    if name == "app":
        return _load_app()
    raise AttributeError(name)


def _error(message: str) -> None:
    from rich.text import Text

    from .root import err_console

    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False)


_interrupted = False


def _on_sigint(signum, frame) -> None:  # noqa: ANN001 - signal handler signature
    """Python's own behaviour (raise KeyboardInterrupt), remembering that it happened: a library may turn the
    interrupt into another error (onnxruntime's import gives ImportError), which must still exit 130."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def main() -> None:
    try:
        import signal

        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
        code = _run()
        signal.signal(signal.SIGINT, _exit_now)  # shutdown (atexit: pools, threads) must not print a traceback
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing, or between our handlers
        _exit_now()
    sys.exit(code)


def _exit_now(*_: object) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(INTERRUPTED)


def _current_spelling(args: list[str]) -> list[str]:
    """Older option spellings (--project/--artifacts DIR) as --workspace DIR."""
    from .root import WORKSPACE_ALIASES

    out = []
    for i, arg in enumerate(args):
        if arg == "--":  # what follows is file names
            return out + args[i:]
        name, eq, value = arg.partition("=")
        out.append(f"--workspace{eq}{value}" if name in WORKSPACE_ALIASES else arg)
    return out


def _run() -> int:
    app = _load_app()
    from typer.exceptions import Abort, TyperException

    from ..runtime.errors import EdgeclsError

    try:
        code = app(args=_current_spelling(sys.argv[1:]), standalone_mode=False)
    except EdgeclsError as exc:
        if _interrupted:
            sys.stderr.write("interrupted\n")
            return INTERRUPTED
        from .hints import cli_message

        _error(cli_message(exc))
        return ERROR
    except TyperException as exc:  # usage errors: click would exit 2, which means "some inputs skipped" here
        from typer import rich_utils

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        return ERROR
    except Abort:
        return INTERRUPTED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    except ImportError as exc:  # an optional library this command needs (unless Ctrl-C broke an import)
        from .extras import missing_extra

        error = None if _interrupted else missing_extra(exc)
        if error is not None:
            _error(str(error))
            return ERROR
        if not _interrupted:
            raise  # a bug: its traceback is the report
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    except Exception:
        if not _interrupted:
            raise  # a bug: its traceback is the report
        sys.stderr.write("interrupted\n")  # a library turned Ctrl-C into another exception
        return INTERRUPTED
    return code if isinstance(code, int) else 0
