"""Statistics for deciding between models: plain numpy, no Dagster, no torch.

Every procedure resamples *prompts* (the clusters: a prompt's images share
its difficulty), and every figure is a metric's ``combine`` over per-prompt
column sums, so the same code serves plain means, GenEval's task-mean and
OneIG's text score.
"""
