"""Finding 8 of issue 12: one bad zip never stops the batch. A password-protected zip, a deflate64
zip, a 300-character member name, a file/folder name clash and a damaged zip are each refused
for their student, with a message saying what was wrong and how to fix it; the other students
are collected, graded and exported."""
import csv
import io
import os
import subprocess
import sys
import zipfile

import pytest

from autograder.intake.collect import SubmissionRefused, collect, collect_one
from autograder.config import ROOT, Course
from course_fixtures import make_toy_source

NB = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _patch_headers(path, local_offset, central_offset, value, width=2):
    """Overwrite a field of every local header (PK\\3\\4) and central header (PK\\1\\2) of a zip,
    as another zip tool would have written it."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        at = data.find(signature)
        while at != -1:
            data[at + offset:at + offset + width] = value(bytes(data[at + offset:at + offset + width]))
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))
    return path


def password_zip(path):
    """A zip whose members are marked encrypted (general purpose flag bit 0), as `zip -P` makes."""
    _zip(path, {"Toy.ipynb": NB, "cs231n/layers.py": "x = 1\n"})
    return _patch_headers(path, 6, 8, lambda old: (int.from_bytes(old, "little") | 1).to_bytes(2, "little"))


def deflate64_zip(path):
    """A zip whose members say compression method 9 (deflate64, Windows Explorer's for big files)."""
    _zip(path, {"Toy.ipynb": NB, "cs231n/layers.py": "x = 1\n"})
    return _patch_headers(path, 8, 10, lambda old: (9).to_bytes(2, "little"))


def long_name_zip(path):
    return _zip(path, {"Toy.ipynb": NB, "cs231n/" + "a" * 297 + ".py": "x = 1\n"})


def clash_zip(path):
    return _zip(path, {"Toy.ipynb": NB, "cs231n": "a file", "cs231n/layers.py": "x = 1\n"})


def damaged_zip(path):
    """A zip whose compressed data was garbled in transit (headers intact)."""
    _zip(path, {"Toy.ipynb": NB * 50, "cs231n/layers.py": "x = 1\n" * 200})
    data = bytearray(path.read_bytes())
    start = data.find(b"Toy.ipynb") + len("Toy.ipynb")
    for i in range(start + 5, start + 60):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


HOSTILE = {
    "pat": (password_zip, ["password-protected", "no password"]),
    "dee": (deflate64_zip, ["deflate64", "ordinary (deflate) compression"]),
    "lon": (long_name_zip, ["300 characters", "rename it"]),
    "cla": (clash_zip, ["both a file and a folder", "keep one of them"]),
    "dam": (damaged_zip, ["damaged", "download it again"]),
}


@pytest.mark.parametrize("student", sorted(HOSTILE))
def test_each_bad_zip_is_refused_with_a_message_that_teaches(tmp_path, student):
    make, fragments = HOSTILE[student]
    with pytest.raises(SubmissionRefused) as refused:
        collect_one(make(tmp_path / f"{student}.zip"), tmp_path / "dest")
    for fragment in fragments:
        assert fragment in str(refused.value)
    assert not (tmp_path / "dest").exists() and list(tmp_path.glob(".dest-*")) == []


def test_a_zip_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "nat.zip"
    path.write_bytes(b"this is an HTML error page, not a zip")
    with pytest.raises(SubmissionRefused, match="damaged or not a zip"):
        collect_one(path, tmp_path / "dest")


def test_a_write_error_is_that_students_only(tmp_path, monkeypatch):
    """An error collect does not know (here: the disk full while writing one student) is that
    student's; the others are collected."""
    import errno
    from pathlib import Path

    course = Course(root=tmp_path / "course", db_url="sqlite://", source_root=tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _zip(subs / "amy.zip", {"Toy.ipynb": NB})
    _zip(subs / "bob.zip", {"Toy.ipynb": NB})
    real_write = Path.write_bytes

    def full_for_amy(self, data):
        if "amy" in str(self):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_for_amy)
    found = {c.student_id: c.error for c in collect(subs, course)}
    assert "disk is full" in found["amy"] and found["bob"] == ""
    assert (course.step_dir("submitted", "bob") / "Toy.ipynb").is_file()
    assert not course.step_dir("submitted", "amy").exists()


@pytest.mark.slow
def test_the_batch_grades_the_others_and_reports_every_refusal(tmp_path):
    """`python -m autograder grade SUBMISSIONS` on a class with every bad zip and one honest
    student: the honest one is graded and exported, each bad one refused in the summary."""
    from autograder.release.build import build_release

    src = make_toy_source(tmp_path / "src")
    course = Course(root=tmp_path / "course", db_url=f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}",
                    source_root=src)
    release = build_release(course)
    subs = tmp_path / "subs"
    subs.mkdir()
    for student, (make, _) in HOSTILE.items():
        make(subs / f"{student}.zip")
    honest = subs / "honest"
    honest.mkdir()
    (honest / "Toy.ipynb").write_bytes((course.source / "Toy.ipynb").read_bytes())
    import shutil

    shutil.copytree(ROOT / "cs231n", honest / "cs231n",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc"))
    assert release.is_dir()
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    done = subprocess.run([sys.executable, "-m", "autograder", "--source", str(src), "grade", str(subs),
                           "--workers", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr  # refusals make the exit code say so
    for student, (_, fragments) in HOSTILE.items():
        line = next(line for line in done.stdout.splitlines() if line.startswith(f"  REFUSED {student} "))
        assert all(fragment in line for fragment in fragments), line
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO((course.root / "export" / "grades.csv").read_text()))}
    assert set(rows) == {"honest"}
    honest = rows["honest"]
    assert honest["status"] == "graded" and float(honest["manual_pending"]) == 1  # the written answer
    # everything automatic but test_double, which names no task and so keeps no points
    assert float(honest["score"]) == float(honest["max_score"]) - 1 - 2


def test_names_in_a_submission_reach_no_path_outside_and_no_terminal(tmp_path):
    """What a name a student chose can do at intake: a zip named with a terminal escape, members
    climbing out of the submission or carrying escapes and newlines, a folder holding a link to
    a host file. Nothing is written outside the student's own submitted folder, links are never
    followed, and the instructor's summary shows every such name escaped, never acted on."""
    from autograder.results.summary import summarize

    course = Course(root=tmp_path / "course", db_url="sqlite://", source_root=tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _zip(subs / "amy_\x1b]2;owned\x07.zip", {"Toy.ipynb": NB, "cs231n/../../../../escaped.py": "x = 1\n"})
    _zip(subs / "bob.zip", {"Toy.ipynb": NB, "cs231n/a\nb\x1b[2J.py": "x = 1\n", "notes/\x1b[31mred.txt": "x"})
    (subs / "cal" / "cs231n").mkdir(parents=True)
    (subs / "cal" / "Toy.ipynb").write_text(NB)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the grader's")
    (subs / "cal" / "cs231n" / "layers.py").symlink_to(secret)
    found = {c.student_id: c for c in collect(subs, course)}
    assert "unsafe path" in found["amy"].error and "link in the submission" in found["cal"].error, found
    assert found["bob"].error == "" and "notes/\x1b[31mred.txt" in found["bob"].skipped
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()} - \
        {p.relative_to(tmp_path) for p in subs.rglob("*")} - {secret.relative_to(tmp_path)}
    bob = course.step_dir("submitted", "bob").relative_to(tmp_path)
    assert written and all(p.parts[:len(bob.parts)] == bob.parts for p in written), sorted(written)
    assert not course.step_dir("submitted", "amy").exists() and not course.step_dir("submitted", "cal").exists()
    assert secret.read_text() == "the grader's"
    text = "\n".join(summarize({}, {}, 1, refused=[c for c in found.values() if c.error]))
    assert "REFUSED amy" in text and "REFUSED cal" in text, text
    assert not any(ch in text for ch in "\x1b\x07"), repr(text)
    amy, = [line for line in text.splitlines() if "REFUSED amy" in line]
    assert "(amy_\\x1b]2;owned\\x07.zip)" in amy and "escaped.py'" in amy, repr(amy)  # one line, shown escaped
