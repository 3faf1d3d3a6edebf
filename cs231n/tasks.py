"""The student tasks of the package, found from the solution regions themselves.

A task is the function (or, for a method, the class) that encloses a solution
region. Its name is the pytest mark of its checks (`pytest -m conv_forward_naive`), the unit the
release stubs out and the unit the grader gives points for, so the list never drifts from the code.
"""
import ast
from dataclasses import dataclass
from pathlib import Path

# Spelt in two pieces so that this file itself holds no marker line for the release to strip.
BEGIN_SOLUTION = "### BEGIN " + "SOLUTION"
END_SOLUTION = "### END " + "SOLUTION"
# What the release puts in place of each region (nbgrader's own stub); its first line still
# marks the task, so `pytest -m NAME` works on the student's copy too.
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
STUB_FIRST_LINE = STUB.splitlines()[0]
PACKAGE_DIR = Path(__file__).resolve().parent


# The tasks by file, as the reference package has them. Tools that must work on a student's
# copy (whose stubs may be gone or whose files may not even parse) read this list;
# tests/test_tasks.py checks that it equals what find_tasks() discovers in the reference.
TASKS_BY_FILE = {
    "arch.py": ("conv_output_shape", "pool_output_shape", "same_pad", "conv_param_count", "fc_param_count",
                "conv_macs", "receptive_field"),
    "classifiers/cnn.py": ("ThreeLayerConvNet",),
    "classifiers/fc_net.py": ("TwoLayerNet", "FullyConnectedNet"),
    "classifiers/resnet.py": ("global_average_pool_forward", "global_average_pool_backward", "ResNet"),
    "layer_utils.py": ("residual_block_forward", "residual_block_backward"),
    "layers.py": ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "svm_loss",
                  "softmax_loss", "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
                  "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward",
                  "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
                  "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
                  "spatial_groupnorm_forward", "spatial_groupnorm_backward"),
    "optim.py": ("sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam", "adadelta"),
}
TASKS = tuple(name for names in TASKS_BY_FILE.values() for name in names)


@dataclass(frozen=True)
class Task:
    """One student task: `name` (the pytest mark), the file and the line of its first region."""

    name: str
    path: Path
    lineno: int


def _region_lines(source):
    """1-based line numbers where a solution region (or the stub that replaced it) begins."""
    return [i for i, line in enumerate(source.splitlines(), 1)
            if line.strip() in (BEGIN_SOLUTION, STUB_FIRST_LINE)]


def tasks_in_file(path):
    """Tasks in one Python file, in order of appearance.

    Raises ValueError if a solution region sits outside any function, since such a region could
    not be stubbed without breaking the import.
    """
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    enclosing = []  # (first line, last line, task name) of top-level functions and methods
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            enclosing += [(item.lineno, item.end_lineno, node.name) for item in node.body
                          if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            enclosing.append((node.lineno, node.end_lineno, node.name))
    found = {}
    for line in _region_lines(source):
        owners = [name for first, last, name in enclosing if first <= line <= last]
        if not owners:
            raise ValueError(f"{path}:{line}: a solution region must sit inside a function or method")
        name = owners[0]
        found.setdefault(name, Task(name, path, line))
    return list(found.values())


def find_tasks(package_dir=PACKAGE_DIR):
    """Every task in the package's .py files, sorted by file then line."""
    tasks = []
    for path in sorted(Path(package_dir).rglob("*.py")):
        tasks.extend(tasks_in_file(path))
    return tasks
