"""cs231n: ConvNets from scratch in numpy.

Students implement the parts of this package marked as solution regions (in the release,
the functions that raise NotImplementedError); `python -m pytest -m TASK` runs the checks of one task (see
`cs231n.tasks.find_tasks` for the list).
"""

__version__ = "0.1.0"
