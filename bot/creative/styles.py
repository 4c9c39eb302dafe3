"""Styles: the built-in presets, name rules for a server's own, applying a style to a
member's words (the one function every style goes through, remix channel suffixes included),
and the search behind autocomplete.

Presets are written the way FLUX.1 Kontext follows best: one explicit instruction that names
the change and then says what must stay the same (composition, identities, poses), because
the model otherwise feels free to redraw the whole picture. Text replacement quotes the new
text, as the model expects.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence

import regex

from bot.creative_models import MAX_STYLE_NAME, Style, StyleChoice
from bot.errors import KontextError
from bot.i18n import t

MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices

_KEEP = "while keeping the same composition, subjects, poses and framing"
PRESETS: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            name="watercolor",
            description="Soft watercolor painting",
            prompt="Repaint this image as a watercolor painting with soft washes, gentle color "
            f"bleeds and visible paper texture, {_KEEP}.",
        ),
        Style(
            name="oil-painting",
            description="Classical oil painting with brushstrokes",
            prompt="Turn this image into a classical oil painting with rich, visible "
            "brushstrokes and canvas texture, while keeping the same composition, the same "
            "faces and expressions, and the same framing.",
        ),
        Style(
            name="pixel-art",
            description="16-bit pixel art",
            prompt="Convert this image into 16-bit pixel art with a limited color palette and "
            "crisp, hard pixel edges, keeping the same subjects, poses and layout.",
        ),
        Style(
            name="anime-film",
            description="Hand-drawn anime film look (Ghibli-like)",
            prompt="Redraw this image in the style of a hand-drawn Japanese animated film, with "
            "soft cel shading, warm painted backgrounds and gentle colors, while keeping "
            "each character's identity, pose and the composition the same.",
        ),
        Style(
            name="line-sketch",
            description="Black ink line sketch",
            prompt="Turn this image into a clean black ink line sketch on white paper, with "
            "confident outlines, light hatching and no color, keeping the same subjects, "
            "proportions and composition.",
        ),
        Style(
            name="claymation",
            description="Plasticine stop-motion scene",
            prompt="Remake this image as a claymation scene: everything sculpted from "
            "plasticine with visible fingerprints and soft studio lighting, keeping the same "
            "characters, poses and composition.",
        ),
        Style(
            name="golden-hour",
            description="Relight for warm golden-hour sun",
            prompt="Relight this scene for golden hour: warm, low sunlight from the side, long "
            "soft shadows and a glowing sky, while keeping every subject, its position and "
            "the composition exactly the same.",
        ),
        Style(
            name="night",
            description="Turn the scene to night",
            prompt="Change the time of day to night: a dark blue sky, moonlight and glowing "
            "artificial lights, while keeping every subject, its position and the "
            "composition exactly the same.",
        ),
        Style(
            name="white-background",
            description="Remove the background: plain white",
            prompt="Remove the background and place the main subject on a plain, pure white "
            "background with clean edges, keeping the subject itself exactly the same.",
        ),
        Style(
            name="sticker",
            description="Die-cut sticker with a white outline",
            prompt="Turn the main subject into a die-cut sticker with a thick white outline and "
            "a subtle drop shadow on a plain background, keeping the subject's features, "
            "colors and pose the same.",
        ),
        Style(
            name="sign-text",
            description="Replace the text on a sign (write the new text)",
            prompt='Replace the text on the sign with "{prompt}", keeping the same font style, '
            "color, size and perspective, and leave everything else in the image unchanged.",
        ),
    )
}
PRESETS = {name: style.model_copy(update={"builtin": True}) for name, style in PRESETS.items()}

_NAME = regex.compile(r"^[\w][\w-]*$")
#: Typed as a style, these mean "no style this time" (over a preference or server default).
NO_STYLE = frozenset({"none", "off"})


class StyleError(KontextError, code="style"):
    """A style name or prompt that cannot be used."""


def style_name(text: str) -> str:
    """A style name as stored and typed: trimmed, lower case, spaces as hyphens."""
    folded = unicodedata.normalize("NFKC", text).strip().casefold()
    return "-".join(folded.split())


def check_style_name(text: str) -> str:
    """A valid new style name, or :class:`StyleError` saying what to change."""
    name = style_name(text)
    if not name:
        raise StyleError(t("errors.style.no_name"))
    if len(name) > MAX_STYLE_NAME:
        raise StyleError(t("errors.style.name_too_long", length=len(name), limit=MAX_STYLE_NAME))
    if not _NAME.match(name):
        raise StyleError(t("errors.style.bad_name", name=name))
    if name in PRESETS or name in NO_STYLE:
        raise StyleError(
            t("errors.style.name_means_none", name=name)
            if name in NO_STYLE
            else t("errors.style.name_built_in", name=name)
        )
    return name


def suffix_style(suffix: str) -> Style:
    """A remix channel's suffix as a style (added after the member's words)."""
    return Style(name="remix-channel", prompt=suffix.strip(), description="This channel's style")


def apply_style(words: str, style: Style | None) -> str:
    """The prompt sent for ``words`` in ``style``.

    A style holding ``{prompt}`` puts the words there (they are required). Any other style
    follows the words: after a space when they end in punctuation, else after ", " (a
    fragment such as "in neon colors") or ". " (a sentence); alone when there are none.
    """
    words = words.strip()
    if style is None or not style.prompt.strip():
        return words
    text = style.prompt.strip()
    if style.takes_words:
        if not words:
            raise StyleError(
                t(
                    "errors.style.needs_words",
                    name=style.name,
                    description=style.description.lower(),
                )
            )
        return text.replace("{prompt}", words)
    if not words:
        return text
    sentence = ". " if text[0].isupper() else ", "
    joiner = " " if words[-1] in ".,;:!?" else sentence
    return f"{words}{joiner}{text}"


def _score(query: str, style: Style) -> int | None:
    name = style.name
    if not query:
        return 5
    if name == query:
        return 0
    if name.startswith(query):
        return 1
    if any(part.startswith(query) for part in regex.split(r"[-_]", name)):
        return 2
    if query in name or query in style.description.casefold():
        return 3
    if difflib.SequenceMatcher(None, query, name).ratio() >= 0.6:
        return 4
    return None


def search_styles(
    query: str, server: Sequence[Style], presets: Iterable[Style] = PRESETS.values()
) -> list[StyleChoice]:
    """Up to 25 styles for autocomplete: exact name, then name prefix, word prefix,
    substring (name or description), then a fuzzy match; the server's own first at a tie."""
    wanted = style_name(query)
    ranked: list[tuple[int, int, str, Style]] = []
    for rank, group in enumerate((server, list(presets))):
        for style in group:
            score = _score(wanted, style)
            if score is not None:
                ranked.append((score, rank, style.name, style))
    ranked.sort(key=lambda entry: entry[:3])
    return [
        StyleChoice(name=s.name, description=s.description or s.prompt[:90], builtin=s.builtin)
        for *_, s in ranked[:MAX_CHOICES]
    ]
