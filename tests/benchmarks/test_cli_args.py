import pytest

from benchmarks import run, tuned


@pytest.mark.parametrize("parse", [run.parse_args, tuned.parse_args])
def test_batch_sizes_use_the_strict_parser(parse, capsys):
    assert parse(["--batch-sizes", "16, 1, 16"]).batch_sizes == (1, 16)
    with pytest.raises(SystemExit) as exc:
        parse(["--batch-sizes", "1,024"])
    assert exc.value.code == 2
    assert "1024" in capsys.readouterr().err


@pytest.mark.parametrize("parse", [run.parse_args, tuned.parse_args])
def test_models_are_checked_by_name(parse, capsys):
    assert parse(["--models", "xgboost, mlp"]).models == ["xgboost", "mlp"]
    with pytest.raises(SystemExit):
        parse(["--models", "xgbost"])
    assert "unknown model 'xgbost'" in capsys.readouterr().err


@pytest.mark.parametrize("parse", [run.parse_args, tuned.parse_args])
def test_budget_must_be_positive(parse):
    with pytest.raises(SystemExit):
        parse(["--budget-s", "0"])
