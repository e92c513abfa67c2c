"""The mini recipe end to end (stages 1-6, tiny corpus, one epoch) in a throw-away copy."""

import hashlib
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


@pytest.mark.slow
@needs_tts
def test_tiny_recipe_stages_1_to_6_then_rerun_skips(recipe):
    proc = run(recipe, "--blank-skip-sweep", "4:0.9,0.99")
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = (recipe / "exp" / "conformer_ctc_ee_unigram1000" / "RESULTS.md").read_text()
    # stage 6's time-WER sweep of blank skipping: fixed exits, skipping alone and under each policy
    skip = results.split("## Blank frames dropped above an exit (test)", 1)[1]
    assert "|fixed|12|4:0.9|" in skip and "|fixed|12|4:0.99|" in skip and "|learned|0.75|4:0.99|" in skip
    assert (recipe / "exp" / "conformer_ctc_ee_unigram1000" / "blank_skip.png").is_file()
    for layer in (2, 4, 6, 8, 10, 12):
        assert f"|decode_test/exit{layer}|20|" in results
    assert "espnet version" in results and "git hash" in results
    assert "### How sure: decode_test" in results and "|exit12|" in results
    for marker in ("data/.stage1.done", "dump/fbank/train/.stage2.done", "dump/fbank/test/.stage2.done",
                   "data/token_list/unigram1000/.stage3.done",
                   "exp/conformer_ctc_ee_unigram1000/.stage4.done", "exp/conformer_ctc_ee_unigram1000/.stage5.done",
                   "exp/conformer_ctc_ee_unigram1000/.stage6.done"):
        assert (recipe / marker).exists(), marker
    again = run(recipe, "--stop_stage", "5", "--blank-skip-sweep", "4:0.9,0.99")
    assert again.returncode == 0, again.stderr[-4000:]
    for stage in (1, 2, 3, 4, 5):
        assert f"Stage {stage}: " in again.stderr and "already" in again.stderr
    assert "Stage 4: training" not in again.stderr
    # an empty policy grid (what single_exit.sh passes) decodes every exit and no policy
    no_policies = run(recipe, "--stage", "5", "--stop-stage", "5", "--policy-grid", "")
    assert no_policies.returncode == 0, no_policies.stderr[-4000:]
    decoded = recipe / "exp" / "conformer_ctc_ee_unigram1000" / "decode_test"
    assert (decoded / "exit12" / "text").is_file() and not list(decoded.glob("policy_*"))
    # a changed option reruns that stage
    changed = run(recipe, "--stage", "3", "--stop-stage", "3", "--nbpe", "200")
    assert changed.returncode == 0 and "sentencepiece unigram with 200 pieces" in changed.stderr
    check_corpus_is_shared(recipe.parent)


def digests(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def check_corpus_is_shared(corpus):
    """A second recipe of the corpus finds stages 1-3 done; one needing raw audio adds its features
    beside the fbank ones; a recipe asking for another corpus is refused, and nothing is lost."""
    fbank, data = digests(corpus / "dump" / "fbank"), digests(corpus / "data")
    second = copy_recipe(RECIPE, corpus / "second")
    proc = run(second, "--stop-stage", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Stage 1: data prep already done" in proc.stderr and "Stage 3: sentencepiece already" in proc.stderr
    for d in ("train", "dev", "test"):
        assert f"Stage 2: fbank features of {d} already done" in proc.stderr
    assert "into dump/fbank" not in proc.stderr
    raw = copy_recipe(ROOT / "egs" / "mini_tts" / "wav2vec2_ctc_ee_scratch", corpus / "raw")
    proc = run(raw, "--stop-stage", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (corpus / "dump" / "raw" / "test" / "feats.scp").is_file()
    other = run(second, "--stop-stage", "1", "--local-data-opts", "--size tiny --seed 7")
    assert other.returncode != 0 and "was prepared with other options" in other.stderr
    assert digests(corpus / "dump" / "fbank") == fbank and digests(corpus / "data") == data


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
    assert (target / "data").is_symlink() and str((target / "data").readlink()) == "../data"
    help_proc = subprocess.run(["./asr.sh", "--help"], cwd=target, capture_output=True, text=True)
    assert "Usage" in help_proc.stdout
    # every option with its default and comment, read from asr.sh itself
    assert "--stop-stage               6                last stage to run" in help_proc.stdout
    assert "--nbest-size" in help_proc.stdout and "--help-message" not in help_proc.stdout
