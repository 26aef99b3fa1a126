"""`denoise-jax app`: serve the Streamlit page (`denoise_jax/app.py`) on this machine.

Wired into cli.py by `HELP`, `add_arguments(parser)` and `run(args)`. Also runnable alone:
`python -m denoise_jax.app_cmd`.

Runs `python -m streamlit run app.py` headless on 127.0.0.1 (loopback only unless --address
says otherwise), without usage statistics or the file watcher, with the upload limit the
page also reports. The command blocks until the server stops (Ctrl-C stops it cleanly).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys

from denoise_jax.errors import UserError, report_user_error

HELP = "serve the denoising web page on 127.0.0.1 (Streamlit)"
APP_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")
DEFAULT_PORT = 8501
DEFAULT_MAX_UPLOAD_MB = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `app` arguments to `parser` (a subparser of the CLI)."""
    parser.description = (
        "Serve the denoising web page: upload or pick a photo, add noise, compare methods."
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port to serve on (default: %(default)s; 0 = any free port)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (default: %(default)s, this machine only; "
                        "0.0.0.0 exposes the page to the network)")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB,
                        metavar="MB", help="largest upload accepted (default: %(default)s)")


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _check_port(address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError as e:
            raise UserError(
                f"cannot serve on {address}:{port}: {e.strerror or e}; pick another with --port"
            ) from None


def command(port: int, address: str = "127.0.0.1",
            max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB) -> list[str]:
    """The `streamlit run` command line for the page."""
    return [
        sys.executable, "-m", "streamlit", "run", APP_PATH,
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", str(max_upload_mb),
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
    ]


def run(args: argparse.Namespace) -> int:
    """Serves the page until interrupted; returns the server's exit code (0 on Ctrl-C)."""
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("streamlit is not installed: run `pip install -r requirements.txt`")
    if args.max_upload_mb < 1:
        raise UserError(f"--max-upload-mb must be >= 1, got {args.max_upload_mb}")
    port = args.port if args.port else free_port(args.address)
    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1..65535 (or 0 for any), got {args.port}")
    _check_port(args.address, port)
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    print(f"denoise-jax app: serving http://{args.address}:{port} (Ctrl-C to stop)",
          flush=True)
    proc = subprocess.Popen(command(port, args.address, args.max_upload_mb), env=env)
    # Forward SIGTERM so that stopping this command stops the server too.
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        code = proc.wait()
        # The server stopped because we were asked to stop: that is a clean exit.
        return 0 if code in (-signal.SIGTERM, -signal.SIGINT) else code
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """`python -m denoise_jax.app_cmd [--port P]` (the same as `denoise-jax app`)."""
    parser = argparse.ArgumentParser(prog="denoise-jax app")
    add_arguments(parser)
    return report_user_error(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
