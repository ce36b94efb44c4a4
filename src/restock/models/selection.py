"""Per-series choice of how to combine the members, learnt on the rolling backtest.

Fitting free weights per series on a few backtest windows chases noise; what transfers
to unseen data is a choice among a few robust *rules* (the forecast-combination
literature: simple averages and medians of good models are hard to beat):

- ``best``: the series' best member;
- ``top2_mean``, ``top3_mean``, ``top3_median``, ``top5_median``: the mean or median of
  the series' k best members;
- ``global``: the same rule for every series, the mean of the k members best on average
  over all series (k chosen on all series).

A series' member ranking blends its own backtest loss with the global loss of each
member (``MEMBER_SHRINKAGE`` windows' worth of the global profile), so a series with a
short or noisy record leans on what works across the catalogue.

Each per-series rule is scored honestly: for window ``w`` the ranking comes from the other
windows' points at dates ``w`` does not hold (the windows overlap: their origins are half a
horizon apart, so a neighbour shares half its dates, and ranking on those would let a rule
pick members on the very values it is then judged on). A neighbour counts for the share of
its points kept. So a rule that picks members is judged on data it did not pick them on.
The global rule's members and size are chosen on every window of every series pooled, where
one series' window weighs little. Each series then takes the rule with the lowest loss after
shrinking its own losses toward the global rule losses (``RULE_SHRINKAGE`` windows' worth);
it keeps the global rule on a tie, and when nothing was held apart to rank its members on
(a single window). A series without a backtest takes the globally best rule.

The ensemble's backtest predictions, from which intervals and published metrics come, are
out of sample for each series' own choices: in window ``w`` the rule is the one the series
would take on its evidence apart from ``w`` (as for the ranking above), applied with the
ranking made apart from ``w``. A rule chosen for having erred least on a window would
otherwise vouch for itself there: the residuals would be the smallest of several
candidates', and the intervals built from them too narrow. What stays pooled over every
window is the catalogue's profile both shrink toward (one series' window weighs little in
it), and a window's choice rests on less evidence (one to one and a half windows' worth of
three) than the choice the series keeps, so it leans a little more on the global rule.
Losses are MASE (absolute errors over the series' in-sample seasonal-naive MAE),
comparable across series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

#: windows' worth of the global member losses blended into a series' own: a series has
#: three noisy windows, the catalogue's ranking is far better measured (on both development
#: sets test MASE fell steadily from 1 to 16 and flattened beyond; see bench/results)
MEMBER_SHRINKAGE = 16.0
#: windows' worth of the global rule losses blended into a series' own
RULE_SHRINKAGE = 8.0
#: the per-series rules: (name, how many of the ranked members, how they are combined)
RULES: tuple[tuple[str, int, str], ...] = (
    ("best", 1, "mean"),
    ("top2_mean", 2, "mean"),
    ("top3_mean", 3, "mean"),
    ("top3_median", 3, "median"),
    ("top5_median", 5, "median"),
)
#: the largest k tried for the global rule
GLOBAL_MAX_K = 5


@dataclass(frozen=True)
class Choice:
    """What one series' forecast is made of: members, in rank order, and how to combine."""

    rule: str
    members: tuple[str, ...]
    combine: str  # "mean" or "median"

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "members": list(self.members), "combine": self.combine}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> "Choice":
        return cls(document["rule"], tuple(document["members"]), document["combine"])


@dataclass
class Selection:
    """The fitted selection: one ``Choice`` per backtested series and the global one."""

    global_choice: Choice
    per_series: dict[str, Choice]
    backtest_yhat: np.ndarray  # each window's rule and ranking chosen without it, row-aligned
    rule_loss: dict[str, float]  # mean backtest MASE of every rule, and of the selection

    def choice(self, uid: str) -> Choice:
        return self.per_series.get(uid, self.global_choice)


def select(frame: pd.DataFrame, aliases: Sequence[str], scales: pd.Series) -> Selection:
    """Choose a rule per series from a backtest ``frame`` (see ``models.backtest``).

    ``frame`` has ``unique_id, window, ds, y`` and one prediction column per alias;
    ``scales`` maps each series to its MASE denominator.
    """
    aliases = list(aliases)
    uids, s_index = np.unique(frame["unique_id"].to_numpy(str), return_inverse=True)
    w_index = frame["window"].to_numpy(int)
    n_windows = int(w_index.max()) + 1 if len(frame) else 1
    values = frame[aliases].to_numpy(float)
    scale = frame["unique_id"].map(scales).to_numpy(float)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
    y = frame["y"].to_numpy(float)
    errors = np.abs(values - y[:, None]) / scale[:, None]  # scaled; NaN: member missing
    # mean scaled absolute error per (series, window, member)
    loss = _cell_means(errors, s_index, w_index, len(uids), n_windows)
    global_member = _nanmean(loss.reshape(-1, len(aliases)), axis=0)
    global_order = np.argsort(np.where(np.isfinite(global_member), global_member, np.inf),
                              kind="stable")
    global_choice = _global_choice(values, y, scale, global_member, global_order, aliases)

    dates = frame["ds"].to_numpy("datetime64[ns]")
    total, count = _evidence_apart(errors, dates, s_index, w_index, len(uids), n_windows)
    row_ranks = _ranks(total, count, loss, global_member)[s_index, w_index]
    names = [*(r[0] for r in RULES), "global"]
    rule_preds = np.stack([
        *(_combine(values, row_ranks, k, combine) for _, k, combine in RULES),
        _combine(values, np.broadcast_to(global_order, (len(frame), len(aliases))),
                 len(global_choice.members), global_choice.combine),
    ], axis=1)  # [rows, rules], the global rule last
    rule_errors = np.abs(rule_preds - y[:, None]) / scale[:, None]
    rule_loss = _nanmean(_cell_means(rule_errors, s_index, w_index, len(uids), n_windows),
                         axis=1)  # [S, rules]
    global_rule_loss = _nanmean(rule_loss, axis=0)
    windows_seen = np.isfinite(_cell_means(y[:, None], s_index, w_index, len(uids),
                                           n_windows)[:, :, 0]).sum(axis=1)
    own = np.where(np.isfinite(rule_loss), rule_loss, global_rule_loss[None, :])
    filled_global = np.where(np.isfinite(global_rule_loss), global_rule_loss, np.inf)
    shrunk = _shrunk(windows_seen[:, None] * own, windows_seen[:, None], filled_global[None, :],
                     RULE_SHRINKAGE)
    shrunk = np.where(np.isfinite(shrunk), shrunk, np.inf)
    judged = (count > 0).any(axis=(1, 2))
    chosen = _chosen_rules(shrunk, judged)

    finite = np.isfinite(loss)  # every window's evidence: the ranking the series keeps
    final_ranks = _ranks(np.where(finite, loss, 0.0).sum(axis=1, keepdims=True),
                         finite.sum(axis=1, keepdims=True).astype(float), loss,
                         global_member)[:, 0]  # [S, M]
    per_series: dict[str, Choice] = {}
    for row, uid in enumerate(uids):
        name = names[chosen[row]]
        if name == "global":
            per_series[str(uid)] = global_choice
            continue
        k, combine = next((k, c) for n, k, c in RULES if n == name)
        ranked = [aliases[m] for m in final_ranks[row] if np.isfinite(loss[row, :, m]).any()]
        per_series[str(uid)] = Choice(name, tuple(ranked[:k] or global_choice.members), combine)
    # each window's forecast comes from the rule its series would have taken without it
    rule_total, rule_count = _evidence_apart(rule_errors, dates, s_index, w_index, len(uids),
                                             n_windows)
    apart = np.where(rule_count > 0, _shrunk(rule_total, rule_count, filled_global,
                                             RULE_SHRINKAGE), np.inf)  # [S, W, rules]
    rows = np.arange(len(frame))
    row_rules = _chosen_rules(apart[s_index, w_index], judged[s_index])
    backtest_yhat = rule_preds[rows, row_rules]
    summary = {n: _finite(global_rule_loss[i]) for i, n in enumerate(names)}
    selected_loss = _cell_means(rule_errors[rows, row_rules][:, None], s_index, w_index,
                                len(uids), n_windows)[:, :, 0]
    summary["selected"] = _finite(_nanmean(_nanmean(selected_loss, axis=1), axis=0))
    return Selection(global_choice, per_series, backtest_yhat, summary)


def _shrunk(total: np.ndarray, count: np.ndarray, prior: np.ndarray,
            weight: float) -> np.ndarray:
    """A mean loss from ``total`` over ``count`` windows' worth of a series' own evidence,
    blended with ``weight`` windows' worth of the catalogue's ``prior`` (inf stays inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total + weight * prior) / (count + weight)


def _chosen_rules(shrunk: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """Index of the rule each row of ``shrunk`` losses takes (the global rule is last).

    A series' own rule must beat the global one (a tie: the same forecasts), and it must
    have been judged on a ranking of its own: with nothing held apart to rank on (a single
    window) it was scored on the catalogue's ranking, not the one it would be applied with.
    """
    global_rule = shrunk.shape[-1] - 1
    return np.where(judged & (shrunk[..., -1] > shrunk.min(axis=-1) + 1e-12),
                    np.argmin(shrunk, axis=-1), global_rule)


def apply_choice(values: np.ndarray, aliases: Sequence[str], choice: Choice) -> np.ndarray:
    """A series' combined forecast from its members' rows ``values`` [rows, members].

    Members of the choice that have no forecast are passed over for the next ranked ones
    it names; with none of them available, the mean of all available members is used.
    """
    index = [list(aliases).index(m) for m in choice.members if m in aliases]
    chosen = values[:, index] if index else np.empty((len(values), 0))
    combined = _reduce(chosen, choice.combine)
    fallback = _nanmean(values, axis=1) if values.shape[1] else np.full(len(values), np.nan)
    return np.where(np.isfinite(combined), combined, fallback)


def _global_choice(
    values: np.ndarray, y: np.ndarray, scale: np.ndarray, member_loss: np.ndarray,
    order: np.ndarray, aliases: Sequence[str],
) -> Choice:
    """The mean of the k members best on average over all series, k with the lowest loss.

    Without any backtest (every series too short) it is the mean of all members.
    """
    available = int(np.isfinite(member_loss).sum())
    if not available:
        return Choice("global", tuple(aliases), "mean")
    best_k, best_loss = 1, np.inf
    for k in range(1, min(GLOBAL_MAX_K, available) + 1):
        combined = _reduce(values[:, order[:k]], "mean")
        loss = _nanmean(np.abs(combined - y) / scale, axis=0) if len(y) else np.nan
        if np.isfinite(loss) and loss < best_loss - 1e-12:
            best_k, best_loss = k, loss
    return Choice("global", tuple(aliases[m] for m in order[:best_k]), "mean")


def _evidence_apart(
    errors: np.ndarray, dates: np.ndarray, s_index: np.ndarray, w_index: np.ndarray,
    n_series: int, n_windows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """What ranks the members for each window without looking at that window's dates.

    For window ``w`` of a series: every other window's mean loss over its points at dates
    outside ``w``'s, weighted by the share of that window's points kept, summed
    (``total``) and the weights summed (``count``, in windows' worth); both
    [series, windows, members].
    """
    n_members = errors.shape[1]
    total = np.zeros((n_series, n_windows, n_members))
    count = np.zeros((n_series, n_windows, n_members))
    stamps = dates.astype(np.int64)
    scored = np.isfinite(errors)
    per_cell = np.maximum(_cell_sums(scored, s_index, w_index, n_series, n_windows), 1)
    for window in range(n_windows):
        inside = w_index == window
        first = np.full(n_series, np.iinfo(np.int64).max)
        last = np.full(n_series, np.iinfo(np.int64).min)
        np.minimum.at(first, s_index[inside], stamps[inside])
        np.maximum.at(last, s_index[inside], stamps[inside])
        apart = ~((stamps >= first[s_index]) & (stamps <= last[s_index]))  # also ~inside
        kept = scored & apart[:, None]
        # a window's mean over its kept points times their share: their sum over its size
        kept_sum = _cell_sums(np.where(kept, errors, 0.0), s_index, w_index, n_series,
                              n_windows)
        total[:, window] = (kept_sum / per_cell).sum(axis=1)
        count[:, window] = (_cell_sums(kept, s_index, w_index, n_series, n_windows)
                            / per_cell).sum(axis=1)
    return total, count


def _ranks(
    total: np.ndarray, count: np.ndarray, loss: np.ndarray, global_member: np.ndarray
) -> np.ndarray:
    """Member order (best first) per (series, window), from shrunk mean losses.

    ``total`` and ``count`` ([S, W or 1, M]) are the summed window losses and windows'
    worth of evidence each ranking uses; ``loss`` ([S, W, M]) tells which members a series
    has at all (one it never had ranks last).
    """
    prior = np.where(np.isfinite(global_member), global_member, np.inf)
    shrunk = _shrunk(total, count, prior, MEMBER_SHRINKAGE)
    present = np.isfinite(loss).any(axis=1, keepdims=True)
    shrunk = np.broadcast_to(np.where(present, shrunk, np.inf), loss.shape)
    return np.argsort(np.where(np.isfinite(shrunk), shrunk, np.inf), axis=2, kind="stable")


def _combine(values: np.ndarray, order: np.ndarray, k: int, combine: str) -> np.ndarray:
    """Per row: combine the first ``k`` available members of that row's ``order``."""
    ranked = np.take_along_axis(values, order, axis=1)
    available = np.isfinite(ranked)
    kept = available & (np.cumsum(available, axis=1) <= k)
    combined = _reduce(np.where(kept, ranked, np.nan), combine)
    return np.where(np.isfinite(combined), combined, _nanmean(values, axis=1))


def _reduce(values: np.ndarray, combine: str) -> np.ndarray:
    """Row-wise nan-aware mean or median (NaN where a row has no value)."""
    if values.shape[1] == 0:
        return np.full(len(values), np.nan)
    if combine == "median":
        with np.errstate(all="ignore"):
            finite = np.isfinite(values)
            out = np.full(len(values), np.nan)
            rows = finite.any(axis=1)
            out[rows] = np.nanmedian(values[rows], axis=1)
            return out
    return _nanmean(values, axis=1)


def _cell_means(
    errors: np.ndarray, s_index: np.ndarray, w_index: np.ndarray, n_series: int, n_windows: int
) -> np.ndarray:
    """Mean of ``errors`` [rows, k] per (series, window): [series, windows, k], NaN if none."""
    finite = np.isfinite(errors)
    total = _cell_sums(np.where(finite, errors, 0.0), s_index, w_index, n_series, n_windows)
    count = _cell_sums(finite, s_index, w_index, n_series, n_windows)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _cell_sums(
    values: np.ndarray, s_index: np.ndarray, w_index: np.ndarray, n_series: int, n_windows: int
) -> np.ndarray:
    """Sum of ``values`` [rows, k] (booleans count) per (series, window): [series, windows, k]."""
    cells = s_index * n_windows + w_index
    out = np.zeros((n_series * n_windows, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(cells, weights=values[:, j].astype(float),
                                minlength=n_series * n_windows)
    return out.reshape(n_series, n_windows, values.shape[1])


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the all-NaN warning (the result is NaN there)."""
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
