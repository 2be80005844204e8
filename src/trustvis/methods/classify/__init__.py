"""Image classifiers: the small CPU-friendly recipe every classification method plugs into."""
