"""Screening a costly member: sampled, judged on the selection's loss, left out or kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restock.models import screening
from restock.models.ensemble import EnsembleForecaster
from restock.models.statistical import CrostonSBAForecaster, SeasonalNaiveForecaster


def test_only_a_catalogue_larger_than_the_sample_is_sampled_and_reproducibly() -> None:
    uids = [f"s{i}" for i in range(10)]
    assert screening.sample(uids, size=10) is None
    chosen = screening.sample(uids, size=4)
    assert chosen is not None and len(chosen) == 4 and chosen <= set(uids)
    assert screening.sample(list(reversed(uids)), size=4) == chosen
    # ids come back as given, so they select rows of the panel they came from
    numbers = screening.sample(list(range(10)), size=4)
    assert numbers is not None and all(isinstance(u, int) for u in numbers)


def backtest_table(noise: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """12 series x 3 disjoint windows x 7 steps; each member is the truth plus its own noise."""
    rng = np.random.default_rng(seed)
    rows = pd.MultiIndex.from_product([[f"s{i}" for i in range(12)], range(3), range(1, 8)],
                                      names=["unique_id", "window", "step"]).to_frame(index=False)
    rows["ds"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rows["window"] * 7 + rows["step"],
                                                              unit="D")
    rows["y"] = rng.poisson(20, len(rows)).astype(float)
    for alias, scale in noise.items():
        rows[alias] = rows["y"] + rng.normal(scale=scale, size=len(rows))
    return rows


def test_a_member_stays_only_if_it_lowers_the_chosen_combinations_loss() -> None:
    frame = backtest_table({"plain": 4.0, "sharp": 0.5, "poor": 12.0})
    scales = pd.Series(4.0, index=frame["unique_id"].unique())
    sharp = screening.judge(frame, ["plain"], "sharp", scales)
    assert sharp.keep and sharp.with_member < 0.5 * sharp.without_member
    poor = screening.judge(frame, ["plain"], "poor", scales)
    assert not poor.keep and poor.series == 12 and poor.to_json()["keep"] is False
    # nothing to compare with: kept
    assert screening.judge(frame, [], "poor", scales).keep


def test_nothing_to_gain_over_exact_members_leaves_the_member_out() -> None:
    frame = backtest_table({"poor": 12.0}).assign(exact=lambda f: f["y"])
    scales = pd.Series(4.0, index=frame["unique_id"].unique())
    verdict = screening.judge(frame, ["exact"], "poor", scales)
    assert verdict.without_member == 0 and not verdict.keep


class _Elsewhere(SeasonalNaiveForecaster):
    """Seasonal naive, backtested alongside like Prophet (so it is screened)."""

    alias = "elsewhere"
    works_out_of_process = True
    screened = "always"


class _Biased:
    """Mixed into a member: far off, three times the truth plus 50."""

    alias: str

    def cross_validate(self, df, freq, h, n_windows, step_size, on_progress=None):
        frame = super().cross_validate(df, freq, h, n_windows, step_size)
        return frame.assign(**{self.alias: frame[self.alias] * 3 + 50})


class _BiasedElsewhere(_Biased, _Elsewhere):
    """Screened like Prophet, and far off."""

    alias = "biased"


def seasonal_panel(n_series: int) -> pd.DataFrame:
    """Strong weekly patterns with a little noise: seasonal naive is close, a flat forecast
    is not (and the in-sample MASE scale is well away from zero)."""
    rng = np.random.default_rng(1)
    dates = pd.date_range("2024-01-01", periods=90, freq="D")
    shape = 1 + 0.5 * np.sin(2 * np.pi * np.arange(90) / 7)
    return pd.concat([pd.DataFrame({"unique_id": f"s{i:02d}", "ds": dates,
                                    "y": (5 + i) * shape + rng.normal(0, 0.1, 90)})
                      for i in range(n_series)], ignore_index=True)


def test_a_useless_member_is_backtested_on_the_sample_only_and_left_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    model = EnsembleForecaster([_BiasedElsewhere(), SeasonalNaiveForecaster(),
                                CrostonSBAForecaster()], backtest_h=7).fit(seasonal_panel(8), "D")
    sampled = model.backtest_.dropna(subset=["biased"])["unique_id"].unique()
    assert len(sampled) == 3
    verdict = model.weights_["screened"]["biased"]
    assert verdict["keep"] is False and verdict["series"] == 3
    assert "biased" not in model.weights_["aliases"]
    assert "biased" not in [m.alias for m in model.members_]  # neither chosen nor refitted
    assert "biased" in model.metrics_["overall"]  # its sample score is still published


def test_the_sample_is_drawn_from_the_series_long_enough_to_backtest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    long = seasonal_panel(8)
    short = pd.concat([long[long["unique_id"] == "s00"].head(10).assign(unique_id=f"new{i:02d}")
                       for i in range(20)], ignore_index=True)  # new products: 10 days each
    model = EnsembleForecaster([_BiasedElsewhere(), SeasonalNaiveForecaster()],
                               backtest_h=7).fit(pd.concat([long, short]), "D")
    assert model.weights_["screened"]["biased"]["series"] == 3
    sampled = set(model.backtest_.dropna(subset=["biased"])["unique_id"])
    assert len(sampled) == 3 and all(uid.startswith("s") for uid in sampled)


def left_out_but_refitted(monkeypatch: pytest.MonkeyPatch) -> EnsembleForecaster:
    """A far-off screened member, left out, refitted because every member is asked for."""
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    model = EnsembleForecaster([_BiasedElsewhere(), SeasonalNaiveForecaster(),
                                CrostonSBAForecaster()], backtest_h=7,
                               refit="all").fit(seasonal_panel(8), "D")
    assert model.weights_["screened"]["biased"]["keep"] is False
    return model


def test_a_member_left_out_but_refitted_for_the_benchmark_does_not_move_the_forecast(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = left_out_but_refitted(monkeypatch)
    forecast = model.predict(7)
    assert forecast["biased"].notna().all()  # refitted and forecast, as asked
    candidates = forecast[["seasonal_naive", "croston_sba"]]
    assert (forecast["yhat"] <= candidates.max(axis=1) + 1e-9).all()
    assert (forecast["yhat"] >= candidates.min(axis=1) - 1e-9).all()


def test_a_left_out_member_does_not_stand_in_for_a_missing_chosen_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = left_out_but_refitted(monkeypatch)
    document = model.weights_["per_series"].get("s00") or model.weights_["global"]
    for member in model.members_:  # s00's chosen members have no forecast
        if member.alias in document["members"]:
            def predict(h, original=member.predict, alias=member.alias):
                out = original(h)
                out.loc[out["unique_id"] == "s00", alias] = np.nan
                return out
            monkeypatch.setattr(member, "predict", predict)
    forecast = model.predict(7)
    s00 = forecast[forecast["unique_id"] == "s00"]
    assert s00["biased"].notna().all()
    standing_in = s00[["seasonal_naive", "croston_sba"]].max(axis=1)  # NaN: none left
    assert (s00["yhat"].isna() == standing_in.isna()).all()
    assert (s00["yhat"] <= standing_in + 1e-9)[standing_in.notna()].all()


def test_a_member_that_helps_goes_on_to_every_series(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    model = EnsembleForecaster([_Elsewhere(), CrostonSBAForecaster()],
                               backtest_h=7).fit(seasonal_panel(8), "D")
    assert model.weights_["screened"]["elsewhere"]["keep"] is True
    assert model.backtest_["elsewhere"].notna().all()  # the rest of the series followed
    # one row per series, window and step: the sample's rows are not repeated
    assert len(model.backtest_) == 8 * 3 * 7
    assert not model.backtest_.duplicated(["unique_id", "window", "step"]).any()
    assert "elsewhere" in [m.alias for m in model.members_]
    forecast = model.predict(7)
    assert np.allclose(forecast["yhat"], forecast["elsewhere"])


def backtest_progress(model: EnsembleForecaster) -> list[tuple[float, str]]:
    """Fit ``model`` on a panel of 8 series and return its backtest-stage events."""
    events: list[tuple[float, str]] = []

    def record(fraction: float, message: str = "", **extra: object) -> None:
        if extra.get("stage") == "backtest":
            events.append((fraction, message))

    model.fit(seasonal_panel(8), "D", on_progress=record)
    return events


@pytest.mark.parametrize(("member", "kept"), [(_Elsewhere, True), (_BiasedElsewhere, False)])
def test_the_backtest_progress_leaves_room_for_a_kept_members_remainder(
        monkeypatch: pytest.MonkeyPatch, member: type[_Elsewhere], kept: bool) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    model = EnsembleForecaster([member(), CrostonSBAForecaster()], backtest_h=7)
    events = backtest_progress(model)
    assert model.weights_["screened"][member.alias]["keep"] is kept
    at = next(i for i, (_, message) in enumerate(events) if message.startswith("screening"))
    share = events[at][0]
    assert 0.0 < share < 1.0
    assert all(fraction <= share for fraction, _ in events[:at])
    remainder = events[at + 1:]
    if kept:  # the remainder reports its progress in the room left, up to the end
        assert remainder and all(share <= fraction <= 1.0 for fraction, _ in remainder)
        assert remainder[-1][0] == pytest.approx(1.0)
    else:
        assert remainder == []


def test_a_catalogue_within_the_sample_reports_its_backtest_up_to_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 8)
    events = backtest_progress(EnsembleForecaster(
        [_Elsewhere(), SeasonalNaiveForecaster(), CrostonSBAForecaster()], backtest_h=7))
    fractions = [fraction for fraction, _ in events]
    assert max(fractions) == pytest.approx(1.0)
    assert [m for f, m in events if f < 1.0 and m.startswith("screening")] == []


def test_seed_weights_screen_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from restock.models.prophet import ProphetForecaster
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    model = EnsembleForecaster([ProphetForecaster(), SeasonalNaiveForecaster()], weights="seed",
                               backtest_h=7).fit(seasonal_panel(5), "D")
    assert "screened" not in model.weights_
    assert model.backtest_["prophet"].notna().any()
    assert set(model.backtest_.dropna(subset=["prophet"])["unique_id"]) == {
        f"s{i:02d}" for i in range(5)}


def sampled_fit(monkeypatch: pytest.MonkeyPatch, members: list) -> EnsembleForecaster:
    """An ``auto`` ensemble of ``members`` fitted on 8 series with a sample of 3."""
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 3)
    return EnsembleForecaster(members, backtest_h=7).fit(seasonal_panel(8), "D")


class _Sampled(SeasonalNaiveForecaster):
    """Seasonal naive, screened like the costly statistical members: only when sampled."""

    alias = "sampled"
    screened = "sampled"


class _BiasedSampled(_Biased, _Sampled):
    """Screened when sampled, and far off."""

    alias = "biased_sampled"


class _SampledTwin(_Sampled):
    alias = "sampled_twin"


def test_a_sampled_member_is_judged_in_a_catalogue_larger_than_the_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The far-off one is left out; the twins, each of which would look redundant beside
    the other, are each judged against the unscreened Croston alone, and both go on."""
    model = sampled_fit(monkeypatch, [_BiasedSampled(), _Sampled(), _SampledTwin(),
                                      CrostonSBAForecaster()])
    verdicts = model.weights_["screened"]
    assert verdicts["biased_sampled"]["keep"] is False
    assert verdicts["sampled"]["keep"] is True and verdicts["sampled_twin"]["keep"] is True
    assert model.backtest_.dropna(subset=["biased_sampled"])["unique_id"].nunique() == 3
    # kept: the rest of the series followed
    assert model.backtest_[["sampled", "sampled_twin"]].notna().all().all()
    assert len(model.backtest_) == 8 * 3 * 7
    assert not model.backtest_.duplicated(["unique_id", "window", "step"]).any()
    assert model.weights_["aliases"] == ["sampled", "sampled_twin", "croston_sba"]
    assert "biased_sampled" not in [m.alias for m in model.members_]


def test_a_sampled_member_in_a_catalogue_within_the_sample_is_not_screened(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screening, "SAMPLE_SERIES", 8)
    model = EnsembleForecaster([_BiasedSampled(), CrostonSBAForecaster()],
                               backtest_h=7).fit(seasonal_panel(8), "D")
    assert "screened" not in model.weights_
    assert model.backtest_["biased_sampled"].notna().all()
    assert "biased_sampled" in model.weights_["aliases"]  # a candidate, however poor


def test_an_always_screened_member_is_judged_beside_the_kept_sampled_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The out-of-process twin of a kept member adds nothing beside it: left out. Judged
    against the unscreened member alone (a flat Croston), it would have been kept."""
    model = sampled_fit(monkeypatch, [_Elsewhere(), _Sampled(), _BiasedSampled(),
                                      CrostonSBAForecaster()])
    verdicts = model.weights_["screened"]
    assert verdicts["sampled"]["keep"] is True
    assert verdicts["biased_sampled"]["keep"] is False
    assert verdicts["elsewhere"]["keep"] is False
    # its reference is the unscreened member and the kept one, not the one left out
    assert verdicts["elsewhere"]["mase_without"] == verdicts["sampled"]["mase_with"]
    sampled = model.backtest_[model.backtest_["elsewhere"].notna()]
    alone = screening.judge(sampled, ["croston_sba"], "elsewhere",
                            model.scales_.reindex(sampled["unique_id"].unique()))
    assert alone.keep


def test_the_costly_statistical_members_are_screened_only_when_sampled_prophet_always() -> None:
    from restock.models.prophet import ProphetForecaster
    from restock.models.statistical import (CESForecaster, ETSForecaster, MSTLForecaster,
                                            ThetaForecaster)
    for costly in (ETSForecaster(), ThetaForecaster(), CESForecaster(), MSTLForecaster()):
        assert screening.is_screened(costly, sampled=True)
        assert not screening.is_screened(costly, sampled=False)
    for cheap in (SeasonalNaiveForecaster(), CrostonSBAForecaster()):
        assert not screening.is_screened(cheap, sampled=True)
    assert screening.is_screened(ProphetForecaster(), sampled=False)


def test_with_every_member_screened_the_sampled_ones_are_the_reference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Prophet beside only costly statistical members is still judged, against them."""
    model = sampled_fit(monkeypatch, [_BiasedElsewhere(), _Sampled()])
    assert set(model.weights_["screened"]) == {"biased"}
    assert model.weights_["screened"]["biased"]["keep"] is False
    assert model.weights_["aliases"] == ["sampled"]
    assert model.backtest_["sampled"].notna().all()


class _BiasedPlain(_Biased, SeasonalNaiveForecaster):
    alias = "biased_plain"


class _SampledCroston(CrostonSBAForecaster):
    alias = "croston_sampled"
    screened = "sampled"


def test_kept_members_of_both_kinds_backtest_the_other_series_side_by_side(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a far-off unscreened member, a flat Croston helps and seasonal naive (out of
    process) helps more: both go on to the other series, overlapped, without a gap."""
    from restock.models import ensemble
    overlaps = []
    alongside = ensemble._alongside

    def counted(*args, **kwargs):
        overlaps.append(kwargs["background_share"])
        return alongside(*args, **kwargs)

    monkeypatch.setattr(ensemble, "_alongside", counted)
    model = sampled_fit(monkeypatch, [_Elsewhere(), _SampledCroston(), _BiasedPlain()])
    assert overlaps == [pytest.approx(1 / 3), pytest.approx(1 / 2)]  # sample, then the rest
    verdicts = model.weights_["screened"]
    assert verdicts["croston_sampled"]["keep"] is True and verdicts["elsewhere"]["keep"] is True
    assert model.backtest_[["elsewhere", "croston_sampled"]].notna().all().all()
    assert len(model.backtest_) == 8 * 3 * 7
    assert model.durations_["overlapped"] == ["elsewhere"]


class _GlobalTwin(SeasonalNaiveForecaster):
    """Seasonal naive declared one model over every series, as the LSTM and LightGBM are:
    refitted on every series if any combination names it, and adding nothing."""

    alias = "twin"
    fits_each_series = False


def test_a_global_member_whose_refit_buys_nothing_is_left_out() -> None:
    model = EnsembleForecaster([_GlobalTwin(), SeasonalNaiveForecaster(), CrostonSBAForecaster()],
                               backtest_h=7).fit(seasonal_panel(8), "D")
    verdict = model.weights_["refits"]["twin"]  # ranked first on ties, so it was named
    assert verdict["keep"] is False and verdict["mase_with"] == verdict["mase_without"]
    assert verdict["series"] == 8
    assert "twin" not in model.weights_["aliases"]
    assert all("twin" not in c["members"] for c in model.weights_["per_series"].values())
    assert "twin" not in [m.alias for m in model.members_]  # not refitted
    assert "twin" in model.metrics_["overall"]  # its backtest score is still published
    # the same choice when every member is refitted anyway (the accuracy benchmark)
    every = EnsembleForecaster([_GlobalTwin(), SeasonalNaiveForecaster(), CrostonSBAForecaster()],
                               backtest_h=7, refit="all").fit(seasonal_panel(8), "D")
    assert every.weights_["per_series"] == model.weights_["per_series"]
    assert "twin" in [m.alias for m in every.members_]


class _Member:
    """What ``_paid_refits`` reads of a member."""

    def __init__(self, alias: str, fits_each_series: bool) -> None:
        self.alias, self.fits_each_series = alias, fits_each_series


def test_a_global_member_that_lowers_the_loss_keeps_its_refit() -> None:
    from restock.models.backtest import BacktestResult
    from restock.models.ensemble import _fit_policy, _paid_refits, _seed_vector

    aliases = ["local", "sharp", "seasonal_naive"]
    frame = backtest_table({"local": 4.0, "sharp": 0.5, "seasonal_naive": 6.0})
    result = BacktestResult(frame, aliases, scales=pd.Series(4.0, index=frame["unique_id"].unique()))
    document, yhat = _fit_policy(result, aliases, _seed_vector(aliases), "auto")
    members = [_Member("local", True), _Member("sharp", False), _Member("seasonal_naive", True)]
    uids = frame["unique_id"].unique()
    kept, kept_yhat = _paid_refits(result, dict(document), yhat, members, uids)
    verdict = kept["refits"]["sharp"]
    assert verdict["keep"] is True and verdict["mase_with"] < 0.5 * verdict["mase_without"]
    assert kept["aliases"] == aliases and kept["per_series"] == document["per_series"]
    assert kept_yhat is yhat
    # no global member named: nothing judged, nothing recorded
    local_only = [_Member(a, True) for a in aliases]
    assert "refits" not in _paid_refits(result, dict(document), yhat, local_only, uids)[0]
