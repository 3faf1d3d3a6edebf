"""The course pipeline: release, collect, grade, feedback, export (python -m autograder)."""
