"""Screening: does a costly member earn its place among the ``auto`` candidates?

A member declares how it is screened with a ``screened`` class attribute:

- ``"always"`` (Prophet). Prophet costs a fit per series, many times a statistical
  member's, and on M3 monthly it took half of a retrain while scoring 1.08 MASE against
  Theta's 0.85. Being a candidate is not free for accuracy either: every extra candidate
  is one more way for the selection to fit the backtest's noise. On both development sets
  the ensemble did better on the test without Prophet as a candidate (M3 0.840 vs 0.845,
  pizzaplace 0.738 vs 0.741), while on the backtest (then judged in-window) it lowered
  the chosen combinations' loss by only 0.1% and 0.01%. It is judged even in a catalogue
  small enough to backtest whole.
- ``"sampled"`` (ETS, Theta, CES, MSTL: the statistical members that cost seconds, not
  tenths of a second). Screened only to save time, so only in a catalogue larger than the
  sample: there the series beyond the sample are backtested only if the member earns its
  place. On the 500-series demo data the LSTM is chosen for every series and these four
  took 73 of the backtest's 110 s; on M3 each lowers the sample's loss by 3-6% and all of
  them go on. In a catalogue backtested whole there is no time to save and no evidence
  that leaving them out helps (pizzaplace's 91 series, offline on the benchmark's dump:
  the 1% rule would leave all four out, and the test MASE would rise from 0.738 to
  0.739), so they stay.

An ``auto`` retrain backtests the screened members on a random sample of the series long
enough to backtest (alongside the other members' full backtest), runs the selection on
that sample with and without each, and keeps one only if the chosen combinations'
backtest loss falls by at least ``MIN_GAIN`` (``judge_all``: the ``sampled`` ones against
the unscreened members, then the ``always`` ones against those and the kept ``sampled``
ones). That loss is out of sample for each series' choices (``models.selection``), and
the margin asks for a gain clear of the noise of a few windows on a sample. (When each
series' rule was judged on the windows it was chosen on, Prophet seemed to lower the
loss on pizzaplace by 0.08%; judged apart, it raises it by 0.3%.) A kept member goes on
to the rest of the series; one left out keeps its sample rows in the backtest table (its
published score, on the sample only) and is never chosen, so it is not refitted or saved
either (unless a refit of every member is asked for, as the accuracy benchmark does).
The same verdict (``weigh``), with the bar ``REFIT_MIN_GAIN``, decides after the whole
backtest whether a global member the chosen combinations name is worth its refit on every
series (``EnsembleForecaster.fit``).
Screening needs a member that is not screened to judge against: when every member would
be, the ``sampled`` ones are not (they become the reference Prophet is judged against),
and with only ``always`` members nothing is. Prophet backtests one window only, so the
honest alternative, a nested holdout over windows, cannot judge it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
import pandas as pd

from restock.models.base import Forecaster
from restock.models.selection import select

#: series an expensive member is first backtested on; smaller catalogues are judged on all
SAMPLE_SERIES = 200
#: a member is kept when the chosen combinations' backtest loss falls by more than this
MIN_GAIN = 0.01
#: the relative fall that a refit of a global member must beat (one model over every
#: series, refitted on all of them when any series' combination names it), judged on the
#: whole backtest after the fact (``EnsembleForecaster.fit``): none, it must only lower
#: the loss. Its backtest is spent by then and the whole catalogue's windows judge it,
#: not a sample's, so what goes is a member whose refit buys nothing: on the 500-series
#: demo data ``gbm_diff`` (one series named it; the loss is 0.04% lower without it), on
#: M3 the LSTM (two series; 0.04% lower without it), while ``gbm`` (+0.08%) and
#: ``gbm_diff`` (+0.25%) stay there. A bar of 0.1% would also drop M3's ``gbm_diff`` and
#: raise the benchmark's test MASE from 0.8386 to 0.8401 (offline, on its dump).
REFIT_MIN_GAIN = 0.0


@dataclass(frozen=True)
class Verdict:
    """Whether ``alias`` stays a candidate, and the backtest MASE that decided."""

    alias: str
    keep: bool
    series: int
    with_member: float
    without_member: float

    def to_json(self) -> dict[str, object]:
        """JSON-safe (a loss that could not be measured is null)."""
        def safe(value: float) -> float | None:
            return round(value, 4) if np.isfinite(value) else None
        return {"keep": self.keep, "series": self.series,
                "mase_with": safe(self.with_member), "mase_without": safe(self.without_member)}


def sample(uids: Sequence[Hashable], size: int | None = None,
           seed: int = 0) -> set[Hashable] | None:
    """A reproducible random sample of ``size`` (default ``SAMPLE_SERIES``) of the ids as
    given (ordered by their text, so the order they come in does not matter), or None when
    the catalogue is at most that size (the member is then backtested, and judged, on every
    series)."""
    size = SAMPLE_SERIES if size is None else size
    ordered = sorted(set(uids), key=str)
    if len(ordered) <= size:
        return None
    chosen = np.random.default_rng(seed).choice(len(ordered), size=size, replace=False)
    return {ordered[i] for i in chosen}


def is_screened(member: Forecaster, sampled: bool) -> bool:
    """Whether ``auto`` screens ``member`` in a catalogue that is (``sampled``) or is not
    larger than the sample: ``"always"`` members in both, ``"sampled"`` ones in the first."""
    kind = getattr(member, "screened", None)
    return kind == "always" or (kind == "sampled" and sampled)


def to_screen(members: Sequence[Forecaster], sampled: bool) -> list[Forecaster]:
    """The members ``auto`` screens (``is_screened``), leaving a reference to judge them
    against: when every member would be screened, the ``"sampled"`` ones are not (they
    become Prophet's reference), and with only ``"always"`` members none is."""
    chosen = [m for m in members if is_screened(m, sampled)]
    if len(chosen) == len(members):
        chosen = [m for m in chosen if is_screened(m, sampled=False)]
    return [] if len(chosen) == len(members) else chosen


def judge_all(frame: pd.DataFrame, base: Sequence[str], members: Sequence[Forecaster],
              scales: pd.Series) -> list[Verdict]:
    """The verdicts on ``members`` (in their order): the ``"sampled"`` ones each judged
    against ``base``, then the ``"always"`` ones against ``base`` and the kept ``"sampled"``.

    Each ``"sampled"`` member is judged against the unscreened ones alone, not against
    its screened peers: ETS and CES can each look redundant beside the other and both be
    left out together, which neither verdict would have asked for.
    """
    verdicts: dict[str, Verdict] = {}
    for member in members:
        if not is_screened(member, sampled=False):  # "sampled"
            verdicts[member.alias] = judge(frame, base, member.alias, scales)
    kept = [alias for alias, verdict in verdicts.items() if verdict.keep]
    for member in members:
        if member.alias not in verdicts:
            verdicts[member.alias] = judge(frame, [*base, *kept], member.alias, scales)
    return [verdicts[m.alias] for m in members]


def judge(frame: pd.DataFrame, others: Sequence[str], alias: str,
          scales: pd.Series) -> Verdict:
    """Keep ``alias`` if choosing among ``others`` and it lowers the chosen combinations'
    backtest MASE on ``frame`` by ``MIN_GAIN`` against choosing among ``others`` alone.

    A loss that cannot be measured (no backtest rows, no other member) keeps the member;
    one the others already bring to zero leaves no room to gain, so it does not.
    """
    series = int(frame["unique_id"].nunique())
    if not len(frame) or not others:
        return Verdict(alias, True, series, float("nan"), float("nan"))
    with_member = _selected_loss(frame, [*others, alias], scales)
    without = _selected_loss(frame, list(others), scales)
    return weigh(alias, series, with_member, without)


def weigh(alias: str, series: int, with_member: float, without: float,
          min_gain: float = MIN_GAIN) -> Verdict:
    """The verdict on ``alias`` from the chosen combinations' backtest loss with and
    without it: kept if it lowers the loss by more than ``min_gain`` (a member that
    changes nothing goes), or if either loss could not be measured; one the others
    already bring to zero leaves no room to gain."""
    measured = np.isfinite(with_member) and np.isfinite(without)
    keep = not measured or (without > 0 and with_member < (1 - min_gain) * without)
    return Verdict(alias, bool(keep), series, with_member, without)


def _selected_loss(frame: pd.DataFrame, aliases: list[str], scales: pd.Series) -> float:
    loss = select(frame, aliases, scales).rule_loss["selected"]
    return float("nan") if loss is None else float(loss)
