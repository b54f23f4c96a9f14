import tomllib
from pathlib import Path

from dashboard.server import command
from dashboard.server_config import SETTINGS, as_flags

ROOT = Path(__file__).resolve().parents[2]


def test_repository_config_toml_matches_the_launcher_settings():
    on_disk = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert on_disk == SETTINGS


def test_launcher_passes_security_settings_as_flags():
    flags = command("127.0.0.1", 8765)
    assert "--server.enableXsrfProtection=true" in flags
    assert "--browser.gatherUsageStats=false" in flags
    assert "--server.maxUploadSize=200" in flags
    assert "--server.address=127.0.0.1" in flags and "--server.port=8765" in flags
    assert "--client.showErrorDetails=none" in as_flags()
