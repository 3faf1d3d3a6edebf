"""Submissions in: collected from folders and zips, or from nbgrader's exchange on a hub."""
