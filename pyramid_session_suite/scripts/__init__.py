"""Console scripts (``session-suite``)."""
