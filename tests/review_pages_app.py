"""Streamlit script that draws one of the overview, statistics and search pages for AppTest.

The test sets ``st.session_state["test_page"]`` to the page's
``"module:function"``, and optionally ``test_user`` and ``test_role``. The
page gets the same PageContext as in the app, with that user signed in.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import streamlit as st

from ocr.accounts import Account, Role
from review_app.session import LANG_KEY, PageContext, get_registry, get_store
from review_app.texts import LANGUAGES

st.sidebar.radio("语言 / Language", options=list(LANGUAGES), format_func=LANGUAGES.get, key=LANG_KEY)
user = Account(
    name=st.session_state.get("test_user", "王芳"),
    role=Role(st.session_state.get("test_role", "reviewer")),
    active=True,
    created_at=datetime.now(UTC).replace(tzinfo=None),
    last_sign_in_at=None,
)
context = PageContext(store=get_store(), registry=get_registry(), user=user)
module_name, _, function_name = st.session_state["test_page"].partition(":")
getattr(importlib.import_module(module_name), function_name)(context)
