"""``avemo serve``: the local web page (:mod:`avemo.web`) on uvicorn."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote
from typing import Annotated, Optional

import typer

from avemo.choices import DeviceName
from avemo.cli.shared import command, fail, note

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def default_data() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avemo" / "serve"


@command
def serve(
    run: Annotated[Path, typer.Option("--run", "--run-dir", help="Run folder written by avemo train.")],
    host: Annotated[str, typer.Option(help="Address to listen on; anything but this machine needs --token.")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    data: Annotated[Optional[Path], typer.Option(help="Folder for the uploads and their analyses.",
                                                 show_default="~/.cache/avemo/serve")] = None,
    token: Annotated[Optional[str], typer.Option(help="A secret every request must carry (needed with a --host "
                                                      "other than this machine); 'new' makes one.")] = None,
    max_upload: Annotated[float, typer.Option(min=0.001, help="Largest upload, in GB.")] = 2.0,
    device: Annotated[DeviceName, typer.Option(help="auto: CUDA when PyTorch sees a GPU.")] = DeviceName.auto,
) -> None:
    """A local web page: drop a video, watch its emotions over time as the analysis runs, with the video
    playing beside the chart; download timeline.csv, .json and .png. Past analyses stay in --data.

    Analyses run one at a time. The page's HTTP interface is in the README, for scripts.
    """
    try:
        import uvicorn

        from avemo.web.app import ServeSettings, create_app
    except ImportError as error:
        fail(f"avemo serve needs the web extra ({error.name} is missing): pip install 'avemo[web]'")
    if token == "new":
        token = secrets.token_urlsafe(24)
    if host not in LOCAL_HOSTS:
        if not token:
            fail(f"--host {host} lets other machines reach the page: give --token SECRET (or --token new) too")
        note(f"[yellow]warning[/]: listening on {host}: anyone who can reach this machine and has the token can "
             "upload videos and read every analysis")
    settings = ServeSettings(run=run, data=data or default_data(), device=device.value, token=token,
                             max_upload=int(max_upload * 1e9))
    app = create_app(settings)  # loads the run: a bad one fails here, in one line
    shown = "localhost" if host in LOCAL_HOSTS else host
    address = f"http://{shown}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
    note(f"avemo serve: {address} (run {run}; analyses in {settings.data}); Ctrl-C stops it")
    typer.echo(address)
    # an open event stream would hold a graceful shutdown for as long as its analysis runs: give it 3 s
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
