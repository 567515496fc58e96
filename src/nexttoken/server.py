"""``nexttoken serve``: the explorer, a local web page and a typed JSON API over loaded models.

The page (``nexttoken/web/``: HTML, CSS and JavaScript that draw their own SVG charts, no
CDN, works offline) and the API share one FastAPI process. Every request and response has a
pydantic model, so ``GET /openapi.json`` is the API's contract and ``GET /docs`` shows it
(Swagger UI, served from the installed ``swagger-ui-bundle-v2`` package: no network needed):

- ``GET /api/models``: the models, each by the name or path it was given, and the oscillator
  families a signal can be drawn from; ``GET /api/status``: each model's queue;
- ``POST /api/next`` ``{model, prompt, top}``: exactly ``nexttoken next --json``;
- ``POST /api/generate`` ``{model, prompt, max_new_tokens, greedy, temperature, top_k, top_p,
  min_p, repetition_penalty, seed, last_token_only}``: exactly ``nexttoken generate --json``;
- ``POST /api/forecast`` ``{model, series | csv, horizon, samples, temperature, top_k, top_p,
  min_p, seed, trend, paths}``: the long rows of ``nexttoken forecast``'s OUT.csv (``paths:
  true`` adds the sample paths and contexts, for a chart);
- ``POST /api/distribution``: the next-token distribution before and after the decoding
  filters, with the prompt's tokens and the last-token-only distribution (the page's table);
- ``POST /api/frequencies``: ``nexttoken sample-frequencies --json``;
- ``POST /api/steps``: one forecast path with the next-value distribution at each step;
- ``GET /api/oscillator?family=&length=&seed=``: one generated series.

Bad input is a 4xx with ``{"error": message, "detail": [...]}``: the message names each field
and what to change. Requests are capped at :data:`MAX_BODY` bytes, and the work one request
may ask for is capped too (:data:`MAX_NEW_TOKENS`, :data:`MAX_FORECAST_VALUES`, ...).

Each model has a :class:`nexttoken.batching.Batcher`: ``next``, ``generate`` and ``forecast``
requests that arrive while the model works on others (or within ``batch_window`` seconds of the
first, or of the callers it expects back) are decoded as one batch, each with its own seed, so
that each gets the tokens it would get alone. The other endpoints
take the model's lock, which the batcher also holds while it works: one model works on one
thing at a time, and the page and other models stay responsive. All of a model's work, its
loading included, runs on its batcher's thread (:meth:`nexttoken.batching.Batcher.call`:
PyTorch's CPU kernels run fastest from one thread).
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .analysis import next_token_probs, sample_frequencies, top_tokens
from .batching import Batcher
from .checkpoint import CheckpointError
from .lm import LanguageModel, load
from .sampling import apply_repetition_penalty, check_sampling_args, process_logits
from .tokenizers import SignalTokenizer

__all__ = ["create_app", "ModelPool", "MAX_BODY", "WEB_DIR", "ApiError"]

#: Largest request body accepted (a CSV of a few hundred thousand values fits).
MAX_BODY = 8 * 1024 * 1024
#: Caps that keep one request from holding a model for minutes.
MAX_NEW_TOKENS = 1024
MAX_SAMPLES = 200
MAX_HORIZON = 2048
MAX_DRAWS = 100_000
MAX_TOP = 200
#: A forecast's work: series x samples x horizon values sampled, at most.
MAX_FORECAST_VALUES = 2_000_000
#: A prompt's characters (text) or values (numbers), at most (the model's window caps tokens).
MAX_PROMPT = 200_000
#: Largest magnitude of a value in a series or prompt: squares of larger numbers overflow.
MAX_VALUE = 1e150
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed takes
WEB_DIR = Path(__file__).parent / "web"


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and a message that says what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelPool:
    """Models loaded once, by the name or path they were given, each with its lock and its
    batcher (which holds that lock while it runs a batch)."""

    def __init__(
        self,
        specs: list[str],
        device: str = "cpu",
        allow_pickle: bool = False,
        batch_window: float = 0.0,
        batching: bool = True,
        batch_max_wait: float = 0.05,
    ):
        self.models: dict[str, LanguageModel] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.batchers: dict[str, Batcher] = {}
        for spec in specs:
            if spec in self.models:
                continue
            # each model is loaded on its batcher's thread, and all its work runs there
            lock = threading.Lock()
            batcher = Batcher(
                None,
                window=batch_window,
                max_calls=256 if batching else 1,
                lock=lock,
                max_wait=batch_max_wait,
            )
            lm = batcher.call(_loaded, spec, device, allow_pickle)
            batcher.model = lm.model
            self.models[spec] = lm
            self.locks[spec] = lock
            self.batchers[spec] = batcher

    def run(self, name: str, work: Any, *args: Any) -> Any:
        """``work(lm, *args)`` on model ``name``'s thread (its batcher's), under its lock, in
        inference mode."""
        lm, lock, _ = self.get(name)

        def locked() -> Any:
            with lock, torch.inference_mode():
                return work(lm, *args)

        return self.batchers[name].call(locked)

    def get(self, name: str) -> tuple[LanguageModel, threading.Lock, Batcher]:
        if name not in self.models:
            known = ", ".join(self.models) or "none"
            raise ApiError(404, f"unknown model {name!r}; this server has: {known}")
        return self.models[name], self.locks[name], self.batchers[name]

    def describe(self) -> list[dict[str, Any]]:
        return [
            {**describe_model(name, lm), "queue": self.batchers[name].status()}
            for name, lm in self.models.items()
        ]


def _loaded(spec: str, device: str, allow_pickle: bool) -> LanguageModel:
    lm = load(spec, device=device, allow_pickle=allow_pickle)
    lm.model.eval()
    return lm


def describe_model(name: str, lm: LanguageModel) -> dict[str, Any]:
    """What the page shows about a model and needs to pick its panel."""
    c = lm.model.config
    tok = lm.tokenizer
    info: dict[str, Any] = {
        "name": name,
        "kind": "signal" if lm.is_signal else "text",
        "objective": c.objective,
        "context_length": c.context_length,
        "vocab_size": c.vocab_size,
        "n_layer": c.n_layer,
        "n_embd": c.n_embd,
        "parameters": lm.model.num_params(),
        "tokenizer": None if tok is None else tok.kind,
        "description": str(lm.config.get("description", "")),
    }
    if isinstance(tok, SignalTokenizer):
        info.update(bins=tok.n_bins, scaling=tok.scaling)
    return info


# --- requests --------------------------------------------------------------------------------


def _whole(value: Any) -> Any:
    """A float with no fractional part as an int: JSON Schema's integers include 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Whole numbers within limits: 3 or 3.0, not "3" or 3.5 (the limits stay in the JSON schema).
_Whole = BeforeValidator(_whole)
Seed = Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1]), _Whole]
TopK = Annotated[int, Field(ge=1), _Whole]
Top = Annotated[int, Field(ge=1, le=MAX_TOP), _Whole]
NewTokens = Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS), _Whole]
Draws = Annotated[int, Field(ge=1, le=MAX_DRAWS), _Whole]
Horizon = Annotated[int, Field(ge=1, le=MAX_HORIZON), _Whole]
Samples = Annotated[int, Field(ge=1, le=MAX_SAMPLES), _Whole]
Season = Annotated[int, Field(ge=1, le=MAX_PROMPT), _Whole]
Value = Annotated[float, Field(ge=-MAX_VALUE, le=MAX_VALUE)]
Values = Annotated[list[Value | None], Field(max_length=MAX_PROMPT)]


class Request(BaseModel):
    """What every request shares: strict JSON types, finite numbers, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    model: str = Field(description="a model this server has (GET /api/models lists them)")


class SamplingFields(BaseModel):
    temperature: float = Field(1.0, ge=0, le=100, description="0 = greedy; <1 sharpens")
    top_k: TopK | None = Field(None, description="sample among the K most probable tokens")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus: smallest set with mass P")
    min_p: float | None = Field(None, ge=0, le=1, description="drop tokens below MIN_P x top")


class PromptRequest(Request):
    prompt: Annotated[str, Field(max_length=MAX_PROMPT)] | Values = Field(
        description="text for a text model; for a signal model comma-separated numbers or a "
        "list of numbers (null = missing)"
    )


class NextRequest(PromptRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model": "MODEL", "prompt": "see you", "top": 10}]}
    )

    top: Top = Field(10, description="rows of the table")


class DistributionRequest(NextRequest, SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "MODEL", "prompt": "see you", "top": 10, "temperature": 0.8, "top_p": 0.9}
            ]
        }
    )

    repetition_penalty: float | None = Field(None, ge=1e-3, le=1e3)


class GenerateRequest(PromptRequest, SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "MODEL",
                    "prompt": "see you",
                    "max_new_tokens": 8,
                    "temperature": 0.8,
                    "seed": 0,
                }
            ]
        }
    )

    max_new_tokens: NewTokens = 1
    greedy: bool = False
    repetition_penalty: float | None = Field(None, ge=1e-3, le=1e3)
    seed: Seed | None = None
    last_token_only: bool = Field(False, description="predict each token from the last alone")


class FrequenciesRequest(NextRequest, SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model": "MODEL", "prompt": "see you", "n": 1000, "top": 10, "seed": 0}]
        }
    )

    n: Draws = Field(1000, description="draws")
    seed: Seed | None = None
    repetition_penalty: float | None = Field(None, ge=1e-3, le=1e3)


SeriesInput = Values | list[Values] | dict[str, Values]
#: Two periods of a sine, the example the API's page (/docs) fills in.
_EXAMPLE_SERIES: list[Any] = [round(math.sin(2 * math.pi * t / 12), 4) for t in range(24)]


class StepsRequest(Request, SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["series"]}, {"required": ["csv"]}],
            "examples": [{"model": "MODEL", "series": _EXAMPLE_SERIES, "horizon": 12, "seed": 0}],
        }
    )

    series: SeriesInput | None = Field(
        None,
        description="numbers, lists of numbers (several series), or an object of name -> "
        "numbers; null marks a missing value",
    )
    csv: Annotated[str, Field(max_length=MAX_BODY)] | None = Field(
        None, description="the text of a CSV file in any form `nexttoken forecast` reads"
    )
    horizon: Horizon = 24
    seed: Seed = 0


class ForecastRequest(StepsRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["series"]}, {"required": ["csv"]}],
            "examples": [
                {
                    "model": "MODEL",
                    "series": _EXAMPLE_SERIES,
                    "horizon": 12,
                    "samples": 20,
                    "seed": 0,
                }
            ],
        }
    )

    samples: Samples = Field(20, description="sample paths per series")
    trend: Literal["auto", "linear", "none"] = "auto"
    season: list[Season] | None = Field(
        None,
        max_length=4,
        description="the series' known seasons in steps, the main one first (e.g. [24, 168] "
        "for hourly data); with trend auto a strong one is taken out before the model "
        "forecasts and added back (nexttoken.forecast's season)",
    )
    paths: bool = Field(False, description="add the sample paths and contexts")


# --- responses -------------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueOut(Out):
    queued: int
    running: int
    batches: int
    requests: int
    largest_batch: int
    window_ms: float
    max_calls: int
    waited_ms: float
    shared: int


class ModelOut(Out):
    name: str
    kind: Literal["signal", "text"]
    objective: str
    context_length: int
    vocab_size: int
    n_layer: int
    n_embd: int
    parameters: int
    tokenizer: str | None
    description: str
    bins: int | None = None
    scaling: str | None = None
    queue: QueueOut


class ModelsOut(Out):
    models: list[ModelOut]
    families: list[str]


class StatusOut(Out):
    models: dict[str, QueueOut]


class TokenOut(Out):
    rank: int
    id: int
    token: str
    probability: float


class NextOut(Out):
    prompt_ids: list[int]
    top: list[TokenOut]
    total: float


class GenerateOut(Out):
    prompt_ids: list[int]
    ids: list[int]
    text: str
    values: list[float] | None = None


class RowOut(TokenOut):
    text: str
    cumulative: float
    filtered: float | None = None


class TableOut(Out):
    top: list[RowOut]
    total: float
    entropy: float
    kept: int | None = None


class PromptTokenOut(Out):
    id: int
    token: str


class BinsOut(Out):
    values: list[float]
    ids: list[int]
    probability: list[float]
    filtered: list[float]


class SettingsOut(Out):
    temperature: float
    top_k: int | None
    top_p: float | None
    min_p: float | None
    repetition_penalty: float | None


class DistributionOut(Out):
    prompt_tokens: list[PromptTokenOut]
    raw: TableOut
    filtered: TableOut
    last_token: TableOut
    settings: SettingsOut
    bins: BinsOut | None = None


class DrawOut(TokenOut):
    count: int
    frequency: float


class OtherOut(Out):
    probability: float
    count: int
    frequency: float


class FrequenciesOut(Out):
    prompt_ids: list[int]
    n: int
    top: list[DrawOut]
    other: OtherOut


class SeriesOut(Out):
    name: str
    context: list[float | None]
    samples: list[list[float]]
    median: list[float]
    q10: list[float]
    q90: list[float]
    trend_removed: bool
    season_removed: bool


class ForecastOut(Out):
    rows: list[dict[str, str | int | float | None]] = Field(
        description="OUT.csv's rows: series, step, [ds,] mean, median, q0.1 .. q0.9"
    )
    series: list[SeriesOut] | None = None


class StepsOut(Out):
    name: str
    context: list[float | None]
    path: list[float]
    bin_values: list[float]
    probs: list[list[float]]
    chosen: list[int]


class OscillatorOut(Out):
    family: str
    values: list[float]


class ErrorOut(Out):
    error: str = Field(description="what is wrong and what to change")
    detail: list[dict[str, Any]] | None = None


# --- the work behind each endpoint (run in a worker thread) --------------------------------


def _sampling(r: SamplingFields, repetition_penalty: float | None = None) -> dict[str, Any]:
    """The decoding settings of a request, checked as the library checks them."""
    s: dict[str, Any] = {
        "temperature": r.temperature,
        "top_k": r.top_k,
        "top_p": r.top_p,
        "min_p": r.min_p,
        "repetition_penalty": repetition_penalty,
    }
    try:
        check_sampling_args(**s)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return s


def _prompt(lm: LanguageModel, r: PromptRequest) -> Any:
    """The prompt as the library takes it (a signal list: null -> NaN)."""
    if isinstance(r.prompt, list):
        if not lm.is_signal:
            raise ApiError(400, "'prompt' must be a string of text for a text model")
        # (each number is within +-MAX_VALUE already: the request model's Value type)
        return [math.nan if v is None else v for v in r.prompt]
    return r.prompt


def _prompt_ids(lm: LanguageModel, r: PromptRequest) -> list[int]:
    """The prompt's ids; a prompt longer than the model's window is refused."""
    prompt = _prompt(lm, r)
    try:
        if lm.is_signal and isinstance(prompt, str):
            values = lm.prompt_values(prompt)
            if np.nanmax(np.abs(values), initial=0.0) > MAX_VALUE:
                raise ApiError(400, f"'prompt' has values beyond +-{MAX_VALUE:g}; rescale them")
        ids = lm.encode(prompt)
    except (ValueError, TypeError) as e:
        raise ApiError(400, str(e)) from None
    window = lm.model.config.context_length
    if len(ids) > window:
        raise ApiError(
            422,
            f"the prompt has {len(ids)} tokens, more than the model's context window of {window}; "
            f"shorten it to its last {window} tokens",
        )
    return ids


def _causal(lm: LanguageModel) -> None:
    if not lm.model.config.causal:
        raise ApiError(
            400, "this model is a masked LM: it fills gaps (nexttoken infill), it does not predict"
        )


def _signal(lm: LanguageModel) -> SignalTokenizer:
    if not isinstance(lm.tokenizer, SignalTokenizer):
        raise ApiError(400, "forecasts need a signal model; this one reads text")
    return lm.tokenizer


def next_json(lm: LanguageModel, r: NextRequest, batcher: Batcher) -> dict[str, Any]:
    """``nexttoken next --json``."""
    _causal(lm)
    _prompt_ids(lm, r)  # checks the prompt
    table = lm.next_token_distribution(_prompt(lm, r), r.top, probs_fn=batcher.next_probs)
    return table.to_json()


def generate_json(lm: LanguageModel, r: GenerateRequest, batcher: Batcher) -> dict[str, Any]:
    """``nexttoken generate --json``."""
    _causal(lm)
    _prompt_ids(lm, r)  # checks the prompt
    settings = _sampling(r, r.repetition_penalty)
    return lm.generate(
        _prompt(lm, r),
        r.max_new_tokens,
        greedy=r.greedy,
        seed=r.seed,
        last_token_only=r.last_token_only,
        generate_fn=batcher.generate,
        **settings,
    )


def _rows_of(lm: LanguageModel, probs: torch.Tensor, ids: list[int], top: int, affine: Any) -> Any:
    table = top_tokens(probs, ids, lambda i: lm.token_str(i, *affine), top)
    rows = [
        {
            "rank": r.rank,
            "id": r.id,
            "token": r.token,
            "text": _token_text(lm, r.id, affine),
            "probability": r.probability,
            "cumulative": r.cumulative,
        }
        for r in table.rows
    ]
    return {"top": rows, "total": table.total, "entropy": table.entropy}


def _token_text(lm: LanguageModel, token_id: int, affine: Any) -> str:
    """What appending the token adds to the prompt: its text, or its value for a signal."""
    if lm.is_signal or lm.tokenizer is None:
        return lm.token_str(token_id, *affine)
    return str(lm.decode([token_id]))


def distribution_json(lm: LanguageModel, r: DistributionRequest) -> dict[str, Any]:
    """The page's table: the raw distribution's top rows with each one's filtered probability,
    the prompt's tokens, and the distribution given only the last token."""
    _causal(lm)
    ids = _prompt_ids(lm, r)
    settings = _sampling(r, r.repetition_penalty)
    affine = lm.affine_of(_prompt(lm, r)) if lm.is_signal else (1.0, 0.0)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    filtered = _filtered(lm, probs, ids, settings)
    raw = _rows_of(lm, probs, ids, r.top, affine)
    for row in raw["top"]:
        row["filtered"] = float(filtered[row["id"]])
    out: dict[str, Any] = {
        "prompt_tokens": [{"id": i, "token": lm.token_str(i, *affine)} for i in ids],
        "raw": raw,
        "filtered": {
            **_rows_of(lm, filtered, ids, r.top, affine),
            "kept": int((filtered > 0).sum()),
        },
        "last_token": _rows_of(
            lm, next_token_probs(lm.model, torch.tensor(ids[-1:])), ids[-1:], r.top, affine
        ),
        "settings": settings,
    }
    if lm.is_signal:
        out["bins"] = _bins(lm, probs, filtered, affine)
    return out


def _filtered(
    lm: LanguageModel, probs: torch.Tensor, ids: list[int], settings: dict[str, Any]
) -> torch.Tensor:
    """The distribution ``generate`` samples from under ``settings`` (greedy: all on argmax)."""
    logits = probs.clamp_min(1e-300).log()
    if isinstance(lm.tokenizer, SignalTokenizer):
        logits[lm.tokenizer.special_ids] = -math.inf
    if settings["repetition_penalty"] is not None:
        logits = apply_repetition_penalty(
            logits[None], torch.tensor([ids]), settings["repetition_penalty"]
        )[0]
    if settings["temperature"] == 0:
        out = torch.zeros_like(probs)
        out[int(logits.argmax())] = 1.0
        return out
    processed = process_logits(
        logits,
        temperature=settings["temperature"],
        top_k=settings["top_k"],
        top_p=settings["top_p"],
        min_p=settings["min_p"],
    )
    return processed.softmax(-1)


def _bins(
    lm: LanguageModel, probs: torch.Tensor, filtered: torch.Tensor, affine: Any
) -> dict[str, Any]:
    tok = lm.tokenizer
    assert isinstance(tok, SignalTokenizer)
    first = tok.n_special
    scale, loc = affine
    return {
        "values": (tok.centers().numpy() * scale + loc).tolist(),
        "ids": list(range(first, first + tok.n_bins)),
        "probability": probs[first : first + tok.n_bins].tolist(),
        "filtered": filtered[first : first + tok.n_bins].tolist(),
    }


def frequencies_json(lm: LanguageModel, r: FrequenciesRequest) -> dict[str, Any]:
    """``nexttoken sample-frequencies --json``; decoding settings, when given, shape the
    distribution drawn from (the CLI draws from the full one)."""
    _causal(lm)
    ids = _prompt_ids(lm, r)
    affine = lm.affine_of(_prompt(lm, r)) if lm.is_signal else (1.0, 0.0)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    shaping = {"temperature", "top_k", "top_p", "min_p", "repetition_penalty"}
    if r.model_fields_set & shaping:
        probs = _filtered(lm, probs, ids, _sampling(r, r.repetition_penalty)).double()
    table = sample_frequencies(probs, r.n, lambda i: lm.token_str(i, *affine), r.top, r.seed)
    return {"prompt_ids": ids, **table.to_json()}


def _series(r: StepsRequest) -> tuple[list[np.ndarray], list[str], list[Any]]:
    """The contexts of a forecast request: ``series`` or ``csv``."""
    from .frames import read_series, read_table

    if r.csv is not None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "upload.csv"
            path.write_text(r.csv)
            try:
                table = read_table(path)
            except (ValueError, ImportError) as e:
                raise ApiError(400, str(e).replace(str(path), "the CSV")) from None
        return table.values, table.names, table.times
    if r.series is None:
        raise ApiError(400, "give 'series' (numbers, or lists of numbers) or 'csv' (a file's text)")
    data: Any = r.series
    names = None
    if isinstance(data, dict):
        names, data = list(data), list(data.values())

    def floats(v: list[float | None]) -> list[float]:
        return [math.nan if x is None else x for x in v]

    data = [floats(v) for v in data] if data and isinstance(data[0], list) else floats(data)
    try:
        given = read_series(data, names)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return given.values, given.names, given.times


def _trimmed(values: list[np.ndarray], names: list[str], times: list[Any]) -> Any:
    contexts, stamps = [], []
    for name, v, t in zip(names, values, times, strict=True):
        observed = np.flatnonzero(~np.isnan(v))
        if observed.size == 0:
            raise ApiError(400, f"series {name!r} has no observed values; fill it or leave it out")
        if np.abs(v[observed]).max() > MAX_VALUE:
            raise ApiError(
                400,
                f"series {name!r} has values beyond +-{MAX_VALUE:g}; rescale it (divide by a "
                "power of ten) and scale the forecast back",
            )
        end = observed[-1] + 1  # the forecast starts after the last value
        contexts.append(v[:end])
        stamps.append(None if t is None else t[:end])
    return contexts, stamps


def _forecast(
    lm: LanguageModel, r: StepsRequest, samples: int, trend: str, batcher: Batcher | None
) -> Any:
    from .forecast import forecast

    _signal(lm)
    _causal(lm)
    settings = _sampling(r)
    values, names, times = _series(r)
    work = len(values) * samples * r.horizon
    if work > MAX_FORECAST_VALUES:
        raise ApiError(
            413,
            f"this forecast would sample {len(values)} series x {samples} paths x {r.horizon} "
            f"steps = {work:,} values, over the limit of {MAX_FORECAST_VALUES:,} per request; "
            "send fewer series, paths or steps at a time",
        )
    contexts, stamps = _trimmed(values, names, times)
    try:
        f = forecast(
            lm,
            contexts,
            r.horizon,
            num_samples=samples,
            temperature=settings["temperature"],
            top_k=settings["top_k"],
            top_p=settings["top_p"],
            min_p=settings["min_p"],
            greedy=settings["temperature"] == 0,
            seed=r.seed,
            names=names,
            trend=trend,
            season=getattr(r, "season", None) if trend == "auto" else None,
            generate_fn=None if batcher is None else batcher.generate,
        )
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return f, contexts, stamps


def forecast_json(lm: LanguageModel, r: ForecastRequest, batcher: Batcher) -> dict[str, Any]:
    """The long rows of ``nexttoken forecast``'s OUT.csv (+ paths and contexts on request)."""
    from .frames import future_times

    f, contexts, stamps = _forecast(lm, r, r.samples, r.trend, batcher)
    header, rows = f.rows([future_times(t, r.horizon) for t in stamps])
    out: dict[str, Any] = {"rows": [dict(zip(header, row, strict=True)) for row in rows]}
    if r.paths:
        out["series"] = [
            {
                "name": name,
                "context": _json_floats(c),
                "samples": f.samples[i].tolist(),
                "median": f.median[i].tolist(),
                "q10": f.quantiles[i, 0].tolist(),
                "q90": f.quantiles[i, -1].tolist(),
                "trend_removed": bool(f.trend_removed[i]),
                "season_removed": bool(f.season_removed[i]),
            }
            for i, (name, c) in enumerate(zip(f.names, contexts, strict=True))
        ]
    return out


def steps_json(lm: LanguageModel, r: StepsRequest) -> dict[str, Any]:
    """One sample path of the first series, with the next-value distribution at each step."""
    from .forecast import path_distributions

    # the model's own distributions: no trend line taken out of the series first
    f, contexts, _ = _forecast(lm, r, 1, "none", None)
    probs, values = path_distributions(lm, f, contexts[0])
    return {
        "name": f.names[0],
        "context": _json_floats(contexts[0]),
        "path": f.samples[0, 0].tolist(),
        "bin_values": values.tolist(),
        "probs": probs.astype(np.float32).tolist(),
        "chosen": (f.ids[0, 0] - _signal(lm).n_special).tolist() if f.ids is not None else [],
    }


def _json_floats(v: np.ndarray) -> list[float | None]:
    return [None if math.isnan(x) else float(x) for x in v]


def oscillator_json(family: str, length: int, seed: int) -> dict[str, Any]:
    from .signals import FAMILIES, generate

    if family not in FAMILIES:
        raise ApiError(400, f"unknown family {family!r}; pick one of {', '.join(FAMILIES)}")
    values = generate(family, 1, length, seed=seed)[0]
    return {"family": family, "values": [float(x) for x in values]}


# --- the app ---------------------------------------------------------------------------------


def create_app(pool: ModelPool) -> Any:
    """The FastAPI app of the explorer over ``pool``'s models."""
    from fastapi import FastAPI, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.requests import Request as HttpRequest
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from . import __version__

    app = FastAPI(
        title="nexttoken explorer API",
        version=__version__,
        description="Next-token tables, generation, forecasts and their distributions over the "
        'models this server loaded. Errors are {"error": message} with a 4xx status.',
        docs_url=None,
        redoc_url=None,
    )
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut} for code in (400, 404, 413, 422)
    }

    # Routes that wait for a model are plain functions (FastAPI runs them in its thread pool);
    # the cheap ones are coroutines, answered on the event loop even when every pool thread
    # waits for a model.
    def model_work(name: str, work: Any, *args: Any) -> Any:
        """Run ``work(lm, *args)`` on the model's thread under its lock, in inference mode."""
        return pool.run(name, work, *args)

    def batched(name: str, work: Any, r: Any) -> Any:
        """Run ``work(lm, r, batcher)``: its model calls go through the model's batcher."""
        lm, _, batcher = pool.get(name)
        with torch.inference_mode():
            return work(lm, r, batcher)

    @app.get("/api/models", response_model=ModelsOut, tags=["models"])
    async def models() -> Any:
        """The models, by the name or path each was given, and the oscillator families."""
        from .signals import FAMILIES

        return {"models": pool.describe(), "families": list(FAMILIES)}

    @app.get("/api/status", response_model=StatusOut, tags=["models"])
    async def status() -> Any:
        """Each model's batcher: requests waiting, running, and batches run so far."""
        return {"models": {name: b.status() for name, b in pool.batchers.items()}}

    @app.post("/api/next", response_model=NextOut, responses=errors, tags=["tokens"])
    def next_(r: NextRequest) -> Any:
        """Exactly `nexttoken next MODEL PROMPT --top K --json`."""
        return batched(r.model, next_json, r)

    @app.post(
        "/api/generate",
        response_model=GenerateOut,
        response_model_exclude_unset=True,
        responses=errors,
        tags=["tokens"],
    )
    def generate_(r: GenerateRequest) -> Any:
        """Exactly `nexttoken generate ... --json` (values only for a signal model)."""
        return batched(r.model, generate_json, r)

    @app.post(
        "/api/forecast",
        response_model=ForecastOut,
        response_model_exclude_unset=True,
        responses=errors,
        tags=["signals"],
    )
    def forecast_(r: ForecastRequest) -> Any:
        """The rows of `nexttoken forecast`'s OUT.csv; `paths: true` adds the sample paths."""
        return batched(r.model, forecast_json, r)

    @app.post(
        "/api/distribution",
        response_model=DistributionOut,
        response_model_exclude_unset=True,
        responses=errors,
        tags=["tokens"],
    )
    def distribution(r: DistributionRequest) -> Any:
        """The next-token table before and after the decoding filters, and given the last token."""
        return model_work(r.model, distribution_json, r)

    @app.post("/api/frequencies", response_model=FrequenciesOut, responses=errors, tags=["tokens"])
    def frequencies(r: FrequenciesRequest) -> Any:
        """`nexttoken sample-frequencies --json`: N draws against the probabilities."""
        return model_work(r.model, frequencies_json, r)

    @app.post("/api/steps", response_model=StepsOut, responses=errors, tags=["signals"])
    def steps(r: StepsRequest) -> Any:
        """One sample path of the first series, with the next-value distribution at each step."""
        return model_work(r.model, steps_json, r)

    @app.get("/api/oscillator", response_model=OscillatorOut, responses=errors, tags=["signals"])
    async def oscillator(
        family: str = Query("single_sine", description="one of the families in /api/models"),
        length: int = Query(256, ge=8, le=4096),
        seed: int = Query(0, ge=0, le=2**32 - 1),
    ) -> Any:
        """One generated series of an oscillator family."""
        return oscillator_json(family, length, seed)

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        return FileResponse(WEB_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        if docs_assets is None:
            return HTMLResponse(
                "<p>The API's page needs swagger-ui-bundle-v2 (pip install 'nexttoken[serve]'); "
                'the schema itself is at <a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="nexttoken explorer API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    async def api_error(request: HttpRequest, e: Exception) -> Response:
        assert isinstance(e, ApiError)
        return JSONResponse({"error": str(e)}, status_code=e.status)

    async def http_error(request: HttpRequest, e: Exception) -> Response:
        assert isinstance(e, StarletteHTTPException)
        detail = e.detail if isinstance(e.detail, str) else "the request was refused"
        if e.status_code == 400 and "parsing the body" in detail:
            detail = "the request body could not be read as JSON; send a JSON object"
        return JSONResponse({"error": detail}, status_code=e.status_code, headers=e.headers)

    async def bad_value(request: HttpRequest, e: Exception) -> Response:
        return JSONResponse({"error": str(e)}, status_code=400)

    async def invalid(request: HttpRequest, e: Exception) -> Response:
        assert isinstance(e, RequestValidationError)
        message, detail = validation_message(e.errors(), _FIELD_LIMITS.get(request.url.path, {}))
        return JSONResponse({"error": message, "detail": detail}, status_code=400)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with each request's ``model`` an enum of the loaded models' names
        (what a client may send; an unknown name is a 404)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            names = list(pool.models)
            for component in schema.get("components", {}).get("schemas", {}).values():
                model = component.get("properties", {}).get("model")
                if model is not None and names:
                    model["enum"] = names
                for example in component.get("examples", []):
                    if example.get("model") == "MODEL" and names:
                        name = _example_model(pool, component.get("title", ""))
                        example["model"] = name
                        if "prompt" in example and pool.models[name].is_signal:
                            example["prompt"] = "0,0.5,0.87,1,0.87,0.5,0,-0.5,-0.87,-1"
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ValueError, bad_value)
    app.add_exception_handler(CheckpointError, bad_value)
    app.add_exception_handler(RequestValidationError, invalid)
    docs_assets = _swagger_assets()
    if docs_assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return _BodyLimit(app, MAX_BODY)


def _example_model(pool: ModelPool, request: str) -> str:
    """The model the page's example of ``request`` names: a signal model for forecasts, a text
    model (if any) for the token routes."""
    want_signal = request in ("ForecastRequest", "StepsRequest")
    for name, lm in pool.models.items():
        if lm.is_signal == want_signal:
            return name
    return next(iter(pool.models))


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the installed ``swagger-ui-bundle-v2`` package, if any."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(str(swagger_ui_path))
    return path if (path / "swagger-ui-bundle.js").is_file() else None


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, refused from its
    Content-Length before anything is read, or as soon as the bytes read pass the limit."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    def __getattr__(self, name: str) -> Any:  # the FastAPI app's attributes (routes, ...)
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_big(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_big(send)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, when it comes

        await self.app(scope, replay, send)

    async def _too_big(self, send: Any) -> None:
        from fastapi.responses import JSONResponse

        response = JSONResponse(
            {
                "error": f"the request is over {self.limit // (1024 * 1024)} MB; send less data at a time"
            },
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Any:
    return {"type": "http.disconnect"}


# --- validation errors, in words -------------------------------------------------------------

#: Per route, each field's accepted range (from the request models), for messages such as
#: "'top' must be between 1 and 200".
_FIELD_LIMITS: dict[str, dict[str, tuple[Any, Any]]] = {}
_ROUTE_MODELS: dict[str, type[BaseModel]] = {
    "/api/next": NextRequest,
    "/api/generate": GenerateRequest,
    "/api/forecast": ForecastRequest,
    "/api/distribution": DistributionRequest,
    "/api/frequencies": FrequenciesRequest,
    "/api/steps": StepsRequest,
}


def _limits(model: type[BaseModel]) -> dict[str, tuple[Any, Any]]:
    """Each field's (minimum, maximum) as the request's JSON schema states them."""
    out: dict[str, tuple[Any, Any]] = {}
    for name, prop in model.model_json_schema().get("properties", {}).items():
        options = [prop, *prop.get("anyOf", [])]
        lo = next(
            (
                o.get("minimum", o.get("exclusiveMinimum"))
                for o in options
                if "minimum" in o or "exclusiveMinimum" in o
            ),
            None,
        )
        hi = next(
            (
                o.get("maximum", o.get("exclusiveMaximum"))
                for o in options
                if "maximum" in o or "exclusiveMaximum" in o
            ),
            None,
        )
        out[name] = (lo, hi)
    out["_keys"] = (tuple(sorted(model.model_fields, key=lambda k: k != "model")), None)
    return out


_FIELD_LIMITS.update({path: _limits(m) for path, m in _ROUTE_MODELS.items()})
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "an object",
}
_HINTS = {
    "prompt": "text, or for a signal model comma-separated numbers or a list of numbers",
    "series": "a list of numbers, a list of such lists, or an object of name -> numbers "
    "(null = missing)",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_message(
    errors: Any, limits: dict[str, tuple[Any, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """pydantic's errors of one request as one line that names each field and what to change,
    and a list of ``{"field", "message"}``."""
    by_field: dict[str, str] = {}
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        kind, value, ctx = err.get("type", ""), err.get("input"), err.get("ctx") or {}
        if kind == "json_invalid":
            by_field.setdefault(
                "", f"the request body is not valid JSON ({ctx.get('error', 'parse error')})"
            )
            continue
        if not loc:
            by_field.setdefault("", 'the request body must be a JSON object such as {"model": ...}')
            continue
        field = loc[0]
        if field in by_field:
            continue
        lo, hi = limits.get(field, (None, None))
        if kind == "missing":
            msg = f"'{field}' is missing; add it"
        elif kind == "extra_forbidden":
            keys = ", ".join(limits.get("_keys", ((), None))[0])
            msg = f"'{field}' is not a key of this request; the keys are: {keys}"
        elif field in _HINTS and len(loc) > 1 or field in _HINTS and kind.endswith("_type"):
            msg = f"'{field}' must be {_HINTS[field]} (got {_shown(value)})"
        elif kind == "finite_number" or isinstance(value, float) and not math.isfinite(value):
            msg = f"'{field}' must be a finite number (got {value!r})"
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            if lo is not None and hi is not None:
                msg = f"'{field}' must be between {lo:g} and {hi:g} (got {_shown(value)})"
            else:
                bound = next(iter(ctx.items()), ("", ""))
                sign = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}.get(bound[0], bound[0])
                msg = f"'{field}' must be {sign} {bound[1]} (got {_shown(value)})"
        elif kind == "literal_error":
            options = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
            msg = f"'{field}' must be one of {options} (got {_shown(value)})"
        elif kind == "too_long":
            msg = f"'{field}' is too long (at most {ctx.get('max_length')} items or characters)"
        else:
            expected = next((w for k, w in _KINDS.items() if kind.startswith(k)), None)
            msg = (
                f"'{field}' must be {expected} (got {_shown(value)})"
                if expected
                else f"'{field}': {err.get('msg', 'invalid')} (got {_shown(value)})"
            )
        by_field[field] = msg
    detail = [{"field": f or None, "message": m} for f, m in by_field.items()]
    return "; ".join(by_field.values()) or "the request is not valid", detail
