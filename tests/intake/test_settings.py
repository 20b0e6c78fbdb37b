"""Settings: read once from the environment, validated, documented; the size chain holds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from intake.kafka import consumer_config, producer_config
from intake.settings import SettingsError, documented, load_settings, markdown_table
from intake.topics import topic_specs

ENV = {
    "INTAKE_S3_ACCESS_KEY": "a",
    "INTAKE_S3_SECRET_KEY": "b",
    "INTAKE_STATUS_TOKEN_KEY": "x" * 32,
    "INTAKE_NIK_PEPPER": "y" * 32,
    "INTAKE_CLIENT_KEYS": f"web:k1:{'z' * 32}:submit",
    "INTAKE_DATA_KEKS": "k1:" + "A" * 43 + "=",
}


def test_defaults_load() -> None:
    s = load_settings(ENV)
    assert s.http.port == 8080
    assert s.kafka.bootstrap == "127.0.0.1:19092"
    assert s.photo.max_bytes == s.limits.max_photo_bytes


def test_values_are_typed() -> None:
    s = load_settings(
        {
            **ENV,
            "INTAKE_HTTP_PORT": "9000",
            "INTAKE_S3_SECURE": "true",
            "INTAKE_PRODUCE_TIMEOUT_S": "2.5",
            "INTAKE_WAVE_OPENS_AT": "2026-03-01T08:00:00+07:00",
        }
    )
    assert s.http.port == 9000
    assert s.s3.secure is True
    assert s.http.produce_timeout_s == 2.5
    assert s.wave.opens_at.isoformat() == "2026-03-01T08:00:00+07:00"


@pytest.mark.parametrize("name", ["INTAKE_S3_ACCESS_KEY", "INTAKE_STATUS_TOKEN_KEY", "INTAKE_NIK_PEPPER"])
def test_required_variables(name: str) -> None:
    env = {k: v for k, v in ENV.items() if k != name}
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTAKE_HTTP_PORT", "eighty"),
        ("INTAKE_HTTP_PORT", "70000"),
        ("INTAKE_S3_SECURE", "maybe"),
        ("INTAKE_NIK_PEPPER", "short"),
        ("INTAKE_MAX_IN_FLIGHT", "0"),
        ("INTAKE_HTTP_BACKLOG", "0"),
        ("INTAKE_HTTP_FIRST_READ_BYTES", "100"),
        ("INTAKE_WAVE_OPENS_AT", "2026-03-01T08:00:00"),
        ("INTAKE_LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({**ENV, name: value})


def test_secret_values_never_in_errors() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**ENV, "INTAKE_NIK_PEPPER": "tiny-secret"})
    assert "tiny-secret" not in str(info.value)


def test_size_chain_is_consistent() -> None:
    """HTTP body limit < producer max_request_size <= topic max.message.bytes <= consumer fetch size."""
    s = load_settings({**ENV, "INTAKE_MAX_PHOTO_BYTES": str(3 * 1024 * 1024)})
    body = s.limits.max_body_bytes
    producer = producer_config(s)["max_request_size"]
    topic = min(int(t.config["max.message.bytes"]) for t in topic_specs(s))
    fetch = consumer_config(s)["max_partition_fetch_bytes"]
    assert body > s.limits.max_photo_bytes
    assert body < producer <= topic <= fetch


def test_every_variable_documented() -> None:
    docs = documented()
    names = [d.env for d in docs]
    assert len(names) == len(set(names))
    assert all(d.doc and d.env.startswith("INTAKE_") for d in docs)
    table = markdown_table()
    assert all(f"`{n}`" in table for n in names)


def test_readme_table_is_current() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block.strip() == markdown_table().strip(), "regenerate with: intake settings --markdown"


def test_to_environ_round_trips() -> None:
    from intake.settings import to_environ

    s = load_settings(
        {
            **ENV,
            "INTAKE_HTTP_PORT": "9001",
            "INTAKE_S3_SECURE": "true",
            "INTAKE_WAVE_QUOTA": "7",
            "INTAKE_PHOTO_REJECT_CARD_NOT_FOUND": "false",
            "INTAKE_PHOTO_ALLOWED_FORMATS": "JPEG,PNG",
        }
    )
    assert load_settings(to_environ(s)) == s


def test_photo_thresholds_are_settings() -> None:
    """Every knob of the photo gate is an ``INTAKE_PHOTO_*`` variable, typed, validated and documented with the
    text written under the policy's field; the byte limit stays ``INTAKE_MAX_PHOTO_BYTES``."""
    import dataclasses

    from processors.photo import PhotoPolicy
    from processors.photo.policy import field_docs

    s = load_settings(
        {
            **ENV,
            "INTAKE_MAX_PHOTO_BYTES": str(4 * 1024 * 1024),
            "INTAKE_PHOTO_BLUR_MIN": "80.5",
            "INTAKE_PHOTO_REJECT_CARD_NOT_FOUND": "no",
            "INTAKE_PHOTO_ALLOWED_FORMATS": " jpeg, png ",
            "INTAKE_PHOTO_DETECT_SIDE": "320",
        }
    )
    assert s.photo == dataclasses.replace(
        PhotoPolicy(),
        max_bytes=4 * 1024 * 1024,
        blur_min=80.5,
        reject_card_not_found=False,
        allowed_formats=("JPEG", "PNG"),
        detect_side=320,
    )
    for name, value in [
        ("INTAKE_PHOTO_JPEG_QUALITY", "0"),
        ("INTAKE_PHOTO_ALLOWED_FORMATS", " , "),
        ("INTAKE_PHOTO_DETECT_SIDE", "many"),
        ("INTAKE_PHOTO_DARK_MAX_MEAN", "240"),
    ]:
        with pytest.raises(SettingsError, match="INTAKE_PHOTO_"):
            load_settings({**ENV, name: value})
    docs = {d.env: d for d in documented()}
    fields = field_docs()
    for f in dataclasses.fields(PhotoPolicy):
        env = "INTAKE_PHOTO_" + f.name.upper()
        if f.name in ("max_bytes", "card_output"):
            assert env not in docs
        else:
            assert docs[env].doc == fields[f.name] != ""


def test_loading_settings_loads_no_image_library() -> None:
    """The API, the CLI and every tool load settings; only the photo pipeline needs OpenCV, numpy and Pillow
    (the photo policy is described without them). A fresh interpreter, as the process-wide import cache would
    hide the imports of other tests."""
    code = (
        "import json, sys\n"
        "from intake.settings import documented, load_settings, to_environ\n"
        f"settings = load_settings({ENV!r})\n"
        "to_environ(settings); documented()\n"
        "print(json.dumps(sorted(m for m in ('cv2', 'numpy', 'PIL') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []
