"""`make bench`: speed measured on this machine, written to docs/performance.md by hand."""
