"""When the results assets (comparisons, leaderboard, report, ratings) refresh themselves.

The ``results_freshness`` sensor (defs/sensors.py, on by default) evaluates
this condition; no one has to start anything for the leaderboard to follow
the benchmark runs.
"""

import dagster as dg


def results_automation_condition() -> dg.AutomationCondition:
    """Refresh once an upstream asset has new data and nothing upstream is still running."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    )
