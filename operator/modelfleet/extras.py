"""The one way every command says how to install an optional extra it is missing.

``modelfleet`` keeps its heavy dependencies in extras (``operator``, ``serving``,
``profile``, ``sim``, ``aws``, ``gcp``, ``azure``: pyproject.toml), so a command can start
without the one it needs. The hints used to differ per command and were not all true:
``modelfleet run`` said ``pip install "modelfleet[operator]"`` while the README installs
from a source checkout with ``pip install -e '.[operator]'`` (the name alone asks the
package index, not the checkout the user is running), and two hints lost their ``[extra]``
to rich markup. ``install_command`` gives the command that works for the running package:

- from a source checkout (an editable install, what the README describes): the
  interpreter's pip, ``-e`` on that checkout (``.`` when the working directory is it);
- from an installed package: the interpreter's pip on ``modelfleet[extra]``.

The interpreter's own pip (``sys.executable -m pip``): a bare ``pip`` is often another
Python's (the README runs ``.venv/bin/modelfleet`` without activating the venv), where the
install does not help. Messages hold ``[extra]``: print them through rich with
``rich.markup.escape``.

That command is for a local terminal (``missing_extra``). A cloud provider's missing extra
is read by cluster users instead, in a FleetCluster's Events and the operator's log:
there the operator pod's interpreter and source paths are of no use to the reader (and
not theirs to see), so ``missing_extra_in_operator`` names the extra and the package
(``modelfleet[aws]``) and where it must be installed, without a path.
"""

from __future__ import annotations

import shlex
import sys
import tomllib
from pathlib import Path

import modelfleet


def source_checkout() -> Path | None:
    """The source tree the running ``modelfleet`` package is imported from (an editable
    install or a checkout on ``PYTHONPATH``): the directory two above the package
    (``operator/modelfleet``) when its ``pyproject.toml`` names the ``modelfleet``
    project. None for an installed package (``site-packages/modelfleet``)."""
    root = Path(modelfleet.__file__).resolve().parents[2]
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return root if isinstance(project, dict) and project.get("name") == "modelfleet" else None


def install_command(extra: str) -> str:
    """The shell command that installs ``extra`` for the running package (see the module
    docstring), its arguments quoted for a POSIX shell."""
    python = shlex.quote(sys.executable)
    root = source_checkout()
    if root is None:
        return f"{python} -m pip install {shlex.quote(f'modelfleet[{extra}]')}"
    try:
        here = Path.cwd().resolve() == root
    except OSError:  # the working directory was removed
        here = False
    target = "." if here else str(root)
    return f"{python} -m pip install -e {shlex.quote(f'{target}[{extra}]')}"


def missing_extra(what: str, extra: str, missing: str) -> str:
    """One line: ``what`` (a command or feature) needs ``extra``, the ``missing`` module
    (or modules) that showed it, and the command that installs it."""
    return f"{what} needs the {extra} extra (missing: {missing}): {install_command(extra)}"


def missing_extra_in_operator(what: str, extra: str, missing: str) -> str:
    """One line for cluster users (a FleetCluster's Events, the operator's log): ``what``
    needs ``extra``, the ``missing`` module, and the package the operator's image must
    include (``modelfleet[extra]``); no interpreter or source path of this machine."""
    package = f"modelfleet[{extra}]"
    return (
        f"{what} needs the {extra} extra (missing: {missing}): the operator's image must "
        f'include "{package}" (pip install "{package}"; the published image has it)'
    )
