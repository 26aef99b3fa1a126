"""Experiment configs: the one loader, and the one parser of their `:ARG` tokens.

    config = configs.load("experiments/skimage_gauss.py:tiny", {"num_steps": 2})
    config = configs.load("skimage_gauss:demo")      # a bare name: the repository's experiments/

An experiment is a file with `get_config(arg=None) -> ConfigDict` (big_vision's shape); `ARG`
is comma-separated tokens that `parse_arg` reads the same way for every experiment: at most
one *variant* (e.g. the network), *flags* (`tiny` shrinks the run for tests and smoke runs,
and every experiment accepts it) and `key=value` settings. An experiment whose ARG must
name a variant lists them in a module-level `VARIANTS`. Config files load each other by path
(`sibling`), so they work from any working directory. `tests/test_configs.py` loads every
experiment here as `NAME:tiny` (each variant: `NAME:VARIANT,tiny`) and builds its model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from ml_collections import ConfigDict

from denoise_jax.errors import UserError

# absl's and ml_collections' flag parsers are imported inside `_parse_overrides`, their one
# user (this module's own `flags` are the `:ARG` flags).

# The repository's experiments/ folder (present in a clone / editable install).
EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"
NOT_EXPERIMENTS = ("__init__.py", "base.py")  # shared code, not runnable experiments


def sibling(config_file: str, name: str) -> ModuleType:
    """The experiment module `name` (e.g. "base") from the folder that holds `config_file`."""
    return _module(pathlib.Path(config_file).resolve().with_name(f"{name}.py"))


def _module(path: pathlib.Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"denoise_jax_experiments_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names(folder: pathlib.Path = EXPERIMENTS) -> list[str]:
    """The experiment files in `folder` (e.g. "skimage_gauss.py"), sorted."""
    if not folder.is_dir():
        return []
    return sorted(f for f in os.listdir(folder) if f.endswith(".py") and f not in NOT_EXPERIMENTS)


def smoke_specs(folder: pathlib.Path = EXPERIMENTS) -> list[str]:
    """`NAME:tiny` for every experiment in `folder` (`NAME:VARIANT,tiny` per declared variant)."""
    specs = []
    for file in names(folder):
        variants = getattr(_module(folder / file), "VARIANTS", None) or ("",)
        specs += [f"{folder / file}:{v + ',' if v else ''}tiny" for v in variants]
    return specs


@dataclasses.dataclass(frozen=True)
class Arg:
    """An experiment's parsed `:ARG`: `variant` (or the default), `flags`, `values`."""

    variant: str | None
    flags: frozenset[str]
    values: dict[str, str]

    @property
    def tiny(self) -> bool:
        return "tiny" in self.flags


def parse_arg(arg: str | None, who: str, *, variants: Iterable[str] = (),
              default: str | None = None, flags: Iterable[str] = (),
              keys: Iterable[str] = ()) -> Arg:
    """Reads "variant,flag,flag,key=value" for the experiment `who`.

    `variants`: names of which at most one may come, first (else `default`; with variants
    and no default, one is required); `flags`: the allowed flags besides `tiny`; `keys`: the
    allowed `key=value` keys. Anything else is a ValueError naming `who` and what it takes.
    """
    variants, flags, keys = tuple(variants), ("tiny", *flags), tuple(keys)
    tokens = [t.strip() for t in (arg or "").split(",") if t.strip()]
    variant = default
    if tokens and tokens[0] in variants:
        variant, tokens = tokens[0], tokens[1:]
    values = dict(t.split("=", 1) for t in tokens if "=" in t)
    bad = [t for t in tokens if t not in flags and ("=" not in t or t.split("=")[0] not in keys)]
    if variants and variant is None:
        bad = [tokens[0] if tokens else "(none)"]
    if bad:
        takes = [f"one of {', '.join(variants)} first" if variants else "",
                 f"flags {', '.join(flags)}",
                 f"{', '.join(k + '=...' for k in keys)}" if keys else ""]
        raise ValueError(f"{who}: unknown arg {bad[0]!r} in {arg!r}; it takes "
                         + "; ".join(t for t in takes if t) + " (comma-separated)")
    return Arg(variant, frozenset(t for t in tokens if "=" not in t), values)


def split_spec(spec: str) -> tuple[pathlib.Path, str | None]:
    """(file, arg) of "experiments/NAME.py[:ARG]", or of a bare "NAME[:ARG]" (looked up in
    the repository's experiments/)."""
    path, _, arg = spec.partition(":")
    if not path.endswith(".py"):
        path = str(EXPERIMENTS / f"{path}.py")
    return pathlib.Path(os.path.expanduser(path)), arg or None


def load(spec: str, overrides: Mapping[str, Any] | Sequence[str] | None = None) -> ConfigDict:
    """The config of experiment `spec` ("experiments/NAME.py[:ARG]" or "NAME[:ARG]"), with
    `overrides` applied: {"optimizer.lr": 3e-4, ...} (values as they are) or
    ["optimizer.lr=3e-4", ...] (strings parsed by the field's type, as `--config.KEY=VALUE`
    on the command line). A missing file or an unknown field is a `UserError`; an ARG the
    experiment does not take is its ValueError (`parse_arg`).
    """
    path, arg = split_spec(spec)
    if not path.is_file():
        raise UserError(f"no experiment file {str(path)!r} (see `denoise-jax train --help`)")
    module = _module(path)
    config = module.get_config(arg) if arg is not None else module.get_config()
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            _set(config, key, value)
    elif overrides:
        config = _parse_overrides(config, list(overrides))
    return config


def _set(config: ConfigDict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = config
    try:
        for name in parents:
            node = node[name]
        node[leaf]  # noqa: B018  (an unknown field is an error, not a new one)
    except (KeyError, AttributeError):
        raise UserError(f"no such config field: {key}") from None
    node[leaf] = value


def _parse_overrides(config: ConfigDict, overrides: list[str]) -> ConfigDict:
    """`config` with "KEY=VALUE" strings applied by ml_collections' flag parser."""
    from absl import flags
    from ml_collections import config_flags

    argv = ["config"] + [f"--config.{o}" for o in overrides]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_dict("config", config, flag_values=fv, sys_argv=argv)
    try:
        fv(argv)
    except flags.UnrecognizedFlagError as e:
        raise UserError(f"no such config field: {e.flagname.removeprefix('config.')}") from None
    except flags.Error as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise UserError(f"bad config override: {lines[-1] if lines else e}") from None
    return fv.config
