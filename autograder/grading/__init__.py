"""The grading run: one coordinator, one job per student, and which failures are the grader's."""
