"""Jurisdictions for national assessments: the built-in list, an operator's file adding or
replacing entries, and clear errors for an unknown code or a malformed file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from amparo.errors import ConfigError, InputError
from amparo.hotline.jurisdictions import check_jurisdiction, jurisdictions


@dataclass(frozen=True)
class Conf:
    hotline_jurisdictions_file: str = ""


def test_built_in_list_covers_latin_america() -> None:
    known = jurisdictions(Conf())
    for code in ("MX", "GT", "BR", "AR", "CO", "CL", "PE", "SV", "HN", "CR"):
        assert code in known, code
    mx = known["MX"]
    assert mx.name("es") == "México" and mx.name("en") == "Mexico"
    assert mx.legal_basis == "Código Penal Federal, arts. 202, 202 bis"
    assert known["GT"].laws[0].articles[0] == "194"
    brazil = known["BR"]
    assert "Lei 8.069/1990" in brazil.laws[0].statute
    assert {"240", "241", "241-A", "241-E"} <= set(brazil.laws[0].articles)
    assert known["AR"].laws[0].articles == ("128",)
    assert "Ley 599 de 2000" in known["CO"].laws[0].statute
    assert known["CO"].laws[0].articles == ("218",)
    assert set(known["CL"].laws[0].articles) == {"366 quinquies", "374 bis"}
    assert known["PE"].laws[0].articles == ("183-A",)
    # Every entry has its three names (a language without one falls back to English).
    assert all(set(j.names) == {"en", "es", "pt_BR"} for j in known.values())
    assert list(known) == sorted(known)


def test_check_jurisdiction() -> None:
    assert check_jurisdiction(" mx ", Conf()) == "MX"
    with pytest.raises(InputError) as unknown:
        check_jurisdiction("ZZ", Conf())
    assert unknown.value.hint is not None and "MX" in unknown.value.hint
    assert "hotline_jurisdictions_file" in unknown.value.hint
    with pytest.raises(InputError, match="no jurisdiction"):
        check_jurisdiction(None, Conf())
    with pytest.raises(InputError):
        check_jurisdiction("Mexico", Conf())


def test_an_operators_file_adds_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "jurisdictions.json"
    path.write_text(
        json.dumps(
            {
                "mx": {
                    "name": {"en": "Mexico", "es": "México"},
                    "laws": [{"statute": "Código Penal Federal", "articles": ["202"]}],
                    "notes": "checked by counsel 2026-01",
                },
                "PY": {
                    "name": "Paraguay",
                    "laws": [{"statute": "Código Penal", "articles": ["140"]}],
                },
            }
        ),
        encoding="utf-8",
    )
    known = jurisdictions(Conf(str(path)))
    assert known["MX"].laws[0].articles == ("202",) and "counsel" in known["MX"].notes
    assert known["MX"].name("pt_BR") == "Mexico"  # no Portuguese name: the English one
    assert known["PY"].name("es") == "Paraguay"
    assert "BR" in known  # the rest of the built-in list stays
    assert check_jurisdiction("py", Conf(str(path))) == "PY"
    assert "PY" not in jurisdictions(Conf())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not readable JSON"),
        ("[]", "JSON object"),
        ('{"Mexico": {"name": "Mexico", "laws": [{"statute": "x"}]}}', "alpha-2"),
        ('{"MX": {"laws": [{"statute": "x"}]}}', "name"),
        ('{"MX": {"name": "Mexico", "laws": []}}', "laws"),
        ('{"MX": {"name": "Mexico", "laws": [{"articles": ["1"]}]}}', "statute"),
        ('{"MX": {"name": "Mexico", "laws": [{"statute": "x", "articles": [1]}]}}', "articles"),
        ('{"MX": {"name": "Mexico", "laws": [{"statute": "x"}], "notes": 3}}', "notes"),
    ],
)
def test_a_malformed_file_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as error:
        jurisdictions(Conf(str(path)))
    assert error.value.hint


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read") as error:
        jurisdictions(Conf(str(tmp_path / "missing.json")))
    assert error.value.hint and "hotline_jurisdictions_file" in error.value.hint


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    entry = {"name": "Paraguay", "laws": [{"statute": "Código Penal"}]}
    path.write_text(json.dumps({"PY": entry}), encoding="utf-8")
    assert "PY" in jurisdictions(Conf(str(path)))
    path.write_text(json.dumps({"BO": dict(entry, name="Bolivia"), "PY": entry}), "utf-8")
    assert {"BO", "PY"} <= set(jurisdictions(Conf(str(path))))
