"""Command line: serve, complete, context, fix, engine, index, models, doctor, trust, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from lsp_server import __version__


def _location(value: str) -> tuple[Path, int, int]:
    """FILE:LINE:COL with 1-based line and column."""
    try:
        path, line, col = value.rsplit(":", 2)
        ln, cn = int(line), int(col)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FILE:LINE:COL, got {value!r}") from None
    if ln < 1 or cn < 1:
        raise argparse.ArgumentTypeError("LINE and COL are 1-based")
    return Path(path), ln, cn


def _file_line(value: str) -> tuple[Path, int]:
    """FILE:LINE with a 1-based line."""
    path, _, line = value.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        raise argparse.ArgumentTypeError(f"expected FILE:LINE (1-based), got {value!r}")
    return Path(path), int(line)


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


ENGINE_HELP = (
    "a running `coder-lsp engine` (or `vllm serve`) to use instead of loading the model; "
    "default: $CODER_LSP_ENGINE"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coder-lsp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"coder-lsp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (default)")
    mode.add_argument(
        "--tcp", type=_hostport, metavar="HOST:PORT", help="listen on TCP (loopback unless...)"
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="with --tcp: listen on a non-loopback address; clients must present the token "
        "in CODER_LSP_TCP_TOKEN as initializationOptions.authToken",
    )
    serve.add_argument("--profile", help="profile name (see `coder-lsp models`)")
    serve.add_argument("--config", type=Path, help="a coder-lsp.toml settings file")

    comp = sub.add_parser("complete", help="print the completion at FILE:LINE:COL")
    comp.add_argument("location", type=_location, metavar="FILE:LINE:COL")
    comp.add_argument("--profile")
    comp.add_argument("--workspace", type=Path, help="workspace root for settings")
    comp.add_argument("--config", type=Path)
    comp.add_argument("--engine", metavar="URL", help=ENGINE_HELP)

    ctx = sub.add_parser("context", help="print the exact prompt for FILE:LINE:COL")
    ctx.add_argument("location", type=_location, metavar="FILE:LINE:COL")
    ctx.add_argument("--workspace", type=Path, help="workspace root (default: current directory)")
    ctx.add_argument("--profile")
    ctx.add_argument("--config", type=Path)

    fix = sub.add_parser("fix", help="print the fix proposed for FILE:LINE as a unified diff")
    fix.add_argument("location", type=_file_line, metavar="FILE:LINE")
    fix.add_argument("--message", default="", help="what is wrong (e.g. a compiler error)")
    fix.add_argument("--explain", action="store_true", help="also print why, to stderr")
    fix.add_argument("--profile")
    fix.add_argument("--workspace", type=Path, help="workspace root (default: current directory)")
    fix.add_argument("--config", type=Path)
    fix.add_argument("--engine", metavar="URL", help=ENGINE_HELP)

    engine = sub.add_parser(
        "engine", help="keep the profile's model loaded for complete, fix and editors"
    )
    engine.add_argument("--profile")
    engine.add_argument("--config", type=Path)
    engine.add_argument("--host", default="127.0.0.1", help="a loopback address (default)")
    engine.add_argument("--port", type=int, default=8011, help="default 8011; 0 picks a free port")

    index = sub.add_parser("index", help="build or refresh the index of DIR; print counts")
    index.add_argument("directory", type=Path, metavar="DIR")

    models = sub.add_parser("models", help="list profiles, or prepare one's model")
    models.add_argument("--prepare", metavar="NAME", help="build/convert/download NAME's model")

    doctor = sub.add_parser("doctor", help="report what is installed and what would run")
    doctor.add_argument("--profile")
    doctor.add_argument(
        "--config", type=Path, help="a coder-lsp.toml whose engine settings to check"
    )

    trust = sub.add_parser("trust", help="let DIR's settings files set security-sensitive keys")
    trust.add_argument("directory", type=Path, nargs="?", metavar="DIR", help="default: here")
    trust.add_argument("--revoke", action="store_true", help="stop trusting DIR")
    trust.add_argument("--list", action="store_true", dest="show", help="print trusted DIRs")

    demo = sub.add_parser("demo", help="a scripted editor session against the real server")
    demo.add_argument("--profile")
    demo.add_argument("--file", type=Path, help="the file to open (default: a bundled sample)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lsp_server import logs

    # The commands show their own progress lines: their log is for what goes wrong.
    default = "info" if args.command == "serve" else "warning"
    logs.configure(os.environ.get("CODER_LSP_LOG_LEVEL", default))
    refusal = _missing_paths(args)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args)
    if args.command == "complete":
        from lsp_server.cli.complete import run as run_complete

        path, line, col = args.location
        return asyncio.run(
            run_complete(path, line, col, args.profile, args.workspace, args.config, args.engine)
        )
    if args.command == "context":
        from lsp_server.cli.context import run as run_context

        path, line, col = args.location
        return run_context(path, line, col, args.workspace, args.profile, args.config)
    if args.command == "fix":
        from lsp_server.cli.fix import run as run_fix

        path, line = args.location
        return asyncio.run(
            run_fix(
                path,
                line,
                message=args.message,
                explain=args.explain,
                profile=args.profile,
                workspace=args.workspace,
                config=args.config,
                engine=args.engine,
            )
        )
    if args.command == "engine":
        from lsp_server.cli.engine import run as run_engine

        return run_engine(args.profile, args.config, args.host, args.port)
    if args.command == "index":
        from lsp_server.cli.index import run as run_index

        return run_index(args.directory)
    if args.command == "models":
        from lsp_server.cli.models import run as run_models

        return run_models(args.prepare)
    if args.command == "doctor":
        from lsp_server.cli.doctor import run as run_doctor

        return run_doctor(args.profile, args.config)
    if args.command == "trust":
        from lsp_server.cli.trust import run as run_trust

        return run_trust(args.directory, revoke=args.revoke, show=args.show)
    if args.command == "demo":
        from lsp_server.cli.demo import run as run_demo

        return asyncio.run(run_demo(args.profile, args.file))
    return 2


def _missing_paths(args: argparse.Namespace) -> str | None:
    """Why a `--config` file or a `--workspace` folder given cannot be used, else None (one
    named on the command line is meant: going on without it would mislead)."""
    config = getattr(args, "config", None)
    if config is not None and not config.is_file():
        return f"coder-lsp {args.command}: --config {config}: no such file"
    workspace = getattr(args, "workspace", None)
    if workspace is not None and not workspace.is_dir():
        return f"coder-lsp {args.command}: --workspace {workspace}: no such folder"
    return None


def _serve(args: argparse.Namespace) -> int:
    from lsp_server import logs
    from lsp_server.app import build_server

    if args.tcp:
        from lsp_server import transport

        host, port = args.tcp
        token, refusal = transport.tcp_token(host, args.allow_remote)
        if refusal is not None:
            print(refusal, file=sys.stderr)
            return 2
    server = build_server(cli_profile=args.profile, config_file=args.config)
    if args.tcp:
        code = transport.start_tcp(
            server, host, port, token, on_start=server.serving, on_end=server.close
        )
    else:
        stdin, stdout = logs.protect_stdout()
        server.start_io(stdin, stdout)
        code = 0
    return _end(code)


def _end(code: int) -> int:
    """The server has closed, its engine processes stopped. Triton (imported by vLLM) leaks
    its bindings at interpreter teardown on purpose, and nanobind then prints a 30-line leak
    report to stderr at every exit: with Triton loaded, end here without that teardown."""
    if "triton" not in sys.modules:
        return code
    import logging

    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
