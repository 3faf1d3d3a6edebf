"""BoundedExecute: nbgrader's Execute preprocessor bounded in what a kernel can make nbgrader
hold (outputs per cell and notebook, message size) and in time (cell timeout, notebook budget),
recording kernel deaths (kernel_deaths). nbgrader loads it by name (run.preprocessor_args);
only nbgrader's process imports this module. docs/isolation.md, "What a kernel sends"."""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode, default
from zmq.utils.monitor import parse_monitor_message

from autograder.notebooks import kernel_deaths
from autograder.notebooks.run import RunSpec

MAX_CELL_OUTPUT_BYTES = 2 << 20  # outputs kept per cell (errors included); the rest is replaced by one line
MAX_NOTEBOOK_OUTPUT_BYTES = 32 << 20  # outputs kept per notebook (a student may add cells)
MAX_MESSAGE_BYTES = 4 * MAX_CELL_OUTPUT_BYTES  # largest ZMQ message part nbclient accepts from a kernel
MAX_QUEUED_MESSAGES = 8  # per socket, in nbgrader's process (ZMQ_RCVHWM): 64 MiB queued at most
ERROR_KEPT = (200, 4000, 50)  # an error within the caps: characters of its name, of each line; lines
ERROR_PAST_CAPS = (100, 300, 3)  # past them: only a cell's first error is kept, this short
RUN_FULL_BYTES = 1 << 20  # free space under which a kernel has filled the run's tmpfs


_kernels_started = 0  # by this process: nbgrader's of one run (forked afresh for each)


def _message_bytes(content: object) -> int:
    """What content takes in a notebook file at most: its JSON, every non-ASCII character escaped."""
    return len(json.dumps(content, default=str))


class CellOverrun(Exception):
    """A cell ran past its time; its kernel has been killed."""


class KernelNotStarted(RuntimeError):
    """The notebook's kernel did not start; death: whose failure that is (kernel_deaths.Death)."""

    def __init__(self, message: str, death: kernel_deaths.Death) -> None:
        super().__init__(message)
        self.death = death


def _error(ename: str, text: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


def _cut_error(content: dict[str, Any], name_chars: int, chars: int, lines: int) -> dict[str, Any]:
    """An error's fields (from an iopub message or an execute reply) cut short: a dict with
    ename, evalue and traceback (its last `lines` lines) only."""
    traceback = content.get("traceback")
    traceback = traceback[-lines:] if isinstance(traceback, list) else []
    return {"ename": str(content.get("ename", ""))[:name_chars], "evalue": str(content.get("evalue", ""))[:chars],
            "traceback": [str(line)[:chars] for line in traceback]}


def bounded_context() -> zmq.asyncio.Context:
    """A ZMQ context whose new sockets refuse message parts over MAX_MESSAGE_BYTES."""
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # defaults of its new sockets
    context.setsockopt(zmq.RCVHWM, MAX_QUEUED_MESSAGES)
    return context


class BoundedKernelManager(AsyncKernelManager):
    """Every socket talking to the kernel refuses messages over MAX_MESSAGE_BYTES; launcher: the
    process started for the kernel (the kernelspec's launcher), kept after a failed start."""

    launcher: Any = None

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        await super().start_kernel(**kwargs)
        self.launcher = getattr(self.provisioner, "process", None)

    @default("context")
    def _bounded_context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return bounded_context()

    def client(self, **kwargs: Any) -> Any:
        kwargs.setdefault("context", bounded_context())
        kc = super().client(**kwargs)
        kc._created_context = True
        return kc


class BoundedExecute(Execute):
    """nbgrader's Execute, bounded in what a kernel can make it hold and in time.

    Keeps at most max_cell_output_bytes of each cell's outputs and max_notebook_output_bytes
    of the notebook's, errors counted like the rest, whether they come on iopub or only in the
    execute reply (ERROR_KEPT); past either cap a cell keeps only its first error, cut to
    ERROR_PAST_CAPS, so that a failing cell still shows it failed. A kernel that sends a
    message part over MAX_MESSAGE_BYTES (ZMQ drops the connection) is stopped: its cell and
    every later one get an error. A cell past its timeout, or past what is left of
    notebook_budget, is ended by killing the kernel; it and every later code cell get an
    error output, and the notebook's name is appended to overrun_report. After each cell, if
    the run's tmpfs (run_folder) has under RUN_FULL_BYTES free, the notebook's name is
    appended to full_report (once). A kernel that dies stops its notebook the same way, and
    the death, with the counters that tell whose it is, goes to death_report; a kernel that does
    not start ends the run when that is the grader's failure, else every code cell says so."""

    max_cell_output_bytes = Integer(MAX_CELL_OUTPUT_BYTES, config=True,
                                    help="Outputs kept per cell, errors included.")
    max_notebook_output_bytes = Integer(MAX_NOTEBOOK_OUTPUT_BYTES, config=True,
                                        help="Outputs kept per notebook, errors included.")
    notebook_budget = Integer(0, config=True, help="Seconds for the whole notebook (0: no budget).")
    overrun_report = Unicode("", config=True, help="File listing the notebooks that ran out of time.")
    run_folder = Unicode("", config=True, help="The run's tmpfs, where the kernels write.")
    full_report = Unicode("", config=True, help="File listing the notebooks whose kernel filled run_folder.")
    death_report = Unicode("", config=True, help="File listing the kernels that died (kernel_deaths).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", BoundedKernelManager)
        super().__init__(*args, **kwargs)
        self._output_bytes: dict[int, int] = {}  # per cell
        self._cut: set[int] = set()  # cells cut
        self._kept = 0  # the notebook's
        self._started, self._stopped, self._filled = time.monotonic(), "", False
        self._watches: list[zmq.asyncio.Socket] = []
        self._too_big = False

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any] | None = None,
                   km: Any = None) -> tuple[NotebookNode, dict[str, Any]]:
        self._started, self._stopped, self._filled = time.monotonic(), "", False
        self._output_bytes, self._cut, self._kept = {}, set(), 0  # per cell; cells cut; the notebook's
        self._too_big = False
        self._name = ((resources or {}).get("metadata") or {}).get("name", "notebook")
        self._spec = spec = RunSpec.of_this_run()
        self._groups = (spec.group if spec else [], kernel_deaths.own_run_group())
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except KernelNotStarted as error:
            if error.death.hosts_doing():
                raise  # the grader's: the student is not graded
            self.log.error("%s", error)  # the student's: this notebook alone scores nothing
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.source.strip():
                    cell.outputs = [_error("NotRun", f"not run: {error.death.message()}")]
            return nb, resources or {}
        info = nb.metadata.get("language_info")  # the kernel's word, kept uncounted: keep it small
        if info is not None and _message_bytes(info) > 4096:
            nb.metadata["language_info"] = {"name": "python"}
        return nb, resources

    async def async_start_new_kernel_client(self) -> Any:
        global _kernels_started
        before, launcher = kernel_deaths.counters(*self._groups), getattr(self.km, "launcher", None)
        try:
            kc = await super().async_start_new_kernel_client()
        except Exception as error:  # nbclient has dropped its kernel manager (self.km) by now
            raise self._not_started(before, launcher, error) from error
        _kernels_started += 1
        self._watches = [channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                         for channel in (kc.shell_channel, kc.iopub_channel)]
        return kc

    def _not_started(self, before: kernel_deaths.Counters, process: Any, error: Exception) -> KernelNotStarted:
        """Record the kernel that did not start (a Death at_start); the error to raise, with the
        exit status of its launcher (process) and the end of its log."""
        launcher_exit = process.poll() if process is not None else None
        death = kernel_deaths.Death.between(self._name, 0, before, kernel_deaths.counters(*self._groups),
                                            launcher_exit, at_start=True, first_of_run=_kernels_started == 0)
        if self.death_report:
            kernel_deaths.record(self.death_report, death)
        spec = self._spec
        log = spec.log_tail(f"kernel-{process.pid}.log", 600).strip() if spec and process is not None else ""
        return KernelNotStarted(f"the kernel of {self._name} did not start ({type(error).__name__}: {error}); its "
                                f"launcher's exit status: {launcher_exit}; its log ends: {log or '(empty)'}", death)

    async def _async_cleanup_kernel(self) -> None:
        for watch in self._watches:
            watch.close(linger=0)
        self._watches = []
        await super()._async_cleanup_kernel()

    # nbclient's sync wrappers (nbconvert calls them) wrap its own coroutines: wrap these
    start_new_kernel_client = run_sync(async_start_new_kernel_client)
    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    async def _cut_off(self) -> bool:
        """True if ZMQ dropped a connection to the kernel while the kernel lives: it sent a
        message part over MAX_MESSAGE_BYTES (a kernel that dies closes its sockets too)."""
        dropped = False
        for watch in self._watches:
            while await watch.poll(0):
                dropped = parse_monitor_message(await watch.recv_multipart())["event"] == zmq.EVENT_DISCONNECTED or dropped
        if dropped:
            await asyncio.sleep(1)
        return dropped and await ensure_async(self.kc.is_alive())

    async def _async_poll_kernel_alive(self) -> None:
        while True:
            await asyncio.sleep(1)
            if await self._cut_off():
                self.log.error("The kernel sent a message over %s bytes: stopping it", MAX_MESSAGE_BYTES)
                self._too_big = True
                await self.km.shutdown_kernel(now=True)
                self.task_poll_for_reply.cancel()  # nbclient raises DeadKernelError
                return
            try:
                await self._async_check_alive()
            except DeadKernelError:
                self.task_poll_for_reply.cancel()
                return

    def _left(self) -> float | None:
        return self.notebook_budget - (time.monotonic() - self._started) if self.notebook_budget else None

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout, left = super()._get_timeout(cell), self._left()
        if left is not None:
            timeout = max(1, int(min(timeout or left, left)))
        return timeout

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> None:
        if cell is None:  # waiting for the kernel to start: nbclient's own handling
            return await super()._async_handle_timeout(timeout, cell)
        self.log.error("Cell %s ran longer than %s s: killing the kernel", cell.get("id", ""), timeout)
        await self.km.shutdown_kernel(now=True)
        raise CellOverrun(timeout)

    def _overran(self, why: str) -> None:
        self._stopped = why
        if self.overrun_report:
            with open(self.overrun_report, "a") as report:
                report.write(f"{self._name}\n")

    def _note_filled(self) -> None:
        if self._filled or not (self.run_folder and self.full_report):
            return
        stats = os.statvfs(self.run_folder)
        if stats.f_bavail * stats.f_frsize < RUN_FULL_BYTES:
            self._filled = True
            with open(self.full_report, "a") as report:
                report.write(f"{self._name}\n")

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any],
                        index: int) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        left = self._left()
        if not self._stopped and left is not None and left < 1:
            self._overran(f"the notebook used up its {self.notebook_budget} s")
        if self._stopped:
            cell.outputs = [_error("NotRun", f"not run: {self._stopped}")]
            return cell, resources
        before = kernel_deaths.counters(*self._groups, cell_starts=True)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if run_sync(self._cut_off)():  # the cell ended before the once-a-second check
                run_sync(self.km.shutdown_kernel)(now=True)
                return self._too_large(cell, resources)
            return cell, resources
        except DeadKernelError:
            if not self._too_big:
                return self._died(cell, resources, index, before)
            return self._too_large(cell, resources)
        except CellOverrun as overrun:
            cell.outputs.append(_error("CellTimeoutError", f"the cell ran longer than {overrun.args[0]} s, "
                                       "so its kernel was stopped"))
            self._overran(f"an earlier cell ran longer than {overrun.args[0]} s")
            return cell, resources
        finally:
            self._note_filled()

    def _died(self, cell: NotebookNode, resources: dict[str, Any], index: int,
              before: kernel_deaths.Counters) -> tuple[NotebookNode, dict[str, Any]]:
        """The kernel died in this cell: record whose failure that is, stop the notebook."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        death = kernel_deaths.Death.between(self._name, index, before, kernel_deaths.counters(*self._groups),
                                            process.poll() if process is not None else None)
        if self.death_report:
            kernel_deaths.record(self.death_report, death)
        cell.outputs.append(_error("DeadKernelError", death.message()))
        self._stopped = "the kernel died in an earlier cell"
        return cell, resources

    def _too_large(self, cell: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        """The cell's kernel sent a message over MAX_MESSAGE_BYTES and was stopped: say so."""
        cell.outputs.append(_error("MessageTooLarge", f"the kernel sent a message over {MAX_MESSAGE_BYTES} "
                                   "bytes, the grader's limit, so it was stopped"))
        self._stopped = f"an earlier cell's kernel sent a message over {MAX_MESSAGE_BYTES} bytes"
        return cell, resources

    def _keep_error(self, content: dict[str, Any], cell: NotebookNode, cell_index: int) -> dict[str, Any] | None:
        """The error to keep of content (see the class docstring), counted; None: drop it."""
        used, room = self._output_bytes.get(cell_index, 0), self.max_notebook_output_bytes - self._kept
        error = _cut_error(content, *ERROR_KEPT)
        size = _message_bytes(error)
        if used + size > self.max_cell_output_bytes or size > room:
            if any(out.get("output_type") == "error" for out in cell.outputs):
                return None  # the cell shows that it failed already
            error = _cut_error(content, *ERROR_PAST_CAPS)
            size = _message_bytes(error)
        self._output_bytes[cell_index] = used + size
        self._kept += size
        return error

    def on_cell_executed(self, **kwargs: Any) -> None:
        """An error only in the execute reply becomes the cell's error output (as in nbgrader's
        Execute), cut and counted like any other; none if the cell shows one already."""
        cell, content = kwargs["cell"], kwargs["execute_reply"]["content"]
        if content.get("status") != "error" or any(out.get("output_type") == "error" for out in cell.outputs):
            return
        error = self._keep_error(content, cell, kwargs["cell_index"])
        if error is not None:
            cell.outputs.append(new_output("error", **{**error, "traceback": error["traceback"] or [
                "ERROR: An error occurred while showtraceback was disabled"]}))

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> Any:
        kind, content = msg["msg_type"], msg["content"]
        room = self.max_notebook_output_bytes - self._kept
        if not isinstance(content.get("execution_count", 0), (int, type(None))):
            content["execution_count"] = None  # nbclient stores it in the cell, uncounted
        if kind == "error":
            error = self._keep_error(content, cell, cell_index)
            if error is None:
                return None
            msg = {**msg, "content": error}
        elif kind not in ("status", "execute_input"):
            if cell_index in self._cut:  # cut already: drop without looking
                return None
            used, size = self._output_bytes.get(cell_index, 0), _message_bytes(content)
            if used + size > self.max_cell_output_bytes or size > room:  # say so, once per cell
                why = (f"more than {self.max_cell_output_bytes} bytes" if used + size > self.max_cell_output_bytes
                       else f"the notebook's outputs reached {self.max_notebook_output_bytes} bytes")
                cell.outputs.append(new_output("stream", name="stderr", text=f"\n[output cut: {why}]\n"))
                self._cut.add(cell_index)
                return None
            self._output_bytes[cell_index] = used + size
            self._kept += size
        return super().process_message(msg, cell, cell_index)

