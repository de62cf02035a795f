"""Connections: save, delete and test each source's credentials. Values are never shown, only where they come from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._shared import DEMO, MODE_KEY, REAL, credential_store, current_mode, db_path, flash, show_flashes, source_label
from feedback_sources.credentials import CredentialStore, KeyringUnavailable
from feedback_sources.integrations.base import HINTS, ConnectionResult
from feedback_sources.ui.diagnosis import diagnosis_title, origin_label
from feedback_sources.ui.text import md_escape
from feedback_sources.sources import get_spec, registry, source_names
from feedback_sources.sources.spec import SettingsPanelContext
from feedback_sources.workspace import Workspace

TEST_RESULT_KEY = "connection_test_results"
DOTENV_CONSENT_KEY = "connections_dotenv_consent_{source}"
TYPED_NOTE = "Tested the values typed above (not saved)."
SAVED_NOTE = "Tested the saved values."


def test_connection(creds: CredentialStore, source: str, typed: dict[str, str] | None = None) -> tuple[ConnectionResult, str]:
    """Test what is on the screen: each typed field over what is saved. Returns the result and which values it used."""
    try:
        config, used = creds.typed_config(source, typed or {})
    except ValueError as error:
        return ConnectionResult(False, "invalid", str(error), "Correct the value and test again."), TYPED_NOTE
    note = TYPED_NOTE if used else SAVED_NOTE
    # Only this source's configuration: a malformed value of another source must not block the test.
    workspace = Workspace(demo=False, db_path=db_path(REAL), configs={source: config})
    return workspace.test_connection(source), note


def show_result(result: ConnectionResult, note: str) -> None:
    if result.ok:
        st.success(md_escape(result.message), icon=":material/check_circle:")
    else:
        st.error(f"**{diagnosis_title(result.kind)}**: {md_escape(result.message)}", icon=":material/error:")
        hint = result.hint or HINTS.get(result.kind, "")
        if hint:
            st.info(f"What to do: {md_escape(hint)}", icon=":material/lightbulb:")
    st.caption(note)


def save(creds: CredentialStore, source: str, values: dict[str, str], to_dotenv: bool) -> bool:
    """Store what was typed; True when it was stored (the form is then emptied)."""
    entered = {name: value for name, value in values.items() if value and value.strip()}
    if not entered:
        flash("warning", "Nothing to save: every field was empty.")
        return False
    try:
        if to_dotenv:
            written = creds.write_dotenv(source, entered)
        else:
            creds.set(source, entered)
    except KeyringUnavailable as error:
        flash("error", f"**{diagnosis_title('keyring')}**: {md_escape(error)}")
        return False
    except (ValueError, OSError) as error:
        flash("error", f"**{diagnosis_title('invalid')}**: {md_escape(error)}")
        return False
    origins = creds.field_origins(source)
    saved = ", ".join(sorted(entered))
    if to_dotenv:
        flash("success", f"Saved to {md_escape(written)} (readable only by you): {saved}.")
    else:
        flash("success", f"Saved to the keyring: {saved}.")
    shadowed = [name for name in entered if origins.get(name) == "environment"
                or (not to_dotenv and origins.get(name) == ".env")]
    if shadowed:
        flash("warning", f"{', '.join(shadowed)} also set in the environment or .env, which takes precedence.")
    return True


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


def typed_values(creds: CredentialStore, source: str) -> dict[str, str]:
    """What the form holds now; an unchanged choice counts as not typed (it keeps following the saved value)."""
    values: dict[str, str] = {}
    for spec in get_spec(source).fields:
        value = str(st.session_state.get(field_key(source, spec.name)) or "")
        if spec.choices and value == current_choice(creds, source, spec.name, spec.choices):
            value = ""
        values[spec.name] = value
    return values


def submit_form(source: str, to_dotenv: bool) -> None:
    """Save what was typed, then empty every input so no token stays in the session or on screen."""
    creds = credential_store()
    if to_dotenv and not st.session_state.get(DOTENV_CONSENT_KEY.format(source=source)):
        flash("warning", "Nothing written: tick the box to confirm that the values may go to the .env file.")
        return
    if not save(creds, source, typed_values(creds, source), to_dotenv):
        return  # keep what was typed so it can be corrected
    for spec in get_spec(source).fields:
        key = field_key(source, spec.name)
        if spec.choices:
            st.session_state.pop(key, None)
        else:
            st.session_state[key] = ""
    st.session_state.pop(DOTENV_CONSENT_KEY.format(source=source), None)


def test_form(source: str) -> None:
    """Test the values on the screen; they stay in the form so a good set can be saved next."""
    creds = credential_store()
    result = test_connection(creds, source, typed_values(creds, source))
    st.session_state.setdefault(TEST_RESULT_KEY, {})[source] = result


def example_variables() -> str:
    """The required variables of the first source that has any, as the example of setting them in the environment."""
    for spec in registry().values():
        names = [field.env_var for field in spec.fields if field.required]
        if names:
            return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return "the variables listed below"


def no_keyring_choices(creds: CredentialStore) -> None:
    """The two honest ways to keep credentials on a machine without a keyring."""
    path = creds.dotenv_file()
    with st.container(border=True):
        st.markdown("**No keyring here: two ways to keep your credentials**")
        st.markdown(
            "1. **Environment variables** (nothing written by the app): set them before starting it, for example "
            f"{md_escape(example_variables())}. Each source's table below "
            "lists its variables.\n"
            f"2. **A .env file** at {md_escape(path)}: the app can write the values you type there, readable only by "
            "your user (permissions 0600). The tokens are stored in plain text, so it asks you to confirm first."
        )


def placeholder(origin: str) -> str:
    if origin == "missing":
        return ""
    if origin == "keyring":
        return "saved — leave empty to keep"
    return f"set in the {origin_label(origin)} — leave empty to keep"


def settings_panel(creds: CredentialStore, source: str) -> None:
    """The source's own section (e.g. a column mapping), when its spec names one; its failure stays in its tab."""
    spec = get_spec(source)
    if spec.settings_panel is None:
        return
    mode = current_mode()
    context = SettingsPanelContext(source=source, mode=DEMO if mode == DEMO else REAL, credentials=creds,
                                   db_path=db_path(mode))
    try:
        draw = spec.load("settings_panel")
        draw(context)
    except Exception as error:  # noqa: BLE001 - a plugin's panel must not take the other sources' tabs down
        st.error(f"**{md_escape(spec.label)} settings could not be shown**: {md_escape(type(error).__name__)}: "
                 f"{md_escape(error)}", icon=":material/error:")


def source_panel(creds: CredentialStore, source: str, keyring_usable: bool) -> None:
    spec = get_spec(source)
    if spec.description:
        st.caption(md_escape(spec.description))
    if not spec.fields:
        # A file source that reads what the PM provides may have nothing to fill in here.
        st.success("Nothing to set up: this source needs no account.", icon=":material/link:")
        settings_panel(creds, source)
        return
    specs = spec.fields
    origins = creds.field_origins(source)
    missing = creds.missing_required(source)
    if missing:
        labels = [spec.label for spec in specs if spec.name in missing]
        st.warning(f"Not connected: missing {', '.join(labels).lower()}.", icon=":material/link_off:")
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
        st.caption("Type values and test them before saving: the test uses what is typed here, and the saved value "
                   "for any field left empty. Saved tokens are never shown again.")
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
                    placeholder=placeholder(origins[spec.name]),
                    autocomplete="off",
                )
        to_dotenv = not keyring_usable
        if to_dotenv:
            st.checkbox(f"Write these values to {creds.dotenv_file()} in plain text, readable only by me (0600)",
                        key=DOTENV_CONSENT_KEY.format(source=source))
        buttons = st.columns([1, 1, 2])
        buttons[0].form_submit_button("Test connection", icon=":material/network_check:", on_click=test_form,
                                      args=(source,), width="stretch")
        buttons[1].form_submit_button("Save to .env file" if to_dotenv else "Save to keyring", type="primary",
                                      icon=":material/save:", on_click=submit_form, args=(source, to_dotenv),
                                      width="stretch")
    if keyring_usable:
        st.button("Delete saved", key=f"delete_{source}", icon=":material/delete:", on_click=delete,
                  args=(creds, source),
                  help="Removes this source's values from the keyring; environment and .env are untouched.")
    outcome = st.session_state.get(TEST_RESULT_KEY, {}).get(source)
    if outcome is not None:
        show_result(*outcome)
    settings_panel(creds, source)


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
        no_keyring_choices(creds)
    show_flashes()
    tabs = st.tabs([source_label(source) for source in source_names()])
    for tab, source in zip(tabs, source_names()):
        with tab:
            source_panel(creds, source, status.usable)


main()
