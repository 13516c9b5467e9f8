"""The ``comparisons`` asset and the regression gate on model versions (a thin layer).

Paired comparisons of every pair of models and of each model's latest
version against its previous one live in ``storage.comparisons``; this asset
refreshes the warehouse table ``comparisons`` from its previous content (only
pairs with a changed side are recomputed: the counts are in the
materialization's metadata) and checks it: the
``no_version_regression`` check (severity ERROR) fails when a new version is
significantly worse than the previous one on any metric by more than the
configured margin, naming the metric, the difference and its interval.
"""


from typing import Sequence

import dagster as dg

from bench_assets.core.config import load_config
from bench_assets.core.decision import DecisionConfig, decision_config
from bench_assets.defs.automation import results_automation_condition
from bench_assets.defs.resources import BenchResource
from bench_assets.metrics.registry import METRICS
from bench_assets.storage.comparisons import COMPARISONS_TABLE, describe, refresh_in_data_dir, regressions, to_markdown
from bench_assets.storage.metric_columns import metric_columns

REGRESSION_CHECK = "no_version_regression"


def decision_for(bench: BenchResource) -> DecisionConfig:
    return decision_config(load_config(bench.paths), METRICS)


def build_comparisons_asset(metric_assets: Sequence[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    columns = metric_columns()

    @dg.asset(
        name="comparisons",
        deps=list(metric_assets),
        group_name="leaderboard",
        kinds={"parquet"},
        automation_condition=results_automation_condition(),
        check_specs=[dg.AssetCheckSpec(REGRESSION_CHECK, asset="comparisons",
                                       description="no model's latest version is significantly worse than its previous one")],
        description="Paired comparisons on matched prompts and seeds: every pair of models (difference and 95% "
                    "interval; p and Holm-adjusted p for neighbours in rank and the reference model), and each "
                    "model's latest version against its previous one.",
    )
    def comparisons(context: dg.AssetExecutionContext, bench: BenchResource) -> dg.MaterializeResult:
        decision = decision_for(bench)
        store = bench.versions
        # unchanged models recognised from the listing; their items, sums and bootstrap figures read back
        refresh, figures = refresh_in_data_dir(bench.paths, store, columns, decision,
                                               store.warehouse.read_table(COMPARISONS_TABLE))
        table = refresh.table
        store.warehouse.write_table(COMPARISONS_TABLE, table)
        versions = table.filter(table["kind"] == "versions")
        worse = regressions(versions, decision)
        for row in worse.iter_rows(named=True):
            context.log.error(f"regression: {describe(row)}")
        return dg.MaterializeResult(
            metadata={"rows": table.height, "pairs": table.select("model_a", "model_b").n_unique() if table.height else 0,
                      "rows_recomputed": int(refresh.tally.recomputed),
                      "rows_carried_over": int(refresh.tally.carried),
                      "sign_flip_tests": int(refresh.tally.tests),
                      "bootstraps_computed": figures["bootstraps_computed"],
                      "bootstraps_reused": figures["bootstraps_reused"],
                      "versions": dg.MetadataValue.md(to_markdown(versions))},
            check_results=[dg.AssetCheckResult(
                check_name=REGRESSION_CHECK,
                passed=worse.is_empty(),
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(describe(r) for r in worse.iter_rows(named=True)) or "no regression",
                metadata={"regressions": worse.height,
                          "details": dg.MetadataValue.md(to_markdown(worse)),
                          "alpha": decision.alpha},
            )],
        )

    return comparisons
