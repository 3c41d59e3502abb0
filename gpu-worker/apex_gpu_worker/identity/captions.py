"""An identity's words: every training caption, held-out render and portrait instruction names the
person as `<token> person`, so what training ties to the token is what a portrait asks for."""

import re

MAX_CAPTION = 500  # TrainingPhoto.caption's bound (contracts/caption_identity.result.schema.json)

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def person_phrase(trigger_token: str) -> str:
    """How the person is referred to: the token alone reads as a name the text encoder does not know;
    `person` after it keeps the class the base model knows (DreamBooth's `a [V] dog`)."""
    return f"{trigger_token} person"


def trigger_phrase(trigger_token: str) -> str:
    """The plain caption every training caption begins with."""
    return f"a photo of {person_phrase(trigger_token)}"


def with_trigger_phrase(trigger_token: str, text: str) -> str:
    """A render's instruction or prompt for an identity: `a photo of <token> person, <text>`, the
    words its LoRA was trained under, first (so the token is within CLIP's 77 tokens however long
    the rest is); a text that already begins with them is left as it is."""
    phrase = trigger_phrase(trigger_token)
    return text if text.startswith(phrase) else f"{phrase}, {text}"


def clean_text(text: str) -> str:
    """One line of plain text: control characters dropped, runs of spaces made one, no stray
    separators at the ends."""
    return _SPACES.sub(" ", _UNPRINTABLE.sub(" ", text)).strip(" ,;.")


def caption(trigger_token: str, parts: list[str]) -> str:
    """`a photo of <token> person, <part>, <part>, ...` within MAX_CAPTION characters: empty parts are
    left out and a part that would cross the bound is cut at a word."""
    text = trigger_phrase(trigger_token)
    for part in filter(None, map(clean_text, parts)):
        room = MAX_CAPTION - len(text) - 2
        if room < 1:
            break
        if len(part) > room:
            part = part[:room].rsplit(" ", 1)[0].strip(" ,;.") if " " in part[:room] else part[:room]
        text = f"{text}, {part}"
    return text
