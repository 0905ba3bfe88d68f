"""What the tests of spec/loader.py share: a full valid laneway.yaml and two small helpers.

`FULL` uses every section of the spec (services with and without ports, every resource type,
hooks, a pipeline, each environment kind); `problems(text)` is the list of problems the
loader reports for a text it refuses; `web(*lines)` is a valid spec whose `web` service gets
extra lines from line 5 on, so that positions in expected messages are easy to count.
Imported by test_loader.py, test_loader_values.py, test_loader_structure.py and
test_loader_reporting.py.
"""

from __future__ import annotations

import pytest

from laneway.errors import SpecError
from laneway.spec.loader import load_spec_text

FULL = """\
app: shop-api
build:
  command: pip install -r requirements.txt --target .deps && npm ci
env:
  PYTHONPATH: .deps
  WORKERS: 4
services:
  web:
    command: gunicorn shop.wsgi --bind 0.0.0.0:$PORT
    port: auto
    health: {path: /healthz, timeout: 1, interval: 0.25, grace: 120}
    replicas: 2
    env: {GUNICORN_CMD_ARGS: "--timeout 30"}
  worker:
    command: python -m shop.worker
    port: none
    replicas: 0
  admin:
    command: python -m shop.admin
    health: /ping
resources:
  db: {type: postgres}
  analytics: {type: postgres}
  cache: {type: sqlite}
  uploads: {type: directory, env: MEDIA_ROOT}
hooks:
  release: python -m shop.migrate
pipeline: [staging, canary, production]
environments:
  development: {env: {DEBUG: "1"}}
  preview:
    ttl: 7d
    sleep_after: 90s
    data:
      db: {from: staging, mask: [users.email, users.phone]}
      uploads: {from: staging}
  staging: {env: {LOG_LEVEL: debug}, protected: false}
  production: {protected: true, replicas: {web: 4, worker: 2}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_spec_text(text)
    return raised.value.problems


def web(*lines: str) -> str:
    """A valid spec whose `web` service gets `lines` (line 5 on) added."""
    body = "".join(f"    {line}\n" for line in lines)
    return f"app: shop\nservices:\n  web:\n    command: run\n{body}"
