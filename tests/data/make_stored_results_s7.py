"""How tests/data/stored_results_s7.json was made: a toy class graded by the code of commit ede680d (before
the results became records), its stored rows dumped. `python tests/data/make_stored_results_s7.py OUT.json`."""
import json, shutil, sys, tempfile
from pathlib import Path
sys.path[:0] = [".", "tests"]
from course_fixtures import make_toy_source, write_toy_submission
from autograder.config import Course
from autograder.intake.collect import collect
from autograder.grading.grade import grade_all
from autograder.release.build import build_release
from autograder.results.store import _Store, RESULTS_TABLE

tmp = Path(tempfile.mkdtemp(prefix="fixture-"))
course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}",
                source_root=make_toy_source(tmp / "src", code_answer=True))
shutil.copyfile(course.source / "Toy.ipynb", course.source / "Second.ipynb")
release = build_release(course)
subs = tmp / "subs"
write_toy_submission(release, subs / "looper", cells=["while True:\n    pass"])
write_toy_submission(release, subs / "raiser", cells=["raise ValueError('boom')"])
write_toy_submission(release, subs / "typo", layers="\n\ndef broken(:\n    pass\n")
write_toy_submission(release, subs / "garbled")
(subs / "garbled" / "Second.ipynb").write_text('{"cells": [')
write_toy_submission(release, subs / "good")
assert not [c.error for c in collect(subs, course) if c.error]
results, failures = grade_all(course, workers=1, force=True, progress=False, judge_timeout=5, cell_timeout=8)
assert failures == {}, failures
with _Store(course) as (gb, results_t, _):
    rows = gb.db.execute(results_t.select()).fetchall()
out = {row.student_id: json.loads(row.result) for row in rows}
Path(sys.argv[1]).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
from autograder.results.store import scores
print({sid: scores(r)[:2] for sid, r in results.items()})
