"""The collaborators a step needs, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass, replace

from autolog.errors import ConfigError
from autolog.media import Analyzer, LocalAnalyzer, PocketsphinxTranscriber, Transcriber
from autolog.settings import Settings
from autolog.store import RunFence, Store


@dataclass(frozen=True)
class Context:
    """Settings, store, analyzer and transcriber for the steps of one process."""

    settings: Settings
    store: Store
    analyzer: Analyzer
    transcriber: Transcriber

    @classmethod
    def build(cls, settings: Settings, *, store: Store | None = None) -> Context:
        """Open the store (unless given) and pick the analyzer and transcriber from settings."""
        return cls(
            settings=settings,
            store=store or Store.open(settings.sqlalchemy_url, upgrade=False),
            analyzer=make_analyzer(settings),
            transcriber=make_transcriber(settings),
        )

    def fenced(self, fence: RunFence) -> Context:
        """Return this context with its store's writes fenced to one step run (``Store.fenced``)."""
        return replace(self, store=self.store.fenced(fence))

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()


def make_analyzer(settings: Settings) -> Analyzer:
    """Return the analyzer settings ask for: Gemini when a key is set, else the local one."""
    if settings.gemini_api_key:
        # Imported here: google-genai takes ~0.8 s to import, paid by every worker process
        # at boot even when no key is set.
        from autolog.gemini import GeminiAnalyzer

        return GeminiAnalyzer.from_settings(settings)
    return LocalAnalyzer(reason="no Gemini key configured")


def make_transcriber(settings: Settings) -> Transcriber:
    """Return the transcriber settings ask for: pocketsphinx (offline), or Gemini.

    Raises:
        ConfigError: the name is not one autolog knows, or Gemini is asked for without a key.
    """
    if settings.transcriber == "pocketsphinx":
        return PocketsphinxTranscriber()
    if settings.transcriber == "gemini":
        if not settings.gemini_api_key:
            raise ConfigError("AUTOLOG_TRANSCRIBER", "the gemini transcriber needs AUTOLOG_GEMINI_API_KEY")
        # Imported here, as in make_analyzer.
        from autolog.gemini import GeminiTranscriber

        return GeminiTranscriber.from_settings(settings)
    raise ConfigError("AUTOLOG_TRANSCRIBER",
                      f"unknown transcriber {settings.transcriber!r}; use pocketsphinx or gemini")
