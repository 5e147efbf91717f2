"""Predict: point-in-time churn features, Spark ML churn models tracked and registered in MLflow, batch scoring
from the registry alias, customer value (BG/NBD + Gamma-Gamma) and the next best retention action."""
