class _Distribution:
    def sf(self, x: float, *args: float) -> float: ...
    def isf(self, q: float, *args: float) -> float: ...

norm: _Distribution
binom: _Distribution
hypergeom: _Distribution
