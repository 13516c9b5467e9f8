"""The benchmark report: a static site over the warehouse (gallery, compare, drill-down, plots).

No Dagster here: the ``report`` asset and ``bench report`` both call
:func:`bench_assets.report.site.build_report`.
"""
