"""The terminals a customer may use: every terminal within ``radius`` of home (handbook 3.2.3).

Pairs grow with customers x terminals (37.6M in a world of 10x the default customers and
terminals), so they are found for a block of customers at a time, on a grid of cells a little
wider than the radius: a customer's terminals lie in its cell and the 8 around it. A pair is in
when ``dx * dx + dy * dy <= radius * radius``, the test (and the arithmetic) of scipy's
``cKDTree.sparse_distance_matrix`` that the simulator used before.
"""

from __future__ import annotations

import numpy as np

# Cells are this much wider than the radius, so rounding cannot put a neighbour two cells away.
_CELL_SLACK = 1 + 1e-9
# Distances computed at once (customers of a cell x candidate terminals), to bound memory.
_BLOCK = 1 << 20


class TerminalGrid:
    """Terminals bucketed by grid cell, to list those within ``radius`` of customers."""

    def __init__(self, terminal_xy: np.ndarray, radius: float) -> None:
        self.xy = np.ascontiguousarray(terminal_xy, dtype=np.float64)
        self.radius = float(radius)
        self.cell = self.radius * _CELL_SLACK
        self.origin = self.xy.min(axis=0) if len(self.xy) else np.zeros(2)
        cx, cy = self._cells(self.xy)
        # cells are keyed x-major: the 3 cells (x, y - 1 .. y + 1) are one range of keys
        self.width = int(cy.max(initial=0)) + 3
        key = (cx + 1) * self.width + (cy + 1)
        self.ids = np.argsort(key, kind="stable").astype(np.int32)  # by cell, then terminal id
        self.keys = key[self.ids]

    def _cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cells = np.floor((xy - self.origin) / self.cell).astype(np.int64)
        return cells[:, 0], cells[:, 1]

    def within_radius(self, customer_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR adjacency of these customers: ``(counts, neighbours)``, customer i's terminals being
        ``neighbours[sum(counts[:i]) : sum(counts[:i + 1])]`` in id order (int64 counts, int32 ids)."""
        n = len(customer_xy)
        cx, cy = self._cells(customer_xy)
        # a customer more than a cell beyond every terminal has none: any candidates will do
        cy = np.clip(cy, -1, self.width - 2)
        key = (cx + 1) * self.width + (cy + 1)
        by_cell = np.argsort(key, kind="stable")
        sorted_key = key[by_cell]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]]) if n else []
        owners, terminals = [], []
        for lo, hi in zip(starts, [*starts[1:], n], strict=True):
            rows = by_cell[lo:hi]
            candidates = self._around(int(key[rows[0]]))
            step = max(1, _BLOCK // max(1, len(candidates)))
            for first in range(0, len(rows), step):
                block = rows[first : first + step]
                dx = customer_xy[block, 0][:, None] - self.xy[candidates, 0][None, :]
                dy = customer_xy[block, 1][:, None] - self.xy[candidates, 1][None, :]
                row, col = np.nonzero(dx * dx + dy * dy <= self.radius * self.radius)
                owners.append(block[row])
                terminals.append(candidates[col])
        owner = np.concatenate(owners) if owners else np.empty(0, np.int64)
        terminal = np.concatenate(terminals) if terminals else np.empty(0, np.int32)
        # each customer's terminals came out together and in id order: a stable sort by customer
        # (a radix sort on 16-bit keys) puts the customers in id order
        key_type = np.uint16 if n <= 1 << 16 else np.int64
        terminal = terminal[np.argsort(owner.astype(key_type), kind="stable")]
        return np.bincount(owner, minlength=n).astype(np.int64), terminal

    def _around(self, key: int) -> np.ndarray:
        """Ids (sorted) of the terminals in cell ``key`` and the 8 cells around it."""
        parts = []
        for row in (key - self.width, key, key + self.width):
            lo, hi = np.searchsorted(self.keys, [row - 1, row + 2])
            parts.append(self.ids[lo:hi])
        return np.sort(np.concatenate(parts))


def terminals_within_radius(
    customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float, block: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency of all customers: customer c may use terminals
    ``neighbours[offsets[c]:offsets[c + 1]]`` (int64 offsets, int32 terminal ids in id order)."""
    grid = TerminalGrid(terminal_xy, radius)
    counts, neighbours = [], []
    for first in range(0, len(customer_xy), block):
        c, t = grid.within_radius(customer_xy[first : first + block])
        counts.append(c)
        neighbours.append(t)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts or [np.empty(0, np.int64)]))])
    return offsets.astype(np.int64), np.concatenate(neighbours or [np.empty(0, np.int32)])
