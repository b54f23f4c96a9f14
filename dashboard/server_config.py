"""Streamlit server settings, in one place.

Streamlit reads `.streamlit/config.toml` only from the working directory, so `inference-optimizer
dashboard` passes these as command-line flags wherever it is started; the repository's
`.streamlit/config.toml` mirrors them for `streamlit run dashboard/app.py` (a test keeps them equal).
"""

from __future__ import annotations

MAX_UPLOAD_MB = 200

SETTINGS: dict[str, dict[str, object]] = {
    "server": {
        "headless": True,
        "enableXsrfProtection": True,
        "maxUploadSize": MAX_UPLOAD_MB,
        "fileWatcherType": "none",
        "runOnSave": False,
    },
    "browser": {"gatherUsageStats": False},
    "client": {"showErrorDetails": "none", "toolbarMode": "minimal"},
    "theme": {
        "base": "light",
        "primaryColor": "#2563eb",
        "backgroundColor": "#ffffff",
        "secondaryBackgroundColor": "#f3f5f9",
        "textColor": "#1f2937",
    },
}


def as_flags() -> list[str]:
    flags = []
    for section, values in SETTINGS.items():
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{section}.{key}={text}")
    return flags


def as_toml() -> str:
    lines = ["# Generated from dashboard/server_config.py; keep the two equal (tests check)."]
    for section, values in SETTINGS.items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                rendered = str(value).lower()
            elif isinstance(value, int):
                rendered = str(value)
            else:
                rendered = f'"{value}"'
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"
