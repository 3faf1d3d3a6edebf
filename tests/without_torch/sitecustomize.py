"""On PYTHONPATH, makes this interpreter behave as one without PyTorch installed: `import torch`
and importlib.util.find_spec("torch") raise ModuleNotFoundError. Used by tests of the optional
PyTorch notebook (tests/test_torch_optional.py); only processes that inherit PYTHONPATH are
affected."""
import importlib.abc
import sys


class _WithoutTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _WithoutTorch())
