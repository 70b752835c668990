"""Detectors: Keras networks (built apart) and the detector wrappers around them."""
