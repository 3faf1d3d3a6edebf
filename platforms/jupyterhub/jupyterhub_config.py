"""JupyterHub for the cs231n course: local Linux users, one Jupyter server each, nbgrader's
exchange between them (nbgrader_config.py next to this file). docs/jupyterhub.md walks an
instructor through it; tests/test_jupyterhub.py runs this very file on 127.0.0.1.

    sudo jupyterhub -f platforms/jupyterhub/jupyterhub_config.py

Everything a course changes is an environment variable (unset: JupyterHub's own defaults):
  CS231N_INSTRUCTORS, CS231N_STUDENTS  comma-separated Linux user names (instructors are admins)
  CS231N_HUB_IP, CS231N_HUB_PORT       where the hub is served (default all interfaces, 8000)
  CS231N_HUB_API_PORT, CS231N_PROXY_API_PORT  the hub's and the proxy's internal ports
  CS231N_HUB_STATE     folder for the hub's database, cookie secret and proxy token (default: cwd)
  CS231N_PROXY         configurable-http-proxy (default: this repository's node_modules/.bin)
  CS231N_SINGLEUSER    jupyterhub-singleuser to start for each user (default: next to this Python)
  CS231N_EXCHANGE      nbgrader's exchange folder (default /srv/nbgrader/exchange)
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
env = os.environ.get

c = get_config()  # noqa: F821 (JupyterHub defines get_config when it loads this file)


def _names(variable):
    return {name.strip() for name in env(variable, "").split(",") if name.strip()}


instructors, students = _names("CS231N_INSTRUCTORS"), _names("CS231N_STUDENTS")

# Who may log in: local Linux users, by password (PAM), only those listed.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = instructors | students
c.Authenticator.admin_users = instructors

# Where the hub listens
if env("CS231N_HUB_IP"):
    c.JupyterHub.ip = env("CS231N_HUB_IP")
    c.JupyterHub.hub_ip = env("CS231N_HUB_IP")
if env("CS231N_HUB_PORT"):
    c.JupyterHub.port = int(env("CS231N_HUB_PORT"))
if env("CS231N_HUB_API_PORT"):
    c.JupyterHub.hub_port = int(env("CS231N_HUB_API_PORT"))
if env("CS231N_PROXY_API_PORT"):
    c.ConfigurableHTTPProxy.api_url = f"http://{env('CS231N_HUB_IP', '127.0.0.1')}:{env('CS231N_PROXY_API_PORT')}"
c.ConfigurableHTTPProxy.command = [env("CS231N_PROXY", str(REPO / "node_modules" / ".bin" / "configurable-http-proxy"))]
state = Path(env("CS231N_HUB_STATE", "."))
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")

# One Jupyter server per user, as that user, in their home, from the course's Python (which has
# nbgrader and its Assignments tab); every user's nbgrader reads nbgrader_config.py here for the
# exchange (copy it to /etc/jupyter/ on a real hub to make it the machine's).
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [env("CS231N_SINGLEUSER", str(Path(sys.executable).parent / "jupyterhub-singleuser"))]
c.Spawner.default_url = "/lab"
# Students' servers also read student/ first: nbgrader's Validate and Assignment List stay, the
# instructor's Formgrader, Create Assignment and Course List are turned off (server and lab).
STUDENT_CONFIG = os.pathsep.join([str(HERE / "student"), str(HERE)])


def _config_path(spawner):
    return str(HERE) if spawner.user.name in instructors else STUDENT_CONFIG


def _path(spawner):
    """The course's Python first: `python3` and `make hub-build` in a terminal use the kernels'."""
    return os.pathsep.join([str(Path(c.Spawner.cmd[0]).parent), env("PATH", "/usr/bin:/bin")])


c.Spawner.environment = {"JUPYTER_CONFIG_PATH": _config_path, "PATH": _path, "CS231N_DATASET": env("CS231N_DATASET", "digits"),
                         **({"CS231N_EXCHANGE": env("CS231N_EXCHANGE")} if env("CS231N_EXCHANGE") else {})}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
