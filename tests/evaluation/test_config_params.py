"""`--set MODEL.PARAM=VALUE` and `--config FILE` parsing and validation."""

import pytest

from shelfwise.config_params import load_config, merge, parse_set, parse_value, validate_params
from shelfwise.errors import ConfigError


def test_parse_value_toml_scalars_lists_and_bare_strings():
    assert parse_value("300") == 300
    assert parse_value("0.5") == 0.5
    assert parse_value("true") is True
    assert parse_value('"word"') == "word"
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("word") == "word"


def test_parse_set_and_errors():
    assert parse_set(["itemknn.neighbors=50", "itemknn.shrink=2.5", "popularity.by=weight"]) == {
        "itemknn": {"neighbors": 50, "shrink": 2.5},
        "popularity": {"by": "weight"},
    }
    with pytest.raises(ConfigError, match=r"--set 'nope\.x=1'.*valid models: .*itemknn"):
        parse_set(["nope.x=1"])
    with pytest.raises(ConfigError, match=r"MODEL\.PARAM=VALUE"):
        parse_set(["itemknn=1"])


def test_load_config_and_merge(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("[itemknn]\nneighbors = 20\nshrink = 1.0\n")
    from_file = load_config(path)
    assert from_file == {"itemknn": {"neighbors": 20, "shrink": 1.0}}
    merged = merge(from_file, parse_set(["itemknn.neighbors=5"]))
    assert merged == {"itemknn": {"neighbors": 5, "shrink": 1.0}}
    bad = tmp_path / "bad.toml"
    bad.write_text("[nope]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown model \\[nope\\]"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_validate_params_names_model_and_parameter():
    validate_params({"itemknn": {"neighbors": 5}})
    with pytest.raises(ConfigError, match=r"model 'itemknn': unknown parameter 'bogus'.*neighbors"):
        validate_params({"itemknn": {"bogus": 1}})
    with pytest.raises(ConfigError, match="model 'itemknn': parameter 'neighbors'"):
        validate_params({"itemknn": {"neighbors": 0}})
