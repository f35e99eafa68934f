"""Transmission of approved records to the exit-entry office, and their archive.

Approving a card queues its record in the outbox table (``ocr.store``).
``python -m ocr transmit`` groups the queued records into daily batches per
card type (:mod:`.batches`), delivers each batch through the adapter chosen in
the config file (:mod:`.adapters`), stores the receiver's acknowledgement and
archives the card (:mod:`.archive`). :mod:`.deadline` reports the records due
soon, overdue and unconfirmed; :mod:`.handover` writes the monthly list of
white copies.
"""
