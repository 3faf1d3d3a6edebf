"""What grading produced, and everything built from it: stored results, scores, causes, feedback, reports, exports."""
