"""The one place frequency rules live: period lengths, seasons, horizons, history."""

from __future__ import annotations

from pathlib import Path

import pytest

from restock.calendar import frequency_of, horizon_steps, model_horizon
from restock.errors import InvalidParameterError


@pytest.mark.parametrize(("alias", "code", "days", "season", "horizon", "history"), [
    ("D", "D", 1.0, 7, 365, 365),
    ("W-FRI", "W", 7.0, 52, 104, 104),
    ("W", "W", 7.0, 52, 104, 104),
    ("MS", "M", 30.4375, 12, 24, 36),
    ("ME", "M", 30.4375, 12, 24, 36),
    ("QS", "Q", 91.3125, 4, 8, 36),
    ("B", "B", 1.4, 5, 260, 365),
])
def test_what_each_frequency_implies(alias: str, code: str, days: float, season: int,
                                     horizon: int, history: int) -> None:
    freq = frequency_of(alias)
    assert (freq.alias, freq.code, freq.season_length) == (alias, code, season)
    assert freq.days_per_period == pytest.approx(days)
    assert (freq.default_horizon, freq.history_periods) == (horizon, history)


def test_a_month_is_a_twelfth_of_the_mean_gregorian_year() -> None:
    # serving's sigma conversion used 365.25 / 12 and inventory's period_days 365 / 12:
    # one value now, for month starts and month ends alike
    assert frequency_of("MS").days_per_period == frequency_of("ME").days_per_period == 30.4375
    assert horizon_steps(365.25 * 2, "MS") == 24


@pytest.mark.parametrize(("alias", "days"), [("2D", 2.0), ("2W", 14.0), ("h", 1 / 24),
                                             ("YS", 365.25), ("2MS", 60.875)])
def test_multiples_and_unknown_kinds_have_a_length_but_no_season(alias: str, days: float) -> None:
    freq = frequency_of(alias)
    assert freq.days_per_period == pytest.approx(days)
    assert (freq.code, freq.season_length, freq.seasonal_periods) == ("", 1, ())


def test_seasonal_periods_add_the_year_to_daily_data_only() -> None:
    assert frequency_of("D").seasonal_periods == (7, 365)
    assert frequency_of("W-MON").seasonal_periods == (52,)
    assert frequency_of("MS").seasonal_periods == (12,)


def test_weekday_and_yearly_effects_by_frequency() -> None:
    assert [frequency_of(a).within_week for a in ("D", "B", "W", "MS")] == [
        True, True, False, False]
    assert [frequency_of(a).within_year for a in ("D", "W", "MS", "QS", "2D")] == [
        True, True, True, False, False]


def test_a_string_that_is_no_frequency_is_refused() -> None:
    with pytest.raises(ValueError):
        frequency_of("FOO")


@pytest.mark.parametrize("days, freq, steps", [(365, "D", 365), (365, "W-FRI", 53),
                                               (365, "MS", 12), (1, "MS", 1), (14, "W-MON", 2),
                                               (7, "B", 5)])
def test_horizon_steps(days: int, freq: str, steps: int) -> None:
    assert horizon_steps(days, freq) == steps


@pytest.mark.parametrize(("freq", "max_days", "steps"), [
    ("D", 0, 365), ("W-SUN", 0, 104), ("MS", 0, 24), ("ME", 0, 24),  # by frequency
    ("D", 60, 60), ("W-MON", 60, 9), ("MS", 800, 27),  # RESTOCK_MAX_HORIZON_DAYS overrides
    # the panel said 365 for both where the statistical models said 260 and 8
    ("B", 0, 260), ("QS", 0, 8),
])
def test_model_horizon_by_frequency_unless_overridden(freq: str, max_days: int, steps: int) -> None:
    assert model_horizon(freq, max_days) == steps


def test_max_horizon_days_reaches_the_retrain(monkeypatch: pytest.MonkeyPatch) -> None:
    from restock.config import Settings

    monkeypatch.setenv("RESTOCK_MAX_HORIZON_DAYS", "90")
    settings = Settings.from_env()
    assert model_horizon("W-FRI", settings.max_horizon_days) == 13


def test_holidays_country_is_checked_and_normalised_when_the_settings_are_read() -> None:
    from restock.config import Settings

    assert Settings.from_env(environ={"RESTOCK_HOLIDAYS_COUNTRY": "de"}).holidays_country == "DE"
    assert Settings.from_env(environ={}).holidays_country == ""  # none: no holiday features
    with pytest.raises(InvalidParameterError, match=r"'UZZ' is not a country code.*UZ"):
        Settings.from_env(environ={"RESTOCK_HOLIDAYS_COUNTRY": "UZZ"})


def test_an_unknown_holidays_country_stops_the_command_before_any_work(tmp_path: Path) -> None:
    from click.testing import CliRunner

    import restock.cli.models  # noqa: F401  (registers retrain)
    from restock.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "retrain"],
                                env={"RESTOCK_HOLIDAYS_COUNTRY": "XX"})
    assert result.exit_code != 0
    assert "RESTOCK_HOLIDAYS_COUNTRY: 'XX' is not a country code" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "models").exists()
