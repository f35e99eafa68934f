"""Keyboard shortcuts and input focus in the browser, for the pages a reviewer works through by keyboard.

Streamlit has no keyboard handler of its own. :func:`keyboard_bridge` adds one
small script to the page (``st.html`` with JavaScript allowed, so it runs in
the page itself, not in an iframe). The script does three things:

- it binds Alt+<key> combinations to buttons, found by their widget key
  (Streamlit gives each keyed element the CSS class ``st-key-<key>``), or to
  moving the focus through a list of inputs;
- once the script run of the page has finished, it puts the focus in one
  input and selects its text, so typing replaces the suggestion and Enter
  submits the form;
- it exposes ``window.hukaFocusField(key)``, which the boxes drawn over a scan
  call to jump to a field's input.

Keys are matched by ``KeyboardEvent.code`` (the physical key), so Alt+1 works
on any keyboard layout and on macOS, where Option+1 types "¡". The package
streamlit-shortcuts matches ``KeyboardEvent.key`` and moves no focus, which is
why it is not used here.

The script marks ``document.body.dataset.hukaFocus`` with the key of the input
it focused, so a browser test can wait until the page is ready for typing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import streamlit as st

__all__ = ["Shortcut", "keyboard_bridge"]

# Wait after the run has finished before focusing: Streamlit may still write
# the widget's value once more then, which would move the cursor to the end
# and append typing to the suggestion instead of replacing it.
SETTLE_MS = 60
# How long the script waits for the run to finish and the input to appear.
FOCUS_TIMEOUT_MS = 8000


@dataclass(frozen=True)
class Shortcut:
    """The action of Alt+<code>: a click on the button with widget key ``click``, or a focus move through ``cycle``.

    ``cycle`` lists input widget keys; ``step`` is +1 for the next one and -1 for the previous one.
    """

    click: str | None = None
    cycle: Sequence[str] = field(default_factory=tuple)
    step: int = 1


_SCRIPT = """
<script>
(function () {
  const config = %(config)s;
  const doc = document;
  const win = window;

  function findInput(key) {
    return doc.querySelector('.st-key-' + key + ' input, .st-key-' + key + ' textarea');
  }

  function focusField(key, select) {
    const input = findInput(key);
    if (!input || input.disabled) return false;
    input.focus();
    if (select) input.select();
    input.scrollIntoView({block: 'nearest'});
    doc.body.dataset.hukaFocus = key;
    return true;
  }
  win.hukaFocusField = function (key) { return focusField(key, true); };

  function currentIndex(keys) {
    const active = doc.activeElement;
    if (!active) return -1;
    return keys.findIndex(function (key) { return active.closest('.st-key-' + key) !== null; });
  }

  if (win.__hukaKeyHandler) doc.removeEventListener('keydown', win.__hukaKeyHandler, true);
  win.__hukaKeyHandler = function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    const action = config.shortcuts[event.code];
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    if (action.click) {
      const button = doc.querySelector('.st-key-' + action.click + ' button');
      if (button && !button.disabled) button.click();
      return;
    }
    const keys = action.cycle;
    if (!keys.length) return;
    const index = currentIndex(keys);
    const next = index < 0 ? (action.step > 0 ? 0 : keys.length - 1) : (index + action.step + keys.length) %% keys.length;
    focusField(keys[next], true);
  };
  doc.addEventListener('keydown', win.__hukaKeyHandler, true);

  if (!config.focus) return;
  const started = Date.now();
  (function focusWhenIdle() {
    const idle = doc.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]');
    if (idle && findInput(config.focus)) {
      setTimeout(function () {
        if (!focusField(config.focus, true) && Date.now() - started < config.timeout) focusWhenIdle();
      }, config.settle);
      return;
    }
    if (Date.now() - started < config.timeout) setTimeout(focusWhenIdle, 30);
  })();
})();
</script>
"""


def keyboard_bridge(shortcuts: Mapping[str, Shortcut], *, focus: str | None = None) -> None:
    """Bind Alt+<code> to ``shortcuts`` (by ``KeyboardEvent.code``, e.g. "Digit1", "KeyX") and focus input ``focus``.

    Call it once per run, after the widgets it names. Each call replaces the
    shortcuts of the previous run.
    """
    config = {
        "shortcuts": {
            code: {"click": shortcut.click, "cycle": list(shortcut.cycle), "step": shortcut.step}
            for code, shortcut in shortcuts.items()
        },
        "focus": focus,
        "settle": SETTLE_MS,
        "timeout": FOCUS_TIMEOUT_MS,
    }
    # The element re-runs its script only when its body changes, so each run gets a new marker.
    marker = f"<span hidden data-run='{uuid.uuid4().hex}'></span>"
    st.html(_SCRIPT % {"config": json.dumps(config)} + marker, unsafe_allow_javascript=True)
