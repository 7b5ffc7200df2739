"""What every benchmark section is given: the run's settings, a scratch directory, the default engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scopesvc.policy import Engine

IN_FLIGHT = 64  # requests in flight for every saturation load


@dataclass
class Settings:
    """How long and how much to measure; `--quick` is a few-second smoke run of the same code."""

    quick: bool = False
    seconds: float = 3  # per saturation run, each round
    rate_seconds: float = 2  # per fixed-rate run, each round
    rates: list[int] = field(default_factory=lambda: [500, 1000, 2000])
    rounds: int = 6
    catalog_sizes: list[int] = field(default_factory=lambda: [1000, 10_000, 100_000])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 10, 100])
    workers: int = 2
    profile: bool = True
    cerbos: bool = True

    @classmethod
    def smoke(cls) -> Settings:
        return cls(quick=True, seconds=2, rate_seconds=2, rates=[1000], rounds=1, catalog_sizes=[1000],
                   batch_sizes=[10], workers=1, profile=False, cerbos=False)


@dataclass
class Context:
    settings: Settings
    workdir: Path
    engine: Engine  # the embedded default catalog's
