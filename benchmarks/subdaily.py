"""Sub-daily load that follows the weather: how often does a forecast lose to repeating yesterday?

    python benchmarks/subdaily.py [--model signals-small] [--series 48] [--seeds 11,12]
        [--sources weather,plain,changing] [--baselines mstl] [--samples 20]

Real-dev held one half-hourly and one 5-minute series when this was written (two of each since;
``benchmarks/realsubdaily.py`` scores them at 30 origins), too few to choose a sub-daily rule
on, and real-test is never used to choose. This benchmark draws series of the kind that decides
sub-daily scores: a day within a week whose daily swing grows and shrinks with a temperature
that persists from day to day, and extra load on hot afternoons
(:func:`nexttoken.seasonal.weather_demand`), next to the same days without weather
(:func:`nexttoken.seasonal.two_seasons`), and weeks that change with the time of year: a daily
shape that moves between two, peaks that move with daylight, wandering weekday factors and
holidays (:func:`nexttoken.seasonal.changing_weeks`; a profile read from many weeks smears
them, one read from the last week is noisy). Each series is forecast as the real benchmark
forecasts its sub-daily series: a context of up to 28 days (at most 2,048 steps), a horizon
of 48 steps, the known seasons (the day and the week) handed to every forecaster.

It prints, per kind, relative WQL and MASE against seasonal naive at the day (geometric means
over series) and how many series are worse than seasonal naive in MASE, for the model and each
baseline (MSTL, the best classical model on real sub-daily data, needs ``nexttoken[baselines]``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nexttoken.baselines import ModelForecaster, SeasonalNaive, baseline
from nexttoken.evaluate import Task, run
from nexttoken.lm import load
from nexttoken.seasonal import changing_weeks, two_seasons, weather_demand

HORIZON = 48
MAX_CONTEXT = 2048
#: The benchmark's sources: weather-driven load, the same days without weather, changing weeks.
SOURCES = {"weather": weather_demand, "plain": two_seasons, "changing": changing_weeks}
#: The kind each source's series are reported under (weather's are split by weather kind).
LABELS = {"weather": "weather", "plain": "no weather", "changing": "changing weeks"}


def tasks(n: int, seed: int, sources: Sequence[str] = tuple(SOURCES)) -> list[Task]:
    """One task per series (so that scores are per series): ``n`` series of each source, at the
    seed's draw of steps a day."""
    out = []
    for source in sources:
        label, make = LABELS[source], SOURCES[source]
        x, info = make(n, MAX_CONTEXT + HORIZON, seed=seed, info=True)
        kinds = info.get("kind", np.array([label] * n))
        for i in range(n):
            d = int(info["steps_per_day"][i])
            length = min(MAX_CONTEXT, 28 * d)
            context = x[i, MAX_CONTEXT - length : MAX_CONTEXT]
            kind = str(kinds[i]) if label == "weather" else label
            out.append(
                Task(
                    "subdaily",
                    f"{kind} {d}/day seed {seed} #{i}",
                    [context],
                    x[i : i + 1, MAX_CONTEXT : MAX_CONTEXT + HORIZON],
                    [d],
                    (d, 7 * d),
                    kind,
                )
            )
    return out


def against_seasonal_naive(
    all_tasks: Sequence[Task], model: str, baselines: str, samples: int
) -> tuple[Any, list[str]]:
    """Seasonal naive, the model and the comma-separated ``baselines`` (or ``"none"``) on every
    task, warnings silenced; the result and the names of the forecasters other than the
    reference."""
    forecasters = [SeasonalNaive(), ModelForecaster(load(model), name=model)]
    if baselines != "none":
        forecasters += [baseline(k.strip()) for k in baselines.split(",")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(forecasters, all_tasks, num_samples=samples)
    return result, [f.name for f in forecasters if f.name != "seasonal naive"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="signals-small")
    ap.add_argument("--series", type=int, default=48, help="series of each source per seed")
    ap.add_argument("--seeds", default="11,12")
    ap.add_argument(
        "--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}"
    )
    ap.add_argument("--baselines", default="mstl", help="comma-separated, or 'none'")
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()

    sources = [k.strip() for k in args.sources.split(",") if k.strip()]
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        ap.error(f"--sources: unknown {unknown or 'none given'}; choose from {', '.join(SOURCES)}")
    all_tasks = [t for s in args.seeds.split(",") for t in tasks(args.series, int(s), sources)]
    start = time.perf_counter()
    result, names = against_seasonal_naive(all_tasks, args.model, args.baselines, args.samples)
    ref = "seasonal naive"
    kinds = sorted({t.group for t in all_tasks})
    print(
        f"# {len(all_tasks)} series (seeds {args.seeds}), horizon {HORIZON}, contexts of up to "
        f"28 days / {MAX_CONTEXT} steps, seasons (day, week) given; {args.samples} paths"
    )
    print("| kind (series) | forecaster | rel. WQL | rel. MASE | worse than seasonal naive |")
    print("|---|---|---|---|---|")
    for kind in kinds + ["all"]:
        group = None if kind == "all" else kind
        count = sum(1 for t in all_tasks if group is None or t.group == group)
        for name in names:
            wql = result.relative("subdaily", name, "wql", ref, group=group)
            mase = result.relative("subdaily", name, "mase", ref, group=group)
            worse = int((result.ratios("subdaily", name, "mase", ref, group=group) > 1).sum())
            print(f"| {kind} ({count}) | {name} | {wql:.3f} | {mase:.3f} | {worse}/{count} |")
    seconds = ", ".join(f"{n} {result.seconds[n]:.0f} s" for n in names)
    print(f"\nforecasting time: {seconds}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
