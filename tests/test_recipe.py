"""The mini recipe end to end (stages 1-6, tiny corpus, one epoch) in a throw-away copy."""

import shutil
import subprocess

import pytest

from conftest import ROOT, copy_recipe

RECIPE = ROOT / "egs" / "mini_tts" / "conformer_ctc_ee"
needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                               reason="espeak-ng and sox are not installed (make system-deps)")


@pytest.fixture
def recipe(tmp_path):
    return copy_recipe(RECIPE, tmp_path / "recipe")


def run(recipe, *args):
    return subprocess.run(["./run.sh", "--local-data-opts", "--size tiny", "--train-args", "--max-epoch 1", *args],
                          cwd=recipe, capture_output=True, text=True, timeout=900)


@needs_tts
def test_tiny_recipe_stages_1_to_6_then_rerun_skips(recipe):
    proc = run(recipe)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = (recipe / "exp" / "train_unigram1000" / "RESULTS.md").read_text()
    for layer in (2, 4, 6, 8, 10, 12):
        assert f"|decode_test/exit{layer}|20|" in results
    assert "espnet version" in results and "git hash" in results
    assert "### How sure: decode_test" in results and "|exit12|" in results
    for marker in ("data/.stage1.done", "dump/.stage2.done", "data/token_list/unigram1000/.stage3.done",
                   "exp/train_unigram1000/.stage4.done", "exp/train_unigram1000/.stage5.done",
                   "exp/train_unigram1000/.stage6.done"):
        assert (recipe / marker).exists(), marker
    again = run(recipe, "--stop_stage", "5")
    assert again.returncode == 0, again.stderr[-4000:]
    for stage in (1, 2, 3, 4, 5):
        assert f"Stage {stage}: " in again.stderr and "already" in again.stderr
    assert "Stage 4: training" not in again.stderr
    # an empty policy grid (what single_exit.sh passes) decodes every exit and no policy
    no_policies = run(recipe, "--stage", "5", "--stop-stage", "5", "--policy-grid", "")
    assert no_policies.returncode == 0, no_policies.stderr[-4000:]
    decoded = recipe / "exp" / "train_unigram1000" / "decode_test"
    assert (decoded / "exit12" / "text").is_file() and not list(decoded.glob("policy_*"))
    # a changed option reruns that stage
    changed = run(recipe, "--stage", "3", "--stop-stage", "3", "--nbpe", "200")
    assert changed.returncode == 0 and "sentencepiece unigram with 200 pieces" in changed.stderr


def test_unknown_option_fails_before_any_work(recipe):
    proc = subprocess.run(["./run.sh", "--stop-stgae", "3"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown option '--stop-stgae'" in proc.stderr
    assert not (recipe / "data").exists()


def test_setup_makes_a_new_recipe(tmp_path):
    target = tmp_path / "egs" / "mycorpus" / "conformer_ctc_ee"
    proc = subprocess.run([str(ROOT / "egs" / "TEMPLATE" / "setup.sh"), str(target)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (target / "asr.sh").resolve() == (ROOT / "egs" / "TEMPLATE" / "asr.sh").resolve()
    assert (target / "utils" / "parse_options.sh").exists()
    assert (target / "run.sh").exists() and (target / "local" / "data.sh").exists()
    help_proc = subprocess.run(["./asr.sh", "--help"], cwd=target, capture_output=True, text=True)
    assert "Usage" in help_proc.stderr
