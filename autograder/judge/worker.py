"""The worker: imports one cs231n package and runs probes on the inputs the grader sends.

    python -I -S worker.py PACKAGE_PARENT SITE_PACKAGES MODULE...

Run as a script from a folder that also holds copies of wire.py and probes.py (the grader
makes it); -I -S keep the environment, the user's site and every .pth file (the editable
install's finder among them) out of sys.path, which is set here to: the folder holding the
judged `cs231n/`, this folder, the standard library, and SITE_PACKAGES (numpy and friends).

Protocol, over the original stdin/stdout, kept on duplicated descriptors; fds 0, 1 and 2 are
pointed at /dev/null before the package is imported, so whatever it prints goes nowhere:
1. send {"__status__": "booted"} before touching the package;
2. import cs231n.MODULE for each MODULE, noting each failure; send {"__status__": "ready"};
3. for each request {"__probe__": name, inputs...}: run probes.PROBES[name] and send
   {"__status__": "ok", "out.NAME": array...} or {"__status__": "error", "__error__": type name,
   "__message__": first line, "__where__": the package function it came from}.
Everything here runs in the judged process, so nothing it says is trusted by the grader.
"""
import importlib
import os
import sys
import traceback


def _setup_path(package_parent, site_packages):
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path[:] = [package_parent, here, *stdlib, site_packages]


def _first_line(exc, limit=160):
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001  (a hostile __str__)
        text = ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit] + ("..." if len(line) > limit else "")


def _where(exc, package_dir):
    """Qualified name of the innermost function of the judged package in the traceback."""
    where = ""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if os.path.abspath(frame.f_code.co_filename).startswith(package_dir + os.sep):
            where = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    return where


def main(argv):
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

    def send(message):
        wire.write_message(channel_out, wire.encode(message))

    def error(exc, where=""):
        if isinstance(exc, probes.BadOutput):
            return {"__status__": "error", "__error__": "BadOutput", "__message__": str(exc)[:300]}
        return {"__status__": "error", "__error__": type(exc).__name__,
                "__message__": _first_line(exc), "__where__": where}

    send({"__status__": "booted"})
    package_dir = os.path.join(os.path.abspath(package_parent), "cs231n")
    loaded, failed = {}, {}
    for name in modules:
        try:
            loaded[name] = importlib.import_module(f"cs231n.{name}")
        except BaseException as exc:  # noqa: BLE001  (SystemExit at import included)
            failed[name] = exc

    class ImportFailed(Exception):
        pass

    def load(name):
        if name in failed:
            exc = failed[name]
            raise ImportFailed(f"importing cs231n.{name} raised {type(exc).__name__}: "
                               f"{_first_line(exc, 120)}")
        return loaded[name]

    send({"__status__": "ready"})
    while True:
        try:
            request = wire.decode_trusted(wire.read_message(channel_in))
        except wire.Closed:
            return
        try:
            outputs = probes.PROBES[str(request.pop("__probe__"))](load, request)
            reply = {"__status__": "ok"}
            for key, value in outputs.items():
                value = probes.array(value, key) if isinstance(value, np.ndarray) else value
                reply[f"out.{key}"] = np.ascontiguousarray(value)
        except ImportFailed as exc:
            reply = {"__status__": "error", "__error__": "ImportError", "__message__": str(exc)}
        except BaseException as exc:  # noqa: BLE001  (whatever the code raised)
            reply = error(exc, _where(exc, package_dir))
        try:
            send(reply)
        except BaseException as exc:  # noqa: BLE001  (e.g. a reply too large)
            send(error(exc))


if __name__ == "__main__":
    main(sys.argv[1:])
