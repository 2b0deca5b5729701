"""Differentially private training: per-example gradient norms by ghost clipping, and
DP-SGD with (epsilon, delta) from the ``dp-accounting`` package (the ``dp`` extra)."""

from pycograd.privacy.dpsgd import DPSGD, DPTrainResult, dp_train
from pycograd.privacy.ghost import PrivacyError, per_sample_grad_norms

__all__ = ["DPSGD", "DPTrainResult", "PrivacyError", "dp_train", "per_sample_grad_norms"]
