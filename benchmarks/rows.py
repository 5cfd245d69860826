"""One figure of the summary (original, ours, ratio) and the reader of a
figure out of a run's nested results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Results = dict[str, Any]


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    original: float | None
    ours: float | None
    higher_is_better: bool

    @property
    def ratio(self) -> float | None:
        if self.original is None or self.ours is None or self.original == 0:
            return None
        return self.ours / self.original


def get(results: Results, system: str, key: str, *path: str) -> float | None:
    value: Any = results.get(system, {}).get(key)
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
