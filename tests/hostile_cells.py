"""Notebook cells of hostile students, shared by the attack suites (tests/attacks/
test_notebook_kernels.py, test_sandbox_in_a_batch.py) and the judge's tests."""

DEAF_LOOP = '''import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass'''


def fork_bomb(hold_seconds):
    """A cell that forks until the process limit stops it, prints what stopped it, and keeps its
    children alive for hold_seconds (holding the limit)."""
    return f'''import os, time
me = os.getpid()
err = None
try:
    while True:
        os.fork()
except OSError as e:
    err = type(e).__name__
if os.getpid() != me:
    time.sleep({hold_seconds})
    os._exit(0)
print("fork bomb stopped by", err)'''



def error_flood(rounds, name_mb, raw_mb):
    """Cells that flood nbgrader with errors, `rounds` times: a raw iopub error message of raw_mb
    MB (a name of name_mb MB, the rest its value), an exception whose name is name_mb MB, an
    error that comes only in an execute reply (to the cell after the one that arms it), and 20
    errors of 50 lines of 4,000 characters (4 MB) in one cell."""
    name, value = name_mb << 20, (raw_mb - name_mb) << 20
    raw = f'''k = get_ipython().kernel
k.session.send(k.iopub_socket, "error", {{"ename": "W" * {name}, "evalue": "v" * {value}, "traceback": ["t"]}},
               parent=k.get_parent())
raise type("E" * {name}, (Exception,), {{}})("a long name")'''
    arm = f'''k = get_ipython().kernel
run = k.do_execute
async def once(*args, **kwargs):  # the next cell's reply says error; no error output is sent
    k.do_execute = run
    await run(*args, **kwargs)
    return {{"status": "error", "ename": "R" * {name}, "evalue": "reply only", "traceback": [],
            "execution_count": k.execution_count}}
k.do_execute = once'''
    many = '''k = get_ipython().kernel
for _ in range(20):
    k.session.send(k.iopub_socket, "error", {"ename": "Many", "evalue": "of them", "traceback": ["l" * 4000] * 50},
                   parent=k.get_parent())'''
    return [raw, arm, "replied = 'an error'", many] * rounds


# one message of 1.4 GB in 200 parts of 7 MB, each under the grader's limit per part: only the
# memory limit of nbgrader's own cgroup stops it
FRAMES = '''k = get_ipython().kernel
part = b"f" * (7 << 20)
k.session.send(k.iopub_socket, "display_data", {"data": {}, "metadata": {}}, parent=k.get_parent(),
               buffers=[part] * 200)
import time
time.sleep(5)'''
