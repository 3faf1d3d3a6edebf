"""nbgrader's exchange for the cs231n course on a JupyterHub: copy to /etc/jupyter/nbgrader_config.py
(every user's nbgrader reads it). docs/jupyterhub.md walks through the set-up.

The exchange is one folder every user can write to (mode 1777): the instructor's
`python -m autograder release --exchange` puts the release in it, students fetch and submit
with nbgrader (or the Assignments tab), `python -m autograder grade --exchange` collects.
"""
import os

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "cs231n"
c.Exchange.root = os.environ.get("CS231N_EXCHANGE", "/srv/nbgrader/exchange")
# what students may hand in through the exchange (nbgrader submit): builds stay behind
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.so", "*.c", "build", ".venv",
                            "*.egg-info", "*.zip"]
c.CourseDirectory.max_file_size = 20_000  # kB per file, as autograder.intake.collect takes them
# the instructor's formgrader reads this file too: sanitise the outputs it renders (as the
# checkout's nbgrader_config.py does; grading stores the notebooks inert, autograder.notebooks.inert)
c.HTMLExporter.sanitize_html = True
