"""nexttoken: next-token prediction with small transformers, from "See you" to sinusoids."""

from .checkpoint import CheckpointError
from .forecast import Forecast, forecast
from .generate import generate, stream
from .infill import infill
from .lm import LanguageModel, load, pretrained_models
from .model import GPT, GPTConfig
from .signals import FAMILIES
from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer
from .train import TrainConfig, train

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "CheckpointError",
    "FAMILIES",
    "Forecast",
    "GPT",
    "GPTConfig",
    "LanguageModel",
    "SignalTokenizer",
    "TrainConfig",
    "forecast",
    "generate",
    "infill",
    "load",
    "pretrained_models",
    "stream",
    "train",
]

__version__ = "0.1.0"
