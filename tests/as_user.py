"""Run code of this test process as another, unprivileged user: in a fork that drops to it."""
import os
import sys
from pathlib import Path

NOBODY = 65534


def become(uid):
    """Drop this (forked, root) process to uid: its groups, gid and uid, for good."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def run_cli_as(uid, argv, env, out_path):
    """`python -m autograder argv` as the unprivileged uid, in a fork of this process: the modules
    it needs are imported here first, so the user needs no access to this checkout or its venv
    (a clone in a private folder, pyenv's Python under /root). Returns (exit code, output)."""
    import autograder.__main__ as cli
    import autograder.results.feedback  # noqa: F401  (what `grade` imports, loaded before the switch)
    import autograder.results.summary  # noqa: F401

    with open(out_path, "w") as out:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                sys.stdout = sys.stderr = out  # not pytest's capture
                become(uid)
                os.environ.clear()
                os.environ.update(env)
                code = cli.main(argv)
            except BaseException as error:  # noqa: BLE001  (reported through the output)
                print(f"{type(error).__name__}: {error}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 70)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return code, Path(out_path).read_text()
