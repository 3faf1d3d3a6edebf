"""Notebook cells of hostile students, shared by the hostile suites (test_hostile_notebooks,
test_hostile_isolation)."""

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
