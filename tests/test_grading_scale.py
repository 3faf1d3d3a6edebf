"""Grading at scale and without loss: the same results on a Dask cluster and on PostgreSQL as on
the local pool and SQLite, and a run killed with SIGKILL finishes on restart with every
submission graded exactly once."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from autograder.budget import TimeBudget
from autograder.intake.collect import collect
from autograder.config import ROOT, Course
from autograder.grading.grade import grade_all
from autograder.results.store import stored_results
from autograder.release.build import build_release
from course_fixtures import make_small_class, make_toy_source
from services import dask_cluster, postgres_bin, postgres_server

# one worker runs this file, so its module-scoped fixture is built once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading_scale")]


def _course(tmp, db_url=None, name="course"):
    src = make_toy_source(tmp / "src")
    root = tmp / name
    return Course(root=root, db_url=db_url or f"sqlite:///{root / 'gradebook.db'}", source_root=src)


def _class(course, tmp, **kw):
    release = build_release(course)
    make_small_class(course.source, release, tmp / "subs", **kw)
    assert not [c.error for c in collect(tmp / "subs", course) if c.error]


def _essence(results):
    return {sid: (r.notebooks, [(f.task, f.case, f.points, f.passed) for f in r.functions])
            for sid, r in results.items()}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    course = _course(tmp)
    _class(course, tmp)
    results, failures = grade_all(course, workers=2, progress=False, budget=TimeBudget(judge_case=5, cell=60))
    assert failures == {}
    return _essence(results)


def test_dask_cluster_grades_like_the_local_pool(tmp_path, local_run):
    course = _course(tmp_path)
    _class(course, tmp_path)
    with dask_cluster(tmp_path / "dask", workers=2, pythonpath=ROOT) as address:
        results, failures = grade_all(course, scheduler=address, progress=False, budget=TimeBudget(judge_case=5, cell=60))
    assert failures == {}
    assert _essence(results) == local_run


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (Debian package postgresql)")
def test_postgresql_gradebook_works_like_sqlite(tmp_path, local_run):
    with postgres_server() as url:
        course = _course(tmp_path, db_url=url)
        _class(course, tmp_path)
        results, failures = grade_all(course, workers=2, progress=False, budget=TimeBudget(judge_case=5, cell=60))
        assert failures == {} and _essence(results) == local_run
        assert _essence(stored_results(course)) == local_run  # read back from PostgreSQL
        from nbgrader.api import Gradebook

        with Gradebook(url) as gb:  # nbgrader's own view of the same database
            assert gb.find_submission("a2", "ref1").score > gb.find_submission("a2", "st1").score


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (Debian package postgresql)")
def test_the_postgresql_gradebook_wants_its_password():
    import sqlalchemy
    from sqlalchemy.engine import URL, make_url

    with postgres_server() as url:
        right = make_url(url)

        def as_(username, password):
            return URL.create(right.drivername, username, password, right.host, right.port, right.database)

        for wrong in (as_("grader", None), as_("grader", "not-" + right.password), as_("postgres", None)):
            with pytest.raises(sqlalchemy.exc.OperationalError, match="password"):
                sqlalchemy.create_engine(wrong).connect().close()
        with sqlalchemy.create_engine(right).connect() as db:
            assert db.execute(sqlalchemy.text("SELECT current_user")).scalar() == "grader"


def _merged(db_path):
    try:
        with sqlite3.connect(db_path) as db:
            return {row[0]: row[1] for row in db.execute("SELECT student_id, graded_at FROM cs231n_results")}
    except sqlite3.OperationalError:  # no table yet
        return {}


def test_a_run_killed_with_sigkill_finishes_on_restart_exactly_once(tmp_path, local_run):
    course = _course(tmp_path)
    _class(course, tmp_path, reference=("ref1", "ref2", "ref3"), starter=("st1", "st2", "st3"))
    db_path = course.root / "gradebook.db"
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    argv = [sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade", "--workers", "2"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not _merged(db_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its workers, mid-run
    proc.wait(timeout=30)
    before = _merged(db_path)
    assert 1 <= len(before) < 6, f"the kill came too late or too early: {sorted(before)}"

    results, failures = grade_all(course, workers=2, progress=False, budget=TimeBudget(judge_case=5, cell=60))
    after = _merged(db_path)
    assert failures == {}
    assert set(results).isdisjoint(before), "a submission merged before the kill was graded again"
    assert set(results) | set(before) == set(after) == {"ref1", "ref2", "ref3", "st1", "st2", "st3"}
    assert all(after[sid] == stamp for sid, stamp in before.items())  # untouched by the restart
    stored = _essence(stored_results(course))
    assert stored["ref3"] == local_run["ref1"] and stored["st3"] == local_run["st1"]
