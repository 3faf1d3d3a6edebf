"""A self-learner's path: a workspace of the release, grading one's own work, the reference beside it."""
