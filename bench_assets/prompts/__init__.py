"""Prompt suites: the JSONL schema, suite specs, protocol presets and importers of published sets."""
