"""With ede680d's code: what the stored rows of stored_results_s7.json make (Gradescope's
results.json, the CSV row, the causes, the feedback page), to compare the records' version with. Run from
an export of ede680d: `PYTHONPATH=OLD python tests/data/make_outputs_s7.py stored_results_s7.json outputs_s7.json`."""
import json, sys
from autograder.results.store import GradeResult
from autograder.results.export import gradescope_results, row
from autograder.results.causes import causes
from autograder.results.feedback import render
from autograder.results.hand_grades import HandGrade, apply
rows = json.load(open(sys.argv[1]))
out = {}
for sid, data in rows.items():
    r = GradeResult.from_json(json.dumps(data))
    if sid == "good":  # a hand grade and a comment laid over
        r = apply(r, {("Toy", "by_hand"): HandGrade(4.0, "nice curve"), ("Toy", "test_relu"): HandGrade(None, "ok")})
    out[sid] = {"gradescope": gradescope_results(r, {("Toy", "test_double")}), "row": row(r), "causes": causes(r),
                "feedback": render(r, "a2")}
json.dump(out, open(sys.argv[2], "w"), indent=1, sort_keys=True)
