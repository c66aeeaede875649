"""Evaluation of UniCL models: zero-shot classification, linear probes, retrieval, prediction,
embedding export. Every evaluator takes the model, the data (a source string or mapping, an
opened source or an `EvalDataset`) and options, and returns a dict of metrics."""

from unicl.evaluate.embed import Shards, embed_images, embed_texts, encode_dataset
from unicl.evaluate.export import export_embeddings
from unicl.evaluate.harness import create_model_and_transforms, get_tokenizer
from unicl.evaluate.linear_probe import linear_probe, linear_probe_on_features
from unicl.evaluate.logistic_regression import (
    LogisticRegression,
    fit_logistic_regression,
    select_l2,
)
from unicl.evaluate.metrics import classification_metrics, retrieval_recall, topk_accuracy
from unicl.evaluate.predict import Prediction, predict
from unicl.evaluate.retrieval import evaluate_retrieval
from unicl.evaluate.zeroshot import build_zeroshot_classifier, classify, evaluate_zeroshot

__all__ = [
    "LogisticRegression",
    "Prediction",
    "Shards",
    "build_zeroshot_classifier",
    "classification_metrics",
    "classify",
    "create_model_and_transforms",
    "embed_images",
    "embed_texts",
    "encode_dataset",
    "evaluate_retrieval",
    "evaluate_zeroshot",
    "export_embeddings",
    "fit_logistic_regression",
    "get_tokenizer",
    "linear_probe",
    "linear_probe_on_features",
    "predict",
    "retrieval_recall",
    "select_l2",
    "topk_accuracy",
]
