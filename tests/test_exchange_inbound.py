"""Red team: what a student on a JupyterHub can put in nbgrader's exchange inbox, which every
student may write to (nbgrader's inbound/ is world-writable), and what collect_from_exchange
makes of it. Students are the machine's own users here (nobody, daemon), as on a hub."""
import json
import os
import pwd
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder.config import Course
from autograder.intake.exchange import collect_from_exchange, exchange_path
from course_fixtures import make_toy_source
from user_slots import slot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="submissions owned by other users need root to make")

NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def hub(tmp_path):
    """(course, exchange root, inbound folder) of a toy course whose exchange is empty."""
    src = make_toy_source(tmp_path / "src")
    course = Course(root=tmp_path / "course", db_url=f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}",
                    source_root=src)
    exchange = tmp_path / "exchange"
    inbound = exchange_path(course, exchange) / "inbound"
    inbound.mkdir(parents=True)
    inbound.chmod(0o2733)
    return course, exchange, inbound


def _submit(inbound, owner, claimed=None, stamp="2026-11-28 10:00:00.000000 UTC", files=None):
    """A submission folder as `nbgrader submit` leaves it, made and owned by the user `owner`,
    named for the user `claimed` (default: the owner)."""
    entry = inbound / f"{claimed or owner}+a2+{stamp}+{secrets.token_hex(8)}"
    entry.mkdir()
    (entry / "timestamp.txt").write_text(stamp)
    (entry / "Toy.ipynb").write_text(NB)
    for name, make in (files or {}).items():
        make(entry / name)
    user = pwd.getpwnam(owner)
    for folder, dirs, names in os.walk(entry):
        for name in [*dirs, *names]:
            os.lchown(os.path.join(folder, name), user.pw_uid, user.pw_gid)
    os.lchown(entry, user.pw_uid, user.pw_gid)
    return entry


def _collected(course, exchange):
    return {c.student_id: c for c in collect_from_exchange(course, exchange)}


def test_a_link_in_a_submission_brings_none_of_the_instructors_files(hub, tmp_path):
    course, exchange, inbound = hub
    solution = tmp_path / "instructor" / "layers.py"  # e.g. the reference package, readable by the grader only
    solution.parent.mkdir(mode=0o700)
    solution.write_text("ANSWER = 'the instructor reference'\n")
    solution.chmod(0o600)
    _submit(inbound, "nobody", files={"cs231n": Path.mkdir, "cs231n/layers.py": lambda p: p.symlink_to(solution)})
    found = _collected(course, exchange)
    copied = [p for p in course.root.rglob("*") if p.is_file() and "instructor reference" in p.read_text(errors="replace")]
    assert not copied, f"the instructor's file reached the student's submission: {copied}"
    assert "link" in found["nobody"].error, found["nobody"]


def test_forged_malformed_special_and_oversized_folders_are_refused_and_the_rest_collected(hub, tmp_path):
    course, exchange, inbound = hub
    honest = _submit(inbound, "daemon", files={"cs231n": Path.mkdir, "cs231n/layers.py":
                                               lambda p: p.write_text("HONEST = 'daemon'\n")})
    # nobody, as daemon, later than daemon's own: nbgrader would take it as daemon's newest
    _submit(inbound, "nobody", claimed="daemon", stamp="2026-11-28 11:00:00.000000 UTC",
            files={"cs231n": Path.mkdir, "cs231n/layers.py": lambda p: p.write_text("FORGED = 'nobody'\n")})
    bad_stamp = _submit(inbound, "nobody", stamp="yesterday")
    _submit(inbound, "bin", files={"pipe": lambda p: os.mkfifo(p)})  # one student each: only the latest is screened
    _submit(inbound, "sys", files={"huge.bin": lambda p: os.truncate(p.write_bytes(b"") or p, 200 * 10**6)})
    (inbound / f"nobody+a2+2026-11-28 14:00:00.000000 UTC+{secrets.token_hex(8)}").symlink_to(honest)

    found = collect_from_exchange(course, exchange)
    collected = [c for c in found if not c.error]
    refusals = sorted(c.error for c in found if c.error)
    assert [c.student_id for c in collected] == ["daemon"]
    layers = course.step_dir("submitted", "daemon") / "cs231n" / "layers.py"
    assert layers.read_text() == "HONEST = 'daemon'\n", "daemon's own submission is the one collected"
    assert len(refusals) == 5, refusals
    said = "\n".join(refusals)
    for words in ("named for 'daemon' but belongs to the hub user 'nobody'", "'yesterday' is not nbgrader's",
                  "pipe, which is a link or a special file", "larger than the course allows",
                  "not a folder (a link or a file)"):
        assert words in said, (words, refusals)
    assert bad_stamp.is_dir(), "the exchange itself is left as it was"
    assert not (course.root / "exchange_screened").exists(), "the screened copy is removed"


def test_grading_from_an_exchange_with_no_inbound_folder_says_what_to_do(hub, tmp_path, capsys):
    from autograder.__main__ import main

    course, _, _ = hub
    empty = tmp_path / "no-exchange"
    empty.mkdir()
    code = main(["--course", str(course.root), "--source", str(course.source_root), "grade", "--exchange",
                 "--exchange-root", str(empty), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "the exchange has no inbound folder" in err and "release --exchange" in err, err
    assert not (course.root / "export").exists(), "nothing was graded"


def test_a_hard_link_to_a_file_the_student_cannot_read_is_refused(hub, tmp_path):
    """Where the kernel lets users link files they cannot read (fs.protected_hardlinks = 0), a
    hard link in a submission would have the grader, who can read it, copy the instructor's file."""
    course, exchange, inbound = hub
    solution = tmp_path / "instructor-layers.py"
    solution.write_text("ANSWER = 'the instructor reference'\n")
    solution.chmod(0o600)
    entry = _submit(inbound, "nobody", files={"cs231n": Path.mkdir})
    os.link(solution, entry / "cs231n" / "layers.py")  # made after _submit's chown: the file stays root's
    found = _collected(course, exchange)
    copied = [p for p in course.root.rglob("*") if p.is_file() and "instructor reference" in p.read_text(errors="replace")]
    assert not copied, f"the instructor's file reached the student's submission: {copied}"
    assert "hard link" in found["nobody"].error, found["nobody"]


def test_a_folder_the_grader_cannot_read_is_refused_and_the_others_are_screened(tmp_path):
    """An error reading one student's files (here a file they made unreadable, screened by a grader
    that is not root; as root, a file swapped for a link during the copy) refuses that folder only:
    it used to raise out of the screen, and nobody was collected."""
    from nbgrader.utils import parse_utc  # noqa: F401 - imported here: the child below cannot read the venv

    from autograder.sandbox.forked import run_and_leave
    from autograder.intake.inbound import screen

    grader = slot(0)
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        top.chmod(0o711)
        inbound, view = top / "inbound", top / "view"
        inbound.mkdir(mode=0o2733)
        view.mkdir()
        os.chown(inbound, grader, grader)
        os.chown(view, grader, grader)
        _submit(inbound, "daemon", files={"cs231n": Path.mkdir, "cs231n/layers.py": lambda p: p.write_text("OK = 1\n")})
        _submit(inbound, "nobody", files={"cs231n": Path.mkdir,
                                          "cs231n/layers.py": lambda p: (p.write_text("X = 1\n"), p.chmod(0))})
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # the grader, as a user of its own

            def grader_screens():
                os.setgroups([])
                os.setgid(grader)
                os.setuid(grader)
                refused = screen(inbound, view, "a2", 10**6)
                os.write(write_end, json.dumps([[r.owner, r.why] for r in refused]).encode())

            os.close(read_end)
            run_and_leave(grader_screens)  # its traceback, if any, on stderr
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read()
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and answer, "the screen raised instead of refusing one folder"
        refused = json.loads(answer)
        assert [owner for owner, _ in refused] == ["nobody"], refused
        assert "the grader could not read" in refused[0][1] and "layers.py" in refused[0][1], refused
        screened = [p.relative_to(view).parts[0].split("+")[0] for p in view.rglob("layers.py")]
        assert screened == ["daemon"], screened
    finally:
        shutil.rmtree(top)


def test_a_deep_nest_or_a_folder_of_empty_files_is_refused_and_the_rest_collected(hub):
    """Empty files cost no bytes against max_dir_size; folders nested past the grader's path
    length limit stopped the collect for everyone."""
    from autograder.intake.inbound import MAX_ENTRIES

    course, exchange, inbound = hub

    def nest(top):  # 120 folders of 40 characters: 4,920 characters, past PATH_MAX (made by folder fds)
        top.mkdir()
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(120):
            os.mkdir("d" * 40, dir_fd=fd)
            below = os.open("d" * 40, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        os.close(fd)

    def empties(top):
        top.mkdir()
        for k in range(MAX_ENTRIES + 1):
            (top / f"{k}.py").touch()

    _submit(inbound, "daemon")
    nest(_submit(inbound, "nobody") / "deep")  # after _submit's chown, which cannot walk that deep
    _submit(inbound, "bin", files={"many": empties})
    found = collect_from_exchange(course, exchange)
    assert [c.student_id for c in found if not c.error] == ["daemon"]
    said = "\n".join(c.error for c in found if c.error)
    assert "nested more than" in said and f"more than {MAX_ENTRIES} files and folders" in said, said


def test_only_each_students_latest_submission_is_screened_as_nbgrader_collects_only_that(hub):
    """A student who submitted many times costs one copy, not one per submission; an older
    folder, even a refusable one, is not looked into. A later folder forged in their name by
    another user does not hide their own latest."""
    course, exchange, inbound = hub
    _submit(inbound, "daemon", stamp="2026-11-28 09:00:00.000000 UTC", files={"pipe": lambda p: os.mkfifo(p)})
    _submit(inbound, "daemon", files={"cs231n": Path.mkdir, "cs231n/layers.py": lambda p: p.write_text("NEW = 1\n")})
    _submit(inbound, "nobody", claimed="daemon", stamp="2026-11-28 11:00:00.000000 UTC")
    found = collect_from_exchange(course, exchange)
    assert [c.student_id for c in found if not c.error] == ["daemon"]
    assert [c.error for c in found if c.error] == [
        f"not collected from the exchange: it is named for 'daemon' but belongs to the hub user 'nobody': "
        "a submission may only be made by its own student"], found
    assert (course.step_dir("submitted", "daemon") / "cs231n" / "layers.py").read_text() == "NEW = 1\n"
