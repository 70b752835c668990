"""Registered models: the registry (rows in ``models``, artifacts under ``_artifacts/``), finding
the model of a config (:mod:`adspark.models.lookup`) and the optional MLflow mirror. Used by
training, scoring, reports and feedback alike; training itself lives in :mod:`adspark.train`."""
