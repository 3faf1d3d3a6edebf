"""Running students' notebooks under nbgrader: the nbgrader and kernel zygotes, sandboxed kernels, bounded execution, notebooks set aside or made inert."""
