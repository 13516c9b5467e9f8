"""Models in the drop folder: kinds (one ``MODEL_KINDS`` table in kinds.py), cards, checkpoint
headers, per-kind loaders, downloads, the sensor's decisions."""
