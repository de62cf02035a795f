"""Connections: save, delete and test each source's credentials. Values are never shown, only where they come from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._shared import DEMO, MODE_KEY, REAL, credential_store, current_mode, db_path, flash, show_flashes, source_label
from feedback_sources.credentials import SOURCE_FIELDS, CredentialStore, KeyringUnavailable
from feedback_sources.integrations.base import HINTS, ConnectionResult
from feedback_sources.ui_support import diagnosis_title, md_escape, origin_label
from feedback_sources.workspace import SOURCES, Workspace

TEST_RESULT_KEY = "connection_test_results"


def test_connection(creds: CredentialStore, source: str) -> ConnectionResult:
    try:
        config = creds.get_config(source)
    except ValueError as error:
        return ConnectionResult(False, "invalid", str(error), "Correct the value and save it again.")
    # Only this source's configuration: a malformed value of another source must not block the test.
    return Workspace(demo=False, db_path=db_path(REAL), configs={source: config}).test_connection(source)


def show_result(result: ConnectionResult) -> None:
    if result.ok:
        st.success(md_escape(result.message), icon=":material/check_circle:")
        return
    st.error(f"**{diagnosis_title(result.kind)}**: {md_escape(result.message)}", icon=":material/error:")
    hint = result.hint or HINTS.get(result.kind, "")
    if hint:
        st.info(f"What to do: {md_escape(hint)}", icon=":material/lightbulb:")


def save(creds: CredentialStore, source: str, values: dict[str, str]) -> None:
    entered = {name: value for name, value in values.items() if value and value.strip()}
    if not entered:
        flash("warning", "Nothing to save: every field was empty.")
        return
    try:
        creds.set(source, entered)
    except KeyringUnavailable as error:
        flash("error", f"**{diagnosis_title('keyring')}**: {md_escape(error)}")
        return
    except ValueError as error:
        flash("error", f"**{diagnosis_title('invalid')}**: {md_escape(error)}")
        return
    origins = creds.field_origins(source)
    saved = ", ".join(sorted(entered))
    flash("success", f"Saved to the keyring: {saved}.")
    shadowed = [name for name in entered if origins.get(name) in ("environment", ".env")]
    if shadowed:
        flash("warning", f"{', '.join(shadowed)} also set in the environment or .env, which takes precedence.")


def delete(creds: CredentialStore, source: str) -> None:
    try:
        creds.delete(source)
    except KeyringUnavailable as error:
        flash("error", f"**{diagnosis_title('keyring')}**: {md_escape(error)}")
        return
    st.session_state.get(TEST_RESULT_KEY, {}).pop(source, None)
    flash("success", f"Removed the saved {source_label(source)} credentials from the keyring.")


def field_key(source: str, name: str) -> str:
    return f"field_{source}_{name}"


def current_choice(creds: CredentialStore, source: str, name: str, choices: tuple[str, ...]) -> str:
    try:
        value = creds.get_config(source).get(name)
    except ValueError:
        value = None
    return value if value in choices else choices[0]


def submit_form(source: str) -> None:
    """Save what was typed, then empty every input so no token stays in the session or on screen."""
    creds = credential_store()
    values: dict[str, str] = {}
    for spec in SOURCE_FIELDS[source]:
        key = field_key(source, spec.name)
        value = str(st.session_state.get(key) or "")
        if spec.choices:
            # An unchanged choice is not saved: the default keeps following the app's default.
            values[spec.name] = value if value != current_choice(creds, source, spec.name, spec.choices) else ""
            st.session_state.pop(key, None)
        else:
            values[spec.name] = value
            st.session_state[key] = ""
    save(creds, source, values)


def source_panel(creds: CredentialStore, source: str) -> None:
    specs = SOURCE_FIELDS[source]
    origins = creds.field_origins(source)
    missing = creds.missing_required(source)
    if missing:
        st.warning(f"Not connected: missing {', '.join(missing)}.", icon=":material/link_off:")
    else:
        st.success("All required fields are set.", icon=":material/link:")
    st.dataframe(
        pd.DataFrame(
            [
                {"field": spec.label, "variable": spec.env_var, "required": spec.required,
                 "comes from": origin_label(origins[spec.name])}
                for spec in specs
            ]
        ),
        hide_index=True,
        width="stretch",
        key=f"origins_{source}",
    )
    with st.form(f"form_{source}"):
        st.caption("Fill in only what you want to change; empty fields keep their saved value. "
                   "Saved tokens are never shown again.")
        for spec in specs:
            key = field_key(source, spec.name)
            if spec.choices:
                current = current_choice(creds, source, spec.name, spec.choices)
                st.selectbox(spec.label, list(spec.choices), key=key, help=spec.help,
                             index=list(spec.choices).index(current))
            else:
                label = spec.label + ("" if not spec.required else " *")
                st.text_input(
                    label, key=key, help=spec.help, type="password" if spec.secret else "default",
                    placeholder="saved — leave empty to keep" if origins[spec.name] == "keyring" else "",
                    autocomplete="off",
                )
        st.form_submit_button("Save to keyring", type="primary", icon=":material/save:", on_click=submit_form,
                              args=(source,))

    buttons = st.columns([1, 1, 3])
    if buttons[0].button("Test connection", key=f"test_{source}", icon=":material/network_check:"):
        with st.spinner(f"Contacting {source_label(source)}…"):
            result = test_connection(creds, source)
        st.session_state.setdefault(TEST_RESULT_KEY, {})[source] = result
    buttons[1].button("Delete saved", key=f"delete_{source}", icon=":material/delete:", on_click=delete,
                      args=(creds, source),
                      help="Removes this source's values from the keyring; environment and .env are untouched.")
    result = st.session_state.get(TEST_RESULT_KEY, {}).get(source)
    if result is not None:
        show_result(result)


def main() -> None:
    st.title("Connections")
    creds = credential_store()
    if current_mode() == DEMO:
        st.info("You are in the demo workspace. Credentials saved here are for your real accounts and are used "
                "as soon as you switch to them.", icon=":material/science:")
        st.button("Switch to my accounts", key="connections_switch_real",
                  on_click=lambda: st.session_state.__setitem__(MODE_KEY, REAL))
    status = creds.keyring_status()
    if status.usable:
        st.caption(md_escape(status.message))
    else:
        st.warning(f"**{diagnosis_title('keyring')}**: {md_escape(status.message)}", icon=":material/lock_open:")
    show_flashes()
    tabs = st.tabs([source_label(source) for source in SOURCES])
    for tab, source in zip(tabs, SOURCES):
        with tab:
            source_panel(creds, source)


main()
