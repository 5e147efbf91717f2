"""Identity resolution: rules, blocking, graph clustering, stable ids, evaluation."""
