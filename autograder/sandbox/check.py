"""Proof that the grading sandbox works on this machine, before any student's work depends on it.

Gradescope's setup.sh runs `python -m autograder.sandbox.check` while it builds the image: a
sandboxed process must start (bubblewrap, as a user of its own), have no network, and meet its
memory limit. Where it does not (Docker's default seccomp profile blocks the user namespaces
bubblewrap needs; a kernel without them), every upload would come back "not graded": the check
fails the build instead, saying what failed and what to change.
"""
import json
import os
import sys
import tempfile

MEMORY_MB = 256
PROBE = f"""
import json, os, socket
try:
    block = bytearray({2 * MEMORY_MB} << 20)
    memory = "allocated {2 * MEMORY_MB} MB"
except MemoryError:
    memory = "limited"
print(json.dumps({{"uid": os.getuid(), "interfaces": [n for _, n in socket.if_nameindex()], "memory": memory}}))
"""
WHAT_TO_CHANGE = ("bubblewrap needs unprivileged user namespaces: on Docker, run the container with a seccomp "
                  "profile that allows them (or --security-opt seccomp=unconfined), and on the host "
                  "`sysctl kernel.unprivileged_userns_clone=1` (Debian/Ubuntu) or "
                  "`sysctl user.max_user_namespaces=15000`; then build again")


def problems() -> list[str]:
    """[] when the sandbox works here; else sentences saying what failed."""
    import subprocess

    from autograder.sandbox.bubblewrap import BwrapMissing, Limits, Sandbox, sandboxed_popen

    with tempfile.TemporaryDirectory(prefix="sandbox-check-") as work:
        os.chmod(work, 0o755)
        box = Sandbox(cwd=work, rw=(work,), limits=Limits(memory_mb=MEMORY_MB, cpu_seconds=20))
        try:
            proc = sandboxed_popen([os.path.realpath(sys.executable), "-I", "-S", "-c", PROBE], box,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = proc.communicate(timeout=60)
        except BwrapMissing as error:
            return [str(error)]
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"the sandbox could not be started: {type(error).__name__}: {error}"]
    if proc.returncode != 0:
        return [f"the sandbox did not start (exit {proc.returncode}); bubblewrap said: {err.strip()[-500:] or 'nothing'}"]
    try:
        seen = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [f"the sandboxed probe printed no verdict: {out[-300:]!r} {err[-300:]!r}"]
    found: list[str] = []
    if seen["uid"] == 0 or (os.geteuid() == 0 and seen["uid"] != box.uid):
        found.append(f"the sandboxed process ran as uid {seen['uid']}, not as the student run's user {box.uid}")
    if set(seen["interfaces"]) - {"lo"}:
        found.append(f"the sandboxed process sees network interfaces {seen['interfaces']}: it has a network")
    if seen["memory"] != "limited":
        found.append(f"the memory limit did not hold: the sandboxed process {seen['memory']} with a {MEMORY_MB} MB limit")
    return found


def main() -> int:
    from autograder.sandbox.bubblewrap import describe_isolation

    found = problems()
    if found:
        print("sandbox check FAILED: student code cannot be graded safely here, so every upload would be "
              "'not graded':\n  - " + "\n  - ".join(found) + f"\nWhat to change: {WHAT_TO_CHANGE}.", file=sys.stderr)
        return 1
    print(f"sandbox check passed: {describe_isolation()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
