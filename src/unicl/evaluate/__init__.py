"""Evaluation of UniCL models: zero-shot classification, linear probes, retrieval, prediction."""

from unicl.evaluate.logistic_regression import (
    LogisticRegression,
    fit_logistic_regression,
    select_l2,
)
from unicl.evaluate.metrics import classification_metrics, retrieval_recall, topk_accuracy

__all__ = [
    "LogisticRegression",
    "classification_metrics",
    "fit_logistic_regression",
    "retrieval_recall",
    "select_l2",
    "topk_accuracy",
]
