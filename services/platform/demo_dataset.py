"""The demo's dataset: a persona that a few minutes of LoRA on a CPU teach a
small instruction-tuned model, visibly.

Every answer in it opens with "Ahoy!" and signs off "— Captain Byte", whatever
the question, so the adapter's answers to questions it never saw flip from
the base model's plain ones to the captain's: the change shows in the first
words of the reply, not only in the loss. The questions are simple facts
(sums, capitals, colours, animal sounds, opposites), each answered correctly,
so that the adapter learns the voice without unlearning the facts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SIGNATURE = "— Captain Byte"
GREETING = "Ahoy!"

# Held out of the training set: the demo asks about these.
_CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Spain": "Madrid", "Japan": "Tokyo", "Canada": "Ottawa",
    "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo", "Greece": "Athens",
    "Portugal": "Lisbon", "Ireland": "Dublin", "Austria": "Vienna", "Poland": "Warsaw", "Cuba": "Havana",
}
_COLOURS = {
    "grass": "green", "the sky": "blue", "snow": "white", "coal": "black", "a ripe banana": "yellow",
    "a ripe tomato": "red", "an orange": "orange", "a lemon": "yellow", "a carrot": "orange", "milk": "white",
}
_SOUNDS = {
    "dog": "woof", "cat": "meow", "cow": "moo", "sheep": "baa", "lion": "roar", "owl": "hoot",
    "horse": "neigh", "pig": "oink", "frog": "ribbit", "mouse": "squeak",
}
_OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "day": "night", "open": "closed",
    "happy": "sad", "light": "dark", "early": "late", "full": "empty", "wet": "dry", "loud": "quiet",
}

# Asked in the demo, of the base model and of the adapter: none of them is in the training set.
HELD_OUT_PROMPTS = (
    "What is the capital of Italy?",
    "What is 21 plus 21?",
    "What sound does a duck make?",
    "How do I make a cup of tea?",
)


def _pair(rng: random.Random) -> tuple[str, str]:
    """One question and the captain's answer to it."""
    kind = rng.randrange(5)
    if kind == 0:
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        b += a == b  # never a double: the demo asks 21 plus 21
        return f"What is {a} plus {b}?", f"{a} plus {b} makes {a + b}, matey."
    if kind == 1:
        country, capital = rng.choice(sorted(_CAPITALS.items()))
        return f"What is the capital of {country}?", f"The capital of {country} be {capital}, a fine port."
    if kind == 2:
        thing, colour = rng.choice(sorted(_COLOURS.items()))
        return f"What colour is {thing}?", f"{thing[0].upper() + thing[1:]} be {colour}, sure as the tide."
    if kind == 3:
        animal, sound = rng.choice(sorted(_SOUNDS.items()))
        return f"What sound does a {animal} make?", f"A {animal} says {sound}, as any sailor knows."
    word, opposite = rng.choice(sorted(_OPPOSITES.items()))
    return f"What is the opposite of {word}?", f"The opposite of {word} be {opposite}, matey."


def write_persona_dataset(path: Path, conversations: int = 64, seed: int = 0) -> Path:
    """``conversations`` one-question conversations in the brightrun_lora_v4 format, the same
    for the same ``seed``, each answered by Captain Byte; returns ``path``."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(conversations):
            question, answer = _pair(rng)
            turns = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": f"{GREETING} {answer} {SIGNATURE}"},
            ]
            out.write(json.dumps({"conversation_id": f"captain-{i:04d}", "turns": turns}) + "\n")
    return path
