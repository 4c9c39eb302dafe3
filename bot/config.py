"""Settings: the one place the environment (and an optional ``.env`` file) is read.

Tests build ``Settings(...)`` directly (``_env_file=None`` to ignore a local ``.env``).
Secrets are :class:`~pydantic.SecretStr`; their values are never logged or printed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, Secret, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.redact import redact_url


class DatabaseUrl(Secret[str]):
    """``KONTEXT_DATABASE_URL``: shown (repr, str, dumps, logs) with its password masked;
    ``get_secret_value()`` gives the real URL to the code that connects."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value())


#: A provider account's jobs at once, and its submits per minute (unset: the provider's own).
Concurrency = Annotated[int | None, Field(ge=1)]
RatePerMinute = Annotated[float | None, Field(gt=0)]


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        # An empty value (DISCORD_TOKEN= in a copied .env.example) counts as unset.
        env_ignore_empty=True,
    )

    # Discord
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_api_base: str = Field(
        "https://discord.com/api/v10", validation_alias=_env("DISCORD_API_BASE")
    )
    discord_gateway_url: str | None = Field(None, validation_alias=_env("DISCORD_GATEWAY_URL"))
    message_content: bool = Field(False, validation_alias=_env("KONTEXT_MESSAGE_CONTENT"))
    dev_guild_id: int | None = Field(None, validation_alias=_env("KONTEXT_DEV_GUILD_ID"))

    # Storage
    database_url: DatabaseUrl = Field(
        DatabaseUrl("sqlite:///data/kontext.db"), validation_alias=_env("KONTEXT_DATABASE_URL")
    )
    retention_days: int = Field(30, ge=0, validation_alias=_env("KONTEXT_RETENTION_DAYS"))

    # Providers
    provider: str = Field("aimlapi", validation_alias=_env("KONTEXT_PROVIDER"))
    fallback_provider: str | None = Field(None, validation_alias=_env("KONTEXT_FALLBACK_PROVIDER"))
    aimlapi_api_key: SecretStr | None = Field(None, validation_alias=_env("AIMLAPI_API_KEY"))
    aimlapi_base_url: str = Field(
        "https://api.aimlapi.com", validation_alias=_env("AIMLAPI_BASE_URL")
    )
    modelslab_api_key: SecretStr | None = Field(None, validation_alias=_env("MODELSLAB_API_KEY"))
    modelslab_base_url: str = Field(
        "https://modelslab.com", validation_alias=_env("MODELSLAB_BASE_URL")
    )
    wavespeed_api_key: SecretStr | None = Field(None, validation_alias=_env("WAVESPEED_API_KEY"))
    wavespeed_base_url: str = Field(
        "https://api.wavespeed.ai", validation_alias=_env("WAVESPEED_BASE_URL")
    )
    bfl_api_key: SecretStr | None = Field(None, validation_alias=_env("BFL_API_KEY"))
    bfl_base_url: str = Field("https://api.bfl.ai", validation_alias=_env("BFL_BASE_URL"))
    bfl_model: Literal["pro", "max"] = Field("max", validation_alias=_env("BFL_MODEL"))
    fal_api_key: SecretStr | None = Field(None, validation_alias=_env("FAL_KEY"))
    fal_base_url: str = Field("https://queue.fal.run", validation_alias=_env("FAL_BASE_URL"))
    fal_model: Literal["pro", "max", "dev"] = Field("max", validation_alias=_env("FAL_MODEL"))
    replicate_api_key: SecretStr | None = Field(None, validation_alias=_env("REPLICATE_API_TOKEN"))
    replicate_base_url: str = Field(
        "https://api.replicate.com", validation_alias=_env("REPLICATE_BASE_URL")
    )
    replicate_model: Literal["pro", "max", "dev"] = Field(
        "max", validation_alias=_env("REPLICATE_MODEL")
    )
    media_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("KONTEXT_MEDIA_HOSTS")
    )

    # Jobs
    job_deadline_seconds: float = Field(
        600.0, gt=0, validation_alias=_env("KONTEXT_JOB_DEADLINE_SECONDS")
    )
    # How long a worker's claim on a job lasts without a heartbeat: after a crash, another
    # process (or the restarted one) resumes the job once this has passed.
    job_lease_seconds: float = Field(30.0, gt=0, validation_alias=_env("KONTEXT_JOB_LEASE_SECONDS"))

    # Provider accounts: jobs at once and submits per minute, held by every process that
    # shares the database (unset: the provider's documented entry tier).
    # Named like their variables (AIMLAPI_CONCURRENCY ...), which pydantic-settings reads as is.
    aimlapi_concurrency: Concurrency = None
    aimlapi_rate_per_minute: RatePerMinute = None
    modelslab_concurrency: Concurrency = None
    modelslab_rate_per_minute: RatePerMinute = None
    wavespeed_concurrency: Concurrency = None
    wavespeed_rate_per_minute: RatePerMinute = None

    # Sharding: how many gateway shards in all (unset: Discord's recommendation) and which
    # of them this process connects (unset: all).
    shard_count: int | None = Field(None, ge=1, validation_alias=_env("KONTEXT_SHARD_COUNT"))
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        None, validation_alias=_env("KONTEXT_SHARD_IDS")
    )

    log_level: str = Field("INFO", validation_alias=_env("KONTEXT_LOG_LEVEL"))

    # Operating it
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("KONTEXT_LOG_FORMAT"))
    http_port: int | None = Field(None, ge=0, le=65535, validation_alias=_env("KONTEXT_HTTP_PORT"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("KONTEXT_HTTP_HOST"))
    # How often a paused provider (refused key, no credits) is tried again with one job.
    provider_probe_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("KONTEXT_PROVIDER_PROBE_SECONDS")
    )
    # A channel where operator alerts (a provider paused or resumed) are posted, besides the
    # DM to the application's owner or team.
    alert_channel_id: int | None = Field(
        None, ge=1, validation_alias=_env("KONTEXT_ALERT_CHANNEL_ID")
    )
    # Days after the bot left a server until its data is deleted; 0 keeps it.
    guild_data_days: int = Field(30, ge=0, validation_alias=_env("KONTEXT_GUILD_DATA_DAYS"))

    @field_validator("media_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_shard_ids(value) if value.strip() else None
        return value

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError(
                "KONTEXT_SHARD_IDS needs KONTEXT_SHARD_COUNT: set the total number of shards "
                "that all processes together connect."
            )
        outside = [i for i in self.shard_ids if i >= self.shard_count]
        if outside:
            raise ValueError(
                f"KONTEXT_SHARD_IDS names shard {outside[0]}, but KONTEXT_SHARD_COUNT="
                f"{self.shard_count} numbers shards 0 to {self.shard_count - 1}."
            )
        return self

    @field_validator(
        "discord_api_base",
        "aimlapi_base_url",
        "modelslab_base_url",
        "wavespeed_base_url",
        "bfl_base_url",
        "fal_base_url",
        "replicate_base_url",
    )
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def api_key(self, provider: str) -> SecretStr | None:
        """The configured key of a provider by its registry name."""
        key: SecretStr | None = getattr(self, f"{provider}_api_key", None)
        return key

    def has_key(self, provider: str) -> bool:
        """Whether a provider's key is set to something other than blanks."""
        key = self.api_key(provider)
        return key is not None and bool(key.get_secret_value().strip())

    def provider_limits(self) -> dict[str, tuple[int | None, float | None]]:
        """``<PROVIDER>_CONCURRENCY`` and ``<PROVIDER>_RATE_PER_MINUTE`` where either is set."""
        found: dict[str, tuple[int | None, float | None]] = {}
        for field in type(self).model_fields:
            if not field.endswith("_concurrency"):
                continue
            name = field.removesuffix("_concurrency")
            concurrency: int | None = getattr(self, field)
            rate: float | None = getattr(self, f"{name}_rate_per_minute", None)
            if concurrency is not None or rate is not None:
                found[name] = (concurrency, rate)
        return found

    def base_url(self, provider: str) -> str:
        url: str = getattr(self, f"{provider}_base_url")
        return url

    def model_choice(self, provider: str) -> str | None:
        """The chosen model tier (pro / max / dev) of a provider that offers several."""
        choice: str | None = getattr(self, f"{provider}_model", None)
        return choice

    def secret_values(self) -> list[str]:
        """The values of the secret settings (token, keys), for masking in logs; the database
        URL's password is masked with :func:`storage.scrub_password`."""
        found = [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        ]
        return [v for v in found if v]


def parse_shard_ids(text: str) -> tuple[int, ...]:
    """``"0-3"``, ``"0,2"`` or ``"0-3,8"`` to sorted shard ids; refuses anything else."""
    ids: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise ValueError(
                f"KONTEXT_SHARD_IDS={text!r} is not a list of shard ids: write ranges and "
                "numbers separated by commas, such as 0-3 or 0,2."
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(
                f"KONTEXT_SHARD_IDS: the range {part} runs backwards; write {high}-{low}."
            )
        ids.update(range(low, high + 1))
    return tuple(sorted(ids))
