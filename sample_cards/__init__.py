"""Synthetic registration-card scans with truth, drawn from the card templates."""

from sample_cards.generate import SAMPLES_DIR, generate_card, generate_stack, make_samples

__all__ = ["SAMPLES_DIR", "generate_card", "generate_stack", "make_samples"]
