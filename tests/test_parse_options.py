import subprocess

from conftest import ROOT

SCRIPT = """
stop_stage=10
foo_bar=x
use_gpu=false
. {root}/utils/parse_options.sh
echo "stop_stage=$stop_stage foo_bar=$foo_bar use_gpu=$use_gpu rest=$*"
"""


def run(*args):
    return subprocess.run(["bash", "-c", SCRIPT.format(root=ROOT), "test", *args], capture_output=True, text=True)


def test_dash_and_underscore_spellings_both_set_the_variable():
    assert "stop_stage=3 " in run("--stop-stage", "3").stdout
    assert "stop_stage=4 " in run("--stop_stage", "4").stdout
    assert "foo_bar=y " in run("--foo-bar=y").stdout


def test_positional_arguments_are_left():
    assert "rest=a b" in run("--foo-bar", "z", "a", "b").stdout


def test_unknown_option_fails_naming_it():
    proc = run("--stop-stgae", "3")
    assert proc.returncode != 0
    assert "unknown option '--stop-stgae'" in proc.stderr


def test_boolean_option_takes_only_true_or_false():
    assert "use_gpu=true" in run("--use-gpu", "true").stdout
    proc = run("--use-gpu", "yes")
    assert proc.returncode != 0 and "true or false" in proc.stderr


def test_missing_value_fails():
    proc = run("--foo-bar")
    assert proc.returncode != 0 and "needs a value" in proc.stderr


def test_config_file_is_sourced(tmp_path):
    cfg = tmp_path / "c.conf"
    cfg.write_text("foo_bar=fromfile\n")
    assert "foo_bar=fromfile" in run("--config", str(cfg)).stdout
