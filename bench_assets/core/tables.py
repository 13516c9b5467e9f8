"""Markdown tables that fit a terminal: wide tables wrap their columns into several tables.

The leaderboard has a column per metric (``0.312 [0.301, 0.322] (n=36)``
each), far wider than a 120-column terminal, where lines that wrap mid-row
are unreadable. :func:`fit_markdown` splits such a table into consecutive
tables of whole columns, each starting with the same key columns (rank,
tier, model, version, category), like pandas does. ``--wide`` prints the table as it is
(for a pipe into a file or a Markdown page).
"""

from __future__ import annotations

DEFAULT_WIDTH = 120


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _line(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"


def _render(rows: list[list[str]], columns: list[int]) -> list[str]:
    widths = [max(len(row[c]) for row in rows) for c in columns]
    header, *body = ([row[c] for c in columns] for row in rows)
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [_line(header, widths), rule, *(_line(cells, widths) for cells in body)]


def _table_width(rows: list[list[str]], columns: list[int]) -> int:
    return sum(max(len(row[c]) for row in rows) + 3 for c in columns) + 1


KEY_COLUMNS = ("rank", "tier", "model", "version", "category")


def fit_markdown(table: str, width: int = DEFAULT_WIDTH, keys: tuple[str, ...] = KEY_COLUMNS) -> str:
    """``table`` (header, rule, rows) aligned, split into column groups no wider than ``width``.

    Leading columns named in ``keys`` repeat in every group. A single column
    wider than ``width`` still gets a group of its own (it is never cut).
    Anything that is not a Markdown table is returned unchanged.
    """
    lines = table.strip().splitlines()
    if len(lines) < 2 or not lines[0].lstrip().startswith("|"):
        return table
    rows = [_cells(line) for line in lines[:1] + lines[2:]]
    if any(len(row) != len(rows[0]) for row in rows):
        return table
    n_keys = next((i for i, name in enumerate(rows[0]) if name not in keys), len(rows[0]))
    key_columns = list(range(n_keys))
    groups: list[list[int]] = []
    for column in range(n_keys, len(rows[0])):
        if groups and _table_width(rows, key_columns + groups[-1] + [column]) <= width:
            groups[-1].append(column)
        else:
            groups.append([column])
    blocks = [_render(rows, key_columns + group) for group in groups or [[]]]
    return "\n\n".join("\n".join(block) for block in blocks)
