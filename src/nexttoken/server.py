"""``nexttoken serve``: the explorer, a local web page and a JSON API over loaded models.

The page (``nexttoken/web/``: HTML, CSS and JavaScript that draw their own SVG charts, no
CDN, works offline) and the API share one process. Every endpoint takes and returns JSON:

- ``GET /api/models``: the models, each by the name or path it was given, and the oscillator
  families a signal can be drawn from;
- ``POST /api/next`` ``{model, prompt, top}``: exactly ``nexttoken next --json``;
- ``POST /api/generate`` ``{model, prompt, max_new_tokens, greedy, temperature, top_k, top_p,
  min_p, repetition_penalty, seed, last_token_only}``: exactly ``nexttoken generate --json``;
- ``POST /api/forecast`` ``{model, series | csv, horizon, samples, temperature, top_k, top_p,
  seed, paths}``: the long rows of ``nexttoken forecast``'s OUT.csv (``paths: true`` adds the
  sample paths and contexts, for a chart);
- ``POST /api/distribution``: the next-token distribution before and after the decoding
  filters, with the prompt's tokens and the last-token-only distribution (the page's table);
- ``POST /api/frequencies``: ``nexttoken sample-frequencies --json``;
- ``POST /api/steps``: one forecast path with the next-value distribution at each step;
- ``GET /api/oscillator?family=&length=&seed=``: one generated series.

Bad input is a 4xx with ``{"error": message}`` that names the problem; requests are capped at
:data:`MAX_BODY` bytes. A model is loaded once, at start; its requests run one at a time in
a worker thread (a lock per model), so the page and other models stay responsive.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import next_token_probs, sample_frequencies, top_tokens
from .checkpoint import CheckpointError
from .lm import LanguageModel, load
from .sampling import apply_repetition_penalty, check_sampling_args, process_logits
from .tokenizers import SignalTokenizer

__all__ = ["create_app", "ModelPool", "MAX_BODY", "WEB_DIR"]

#: Largest request body accepted (a CSV of a few hundred thousand values fits).
MAX_BODY = 8 * 1024 * 1024
#: Caps that keep one request from holding a model for minutes.
MAX_NEW_TOKENS = 1024
MAX_SAMPLES = 200
MAX_HORIZON = 2048
MAX_DRAWS = 100_000
MAX_TOP = 200
WEB_DIR = Path(__file__).parent / "web"


class ApiError(Exception):
    """A request the API refuses: HTTP ``status`` and a message that says what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelPool:
    """Models loaded once, by the name or path they were given, each with its own lock."""

    def __init__(self, specs: list[str], device: str = "cpu", allow_pickle: bool = False):
        self.models: dict[str, LanguageModel] = {}
        self.locks: dict[str, threading.Lock] = {}
        for spec in specs:
            if spec in self.models:
                continue
            lm = load(spec, device=device, allow_pickle=allow_pickle)
            lm.model.eval()
            self.models[spec] = lm
            self.locks[spec] = threading.Lock()

    def get(self, name: Any) -> tuple[LanguageModel, threading.Lock]:
        if not isinstance(name, str) or name not in self.models:
            known = ", ".join(self.models) or "none"
            raise ApiError(404, f"unknown model {name!r}; this server has: {known}")
        return self.models[name], self.locks[name]

    def describe(self) -> list[dict[str, Any]]:
        return [describe_model(name, lm) for name, lm in self.models.items()]


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


# --- request checking ------------------------------------------------------------------------


def _number(body: dict[str, Any], key: str, default: Any, *, integer: bool = False) -> Any:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{key!r} must be a number (got {value!r})")
    if not math.isfinite(value):  # JSON's Infinity and NaN, which Python reads
        raise ApiError(400, f"{key!r} must be a finite number (got {value!r})")
    if integer:
        if float(value) != int(value):
            raise ApiError(400, f"{key!r} must be a whole number (got {value!r})")
        return int(value)
    return float(value)


def _bounded(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = _number(body, key, default, integer=True)
    if value is None or not low <= value <= high:
        raise ApiError(400, f"{key!r} must be between {low} and {high} (got {value!r})")
    return int(value)


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"{key!r} must be true or false (got {value!r})")
    return value


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings of a request, checked as the library checks them."""
    s = {
        "temperature": _number(body, "temperature", 1.0),
        "top_k": _number(body, "top_k", None, integer=True),
        "top_p": _number(body, "top_p", None),
        "min_p": _number(body, "min_p", None),
        "repetition_penalty": _number(body, "repetition_penalty", None),
    }
    if s["temperature"] is None:
        s["temperature"] = 1.0
    try:
        check_sampling_args(**s)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return s


def _prompt_ids(lm: LanguageModel, body: dict[str, Any]) -> list[int]:
    """The prompt's ids; a prompt longer than the model's window is refused."""
    prompt = body.get("prompt")
    if lm.is_signal:
        if isinstance(prompt, list):
            prompt = [math.nan if v is None else v for v in prompt]
        elif not isinstance(prompt, str):
            raise ApiError(400, "'prompt' must be comma-separated numbers or a list of numbers")
    elif not isinstance(prompt, str):
        raise ApiError(400, "'prompt' must be a string of text")
    try:
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


# --- the work behind each endpoint (run in a worker thread) --------------------------------


def next_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """``nexttoken next --json``."""
    _causal(lm)
    _prompt_ids(lm, body)  # checks the prompt
    top = _bounded(body, "top", 10, 1, MAX_TOP)
    return lm.next_token_distribution(_prompt_of(lm, body), top).to_json()


def generate_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """``nexttoken generate --json``."""
    _causal(lm)
    _prompt_ids(lm, body)  # checks the prompt
    n = _bounded(body, "max_new_tokens", 1, 1, MAX_NEW_TOKENS)
    settings = _sampling(body)
    seed = _number(body, "seed", None, integer=True)
    return lm.generate(
        _prompt_of(lm, body),
        n,
        greedy=_flag(body, "greedy"),
        seed=seed,
        last_token_only=_flag(body, "last_token_only"),
        **settings,
    )


def _prompt_of(lm: LanguageModel, body: dict[str, Any]) -> Any:
    prompt = body["prompt"]
    if lm.is_signal and isinstance(prompt, list):
        return [math.nan if v is None else v for v in prompt]
    return prompt


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


def distribution_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """The page's table: the raw distribution's top rows with each one's filtered probability,
    the prompt's tokens, and the distribution given only the last token."""
    _causal(lm)
    ids = _prompt_ids(lm, body)
    top = _bounded(body, "top", 10, 1, MAX_TOP)
    settings = _sampling(body)
    affine = lm.affine_of(_prompt_of(lm, body)) if lm.is_signal else (1.0, 0.0)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    filtered = _filtered(lm, probs, ids, settings)
    raw = _rows_of(lm, probs, ids, top, affine)
    for row in raw["top"]:
        row["filtered"] = float(filtered[row["id"]])
    out: dict[str, Any] = {
        "prompt_tokens": [{"id": i, "token": lm.token_str(i, *affine)} for i in ids],
        "raw": raw,
        "filtered": {
            **_rows_of(lm, filtered, ids, top, affine),
            "kept": int((filtered > 0).sum()),
        },
        "last_token": _rows_of(
            lm, next_token_probs(lm.model, torch.tensor(ids[-1:])), ids[-1:], top, affine
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


def frequencies_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """``nexttoken sample-frequencies --json``; decoding settings, when given, shape the
    distribution drawn from (the CLI draws from the full one)."""
    _causal(lm)
    ids = _prompt_ids(lm, body)
    n = _bounded(body, "n", 1000, 1, MAX_DRAWS)
    top = _bounded(body, "top", 10, 1, MAX_TOP)
    seed = _number(body, "seed", None, integer=True)
    affine = lm.affine_of(_prompt_of(lm, body)) if lm.is_signal else (1.0, 0.0)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    if any(k in body for k in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")):
        probs = _filtered(lm, probs, ids, _sampling(body)).double()
    table = sample_frequencies(probs, n, lambda i: lm.token_str(i, *affine), top, seed)
    return {"prompt_ids": ids, **table.to_json()}


def _series(body: dict[str, Any]) -> tuple[list[np.ndarray], list[str], list[Any]]:
    """The contexts of a forecast request: ``series`` (numbers, lists of numbers, or an object
    of name -> numbers; null = missing) or ``csv`` (the text of a CSV file in any form
    ``nexttoken forecast --input`` takes)."""
    from .frames import read_series, read_table

    if "csv" in body:
        if not isinstance(body["csv"], str):
            raise ApiError(400, "'csv' must be the text of a CSV file")
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "upload.csv"
            path.write_text(body["csv"])
            try:
                table = read_table(path)
            except (ValueError, ImportError) as e:
                raise ApiError(400, str(e).replace(str(path), "the CSV")) from None
        return table.values, table.names, table.times
    data = body.get("series")
    if data is None:
        raise ApiError(400, "give 'series' (numbers, or lists of numbers) or 'csv' (a file's text)")
    names = None
    if isinstance(data, dict):
        names, data = list(data), list(data.values())

    def floats(v: Any) -> Any:
        return [math.nan if x is None else x for x in v] if isinstance(v, list) else v

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
        end = observed[-1] + 1  # the forecast starts after the last value
        contexts.append(v[:end])
        stamps.append(None if t is None else t[:end])
    return contexts, stamps


def _forecast(lm: LanguageModel, body: dict[str, Any], samples_default: int) -> Any:
    from .forecast import TRENDS, forecast

    _signal(lm)
    _causal(lm)
    horizon = _bounded(body, "horizon", 24, 1, MAX_HORIZON)
    samples = _bounded(body, "samples", samples_default, 1, MAX_SAMPLES)
    settings = _sampling(body)
    seed = _number(body, "seed", 0, integer=True)
    trend = body.get("trend", "auto")
    if trend not in TRENDS:
        raise ApiError(400, f"'trend' must be one of {', '.join(TRENDS)} (got {trend!r})")
    values, names, times = _series(body)
    contexts, stamps = _trimmed(values, names, times)
    try:
        f = forecast(
            lm,
            contexts,
            horizon,
            num_samples=samples,
            temperature=settings["temperature"],
            top_k=settings["top_k"],
            top_p=settings["top_p"],
            min_p=settings["min_p"],
            greedy=settings["temperature"] == 0,
            seed=seed,
            names=names,
            trend=trend,
        )
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return f, contexts, stamps, horizon


def forecast_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """The long rows of ``nexttoken forecast``'s OUT.csv (+ paths and contexts on request)."""
    from .frames import future_times

    paths = _flag(body, "paths")
    f, contexts, stamps, horizon = _forecast(lm, body, 20)
    header, rows = f.rows([future_times(t, horizon) for t in stamps])
    out: dict[str, Any] = {"rows": [dict(zip(header, r, strict=True)) for r in rows]}
    if paths:
        out["series"] = [
            {
                "name": name,
                "context": _json_floats(c),
                "samples": f.samples[i].tolist(),
                "median": f.median[i].tolist(),
                "q10": f.quantiles[i, 0].tolist(),
                "q90": f.quantiles[i, -1].tolist(),
                "trend_removed": bool(f.trend_removed[i]),
            }
            for i, (name, c) in enumerate(zip(f.names, contexts, strict=True))
        ]
    return out


def steps_json(lm: LanguageModel, body: dict[str, Any]) -> dict[str, Any]:
    """One sample path of the first series, with the next-value distribution at each step."""
    from .forecast import path_distributions

    # the model's own distributions: no trend line taken out of the series first
    f, contexts, _, _ = _forecast(lm, {**body, "samples": 1, "trend": "none"}, 1)
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


def oscillator_json(params: dict[str, str]) -> dict[str, Any]:
    from .signals import FAMILIES, generate

    family = params.get("family", "single_sine")
    if family not in FAMILIES:
        raise ApiError(400, f"unknown family {family!r}; pick one of {', '.join(FAMILIES)}")
    try:
        length = int(params.get("length", "256"))
        seed = int(params.get("seed", "0"))
    except ValueError:
        raise ApiError(400, "'length' and 'seed' must be whole numbers") from None
    if not 8 <= length <= 4096:
        raise ApiError(400, f"'length' must be between 8 and 4096 (got {length})")
    values = generate(family, 1, length, seed=seed)[0]
    return {"family": family, "values": [float(x) for x in values]}


# --- the ASGI app ----------------------------------------------------------------------------


def create_app(pool: ModelPool) -> Any:
    """The Starlette app of the explorer over ``pool``'s models."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def endpoint(work: Callable[[LanguageModel, dict[str, Any]], dict[str, Any]]) -> Any:
        async def handle(request: Request) -> Response:
            try:
                body = await _read_json(request)
                lm, lock = pool.get(body.get("model"))

                def run() -> dict[str, Any]:
                    with lock, torch.inference_mode():
                        return work(lm, body)

                return JSONResponse(await run_in_threadpool(run))
            except ApiError as e:
                return JSONResponse({"error": str(e)}, status_code=e.status)
            except (ValueError, CheckpointError) as e:
                return JSONResponse({"error": str(e)}, status_code=400)

        return handle

    async def models(request: Request) -> Response:
        from .signals import FAMILIES

        return JSONResponse({"models": pool.describe(), "families": list(FAMILIES)})

    async def oscillator(request: Request) -> Response:
        try:
            return JSONResponse(oscillator_json(dict(request.query_params)))
        except ApiError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)

    async def index(request: Request) -> Response:
        return FileResponse(WEB_DIR / "index.html")

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/oscillator", oscillator),
        Route("/api/next", endpoint(next_json), methods=["POST"]),
        Route("/api/generate", endpoint(generate_json), methods=["POST"]),
        Route("/api/forecast", endpoint(forecast_json), methods=["POST"]),
        Route("/api/distribution", endpoint(distribution_json), methods=["POST"]),
        Route("/api/frequencies", endpoint(frequencies_json), methods=["POST"]),
        Route("/api/steps", endpoint(steps_json), methods=["POST"]),
        Mount("/static", StaticFiles(directory=WEB_DIR), name="static"),
    ]
    return Starlette(routes=routes)


async def _read_json(request: Any) -> dict[str, Any]:
    """The request's JSON object, refusing bodies over :data:`MAX_BODY` before reading them."""
    declared = request.headers.get("content-length")
    too_big = ApiError(
        413, f"the request is over {MAX_BODY // (1024 * 1024)} MB; send less data at a time"
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_big
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise ApiError(400, 'the request body must be a JSON object such as {"model": ...}')
    return body
