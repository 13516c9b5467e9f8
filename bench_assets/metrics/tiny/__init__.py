"""Tiny random-weight scorers built in code, named by each metric's ``tiny_scorer``: no download.

Real scorers are gigabytes behind the network; these have the same
architecture classes at tiny widths and are saved as real files, so ``bench
demo`` and the tests load them through the metrics' real loading code.
torch and transformers are imported inside the builders, when one is called.
"""
