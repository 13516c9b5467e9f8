"""Models in the drop folder: kinds, cards, checkpoint headers, downloads, the sensor's decisions."""
