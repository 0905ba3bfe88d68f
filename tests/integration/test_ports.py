"""Port candidates: each instance scans the range from its own place (real sockets)."""

from __future__ import annotations

from laneway.controllers.ports import free_ports


def test_instances_scan_the_port_range_from_different_places():
    first = {owner: next(free_ports(40000, 49999, owner=owner)) for owner in ("a1", "b2", "c3")}
    assert len(set(first.values())) == 3
    assert all(40000 <= port <= 49999 for port in first.values())
    assert next(free_ports(40000, 49999, owner="a1")) == first["a1"]  # stable per instance
