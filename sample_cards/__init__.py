"""Synthetic registration-card scans with truth, drawn from the card templates."""

from sample_cards.generate import generate_card, generate_stack, make_samples

__all__ = ["generate_card", "generate_stack", "make_samples"]
