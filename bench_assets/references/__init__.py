"""Reference sets: the real images a model's output is compared with (``data/references/``). Pure data and validation."""
