"""adspark: deep anomaly detection on event tables with Spark, Delta and autoencoders."""

__version__ = "0.1.0"
