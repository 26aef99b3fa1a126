"""Experiment files load each other by path.

`--config experiments/NAME.py[:ARG]` loads a config file by path from any working directory,
so a config that builds on another (`base.py`, or a sibling experiment) finds it next to its
own file rather than through `sys.path`.
"""

import importlib.util
import pathlib
from types import ModuleType

# The repository's experiments/ folder (present in a clone / editable install).
EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def sibling(config_file: str, name: str) -> ModuleType:
    """The experiment module `name` (e.g. "base") from the folder that holds `config_file`."""
    path = pathlib.Path(config_file).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"denoise_jax_experiments_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
