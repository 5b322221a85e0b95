"""Prediction with a trained checkpoint (``predictor``) and drawing detections (``drawing``)."""
