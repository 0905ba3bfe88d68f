"""The app's repository on disk, as the CLI and `laneway up` read it: its laneway.yaml and
what `laneway init` looks at. The reading is here; what is made of the text is pure
(`spec.loader`, `spec.starter`)."""

from __future__ import annotations

from pathlib import Path

from laneway.errors import SpecError
from laneway.spec import starter
from laneway.spec.loader import load_spec_text
from laneway.spec.model import Spec


def load_spec(path: Path) -> Spec:
    """Read `path` (UTF-8) and load it with `load_spec_text`."""
    return load_spec_text(read_spec_text(path), filename=str(path))


def read_spec_text(path: Path) -> str:
    """The text of the spec at `path`; a SpecError if it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
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
