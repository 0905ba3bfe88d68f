"""The app's repository on disk, as the CLI and `laneway up` read it: its laneway.yaml and
what `laneway init` looks at. The reading is here; what is made of the text is pure
(`spec.loader`, `spec.starter`)."""

from __future__ import annotations

import os
from pathlib import Path

from laneway.errors import SpecError
from laneway.spec import limits, starter
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec


def load_spec(path: Path) -> Spec:
    """Read `path` (UTF-8) and load it with `load_spec_text`."""
    return load_spec_text(read_spec_text(path), filename=str(path))


def read_spec_text(path: Path) -> str:
    """The text of the spec at `path`; a SpecError if it cannot be read, is not UTF-8 or is
    larger than a spec may be (then only the allowed size is read)."""
    try:
        with path.open("rb") as file:
            data = file.read(limits.MAX_BYTES + 1)
            size = max(len(data), os.fstat(file.fileno()).st_size)
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    too_large = limits.too_large(size)
    if too_large:
        raise SpecError([f"{path}:1:1: {too_large}"], hint=limits.HINT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([f"{path}:{line}:{col}: not UTF-8 text"]) from None
    return text


def read_repo(repo: Path) -> starter.RepoFiles:
    """What `spec.starter` needs of the repository at `repo`."""
    present = frozenset(name for name in starter.LOOKED_FOR if (repo / name).is_file())
    texts: dict[str, str | None] = {}
    for name in starter.READ:
        if name in present:
            try:
                texts[name] = (repo / name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                texts[name] = None
    return starter.RepoFiles(name=repo.resolve().name, root=str(repo), present=present, texts=texts)
