"""Wide Markdown tables wrap into column groups that fit the terminal, key columns repeated."""

from bench_assets.core.tables import fit_markdown

WIDE = "\n".join([
    "| rank | model | " + " | ".join(f"metric_{i}" for i in range(6)) + " |",
    "|" + "---|" * 8,
    "| 1 | alpha | " + " | ".join(f"0.{i}00 [0.{i}01, 0.{i}02] (n=36)" for i in range(6)) + " |",
    "| 2 | beta-long-name | " + " | ".join("–" for _ in range(6)) + " |",
])


def test_wide_table_splits_into_groups_within_width_repeating_keys():
    out = fit_markdown(WIDE, width=100)  # keys 25 columns + 30 per metric: two metrics a group
    blocks = out.split("\n\n")
    assert len(blocks) == 3
    assert all(max(map(len, b.splitlines())) <= 100 for b in blocks)
    assert all(b.splitlines()[0].startswith("| rank | model ") for b in blocks)
    headers = [h.strip() for b in blocks for h in b.splitlines()[0].split("|")[3:] if h.strip()]
    assert headers == [f"metric_{i}" for i in range(6)], "every column once, in order"
    assert "| 2    | beta-long-name |" in out


def test_narrow_table_stays_one_aligned_table_and_text_is_untouched():
    small = "| rank | model |\n|---|---|\n| 1 | a |"
    assert fit_markdown(small, width=80) == "| rank | model |\n|------|-------|\n| 1    | a     |"
    assert fit_markdown("_no scores yet_") == "_no scores yet_"


def test_a_column_wider_than_the_terminal_is_kept_whole():
    table = "| model | note |\n|---|---|\n| a | " + "x" * 150 + " |"
    assert "x" * 150 in fit_markdown(table, width=120)
