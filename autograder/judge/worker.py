"""The worker: imports one cs231n package and runs probes on the requests the grader sends.

    python -I -S worker.py PACKAGE_PARENT SITE_PACKAGES MODULE...

Run from a folder holding copies of wire.py and probes.py; answers wire.Request with
wire.Reply over the original stdin/stdout (fds 0-2 then point at /dev/null). Everything here runs
in the judged process, so nothing it says is trusted. docs/judge.md gives the protocol.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType


def _setup_path(package_parent: str, site_packages: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path[:] = [package_parent, here, *stdlib, site_packages]


def _first_line(exc: BaseException, limit: int = 160) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001  (a hostile __str__)
        text = ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit] + ("..." if len(line) > limit else "")


def _where(exc: BaseException, package_dir: str) -> str:
    """Qualified name of the innermost function of the judged package in the traceback."""
    where = ""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if os.path.abspath(frame.f_code.co_filename).startswith(package_dir + os.sep):
            where = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    return where


class ImportFailed(Exception):
    """A module of the judged package did not import; the message says how, for the student."""


def main(argv: Sequence[str]) -> None:
    package_parent, site_packages, modules = argv[0], argv[1], argv[2:]
    _setup_path(package_parent, site_packages)
    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.environ.setdefault("MPLBACKEND", "Agg")

    import numpy as np
    import probes
    import wire

    def send(reply: wire.Reply) -> None:
        wire.write_message(channel_out, reply.encode())

    def error(exc: BaseException, where: str = "") -> wire.Reply:
        if isinstance(exc, probes.BadOutput):
            return wire.Reply("error", error="BadOutput", message=str(exc)[:300])
        return wire.Reply("error", error=type(exc).__name__, message=_first_line(exc), where=where)

    send(wire.Reply("booted"))
    package_dir = os.path.join(os.path.abspath(package_parent), "cs231n")
    loaded: dict[str, ModuleType] = {}
    failed: dict[str, BaseException] = {}
    for name in modules:
        try:
            loaded[name] = importlib.import_module(f"cs231n.{name}")
        except BaseException as exc:  # noqa: BLE001  (SystemExit at import included)
            failed[name] = exc

    def load(name: str) -> ModuleType:
        if name in failed:
            exc = failed[name]
            raise ImportFailed(f"importing cs231n.{name} raised {type(exc).__name__}: "
                               f"{_first_line(exc, 120)}")
        return loaded[name]

    send(wire.Reply("ready"))
    while True:
        try:
            request = wire.Request.decode(wire.read_message(channel_in))
        except wire.Closed:
            return
        try:
            outputs = probes.PROBES[request.probe](load, request.inputs)
            reply = wire.Reply("ok", {key: np.ascontiguousarray(
                probes.array(value, key) if isinstance(value, np.ndarray) else value)
                for key, value in outputs.items()})
        except ImportFailed as exc:
            reply = wire.Reply("error", error="ImportError", message=str(exc))
        except BaseException as exc:  # noqa: BLE001  (whatever the code raised)
            reply = error(exc, _where(exc, package_dir))
        try:
            send(reply)
        except BaseException as exc:  # noqa: BLE001  (e.g. a reply too large)
            send(error(exc))


if __name__ == "__main__":
    main(sys.argv[1:])
