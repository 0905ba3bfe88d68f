"""Reads laneway.yaml into a Spec, with errors that name file, line, column and field.

Provisional: plain validation; line-numbered errors come next.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from laneway.errors import SpecError
from laneway.spec.model import Spec


def load_spec_text(text: str, *, filename: str = "laneway.yaml") -> Spec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([f"{filename}: {exc}"]) from None
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [f"{filename}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        ) from None


def load_spec(path: Path) -> Spec:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    return load_spec_text(text, filename=str(path))
