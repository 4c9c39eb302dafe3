"""Which providers a deployment runs: every provider with a key, the default first."""

from __future__ import annotations

import pytest

from bot.app import ConfigurationError, configured_providers
from bot.config import Settings


def test_the_default_provider_needs_its_own_key_setting() -> None:
    with pytest.raises(ConfigurationError, match="'fal' but FAL_KEY is not set"):
        configured_providers(Settings(_env_file=None, provider="fal"))
    with pytest.raises(ConfigurationError, match="REPLICATE_API_TOKEN is not set"):
        configured_providers(Settings(_env_file=None, provider="replicate"))


def test_every_provider_with_a_key_runs_the_default_first() -> None:
    settings = Settings(
        _env_file=None,
        provider="replicate",
        replicate_api_key="r8_x",
        bfl_api_key="b",
        fal_api_key="f",
    )
    assert configured_providers(settings) == ["replicate", "bfl", "fal"]


def test_model_choices_are_checked() -> None:
    with pytest.raises(ValueError, match="bfl_model"):
        Settings(_env_file=None, bfl_model="dev")  # BFL does not offer [dev]
    assert Settings(_env_file=None, fal_model="dev").model_choice("fal") == "dev"
    assert Settings(_env_file=None).model_choice("aimlapi") is None
