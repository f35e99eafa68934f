"""Shared pieces of the transmission tests: built cards, a config file and a receiver on 127.0.0.1.

The cards are built from the truth of a committed sample card with the
serial, dates and nationality each test needs, validated for real and stored
with Store.add_card, so no OCR engine runs. The receiver is a real HTTP server
in a thread: it dedupes batches by their Idempotency-Key, checks the data
file against the manifest's checksum, and counts the records it accepted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from models.card import CardStatus, Extraction
from ocr.confidence import decide
from ocr.recognize import ZoneRead
from ocr.registry import load_registry
from ocr.review import approve_card
from ocr.store import Store
from ocr.validate import validate_card
from sample_cards import SAMPLES_DIR

REGISTRY = load_registry()
REVIEWER = "王芳"
HIGH_SCORE = 0.98


def sample_png() -> bytes:
    buffer = io.BytesIO()
    Image.open(SAMPLES_DIR / "card_01_foreign_printed.jpg").save(buffer, format="PNG")
    return buffer.getvalue()


def foreign_values(serial: str, arrival: str, **changes: str) -> dict[str, str]:
    """Return valid foreign-guest values: a sample card's truth with this serial, arrival and consistent dates."""
    values = json.loads((SAMPLES_DIR / "card_01_foreign_printed.json").read_text(encoding="utf-8"))["fields"]
    day = date.fromisoformat(arrival)
    values.update(
        card_serial=serial,
        nationality="JPN",
        document_type="passport",
        document_number=f"TK{serial[-7:]}",
        visa_type="L",
        entry_date=day.isoformat(),
        arrival_date=day.isoformat(),
        departure_date=(day + timedelta(days=3)).isoformat(),
        valid_until=(day + timedelta(days=30)).isoformat(),
    )
    values.update(changes)
    return values


def domestic_values(serial: str, arrival: str) -> dict[str, str]:
    values = json.loads((SAMPLES_DIR / "card_03_domestic_printed.json").read_text(encoding="utf-8"))["fields"]
    day = date.fromisoformat(arrival)
    values.update(card_serial=serial, arrival_date=day.isoformat(), departure_date=(day + timedelta(days=2)).isoformat())
    return values


def build_extraction(card_type: str, values: dict[str, str], source: str) -> Extraction:
    spec = REGISTRY.card_type(card_type)
    problems = validate_card(spec, values)
    fields = {}
    for field_spec in spec.fields:
        value = values[field_spec.key]
        read = ZoneRead(
            key=field_spec.key, raw_text=value, score=HIGH_SCORE, box=(10, 10, 200, 40), engine="rapidocr", ink=0.05 if value else 0.0
        )
        fields[field_spec.key] = decide(field_spec, read, value, problems[field_spec.key])
    return Extraction(source=source, page=1, card_type=card_type, fields=fields)


class Cards:
    """Factory of stored, optionally approved cards in one store."""

    def __init__(self, store: Store, png: bytes) -> None:
        self.store = store
        self.png = png
        self.count = 0

    def add(self, values: dict[str, str], *, card_type: str = "foreign_guest", approve: bool = True) -> int:
        self.count += 1
        source = f"/scans/{card_type}_{self.count}_{values['card_serial']}.jpg"
        card_id = self.store.add_card(
            batch=values["arrival_date"],
            content_key=f"{hashlib.sha256(source.encode()).hexdigest()}:1",
            extraction=build_extraction(card_type, values, source),
            original_png=self.png,
            straight_png=self.png,
        )
        if approve:
            self.approve(card_id)
        return card_id

    def approve(self, card_id: int) -> int:
        card = self.store.get_card(card_id)
        assert card.status != CardStatus.APPROVED
        return approve_card(self.store, card_id, actor=REVIEWER, expected_version=card.version, registry=REGISTRY)


def write_config(path: Path, **transmit: object) -> Path:
    """Write a hukacapture.toml with these [transmit] values and an archive beside it."""
    lines = ["[transmit]"]
    for key, value in transmit.items():
        lines.append(f"{key} = {json.dumps(value) if not isinstance(value, Path) else json.dumps(str(value))}")
    lines += ["", "[archive]", f'folder = "{path.parent / "archive"}"', "retention_days = 30"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Receiver:
    """State of the test receiver; ``script`` sets what the next requests get, one entry per request.

    Entries: "ok"; "500" (reply 500 without storing); "store_then_500" (store, then reply 500, so the
    acknowledgement is lost); "delay:<s>" (store, then reply after <s> seconds); "drop" (close the
    connection without a reply); "400" (reject).
    """

    script: list[str] = field(default_factory=list)
    batches: dict[str, list[dict]] = field(default_factory=dict)
    requests: int = 0
    duplicates: int = 0
    headers: list[dict] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self) -> list[dict]:
        return [record for records in self.batches.values() for record in records]

    def count_by_record(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for record in self.records():
            counts[record["record_id"]] = counts.get(record["record_id"], 0) + 1
        return counts


def _parse_records(manifest: dict, content: bytes) -> list[dict]:
    if manifest["format"] == "jsonl":
        return [json.loads(line) for line in content.decode("utf-8").splitlines()]
    if manifest["format"] == "csv":
        import csv

        return [
            dict(row, record_id=int(row["record_id"]), card_id=int(row["card_id"]))
            for row in csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
        ]
    raise ValueError(manifest["format"])


def make_handler(state: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Idempotency-Key", "")

            with state.lock:
                state.requests += 1
                state.headers.append(dict(self.headers))
                action = state.script.pop(0) if state.script else "ok"
            if action == "500":
                self._reply(500, {"error": "unavailable"})
                return
            if action == "400":
                self._reply(400, {"error": "bad request"})
                return
            if action == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return

            envelope = json.loads(body)
            manifest = envelope["manifest"]
            content = base64.b64decode(envelope["content_base64"])
            if hashlib.sha256(content).hexdigest() != manifest["file"]["sha256"] or manifest["idempotency_key"] != key:
                self._reply(422, {"error": "checksum or key mismatch"})
                return

            with state.lock:
                duplicate = key in state.batches
                if duplicate:
                    state.duplicates += 1
                else:
                    state.batches[key] = _parse_records(manifest, content)
            state.received.set()

            if action == "store_then_500":
                self._reply(500, {"error": "stored, reply lost"})
                return
            if action.startswith("delay:"):
                state.release.wait(float(action.split(":", 1)[1]))
            self._reply(200, {"receipt": f"R-{key[-8:]}", "accepted": manifest["count"], "duplicate": duplicate})

    return Handler


class ReceiverServer:
    """The receiver on 127.0.0.1, in a thread; use as a context manager so it always shuts down."""

    def __init__(self, state: Receiver | None = None, port: int = 0) -> None:
        self.state = state or Receiver()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/batches"

    def __enter__(self) -> "ReceiverServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.state.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def signed_in_review_app(name: str, password: str):
    """Run the review app under Streamlit's AppTest and sign in; the store comes from the environment."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "review_app" / "app.py"), default_timeout=60)
    app.run()
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    app.button(key="sign_in").click().run()
    return app
